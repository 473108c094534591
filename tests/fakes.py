"""Tiny datasets in the real on-disk formats, shared by the data tests, the experiment runs and
``scripts/bench_data.py``: CIFAR-10 python batches, the IMDB archive, LRA's AAN retrieval TSVs,
LRA's ListOps TSVs and Pathfinder folders (from the project's generators), WikiText token files;
and a crash on cue. The formats are spelled out here, independently of the readers under test."""

from __future__ import annotations

import io
import json
import pickle
import tarfile
from pathlib import Path

import lightning as L
import numpy as np
from PIL import Image

from lra_snn.data.listops.generate import generate
from lra_snn.data.pathfinder.generate import SnakeParams, batch_sizes, difficulty_folder, draw_batch

# The release formats (file and folder names of the published archives).
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_BATCHES = (*(f"data_batch_{i}" for i in range(1, 6)), "test_batch")
AAN_FILES = {"train": "new_aan_pairs.train.tsv", "val": "new_aan_pairs.eval.tsv", "test": "new_aan_pairs.test.tsv"}
LISTOPS_FOLDER = "listops-1000"
LISTOPS_FILES = {"train": "basic_train.tsv", "val": "basic_val.tsv", "test": "basic_test.tsv"}


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
    return {name: fake_batch(n_per_batch, seed) for seed, name in enumerate(CIFAR_BATCHES)}


def write_cifar_archive(path: Path, batches: dict[str, dict[bytes, object] | bytes]) -> Path:
    """A tar.gz laid out as ``cifar-10-python.tar.gz``: ``cifar-10-batches-py/<batch>`` pickles plus the meta file."""
    files = {"batches.meta": pickle.dumps({b"label_names": [b"airplane"] * 10}, protocol=2)}
    files.update({name: b if isinstance(b, bytes) else pickle.dumps(b, protocol=2) for name, b in batches.items()})
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(f"{CIFAR_FOLDER}/{name}")
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
    for offset, (split, name) in enumerate(AAN_FILES.items()):
        rows = fake_rows(n_per_class[split], seed + offset)
        rows[0] = rows[0].replace("0\t", "0.0\t", 1)
        (folder / name).write_text("\n".join(rows) + "\n", encoding="utf-8")
    return folder


def fake_reviews(n_per_class: int, seed: int) -> dict[tuple[str, str], list[bytes]]:
    """Reviews per (split, sentiment): positive ones praise, negative ones complain (learnable by a tiny model)."""
    rng = np.random.default_rng(seed)
    words = {"pos": ["great", "wonderful", "loved", "superb"], "neg": ["awful", "boring", "hated", "dull"]}
    filler = ["the", "film", "was", "a", "plot", "actor", "and", "it", "<br />"]
    reviews = {}
    for split in ("train", "test"):
        for sentiment in ("pos", "neg"):
            reviews[split, sentiment] = [
                " ".join(rng.choice(filler + words[sentiment] * 2, size=int(rng.integers(5, 40)))).encode()
                for _ in range(n_per_class)
            ]
    return reviews


def write_imdb_archive(path: Path, reviews: dict[tuple[str, str], list[bytes]]) -> Path:
    """A tar.gz in the official layout, with the official archive's extra files that are not reviews."""
    extras = {
        "aclImdb/imdb.vocab": b"the\nfilm\n",
        "aclImdb/train/urls_pos.txt": b"http://x\n",
        "aclImdb/train/unsup/0_0.txt": b"unlabelled review",
    }
    with tarfile.open(path, "w:gz") as tar:
        for name, data in extras.items():
            _add(tar, name, data)
        for (split, sentiment), texts in reviews.items():
            for review_id, data in enumerate(texts):
                rating = 8 if sentiment == "pos" else 2
                _add(tar, f"aclImdb/{split}/{sentiment}/{review_id}_{rating}.txt", data)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_listops_tsv(path: Path, examples: list[tuple[str, int]]) -> None:
    """``(expression, label)`` pairs as LRA writes them (csv.writer): header ``Source<TAB>Target``, lines
    ending in \\r\\n."""
    lines = ["Source\tTarget"] + [f"{expression}\t{label}" for expression, label in examples]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("\r\n".join(lines) + "\r\n")


def write_listops_release(directory: Path, *, n_train: int, n_val: int, n_test: int, seed: int, **bounds: int) -> Path:
    """``<directory>/listops-1000/basic_{train,val,test}.tsv`` of LRA-recipe examples; returns the folder."""
    examples = generate(n_train + n_val + n_test, seed=seed, **bounds)
    folder = Path(directory) / LISTOPS_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    bounds_of = {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, len(examples))}
    for split, (start, stop) in bounds_of.items():
        write_listops_tsv(folder / LISTOPS_FILES[split], examples[start:stop])
    return folder


