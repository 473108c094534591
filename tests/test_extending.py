"""docs/extending.md followed literally, on a copy of the repository: each guide's steps (its code blocks headed
``# new file: <path>`` or ``# in <path>, below the line `<line>`:``) are applied, the files they create or edit
are counted (a neuron: 3, a model with its own block: 3, a task: 5), the guide's commands are run, and what they
print and record is checked: the new neuron is a zoo model with its family's recipe, the new model trains and its
block is a target the reproduction checks accept, the new task trains and has a board column of its own that
changes no average."""

from __future__ import annotations

import hashlib
import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lra_snn.config import PROJECT_ROOT

DOC = PROJECT_ROOT / "docs" / "extending.md"
NEW_FILE = re.compile(r"^# new file: (?P<path>\S+)$")
INSERT = re.compile(r"^# in (?P<path>\S+), below the line `(?P<anchor>.+)`:$")
FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.S | re.M)
COPIED = ("lra_snn", "conf", "pyproject.toml")


def guide(title: str) -> str:
    """The text of the section ``## <title>`` of docs/extending.md."""
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def code_blocks(text: str, lang: str | None = None) -> list[list[str]]:
    return [m["body"].splitlines() for m in FENCE.finditer(text) if lang is None or m["lang"] == lang]


def commands(text: str) -> list[list[str]]:
    """The guide's shell commands, ``.venv/bin/python`` standing for this interpreter."""
    lines = [line for block in code_blocks(text, "bash") for line in block if line.strip()]
    return [[sys.executable if word == ".venv/bin/python" else word for word in shlex.split(line)] for line in lines]


def apply_steps(text: str, root: Path) -> set[str]:
    """Carry out every step of ``text`` under ``root``; the files it names (created or edited)."""
    touched = set()
    for lines in code_blocks(text):
        head, body = lines[0], lines[1:]
        if created := NEW_FILE.match(head):
            path = root / created["path"]
            assert not path.exists(), f"the guide creates {created['path']}, which exists"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(body) + "\n", encoding="utf-8")
            touched.add(created["path"])
        elif inserted := INSERT.match(head):
            path = root / inserted["path"]
            old = path.read_text(encoding="utf-8").split("\n")
            assert old.count(inserted["anchor"]) == 1, f"{inserted['path']} has no single line {inserted['anchor']!r}"
            at = old.index(inserted["anchor"]) + 1
            path.write_text("\n".join([*old[:at], *body, *old[at:]]), encoding="utf-8")
            touched.add(inserted["path"])
    return touched


def digests(root: Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (caches left out), by path relative to it."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in root.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture
def repository(tmp_path) -> Path:
    """A copy of what a checkout runs from (package, configs, pyproject, published numbers)."""
    root = tmp_path / "repo"
    for name in COPIED:
        source, target = PROJECT_ROOT / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, target)
    return root


def follow(title: str, root: Path, most_files: int) -> list[str]:
    """Apply the guide ``title`` to ``root``, check it touched what it names and at most ``most_files`` files, run
    its commands there; their outputs, in order."""
    before = digests(root)
    touched = apply_steps(guide(title), root)
    after = digests(root)
    changed = {path for path in after if before.get(path) != after[path]}
    assert changed == touched and len(touched) <= most_files, sorted(changed)
    return [python(root, command[1:]) for command in commands(guide(title))]


def python(root: Path, arguments: list[str]) -> str:
    """Run this interpreter with ``arguments`` in ``root`` (its package, not the installed one); its stdout."""
    done = subprocess.run(
        [sys.executable, *arguments],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=600,
        env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "HOME": str(root)},
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def result_of(root: Path, model: str, task: str) -> dict:
    (path,) = (root / "results" / "local" / "runs" / "tiny" / task / model).rglob("result.json")
    return json.loads(path.read_text(encoding="utf-8"))


def board(root: Path) -> str:
    python(root, ["-m", "lra_snn.cli.leaderboard", "--results", "results/local/runs", "--out", "board"])
    return (root / "board" / "leaderboard.md").read_text(encoding="utf-8")


