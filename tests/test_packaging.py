"""The wheel works on its own: built from the sources, installed into a fresh virtualenv, ``lra-train`` run
from an empty folder trains a tiny cell with the packaged configs and writes under that folder, never into
site-packages."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from lra_snn.config import CONF_DIR, PROJECT_ROOT
from lra_snn.results.record import code_version

pytestmark = pytest.mark.slow  # a wheel build, a virtualenv and a training process: ~40 s on a busy core


def source_copy(target: Path) -> Path:
    """The checkout's files (tracked, and new ones git does not ignore) copied to ``target``: the build
    writes its build/ and egg-info there, not into the working tree."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = PROJECT_ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> dict[str, Path]:
    """A fresh virtualenv with the wheel installed; the project's dependencies are those of this
    interpreter, seen through a path file (whose directory's own .pth files, among them the editable
    install of lra_snn, are not processed)."""
    if shutil.which("git") is None or not (PROJECT_ROOT / ".git").exists():
        pytest.skip("needs a git checkout to collect the sources")
    tmp = tmp_path_factory.mktemp("packaging")
    sources = source_copy(tmp / "src")
    wheels = tmp / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w", wheels, "."],
        cwd=sources,
        check=True,
        timeout=300,
    )
    (wheel,) = wheels.glob("lra_snn-*.whl")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True, timeout=120)
    python = venv / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    ours = {sysconfig.get_paths()[kind] for kind in ("purelib", "platlib")}
    (site / "project_dependencies.pth").write_text("".join(f"{path}\n" for path in sorted(ours)))
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", "--no-index", wheel],
        check=True,
        timeout=300,
    )
    return {"wheel": wheel, "python": python, "bin": venv / "bin", "site": site, "sources": sources}


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that points Python or the project elsewhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "LRA_SNN_HOME", "VIRTUAL_ENV")}
    return {**env, "OMP_NUM_THREADS": "1", **extra}


def run_tool(installed: dict[str, Path], folder: Path, command: str, *args: str) -> subprocess.CompletedProcess:
    """The installed ``command`` run with ``args`` in ``folder``, in the clean environment, its output captured."""
    return subprocess.run(
        [installed["bin"] / command, *args], cwd=folder, env=clean_env(), capture_output=True, text=True, timeout=300
    )


def test_the_wheel_carries_the_configs_and_the_license(installed):
    with zipfile.ZipFile(installed["wheel"]) as wheel:
        names = set(wheel.namelist())
    packaged = {name.removeprefix("lra_snn/conf/") for name in names if name.startswith("lra_snn/conf/")}
    assert packaged == {path.relative_to(CONF_DIR).as_posix() for path in CONF_DIR.rglob("*.yaml")}
    assert any(name.endswith(".dist-info/licenses/LICENSE") for name in names), sorted(names)[-8:]
    assert "lra_snn/results/reference.yaml" in names  # the published numbers of the board
    assert "hydra_plugins/lra_snn_sweeper/cell_sweeper.py" in names  # the sweeper of lra-train -m
    assert not any(name.startswith("hydra_plugins/__init__") for name in names)  # a namespace other plugins share


def test_the_installed_package_reads_its_own_configs_and_works_in_the_current_folder(installed, tmp_path):
    probe = "import lra_snn, lra_snn.config as c; print(lra_snn.__file__); print(c.CONF_DIR); print(c.PROJECT_ROOT)"
    where = subprocess.run(
        [installed["python"], "-c", probe], cwd=tmp_path, env=clean_env(), capture_output=True, text=True, check=True
    ).stdout.split("\n")
    package = installed["site"] / "lra_snn"
    assert where[:3] == [str(package / "__init__.py"), str(package / "conf"), str(tmp_path)]

    home = tmp_path / "home"
    chosen = subprocess.run(
        [installed["python"], "-c", probe],
        cwd=tmp_path,
        env=clean_env(LRA_SNN_HOME=str(home)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    assert chosen[2] == str(home)


def test_lra_train_from_an_empty_folder_trains_and_records_there_and_the_board_has_the_published_rows(
    installed, tmp_path
):
    work = tmp_path / "work"
    work.mkdir()
    command = ["-m", "profile=tiny", "data=listops", "model=s4d", "torch_threads=1"]
    done = subprocess.run(
        [installed["bin"] / "lra-train", *command],
        cwd=work,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "sweep summary: 1 cells (1 completed)" in done.stdout  # the sweeper plugin travels with the wheel
    (result,) = work.glob("results/**/result.json")
    record = json.loads(result.read_text())
    assert record["status"] == "completed" and record["steps"] > 0
    assert record["config"]["paths"]["root_dir"] == str(work)
    # the code it ran is named as in the checkout the wheel was built from; no git repository is the code's
    assert record["code_version"] == code_version(installed["sources"]) and record["git_commit"] == "unknown"
    assert (work / "data").is_dir() and (work / "outputs").is_dir()
    written = [path for pattern in ("result.json", "*.ckpt", "*.arrow") for path in installed["site"].rglob(pattern)]
    assert not written, written  # nothing under site-packages (the venv's holds only the wheel's files)

    board = run_tool(installed, work, "lra-leaderboard", "--results", "results/local/runs", "--out", "board")
    assert board.returncode == 0, board.stderr
    published = (work / "board" / "leaderboard.md").read_text()
    assert "could not be read" not in published
    assert "| SpikingSSMs | 60.23 | 80.41 | 88.77 | 88.21 | 93.51 | 94.82 |" in published
    assert "| s4d |" in published  # our tiny run, on its profile's board

    figures = run_tool(
        installed, work, "lra-plots", "--results", "results/local/runs", "--out", "figures", "--bench", "none"
    )
    assert figures.returncode == 0, figures.stderr
    drawn = {path.name for path in (work / "figures").iterdir()}
    assert {"curves_tiny_listops.png", "curves_tiny_listops.pdf", "figures.json"} <= drawn, figures.stdout


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ("lra-extrapolate", "usage: "),
        ("lra-export-wandb", "usage: "),
        ("lra-reproduce", "usage: "),
        ("lra-eval", "Evaluate a checkpoint: ``lra-eval ckpt_path="),
    ],
)
def test_every_command_is_an_entry_point_of_the_wheel(installed, command, says, tmp_path):
    done = run_tool(installed, tmp_path, command, "--help")
    assert done.returncode == 0 and done.stdout.startswith(says), done.stdout[:300] + done.stderr[-1000:]
