"""LRA Image (grayscale CIFAR-10): BT.601 conversion and row-major order, the S4 validation split,
value and token batches, safe unpickling, bad batches, labels and archives, the cache, the Hub path on a
local Hub-layout folder, and one tiny training run."""

from __future__ import annotations

import io
import os
import pickle
import re
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import ClassLabel, Features
from datasets import Image as ImageFeature
from PIL import Image

from lra_snn.data import download, store
from lra_snn.data.download import ArchiveError, file_digests
from lra_snn.data.errors import DataFormatError, DataNotFoundError
from lra_snn.data.image import module as image
from lra_snn.data.image.source import release_dataset
from lra_snn.data.splits import holdout_split
from lra_snn.training.cell import run
from tests.fakes import fake_batches, write_cifar_archive, write_hub_repository


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    return write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", fake_batches())


def module(tmp_path: Path, source: Path, **settings) -> image.ImageDataModule:
    return image.ImageDataModule(data_dir=tmp_path / "data", archives=[tmp_path / "absent.tar.gz", source], **settings)


def prepared(tmp_path: Path, source: Path, **settings) -> image.ImageDataModule:
    datamodule = module(tmp_path, source, **settings)
    datamodule.prepare_data()
    datamodule.setup("fit")
    return datamodule


# --------------------------------------------------------------------------- conversion


def test_grayscale_uses_bt601_weights_and_rounds() -> None:
    pixels = np.zeros((4, 3, 1024), dtype=np.uint8)
    pixels[0, 0], pixels[1, 1], pixels[2, 2] = 255, 255, 255  # pure red, green, blue
    pixels[3] = np.array([10, 200, 33], dtype=np.uint8)[:, None]
    gray = image.to_grayscale(pixels.reshape(4, 3072))
    # 0.299 * 255 = 76.245, 0.587 * 255 = 149.685, 0.114 * 255 = 29.07, 0.299*10 + 0.587*200 + 0.114*33 = 124.152
    assert gray[:, 0].tolist() == [76, 150, 29, 124] and gray.dtype == np.uint8 and gray.shape == (4, 1024)


def test_grayscale_is_exact_integer_rounding_at_every_batch_size() -> None:
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, size=(257, 3072), dtype=np.uint8)
    planes = rows.reshape(257, 3, 1024).astype(np.int64)
    # independent definition: round(0.299 R + 0.587 G + 0.114 B) with halves up, in exact integers
    expected = (299 * planes[:, 0] + 587 * planes[:, 1] + 114 * planes[:, 2] + 500) // 1000
    assert np.array_equal(image.to_grayscale(rows), expected)
    for size in (1, 2, 7, 64, 256):
        assert np.array_equal(image.to_grayscale(rows[:size]), expected[:size])
    tie = np.zeros((1, 3072), dtype=np.uint8)
    tie[0, 2048:] = 250  # 0.114 * 250 = 28.5 exactly: a half, which rounds up
    assert image.to_grayscale(tie)[0, 0] == 29


def test_pixels_are_flattened_row_major() -> None:
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    planes = np.stack([rows * 8, rows * 8, rows * 8]).astype(np.uint8)  # gray equals the row's level
    planes[:, 0, :] = cols[0] * 8  # except row 0, which runs along the columns
    gray = image.to_grayscale(planes.reshape(1, 3072))[0]
    assert gray[:32].tolist() == (np.arange(32) * 8).tolist()  # steps 0..31: row 0, left to right
    assert gray[32 * 5 + 7] == 40  # row 5, column 7


def test_validation_split_matches_s4_random_split_with_seed_42() -> None:
    kept, held_out = holdout_split(50_000, 0.1, 42)
    assert (len(kept), len(held_out)) == (45_000, 5_000)
    train, val = torch.utils.data.random_split(
        range(50_000), [45_000, 5_000], generator=torch.Generator().manual_seed(42)
    )
    assert np.array_equal(held_out, np.sort(val.indices)) and np.array_equal(kept, np.sort(train.indices))


# --------------------------------------------------------------------------- the data module


def test_value_batches_are_normalised_floats_of_fixed_length(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive, batch_size=8)
    batch = next(iter(datamodule.test_dataloader()))
    assert batch["inputs"].shape == (8, 1024, 1) and batch["inputs"].dtype == torch.float32
    assert batch["lengths"].tolist() == [1024] * 8
    gray = image.to_grayscale(fake_batches()["test_batch"][b"data"][:8])
    assert torch.allclose(batch["inputs"][..., 0], (torch.from_numpy(gray).float() - 122.6) / 61.0)
    assert batch["labels"].tolist() == list(range(8))
    assert datamodule.encoder_kwargs() == {"d_input": 1}


def test_token_batches_are_gray_levels_plus_three_from_the_same_cache(tmp_path: Path, archive: Path) -> None:
    values = prepared(tmp_path, archive)
    tokens = prepared(tmp_path, archive, mode="tokens", batch_size=8)
    assert tokens.cache_dir() == values.cache_dir()
    batch = next(iter(tokens.test_dataloader()))
    gray = image.to_grayscale(fake_batches()["test_batch"][b"data"][:8])
    assert batch["inputs"].dtype == torch.long and torch.equal(batch["inputs"], torch.from_numpy(gray).long() + 3)
    assert tokens.encoder_kwargs() == {"vocab_size": 259}


