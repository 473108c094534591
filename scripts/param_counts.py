"""Parameter counts of every experiment config (the full published recipes) beside the published ones.

Builds each ``conf/experiment/**`` model exactly as ``lra_snn.train`` does (encoder from the data
module's input facts, then the task with its head) and counts its parameters, each shared (tied)
tensor once; prints a markdown table, models x tasks, with published counts as rows beside ours:
the PRF paper's SD-TCM models (arXiv 2410.03530) on LRA, and the WikiText-103 models of S4
(arXiv 2111.00396), SpikingSSMs (arXiv 2408.14909) and DSN (arXiv 2602.01133). Vocabularies learnt
from the data (Text at S4's character level, WikiText-103) are known only once the data cache exists:
``--prepare TASK ...`` builds it for those tasks (may take minutes, or download); ``--vocab TASK=N``
gives the size instead (e.g. ``wt103=267735``, the vocabulary of WikiText-103's train split);
otherwise their cells read "needs data".

Usage: ``python scripts/param_counts.py [--prepare text ...] [--vocab wt103=267735] [--data-dir DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from lra_snn.config import PROJECT_ROOT, register_with_hydra
from lra_snn.data.errors import DataNotFoundError

CONF = PROJECT_ROOT / "conf"
TASK_COLUMNS = {
    "listops": "ListOps",
    "text": "Text",
    "retrieval": "Retrieval",
    "image": "Image",
    "pathfinder": "Pathfinder",
    "pathx": "Path-X",
    "wt103": "WikiText-103",
}
# published parameter counts: the PRF paper's SD-TCM models per task (arXiv 2410.03530); the
# WikiText-103 models of the S4 paper (arXiv 2111.00396), SpikingSSMs (arXiv 2408.14909) and DSN (arXiv 2602.01133)
PUBLISHED = {
    "PRF paper (SD-TCM)": {"listops": 272e3, "text": 830e3, "retrieval": 1.1e6, "image": 4.1e6, "pathfinder": 1.3e6},
    "S4 paper": {"wt103": 249e6},
    "SpikingSSMs paper": {"wt103": 75e6},
    "DSN paper": {"wt103": 137e6},
}


def experiments() -> list[str]:
    """Every experiment config name, e.g. ``lra/prf_listops``."""
    return sorted(
        p.relative_to(CONF / "experiment").with_suffix("").as_posix() for p in (CONF / "experiment").rglob("*.yaml")
    )


def input_facts_known(datamodule) -> bool:
    """Whether the data module can tell the encoder its vocabulary or input width without its data."""
    try:
        return all(value is not None for value in datamodule.encoder_kwargs().values())
    except (RuntimeError, ValueError):  # the data module reads it from its cache, not there yet
        return False


def count_parameters(experiment: str, data_dir: Path, prepare: bool, vocab: int | None = None) -> int | str:
    """Parameters of the experiment's task module (a tied tensor once), or why they cannot be counted.

    ``vocab``: the vocabulary size to use when the data cannot tell it (no cache).
    """
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose("train", overrides=[f"experiment={experiment}", f"paths.data_dir={data_dir}"])
    datamodule = instantiate(cfg.data)
    if input_facts_known(datamodule):
        encoder_kwargs, task_kwargs = datamodule.encoder_kwargs(), dict(datamodule.task_kwargs())
    elif vocab is not None:
        encoder_kwargs = {"vocab_size": vocab}
        task_kwargs = {"vocab_size": vocab} if cfg.task_name == "wikitext103" else dict(datamodule.task_kwargs())
    elif not prepare:
        return "needs data"
    else:
        try:
            datamodule.prepare_data()
            datamodule.setup("fit")
        except DataNotFoundError:
            return "no data"
        encoder_kwargs, task_kwargs = datamodule.encoder_kwargs(), dict(datamodule.task_kwargs())
    encoder = instantiate(cfg.model.encoder, **encoder_kwargs)
    task = instantiate(cfg.task, encoder=encoder, **task_kwargs)
    return sum(p.numel() for p in task.parameters())


def vocab_sizes(pairs: list[str]) -> dict[str, int]:
    """``["wt103=267735"]`` -> ``{"wt103": 267735}``; the task names are those of TASK_COLUMNS."""
    sizes = {}
    for pair in pairs:
        task, _, size = pair.partition("=")
        if task not in TASK_COLUMNS or not size.isdigit():
            raise SystemExit(f"--vocab {pair!r}: expected TASK=N with TASK one of {', '.join(TASK_COLUMNS)}")
        sizes[task] = int(size)
    return sizes


def short(count: int | float | str) -> str:
    """272,394 -> "272k", 1,093,000 -> "1.09M"; text passes through."""
    if isinstance(count, str):
        return count
    return f"{count / 1e3:.0f}k" if count < 1e6 else f"{count / 1e6:.2f}M"


def markdown_table(counts: dict[tuple[str, str], int | str]) -> str:
    """Rows: our models, then the published ones; columns: tasks; exact counts in parentheses."""
    lines = ["| model | " + " | ".join(TASK_COLUMNS.values()) + " |", "|---" * (len(TASK_COLUMNS) + 1) + "|"]
    for model in sorted({m for m, _ in counts}):
        cells = []
        for task in TASK_COLUMNS:
            value = counts.get((model, task), "-")
            cells.append(f"{short(value)} ({value:,})" if isinstance(value, int) else value)
        lines.append(f"| {model} | " + " | ".join(cells) + " |")
    for source, row in PUBLISHED.items():
        lines.append(f"| {source} | " + " | ".join(short(row[t]) if t in row else "-" for t in TASK_COLUMNS) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--prepare",
        nargs="*",
        default=[],
        metavar="TASK",
        help="tasks whose data cache may be built to learn their vocabulary (e.g. text)",
    )
    parser.add_argument(
        "--vocab",
        nargs="*",
        default=[],
        metavar="TASK=N",
        help="vocabulary sizes for tasks whose data is not prepared (e.g. wt103=267735)",
    )
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / "data", help="the data folder (paths.data_dir)")
    args = parser.parse_args()
    vocab = vocab_sizes(args.vocab)
    register_with_hydra()
    torch.set_num_threads(1)
    counts = {}
    for experiment in experiments():
        model, task = experiment.split("/")[1].rsplit("_", 1)
        counts[model, task] = count_parameters(experiment, args.data_dir, task in args.prepare, vocab.get(task))
    print(markdown_table(counts))


if __name__ == "__main__":
    main()
