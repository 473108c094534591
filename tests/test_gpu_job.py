"""scripts/gpu_job.sh, the one-command GPU job, end to end on its CPU path (the interpreter, tiny sizes):
every step runs, logs, and is listed with its exit status; a failing step fails the job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_job(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    variables = {
        **os.environ,
        "OUT": str(tmp_path / "out"),
        "WHEELS": str(tmp_path / "no_wheels"),
        "DATA_DIR": str(tmp_path / "data"),
        "PY": sys.executable,
        "BENCH_ARGS": "--tiny --neurons dsn --no-sweep",
        "PARITY_ARGS": "--recipe tiny --models dsn_ssm --steps 2 --warmup-steps 1",
        **env,
    }
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_job.sh")], env=variables, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_job_runs_every_step_and_writes_results(tmp_path):
    done = run_job(tmp_path)
    out = tmp_path / "out"
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert (out / "summary.txt").read_text().splitlines() == [
        "gpu_tests: exit 0",
        "bench_gpu: exit 0",
        "kernel_parity: exit 0",
    ]
    assert len(list(out.glob("bench_gpu_*.json"))) == 1 and len(list(out.glob("kernel_parity_*.json"))) == 1
    assert "| dsn_ssm | 2 |" in (out / "kernel_parity.log").read_text()
    assert not (out / "data").exists() and (tmp_path / "data").is_dir()


def test_a_failing_step_fails_the_job_and_the_others_still_run(tmp_path):
    done = run_job(tmp_path, BENCH_ARGS="--no-such-option", PARITY_ARGS="--models nonsense")
    assert done.returncode == 1
    summary = (tmp_path / "out" / "summary.txt").read_text().splitlines()
    assert summary == ["gpu_tests: exit 0", "bench_gpu: exit 2", "kernel_parity: exit 2"]