def test_splits_hold_out_a_tenth_of_train(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive)
    sizes = [int(datamodule.class_counts(split).sum()) for split in ("train", "val", "test")]
    assert sizes == [90, 10, 20]
    train_rows = {row.tobytes() for row in datamodule.split("train").pixels.take(range(90))}
    assert not train_rows & {row.tobytes() for row in datamodule.split("val").pixels.take(range(10))}


def test_subsets_are_class_balanced(tmp_path: Path, archive: Path) -> None:
    datamodule = prepared(tmp_path, archive, n_train=30, n_test=10, val_fraction=0.2)
    assert datamodule.class_counts("train").tolist() == [3] * 10
    assert datamodule.class_counts("test").tolist() == [1] * 10
    assert datamodule.class_counts("val").sum() == 20


def test_an_unpacked_folder_reads_like_the_archive(tmp_path: Path, archive: Path) -> None:
    with tarfile.open(archive) as tar:
        tar.extractall(tmp_path / "unpacked", filter="data")
    from_archive = release_dataset(archive)
    from_folder = release_dataset(tmp_path / "unpacked")
    for split in ("train", "test"):
        assert from_archive[split]["pixels"] == from_folder[split]["pixels"]
        assert from_archive[split]["label"] == from_folder[split]["label"]
    train = fake_batches()
    assert from_archive["train"]["pixels"][20] == train["data_batch_2"][b"data"][0].tobytes()  # batches in order


def test_a_pickle_naming_other_code_is_refused(tmp_path: Path) -> None:
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo unpickled",))

    batches = fake_batches()
    batches["data_batch_3"] = pickle.dumps({b"data": Payload(), b"labels": []}, protocol=2)
    source = write_cifar_archive(tmp_path / "evil.tar.gz", batches)
    with pytest.raises(
        DataFormatError, match=re.escape("data_batch_3:1: not a CIFAR-10 python batch (refusing to load")
    ):
        release_dataset(source)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({b"labels": [0] * 19 + [10]}, "data_batch_2:20: label 10 is outside 0-9"),
        ({b"data": np.zeros((20, 1024), np.uint8)}, 'data_batch_2:1: b"data" must be uint8 of shape (N, 3072)'),
        ({b"labels": [0] * 5}, 'data_batch_2:1: 20 images but b"labels" has shape (5,)'),
        (
            {b"labels": [0.0] * 17 + [3.5, 1.0, 2.0]},
            "data_batch_2:18: label 3.5 is not an integer (float64 labels); CIFAR-10 labels are the integers 0-9",
        ),
        ({b"labels": [1.0, float("nan")] + [0.0] * 18}, "data_batch_2:2: label nan is not an integer"),
        (
            {b"labels": [float(i % 10) for i in range(20)]},
            "data_batch_2:1: label 0.0 is not an integer (float64 labels)",
        ),
        ({b"labels": [True] * 20}, "data_batch_2:1: label True is not an integer (bool labels)"),
        ({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}, "data_batch_2:1: the batch holds no images"),
    ],
)
def test_malformed_batches_name_file_and_record(tmp_path: Path, change: dict, problem: str) -> None:
    batches = fake_batches()
    batches["data_batch_2"].update(change)
    with pytest.raises(DataFormatError, match=re.escape(problem)):
        release_dataset(write_cifar_archive(tmp_path / "bad.tar.gz", batches))


def test_missing_batches_and_sources_are_named(tmp_path: Path) -> None:
    batches = fake_batches()
    del batches["data_batch_4"], batches["test_batch"]
    with pytest.raises(DataNotFoundError, match=re.escape("lacks cifar-10-batches-py/{data_batch_4,test_batch}")):
        release_dataset(write_cifar_archive(tmp_path / "partial.tar.gz", batches))
    with pytest.raises(DataNotFoundError, match="make data-image") as raised:
        image.ImageDataModule(data_dir=tmp_path / "data").prepare_data()
    assert str(tmp_path / "data" / "downloads" / "cifar-10-python.tar.gz") in str(raised.value)


def test_download_fetches_the_tarball_where_prepare_data_looks(tmp_path: Path, archive: Path, monkeypatch) -> None:
    source = download.Source(
        url=archive.as_uri(), filename="cifar-10-python.tar.gz", md5=file_digests(archive, ("md5",))["md5"]
    )
    monkeypatch.setitem(download.SOURCES, "cifar10", source)
    datamodule = image.ImageDataModule(data_dir=tmp_path / "data")
    assert datamodule.download() == tmp_path / "data" / "downloads" / "cifar-10-python.tar.gz"
    datamodule.prepare_data()
    datamodule.setup()
    assert datamodule.class_counts("test").sum() == 20
    monkeypatch.setattr(image, "fetch_source", lambda *args: pytest.fail("fetched although the tarball exists"))
    assert datamodule.download() == tmp_path / "data" / "downloads" / "cifar-10-python.tar.gz"


