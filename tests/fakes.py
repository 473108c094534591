"""Tiny datasets in the real on-disk formats, shared by the data tests and the experiment runs:
CIFAR-10 python batches, LRA's AAN retrieval TSVs and WikiText token files; and a crash on cue."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import lightning as L
import numpy as np

from lra_snn.data import image, retrieval


def fake_batch(n: int, seed: int) -> dict[bytes, object]:
    """A batch in the real pickle format: bytes keys, (n, 3072) uint8 data, a list of int labels."""
    rng = np.random.default_rng(seed)
    return {
        b"batch_label": f"fake batch {seed}".encode(),
        b"labels": [int(label) for label in np.arange(n) % 10],
        b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
        b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)],
    }


def fake_batches(n_per_batch: int = 20) -> dict[str, dict[bytes, object]]:
    names = image.TRAIN_BATCHES + image.TEST_BATCHES
    return {name: fake_batch(n_per_batch, seed) for seed, name in enumerate(names)}


def write_cifar_archive(path: Path, batches: dict[str, dict[bytes, object] | bytes]) -> Path:
    """A tar.gz laid out as ``cifar-10-python.tar.gz``: ``cifar-10-batches-py/<batch>`` pickles plus the meta file."""
    files = {"batches.meta": pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=2)}
    files.update({name: b if isinstance(b, bytes) else pickle.dumps(b, protocol=2) for name, b in batches.items()})
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{image.BATCH_FOLDER}/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def fake_rows(n_per_class: int, seed: int) -> list[str]:
    """TSV lines ``label, id1, id2, text1, text2`` with quotes inside the abstracts (they are text)."""
    rng = np.random.default_rng(seed)
    words = ["parsing", "corpus", "model", "translation", '"quoted"', "it's", "graph", "tagging"]
    rows = []
    for index in range(2 * n_per_class):
        label = index % 2
        first, second = (" ".join(rng.choice(words, size=int(rng.integers(3, 30)))) for _ in range(2))
        rows.append(f"{label}\tacl-{index}a\tacl-{index}b\t{first}\t{second}")
    return rows


def write_tsv_folder(folder: Path, n_per_class: dict[str, int], seed: int = 0) -> Path:
    """The three AAN TSVs in ``folder``, labels written as LRA's files may hold them ("1" and "0.0")."""
    folder.mkdir(parents=True, exist_ok=True)
    for offset, (split, name) in enumerate(retrieval.SPLIT_FILES.items()):
        rows = fake_rows(n_per_class[split], seed + offset)
        rows[0] = rows[0].replace("0\t", "0.0\t", 1)
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


# Lines in WikiText's format (leading space, space-separated tokens, `<unk>`-ed, headings as `= ... =`).
LINES = [
    " = Tropical Storm Arlene = \n",
    " \n",
    " The storm formed on June 1 and moved slowly to the north . \n",
    " It brought heavy rain to Cuba and the Florida Keys , where <unk> flooding was reported . \n",
    " The storm weakened over land and was absorbed by a front on June 4 . \n",
    " \n",
]
def write_corpus(folder: Path) -> Path:
    """wiki.{train,valid,test}.tokens: train repeats the lines, valid and test hold them once."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, repeats in (("train", 8), ("valid", 1), ("test", 1)):
        (folder / f"wiki.{split}.tokens").write_text("".join(LINES * repeats), encoding="utf-8")
    return folder


class CrashAtStep(L.Callback):
    """Raises after training step ``step`` (a run killed mid-epoch, for the resume tests)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise RuntimeError(f"crash injected after step {self.step}")


class BatchLabels(L.Callback):
    """Appends each training step's number and batch labels to a JSON-lines file."""

    def __init__(self, path: str) -> None:
        self.path = Path(path)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        with self.path.open("a") as log:
            log.write(json.dumps({"step": trainer.global_step, "labels": batch["labels"].tolist()}) + "\n")