def _number(value: float) -> int | float:
    """``2.0`` -> ``2`` (the release writes integral lengths without a decimal point), else unchanged."""
    return int(value) if float(value).is_integer() else value


def write_pathfinder_release(
    root: Path, params: SnakeParams, n_images: int, *, seed: int, images_per_batch: int = 1000
) -> Path:
    """``n_images`` generated images in LRA's layout, ``<root>/pathfinder<res>/<difficulty>/imgs/<batch>/``
    ``sample_<n>.png`` and ``metadata/<batch>.npy`` (text: ``imgs/<batch> sample_<n>.png <index> <label> <continuity>
    <contour_len> <distractor_len> <paddle_len> <paddle_thickness> <margin> <n_contrasts>``); returns
    the difficulty folder."""
    difficulty_dir = Path(root) / f"pathfinder{params.resolution}" / difficulty_folder(params.contour_length)
    (difficulty_dir / "metadata").mkdir(parents=True, exist_ok=True)
    for batch, count in enumerate(batch_sizes(n_images, images_per_batch)):
        image_dir = difficulty_dir / "imgs" / str(batch)
        image_dir.mkdir(parents=True, exist_ok=True)
        lines = []
        for index, drawing in enumerate(draw_batch(params, batch, count, seed)):
            Image.fromarray(drawing.image).save(image_dir / f"sample_{index}.png")
            fields = (
                f"imgs/{batch}",
                f"sample_{index}.png",
                index,
                drawing.label,
                params.continuity,
                params.contour_length,
                params.distractor_length,
                _number(params.paddle_length),
                _number(params.paddle_thickness),
                drawing.margin,
                1,
            )
            lines.append(" ".join(str(field) for field in fields) + "\n")
        (difficulty_dir / "metadata" / f"{batch}.npy").write_text("".join(lines), encoding="utf-8")
    return difficulty_dir


def write_lra_release(root: Path, *, seed: int = 0) -> Path:
    """The four folders of the LRA release that the benchmark reads, laid out as the release holds them, in
    ``root``: ``listops-1000/`` (10 short expressions), ``tsv_data/`` (8 / 4 / 4 AAN pairs), ``pathfinder32/``
    and ``pathfinder128/`` (10 images each, difficulty curv_contour_length_14); returns ``root``."""
    write_listops_release(root, n_train=6, n_val=2, n_test=2, seed=seed, min_length=4, max_length=40, max_depth=3)
    write_tsv_folder(root / "tsv_data", {"train": 4, "val": 2, "test": 2}, seed=seed)
    for resolution in (32, 128):
        write_pathfinder_release(root, SnakeParams.lra(resolution), 10, seed=seed)
    return root


def write_lra_archive(path: Path, release: Path, extra: dict[str, bytes] | None = None) -> Path:
    """A gzipped tar laid out as ``lra_release.gz``: every file of ``release`` (see ``write_lra_release``)
    under ``lra_release/lra_release/``, then the ``extra`` members (name -> bytes)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for file in sorted(p for p in Path(release).rglob("*") if p.is_file()):
            _add(tar, f"lra_release/lra_release/{file.relative_to(release).as_posix()}", file.read_bytes())
        for name, data in (extra or {}).items():
            _add(tar, name, data)
    return path


def write_hub_repository(folder: Path, config: str, splits: dict[str, dict[str, list]], features) -> Path:
    """A folder laid out like a Hugging Face Hub dataset repository, which ``datasets.load_dataset`` reads as
    it reads the Hub: ``<config>/<split>-00000-of-00001.parquet`` (written by ``datasets``, so the
    features travel in the Parquet metadata, as in the Hub's converted files) and a ``README.md`` whose
    YAML header names the config and its data files."""
    from datasets import Dataset

    (folder / config).mkdir(parents=True, exist_ok=True)
    card = ["---", "configs:", f"- config_name: {config}", "  data_files:"]
    for split, columns in splits.items():
        shard = folder / config / f"{split}-00000-of-00001.parquet"
        Dataset.from_dict(columns, features=features).to_parquet(str(shard))
        card += [f"  - split: {split}", f"    path: {config}/{split}-*"]
    (folder / "README.md").write_text("\n".join([*card, "  default: true", "---", ""]), encoding="utf-8")
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
