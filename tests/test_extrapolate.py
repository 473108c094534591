"""``make extrapolate`` refuses what no run can use before anything trains, naming each argument."""

from __future__ import annotations

import pytest

from lra_snn.cli import extrapolate
from lra_snn.config.locations import SHIPPED_RUNS_DIR


def refusal(capsys, *argv: str) -> list[str]:
    """The problem lines ``make extrapolate <argv>`` exits with (status 2, before training)."""
    with pytest.raises(SystemExit) as stop:
        extrapolate.main(list(argv))
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "error: nothing was trained:" in error
    return [line.strip() for line in error.split("nothing was trained:", 1)[1].strip().splitlines()]


def test_bad_counts_factors_and_models_are_named_before_training(capsys, tmp_path):
    lines = refusal(
        capsys,
        "--models",
        "s4d,nope",
        "--factors",
        "0,-2,abc",
        "--n-test",
        "0",
        "--batch-size",
        "3",
        "--threads",
        "-1",
        "--results-dir",
        str(tmp_path / "results"),
    )
    assert lines[:3] == [
        "--n-test 0: give a whole number >= 1",
        "--threads -1: give a whole number >= 1",
        "--factors 0,-2,abc: give whole numbers >= 1, comma-separated, e.g. --factors 1,2,4,8",
    ]
    assert lines[3].startswith("--models: 'nope' is not a zoo model; the zoo: binary_s4d, ")
    assert len(lines) == 4  # s4d itself is fine


def test_a_model_that_cannot_stream_and_a_refused_override_are_named(capsys, tmp_path):
    lines = refusal(
        capsys,
        "--models",
        "psn_ssm,lif_ssm",
        "--train-args",
        "trainer.max_epochs=0",
        "--results-dir",
        str(tmp_path / "results"),
        "--out",
        str(SHIPPED_RUNS_DIR / "x"),
    )
    assert lines[0] == "--models psn_ssm: trainer.max_epochs=0: expected an integer >= 1 or one of null, -1"
    assert lines[1] == "--models lif_ssm: trainer.max_epochs=0: expected an integer >= 1 or one of null, -1"
    assert lines[2].startswith(f"--out={SHIPPED_RUNS_DIR / 'x'} lies inside {SHIPPED_RUNS_DIR}, the shipped runs")
    streaming = refusal(capsys, "--models", "psn_ssm", "--results-dir", str(tmp_path / "results"))
    assert len(streaming) == 4 and all(
        line.startswith("--models psn_ssm: cannot stream: blocks.") and "PSN is built for a fixed length" in line
        for line in streaming
    )
    assert not list((tmp_path / "results").glob("**/result.json"))  # nothing trained