CHECK_NEURON = """
import torch
from lra_snn.config import compose_train
from lra_snn.config.zoo import family
from lra_snn.neurons import build_neuron
from lra_snn.training.validate import ConfigError, validate_config

full = compose_train(["model=leaky_integrator_ssm", "data=text", "profile=full"])
print(family("leaky_integrator_ssm"), full.model.encoder.layer.neuron.name, full.task.lr, full.task.weight_decay)
try:
    validate_config(compose_train(["model=leaky_integrator_ssm", "model.encoder.layer.neuron.beta=1.5"]))
except ConfigError as error:
    print(error.problems)
torch.manual_seed(0)
neuron, x = build_neuron("leaky_integrator", 3), torch.randn(2, 11, 3, dtype=torch.float64)
state, steps = neuron.init_state(2, dtype=x.dtype), []
for x_t in x.unbind(1):
    s_t, state = neuron.step(x_t, state)
    steps.append(s_t)
spikes = neuron(x)
print(torch.equal(spikes, neuron.forward_sequential(x)), torch.equal(spikes, torch.stack(steps, 1)))
"""


@pytest.mark.slow
def test_add_a_neuron_in_three_files(repository):
    listed, _trained = follow("Add a neuron", repository, most_files=3)
    assert "leaky_integrator_ssm" in listed.strip().split(",")
    result = result_of(repository, "leaky_integrator_ssm", "listops")
    assert result["status"] == "completed" and result["config"]["model"]["encoder"]["layer"]["neuron"]["beta"] == 0.5
    metrics = result["metrics"]
    assert metrics["test/macs"] > 0 and metrics["test/acs"] > 0 and 0 <= metrics["test/firing_rate"] <= 1
    checked = python(repository, ["-c", CHECK_NEURON]).splitlines()
    assert checked[0] == "spiking_s4d leaky_integrator 0.01 0.05"  # the spiking-S4D family's Text recipe
    assert checked[1] == "['model.encoder.layer.neuron.beta=1.5: expected a number in [0, 1)']"
    assert checked[2] == "True True"  # the example's three forms agree
    bench = ["-m", "lra_snn.cli.bench", "--neurons", "leaky_integrator", "--lengths", "12", "--repeats", "1"]
    assert "| leaky_integrator | 12 |" in python(repository, [*bench, "--warmup", "1", "--batch", "2", "--out", "b"])
    assert "| leaky_integrator_ssm |" in board(repository)


@pytest.mark.slow
def test_add_a_model_with_its_own_block_in_three_files(repository):
    (_trained,) = follow("Add a model", repository, most_files=3)
    result = result_of(repository, "spiking_mlp", "listops")
    assert result["status"] == "completed"
    assert result["config"]["model"]["encoder"]["layer"]["_target_"] == "lra_snn.models.spiking_mlp.SpikingMLPBlock"
    assert result["metrics"]["test/acs"] > 0  # the Linear reads spikes: counted as accumulates
    block = "lra_snn.models.spiking_mlp.SpikingMLPBlock"
    allowed = f"from lra_snn.config.provenance import ALLOWED_TARGETS; print({block!r} in ALLOWED_TARGETS)"
    assert python(repository, ["-c", allowed]).strip() == "True"
    assert "spiking_mlp:none" in python(repository, ["-m", "lra_snn.cli.zoo", "families"]).strip().split(",")


@pytest.mark.slow
def test_add_a_task_in_five_files_with_a_column_and_no_average_of_its_own(repository):
    listed, _trained = follow("Add a task", repository, most_files=5)
    assert listed.strip().split(",")[-1] == "parity"
    result = result_of(repository, "s4d", "parity")
    assert result["status"] == "completed" and result["task"] == "parity"
    assert result["metrics"]["test/chance_rate"] == 0.5 and 0.0 <= result["metrics"]["test/acc"] <= 1.0
    markdown = board(repository)
    tiny = markdown.split("## Profile: tiny", 1)[1]
    header = next(line for line in tiny.splitlines() if line.startswith("| Model | ListOps"))
    assert header == (
        "| Model | ListOps | Text | Retrieval | Image | Pathfinder | Path-X | Parity "
        "| LRA avg (5, no Path-X) | LRA avg (6) | WikiText-103 (ppl) |"
    )
    row = next(line for line in tiny.splitlines() if line.startswith("| s4d |"))
    assert row.split(" | ")[8:10] == ["-", "-"]  # no LRA task run: no average, whatever Parity scores
    assert "LRA avg (6) adds Path-X; a row missing a task of a set shows `k/6 tasks`" in markdown


def test_every_step_of_the_guides_names_its_file():
    for title in ("Add a neuron", "Add a model", "Add a task"):
        for lines in code_blocks(guide(title)):
            if lines[0].startswith("# new file") or lines[0].startswith("# in "):
                assert NEW_FILE.match(lines[0]) or INSERT.match(lines[0]), lines[0]
