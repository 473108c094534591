"""Fault replay: bad inputs a careless or hostile user gives on the tiny profile, each refused
before any work with a message naming what to fix, and nothing written.

An experiment paired with another task is refused on the command line (test_config_validation);
the deeper cases (lost or hidden results, locks, signals, caches, reproduce) have their own
modules: test_results_schema, test_train, test_interrupt, test_reproduce, tests/data.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from lra_snn.training.cell import CellRefused, run
from lra_snn.training.validate import ConfigError

# (overrides, the error type, words the message must hold)
REFUSED = [
    (["trainer.max_epochs=abc"], ConfigError, ["trainer.max_epochs", "integer"]),
    (["trainer.max_epochs=-1"], ConfigError, ["trainer.max_epochs"]),
    (["trainer.max_epochs=0"], ConfigError, ["trainer.max_epochs", ">= 1"]),
    (["model.encoder.d_model=-8"], ConfigError, ["model.encoder.d_model", ">= 1"]),
    (["model.encoder.n_layers=0"], ConfigError, ["model.encoder.n_layers", ">= 1"]),
    (["data.n_train=-5"], ConfigError, ["data.n_train", ">= 1"]),
    (["task.warmup_steps=-3"], ConfigError, ["task.warmup_steps", ">= 0"]),
    (["task.lr=0"], ConfigError, ["task.lr"]),
    (["model.encoder.dropout=1.5"], ConfigError, ["model.encoder.dropout"]),
    (["data.batch_size=0"], ConfigError, ["data.batch_size"]),
    (["model.name=../../x"], CellRefused, ["model.name", "letters, digits"]),
    (["model.name=a/b"], CellRefused, ["model.name", "letters, digits"]),
]


@pytest.mark.parametrize(("overrides", "error", "words"), REFUSED, ids=[" ".join(o) for o, _, _ in REFUSED])
def test_bad_input_is_refused_before_any_work(compose_train, tmp_path, overrides, error, words):
    cfg = compose_train("profile=tiny", *overrides)
    with pytest.raises(error) as raised:
        run(cfg)
    message = str(raised.value)
    for word in words:
        assert word in message, (word, message)
    written = [p for p in Path(tmp_path).rglob("*") if p.is_file()]
    assert written == [], f"a refused run wrote {written}"


def test_every_bad_key_is_named_at_once(compose_train):
    cfg = compose_train("profile=tiny", "trainer.max_epochs=abc", "data.n_train=-5", "model.encoder.d_model=0")
    with pytest.raises(ConfigError) as raised:
        run(cfg)
    message = str(raised.value)
    assert all(key in message for key in ("trainer.max_epochs", "data.n_train", "model.encoder.d_model"))