def test_truncated_archive_names_it_and_keeps_the_earlier_cache(tmp_path: Path, archive: Path) -> None:
    good = prepared(tmp_path, archive)
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(archive.read_bytes()[: archive.stat().st_size * 2 // 3])
    with pytest.raises(ArchiveError, match=re.escape(str(truncated))):
        module(tmp_path, truncated).prepare_data()
    again = module(tmp_path, archive)
    again.setup()
    assert np.array_equal(again.split("test").pixels.take(range(20)), good.split("test").pixels.take(range(20)))


def test_interrupted_preparation_is_never_read_as_complete(tmp_path: Path, archive: Path, monkeypatch) -> None:
    calls = []
    real_map = store.map_batches

    def interrupted_on_second_split(*args, **kwargs):
        calls.append(args[4])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_map(*args, **kwargs)

    monkeypatch.setattr(store, "map_batches", interrupted_on_second_split)
    with pytest.raises(KeyboardInterrupt):
        module(tmp_path, archive).prepare_data()
    with pytest.raises(DataNotFoundError, match="call prepare_data"):
        module(tmp_path, archive).setup()
    monkeypatch.undo()
    assert prepared(tmp_path, archive).class_counts("test").sum() == 20


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        image.ImageDataModule(data_dir="d", mode="rgb")
    with pytest.raises(ValueError, match="pixel_std must be positive"):
        image.ImageDataModule(data_dir="d", pixel_std=0.0)
    with pytest.raises(ValueError, match="source must be one of"):
        image.ImageDataModule(data_dir="d", source="torchvision")


# --------------------------------------------------------------------------- the Hub

CIFAR_FEATURES = Features({"img": ImageFeature(), "label": ClassLabel(names=[f"class_{i}" for i in range(10)])})


def png(row: np.ndarray) -> Image.Image:
    """A CIFAR row (3,072 bytes: red, green, blue planes) as the 32x32 RGB image the Hub stores (PNG)."""
    image_rgb = Image.fromarray(row.reshape(3, 32, 32).transpose(1, 2, 0))
    encoded = io.BytesIO()
    image_rgb.save(encoded, format="PNG")
    return Image.open(io.BytesIO(encoded.getvalue()))


def cifar_hub_repository(folder: Path, batches: dict) -> Path:
    """A folder laid out like ``uoft-cs/cifar10`` holding ``batches`` in the release's order."""
    splits = {}
    for split, names in (("train", [f"data_batch_{i}" for i in range(1, 6)]), ("test", ["test_batch"])):
        rows = np.concatenate([batches[name][b"data"] for name in names])
        labels = [label for name in names for label in batches[name][b"labels"]]
        splits[split] = {"img": [png(row) for row in rows], "label": labels}
    return write_hub_repository(folder, "plain_text", splits, CIFAR_FEATURES)


def test_hub_source_reads_a_hub_layout_folder_like_the_release(tmp_path: Path, archive: Path) -> None:
    repository = cifar_hub_repository(tmp_path / "uoft-cs_cifar10", fake_batches())
    hub = image.ImageDataModule(data_dir=tmp_path / "data", source="hub", hub_path=str(repository), batch_size=8)
    with pytest.raises(DataNotFoundError, match=re.escape('make data-image ARGS="data.source=hub"')):
        hub.prepare_data()
    hub.download()
    hub.prepare_data()
    hub.setup()
    release = prepared(tmp_path, archive)
    for split in ("train", "val", "test"):
        n = len(release.split(split))
        assert np.array_equal(hub.split(split).pixels.take(range(n)), release.split(split).pixels.take(range(n)))
        assert np.array_equal(hub.split(split).labels, release.split(split).labels)


def test_hub_images_of_another_size_name_the_row(tmp_path: Path) -> None:
    splits = {
        "train": {"img": [Image.new("RGB", (32, 32)), Image.new("RGB", (28, 28))], "label": [0, 1]},
        "test": {"img": [Image.new("RGB", (32, 32))], "label": [2]},
    }
    repository = write_hub_repository(tmp_path / "cifar", "plain_text", splits, CIFAR_FEATURES)
    hub = image.ImageDataModule(data_dir=tmp_path / "data", source="hub", hub_path=str(repository))
    hub.download()
    with pytest.raises(DataFormatError, match=r"train:2: image of train row 1 is 28x28 px, expected 32x32"):
        hub.prepare_data()


@pytest.mark.parametrize("model", ["s4d", "spikingssm"])
def test_tiny_image_trains_end_to_end(model, compose_train, tmp_path: Path) -> None:
    source = write_cifar_archive(tmp_path / "cifar-10-python.tar.gz", fake_batches(n_per_batch=200))
    cfg = compose_train("data=image", f"model={model}", "profile=tiny", f"data.archives=[{source}]")
    assert cfg.data.n_train == 200 and cfg.data.mode == "values"
    record = run(cfg)
    assert record["status"] == "completed", record.get("message")
    assert record["metrics"]["test/majority_rate"] == pytest.approx(0.1)
