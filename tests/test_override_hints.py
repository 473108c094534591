"""A mistyped override key gets a hint naming the closest config keys (lra_snn/override_hints.py)."""

from __future__ import annotations

import os
import subprocess
import sys

from lra_snn.config import PROJECT_ROOT
from lra_snn.config.override_hints import unknown_key_hints


def test_a_typo_is_matched_to_the_key_it_misspells():
    (hint,) = unknown_key_hints(["trainer.max_epoch=3"])
    assert hint.startswith("no config key 'trainer.max_epoch'; did you mean 'trainer.max_epochs'")
    assert "Keys under 'trainer':" in hint and "precision" in hint and "leading +" in hint


def test_keys_are_looked_up_in_the_model_the_command_selects():
    # sd_tcm (PRF's block) has keys S4D's does not: the first value of a sweep picks the model composed
    (hint,) = unknown_key_hints(["-m", "model=prf,s4d", "model.encoder.dmodel=3", "seed=1,2"])
    assert "did you mean 'model.encoder.d_model'" in hint
    assert unknown_key_hints(["model=prf", "model.encoder.layer.neuron.theta_max=0.3"]) == []
    assert unknown_key_hints(["model=s4d", "model.encoder.layer.neuron.theta_max=0.3"])


def test_valid_commands_new_keys_and_bad_groups_give_no_hint():
    assert unknown_key_hints(["data=listops", "profile=tiny", "task.lr=0.1", "seed=3"]) == []
    assert unknown_key_hints(["+trainer.new_key=1", "~callbacks.checkpoint", "hydra.launcher.n_jobs=2"]) == []
    assert unknown_key_hints(["model=no_such_model", "model.encoder.dmodel=3"]) == []  # Hydra lists the models


def test_the_command_line_prints_the_hint_after_hydras_error(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lra_snn.train",
            "model.encoder.dmodel=3",
            "profile=tiny",
            f"paths.output_dir={tmp_path}",
            "--cfg",
            "job",
        ],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        timeout=120,
    )
    assert done.returncode == 1
    assert "Could not override 'model.encoder.dmodel'" in done.stderr
    assert "did you mean 'model.encoder.d_model'" in done.stderr
