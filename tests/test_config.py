"""The cell hash (lra_snn/config.py): machine settings leave it alone, settings of the computation change it."""

from __future__ import annotations

from lra_snn.config import PROJECT_ROOT, cell_hash


def test_kernel_backend_and_devices_do_not_change_the_cell(compose_train):
    base = cell_hash(compose_train("model=lif_ssm", "data=listops", "profile=tiny"))
    for machine in (
        "model.encoder.layer.neuron.backend=triton",
        "model.encoder.layer.neuron.backend=torch",
        "trainer.devices=2",
        "data.num_workers=3",
    ):
        assert cell_hash(compose_train("model=lif_ssm", "data=listops", "profile=tiny", machine)) == base, machine
    for computation in ("model.encoder.layer.neuron.tau=3.0", "model.encoder.d_model=48", "data.batch_size=8"):
        assert cell_hash(compose_train("model=lif_ssm", "data=listops", "profile=tiny", computation)) != base, (
            computation
        )


def test_the_data_source_is_part_of_the_cell_and_the_release_folder_is_not(compose_train):
    full = ("model=s4d", "data=listops", "profile=full")
    release = cell_hash(compose_train(*full))
    generated = cell_hash(compose_train(*full, "data.source=generate"))
    assert generated != release
    assert cell_hash(compose_train(*full, "data.source=generate", "data.generator_seed=5")) != generated
    assert cell_hash(compose_train(*full, "data.release_dir=/elsewhere/lra_release")) == release
    assert cell_hash(compose_train("model=s4d", "data=pathx", "profile=full", "data.source=generate")) != cell_hash(
        compose_train("model=s4d", "data=pathx", "profile=full")
    )


def test_committed_results_are_found_under_the_current_cells(compose_train):
    # a hash change would orphan the shipped runs: the board would list them as superseded
    for model in ("s4d", "lif_ssm", "dsn_ssm", "prf", "spike_ssm"):
        cells = PROJECT_ROOT / "results" / "reference-runs" / "mini" / "listops" / model
        current = cell_hash(compose_train(f"model={model}", "data=listops", "profile=mini"))
        assert (cells / current).is_dir(), f"{model}: no results under cell {current} (have {sorted(cells.iterdir())})"


def test_the_cell_hash_is_of_the_resolved_content_in_any_key_order():
    from pathlib import Path

    from omegaconf import OmegaConf

    plain = {"task_name": "listops", "data": {"n_train": 8, "n_val": 8}, "model": {"name": "s4d"}}
    digest = cell_hash(plain)
    assert len(digest) == 10 and int(digest, 16) >= 0
    reordered = {"model": {"name": "s4d"}, "data": {"n_val": 8, "n_train": 8}, "task_name": "listops"}
    assert cell_hash(reordered) == digest
    interpolated = OmegaConf.create({**plain, "data": {"n_train": "${data.n_val}", "n_val": 8}})
    assert cell_hash(interpolated) == digest  # hashed resolved, as a recorded (resolved) config is
    # a value JSON cannot write is hashed by its text, and changes the hash
    assert cell_hash({**plain, "data": {"n_train": 8, "n_val": 8, "source": Path("x")}}) == cell_hash(
        {**plain, "data": {"n_train": 8, "n_val": 8, "source": "x"}}
    )
    assert cell_hash({**plain, "data": {"n_train": 9, "n_val": 8}}) != digest
