"""Parameter counts of every zoo model at the full profile (the published recipes) beside the published ones.

Builds each model on each task (``model=<model> data=<task> profile=full``) exactly as ``lra_snn.train``
does (encoder from the data module's input facts, then the task with its head) and counts its parameters,
each shared (tied) tensor once; prints a markdown table, models x tasks, with published counts as rows beside ours:
the PRF paper's SD-TCM models (arXiv 2410.03530) on LRA, and the WikiText-103 models of S4
(arXiv 2111.00396), SpikingSSMs (arXiv 2408.14909) and DSN (arXiv 2602.01133). Vocabularies learnt
from the data (Text at S4's character level, WikiText-103) are known only once the data cache exists:
``--prepare TASK ...`` builds it for those tasks (may take minutes, or download); ``--vocab TASK=N``
gives the size instead (e.g. ``wikitext103=267735``, the vocabulary of WikiText-103's train split);
otherwise their cells read "needs data".

Usage: ``python scripts/param_counts.py [--prepare text ...] [--vocab wikitext103=267735] [--data-dir DIR]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate

from lra_snn.config import CONF_DIR, PROJECT_ROOT, register_with_hydra
from lra_snn.config.tasks import PERPLEXITY, TASK_TABLE, TASKS
from lra_snn.config.zoo import models
from lra_snn.data.errors import DataNotFoundError

TASK_COLUMNS = {task: TASK_TABLE.rows[task].title for task in TASKS}
# published parameter counts: the PRF paper's SD-TCM models per task (arXiv 2410.03530); the
# WikiText-103 models of the S4 paper (arXiv 2111.00396), SpikingSSMs (arXiv 2408.14909) and DSN (arXiv 2602.01133)
PUBLISHED = {
    "PRF paper (SD-TCM)": {"listops": 272e3, "text": 830e3, "retrieval": 1.1e6, "image": 4.1e6, "pathfinder": 1.3e6},
    "S4 paper": {"wikitext103": 249e6},
    "SpikingSSMs paper": {"wikitext103": 75e6},
    "DSN paper": {"wikitext103": 137e6},
}


def input_facts_known(datamodule) -> bool:
    """Whether the data module can tell the encoder its vocabulary or input width without its data."""
    try:
        return all(value is not None for value in datamodule.encoder_kwargs().values())
    except (RuntimeError, ValueError):  # the data module reads it from its cache, not there yet
        return False


def count_parameters(model: str, task: str, data_dir: Path, prepare: bool, vocab: int | None = None) -> int | str:
    """Parameters of the model's task module on ``task`` at the full profile (a tied tensor once), or why they
    cannot be counted. ``vocab``: the vocabulary size to use when the data cannot tell it (no cache).
    """
    overrides = [f"model={model}", f"data={task}", "profile=full", f"paths.data_dir={data_dir}"]
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    datamodule = instantiate(cfg.data)
    if input_facts_known(datamodule):
        encoder_kwargs, task_kwargs = datamodule.encoder_kwargs(), dict(datamodule.task_kwargs())
    elif vocab is not None:
        encoder_kwargs = {"vocab_size": vocab}
        language_model = TASK_TABLE.rows[task].metric == PERPLEXITY  # the head predicts the vocabulary
        task_kwargs = {"vocab_size": vocab} if language_model else dict(datamodule.task_kwargs())
    elif not prepare:
        return "needs data"
    else:
        try:
            datamodule.prepare_data()
            datamodule.setup("fit")
        except DataNotFoundError:
            return "no data"
        encoder_kwargs, task_kwargs = datamodule.encoder_kwargs(), dict(datamodule.task_kwargs())
    try:
        encoder = instantiate(cfg.model.encoder, **encoder_kwargs)
    except InstantiationException:  # e.g. a fixed-length PSN beyond its cap at the full WikiText-103 context
        return "refused"
    task = instantiate(cfg.task, encoder=encoder, **task_kwargs)
    return sum(p.numel() for p in task.parameters())


def vocab_sizes(pairs: list[str]) -> dict[str, int]:
    """``["wikitext103=267735"]`` -> ``{"wikitext103": 267735}``; the task names are those of the task table."""
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
        help="vocabulary sizes for tasks whose data is not prepared (e.g. wikitext103=267735)",
    )
    parser.add_argument("--data-dir", type=Path, default=PROJECT_ROOT / "data", help="the data folder (paths.data_dir)")
    args = parser.parse_args()
    vocab = vocab_sizes(args.vocab)
    register_with_hydra()
    torch.set_num_threads(1)
    counts = {}
    for model in models():
        for task in TASKS:
            counts[model, task] = count_parameters(model, task, args.data_dir, task in args.prepare, vocab.get(task))
    print(markdown_table(counts))


if __name__ == "__main__":
    main()
