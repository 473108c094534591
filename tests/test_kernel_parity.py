"""The Triton-vs-PyTorch training parity tool (``python -m lra_snn.cli.kernel_parity``), in process on tiny
runs: on a CPU the Triton runs go through the interpreter (tests/conftest.py switches it on)."""

from __future__ import annotations

import json

import pytest
import torch

from lra_snn.cli import kernel_parity
from lra_snn.ops import dispatch
from lra_snn.ops.dsn import triton as dsn_triton
from lra_snn.ops.lif import triton as lif_triton

STEPS = 3
# a smaller batch and shorter sequences than profile=tiny: a few seconds per interpreted run
SMALL = ["--override", "data.batch_size=4", "--override", "data.max_length=24"]


def run_parity(tmp_path, *args: str) -> tuple[int, dict]:
    """Run the tool at the tiny recipe with every output under ``tmp_path``; exit status and the JSON report."""
    code = kernel_parity.main(
        [
            "--recipe",
            "tiny",
            "--steps",
            str(STEPS),
            "--warmup-steps",
            "1",
            "--out",
            str(tmp_path / "out"),
            "--workdir",
            str(tmp_path / "work"),
            "--data-dir",
            str(tmp_path / "data"),
            *SMALL,
            *args,
        ]
    )
    (report,) = (tmp_path / "out").glob("kernel_parity_*.json")
    return code, json.loads(report.read_text())


def counting(monkeypatch, module, name: str) -> list[int]:
    """Replace ``module.name`` by a wrapper that calls it and appends 1 per call to the returned list."""
    calls: list[int] = []
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def assert_parity(result: dict, tolerance: float = 1e-4) -> None:
    """Both backends ran STEPS steps on their own backend only, timed, and their loss curves agree."""
    for backend in kernel_parity.BACKENDS:
        run = result["runs"][backend]
        assert run["status"] == "completed", run.get("error")
        assert run["steps"] == STEPS and len(run["losses"]) == STEPS
        assert len(run["step_times_s"]) == STEPS and min(run["step_times_s"]) > 0
        assert run["dispatch"], "no neuron primitive consulted the dispatch"
        assert {choice for counts in run["dispatch"].values() for choice in counts} == {backend}
        assert result["timing"][backend]["median_ms"] > 0 and result["timing"][backend]["timed_steps"] == STEPS - 1
    comparison = result["comparison"]
    assert comparison["compared_steps"] == STEPS
    assert comparison["agree"] and comparison["agree_first_10"]
    assert comparison["first_divergent_step"] is None and comparison["max_rel_diff"] <= tolerance
    assert result["timing"]["speedup_torch_over_triton"] > 0


def test_lif_and_dsn_train_alike_through_triton_and_torch(tmp_path, monkeypatch, capsys):
    lif_calls = counting(monkeypatch, lif_triton, "lif_triton")
    dsn_calls = counting(monkeypatch, dsn_triton, "dsn_triton")
    code, report = run_parity(tmp_path, "--models", "lif_ssm,dsn_ssm")
    assert code == 0
    assert set(report["models"]) == {"lif_ssm", "dsn_ssm"}
    for model in ("lif_ssm", "dsn_ssm"):
        assert_parity(report["models"][model])
    # the Triton runs went through the fused kernels, once per training step at least (the torch runs never)
    assert len(lif_calls) >= STEPS and len(dsn_calls) >= STEPS
    meta = report["meta"]
    assert meta["seed"] == 1 and meta["steps"] == STEPS and meta["versions"]["torch"] and meta["device_name"]
    assert meta["user_overrides"] == ["data.batch_size=4", "data.max_length=24"]
    assert meta["triton_interpreter"] == (not torch.cuda.is_available())
    table = capsys.readouterr().out
    assert f"| lif_ssm | {STEPS} |" in table and f"| dsn_ssm | {STEPS} |" in table


@pytest.mark.slow
def test_spike_ssm_and_prf_train_alike_through_triton_and_torch(tmp_path):
    code, report = run_parity(tmp_path, "--models", "spike_ssm,prf")
    assert code == 0
    for model in ("spike_ssm", "prf"):
        assert_parity(report["models"][model])
    spike_ssm_ops = set(report["models"]["spike_ssm"]["runs"]["triton"]["dispatch"])
    assert spike_ssm_ops >= {"refractory_iteration", "leaky_integrate"}
    assert "prf_spikes" in report["models"]["prf"]["runs"]["triton"]["dispatch"]


def test_a_kernel_computing_something_else_is_reported_as_divergent(tmp_path, monkeypatch, capsys):
    def wrong_lif(x, beta, v_th, surrogate, detach_reset):  # smooth "spikes": not the LIF, but differentiable
        spikes = torch.sigmoid(x)
        return spikes, (spikes > 0.5).sum(1)

    monkeypatch.setattr(lif_triton, "lif_triton", wrong_lif)
    code, report = run_parity(tmp_path, "--models", "lif_ssm")
    assert code == 1
    comparison = report["models"]["lif_ssm"]["comparison"]
    assert not comparison["agree"] and not comparison["agree_first_10"]
    assert comparison["first_divergent_step"] == 0 and comparison["max_abs_diff"] > 0
    assert "| no (first 10 steps: no) |" in capsys.readouterr().out


def test_a_triton_run_the_kernels_cannot_cover_fails_instead_of_falling_back(tmp_path, capsys, monkeypatch):
    # where the kernels cannot run (here: triton made unimportable), forced Triton must not quietly run PyTorch
    monkeypatch.setattr(dispatch, "triton_import_error", lambda: "triton is not importable (test)")
    code, report = run_parity(tmp_path, "--models", "lif_ssm")
    assert code == 1
    result = report["models"]["lif_ssm"]
    assert result["runs"]["torch"]["status"] == "completed"
    assert result["runs"]["triton"]["status"] == "failed"
    error = result["runs"]["triton"]["error"]
    assert "TritonUnavailable" in error and "triton is not importable (test)" in error
    assert result["comparison"] is None
    assert "failed (triton: TritonUnavailable" in capsys.readouterr().out


def test_compare_losses_finds_the_first_step_beyond_the_tolerance():
    reference = [2.0 + 0.01 * step for step in range(20)]
    late = [*reference[:12], *(loss * (1 + 1e-3) for loss in reference[12:])]
    comparison = kernel_parity.compare_losses(reference, late, tolerance=1e-4)
    assert comparison["first_divergent_step"] == 12
    assert not comparison["agree"] and comparison["agree_first_10"]
    assert comparison["final_abs_diff"] == pytest.approx(reference[-1] * 1e-3)
    assert comparison["max_rel_diff"] == pytest.approx(1e-3 / (1 + 1e-3))
    within = kernel_parity.compare_losses(reference, [loss * (1 + 1e-5) for loss in reference], tolerance=1e-4)
    assert within["agree"] and within["first_divergent_step"] is None
    shorter = kernel_parity.compare_losses(reference, reference[:15], tolerance=1e-4)
    assert not shorter["agree"] and shorter["compared_steps"] == 15


@pytest.mark.parametrize(
    ("args", "option", "named"),
    [
        (["--models", "lif_ssm,not_a_model"], "--models", "not_a_model"),
        (["--models", "psn_ssm"], "--models", "psn_ssm"),
        (["--task", "not_a_task"], "--task", "listops"),
        (["--steps", "3", "--warmup-steps", "3"], "--warmup-steps", "below --steps"),
    ],
)
def test_bad_options_are_refused_naming_the_option(args, option, named, capsys):
    with pytest.raises(SystemExit) as exit_info:
        kernel_parity.parse_args(args)
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert option in error and named in error
