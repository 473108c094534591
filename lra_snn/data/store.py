"""Preprocessed splits stored with Hugging Face ``datasets``, keyed by every setting and by the content
of the source files.

A cache folder ``<data_dir>/cache/<task>/<hash>/`` holds ``splits/`` (``DatasetDict.save_to_disk``:
Arrow files per split, readable with ``datasets.load_from_disk``), any files the build adds (e.g. a
vocabulary) and ``meta.json``, written last: the settings, the rows of every split, the size and
SHA-256 of every file and what the build learnt (``extra``). The hash is a short sha256 of the settings as
sorted JSON; a module's settings name its source files by a content digest (``content_digest``, sha256,
memoised by each file's identity and change time: device, inode, size, modification and status-change
times, the last of which no tool can set back), never by path and size, so an edited source file, even
one of the same size with its modification time restored, gets a new cache.

Building (``ensure``) happens in a staging sibling ``.<hash>.tmp-<host>-<pid>-<id>``, where
``datasets`` also keeps its intermediate Arrow files (``from_generator``, ``map``, under
``work/``); the sibling is renamed into place once ``meta.json`` is written and every file is on
disk. Staging folders left by a killed build on this host are removed on the next build. Opening
checks ``meta.json``, its format, the settings, every file's size and SHA-256 (the whole cache is read
once per open) and every split's rows; ``ensure`` rebuilds a cache that fails a check with a
``CacheRebuiltWarning`` naming the file, ``load`` refuses it.

``load`` memory-maps the Arrow files with pyarrow (zero copy; ``datasets`` itself is imported only
to build), and nothing here imports pyarrow or ``datasets`` at import time: a module that can work
without them (ListOps, on a machine without ``datasets``) imports this one freely.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import socket
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lra_snn.data.errors import BlockedPathError, CacheRebuiltWarning, DataNotFoundError

if TYPE_CHECKING:
    import pyarrow as pa
    from datasets import Dataset

log = logging.getLogger(__name__)

STORE_FORMAT = 2  # bump when the folder layout or meta.json changes meaning (2: a SHA-256 per file)
META_FILE = "meta.json"
SPLITS_FOLDER = "splits"
WORK_FOLDER = "work"
DIGESTS_FILE = "digests.json"
HASH_CHARS = 16
ROWS_PER_CHUNK = 10_000  # rows from_rows turns into Arrow at a time
RACY_SECONDS = 2.0  # a file modified this recently may change again within its mtime's resolution

Build = Callable[[Path], tuple[Mapping[str, "Dataset"], dict[str, Any]]]
# A column's type for ``features``: a value type ("int8", "binary", "string", ...), a list of one
# (["int16"]: variable length) or a value type and a length (("uint8", 1024): fixed length).
Column = str | list[str] | tuple[str, int]


def have_datasets() -> bool:
    """Whether ``datasets`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec("datasets") is not None
    except (ImportError, ValueError):
        return False


# --------------------------------------------------------------------------- settings


def canonical_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings as they read back from JSON (tuples become lists), so stored and requested compare equal."""
    try:
        return json.loads(json.dumps(settings, sort_keys=True))
    except TypeError as error:
        raise TypeError(
            f"cache settings must be JSON values (str, int, float, bool, None, list, dict): {error}"
        ) from None


def settings_hash(settings: Mapping[str, Any]) -> str:
    """Short, stable hash of ``settings``: sha256 of their sorted, compact JSON."""
    text = json.dumps(canonical_settings(settings), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:HASH_CHARS]


def cache_dir(root: str | Path, task: str, settings: Mapping[str, Any]) -> Path:
    """Where the cache of ``task`` built with ``settings`` lives: ``<root>/cache/<task>/<hash>``."""
    return Path(root) / "cache" / task / settings_hash(settings)


# --------------------------------------------------------------------------- content digests


def content_digest(path: str | Path, data_dir: str | Path) -> str:
    """sha256 of a file's bytes, or of a folder's files (relative names and contents, in name order).

    Memoised in ``<data_dir>/cache/digests.json`` by the path and, for every file, its device, inode, size,
    modification time and status-change time (``st_ctime``, set by the kernel on every write or
    ``touch``, never settable back), so an unchanged source is read once and any change, even one that
    restores the modification time, is read again; a file changed in the last ``RACY_SECONDS`` is read
    again next time (an edit within the clock's resolution would look unchanged).
    """
    return digest_and_signature(path, data_dir)[0]


def digest_and_signature(path: str | Path, data_dir: str | Path) -> tuple[str, str]:
    """``content_digest`` of ``path`` and its ``stat_signature``, from one walk over its files."""
    path = Path(path).resolve()
    files, stats, signature = _stat_identities(path)
    names = [p.relative_to(path).as_posix() if p != path else p.name for p in files]
    memo_path = Path(data_dir) / "cache" / DIGESTS_FILE
    refuse_blocked(memo_path, "the memo of content digests (a JSON file)", folder=False)
    memo = _read_json(memo_path)
    entry = memo.get(str(path))
    if isinstance(entry, dict) and entry.get("stat") == signature and isinstance(entry.get("sha256"), str):
        return entry["sha256"], signature
    if path.is_file():
        digest = _file_sha256(path)
    else:
        whole = hashlib.sha256()
        for name, file in zip(names, files):
            whole.update(f"{name}\0{_file_sha256(file)}\n".encode())
        digest = whole.hexdigest()
    newest = max((max(st.st_mtime_ns, st.st_ctime_ns) for st in stats), default=0) / 1e9
    if time.time() - newest > RACY_SECONDS:
        memo[str(path)] = {"stat": signature, "sha256": digest}
        _write_json_atomically(memo_path, memo)
    return digest, signature


def _stat_identities(path: Path) -> tuple[list[Path], list[os.stat_result], str]:
    """The files of ``path`` (itself, or a folder's files in name order), their stats, and the SHA-256 of
    their names, devices, inodes, sizes, modification and status-change times."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    stats = [p.stat() for p in files]
    names = [p.relative_to(path).as_posix() if p != path else p.name for p in files]
    identities = [
        (name, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns) for name, st in zip(names, stats)
    ]
    return files, stats, hashlib.sha256(json.dumps(identities).encode()).hexdigest()


def stat_signature(path: str | Path) -> str | None:
    """What ``content_digest`` memoises a source by (its files' identities and change times), or None
    when ``path`` is gone: a different value means the source may have changed since."""
    path = Path(path).resolve()
    if not path.exists():
        return None
    return _stat_identities(path)[2]


def _file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        loaded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _write_json_atomically(path: Path, content: dict[str, Any]) -> None:
    """Write ``content`` to a sibling of ``path``, then rename it into place; the sibling never outlives a failure."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        partial.write_text(json.dumps(content, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(partial, path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def refuse_blocked(path: Path, expected: str, folder: bool) -> None:
    """``BlockedPathError`` naming ``path`` when it is a file where a folder belongs (``folder``), or a folder
    where a file belongs; nothing when it is absent or of the right kind."""
    if path.exists() and path.is_dir() != folder:
        raise BlockedPathError(path, expected, found_folder=not folder)


# --------------------------------------------------------------------------- opening


class DamagedCache(Exception):
    """A cache folder failed a check when opened; the message says which."""


@dataclass(frozen=True)
class Stored:
    """An opened cache: its folder, one memory-mapped Arrow table per split, and what the build learnt."""

    directory: Path
    tables: dict[str, pa.Table]
    extra: dict[str, Any]


def load(directory: str | Path, settings: Mapping[str, Any], make_target: str) -> Stored:
    """Open the cache ``directory`` built by ``ensure`` with ``settings``; ``DataNotFoundError`` if it was
    never built (call ``prepare_data()``) or fails its checks (``prepare_data()`` builds it again)."""
    directory = Path(directory)
    refuse_blocked(directory, "a cache folder", folder=True)
    if not directory.is_dir():
        raise DataNotFoundError(directory, make_target, detail="cache not built; call prepare_data() first")
    try:
        return _open(directory, settings)
    except DamagedCache as damage:
        raise DataNotFoundError(
            directory, make_target, detail=f"cache damaged: {damage}; prepare_data() builds it again"
        ) from None


def _open(directory: Path, settings: Mapping[str, Any]) -> Stored:
    import pyarrow as pa

    try:
        meta = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        recorded_settings, files, splits = meta["settings"], meta["files"], meta["splits"]
        extra = meta.get("extra", {})
    except FileNotFoundError:
        raise DamagedCache(f"{META_FILE} is missing") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise DamagedCache(f"{META_FILE} is unreadable ({type(error).__name__}: {error})") from None
    if meta.get("format") != STORE_FORMAT:
        raise DamagedCache(f"store format {meta.get('format')!r}, this code reads {STORE_FORMAT}")
    differences = _differences(recorded_settings, canonical_settings(settings))
    if differences:
        raise DamagedCache("built with other settings: " + "; ".join(differences))
    for name, written in files.items():
        path = directory / name
        found = path.stat().st_size if path.is_file() else None
        if found != written["size"]:
            state = "missing" if found is None else f"{found} bytes, written with {written['size']}"
            raise DamagedCache(f"{name} is {state}")
        if _file_sha256(path) != written["sha256"]:
            raise DamagedCache(f"{name} changed since it was written (its SHA-256 differs from {META_FILE}'s)")
    tables = {}
    for split, rows in splits.items():
        arrow_files = sorted(
            name for name in files if name.startswith(f"{SPLITS_FOLDER}/{split}/") and name.endswith(".arrow")
        )
        try:
            parts = [pa.ipc.open_stream(pa.memory_map(str(directory / name))).read_all() for name in arrow_files]
            table = pa.concat_tables(parts) if parts else None
        except (pa.ArrowException, OSError) as error:
            raise DamagedCache(f"the Arrow files of split {split!r} are unreadable ({error})") from None
        if table is None or table.num_rows != rows:
            found = 0 if table is None else table.num_rows
            raise DamagedCache(f"split {split!r} holds {found} rows, written with {rows}")
        tables[split] = table
    return Stored(directory, tables, extra)


def ids_outside(column: pa.ChunkedArray, vocab_size: int) -> int | None:
    """A token id of the list column ``column`` outside ``[0, vocab_size)``, or None when all lie inside."""
    import pyarrow.compute as pc

    values = pc.list_flatten(column)
    if len(values) == 0:
        return None
    bounds = pc.min_max(values)
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    if low < 0:
        return int(low)
    return int(high) if high >= vocab_size else None


def _differences(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    return [
        f"{key}: stored {stored.get(key, '<absent>')!r}, requested {wanted.get(key, '<absent>')!r}"
        for key in sorted(set(stored) | set(wanted))
        if stored.get(key, "<absent>") != wanted.get(key, "<absent>")
    ]


# --------------------------------------------------------------------------- building


def ensure(directory: str | Path, settings: Mapping[str, Any], build: Build) -> dict[str, Any]:
    """What the build of cache ``directory`` learnt (its ``extra``), building it first unless it opens.

    ``build(staging)`` returns the splits (``datasets.Dataset`` per name, their intermediate files
    under ``scratch(staging)``) and a JSON-able ``extra``; it may write further files into
    ``staging``. A folder that fails its checks is built again, with a ``CacheRebuiltWarning``; a file where the
    folder belongs is refused (``BlockedPathError``) before anything is built.
    """
    directory = Path(directory)
    refuse_blocked(directory, "a cache folder", folder=True)
    remove_leftover_staging(directory.parent)
    if directory.exists():
        try:
            return _open(directory, settings).extra
        except DamagedCache as damage:
            message = f"cache {directory} is damaged ({damage}); building it again"
            log.warning(message)
            warnings.warn(message, CacheRebuiltWarning, stacklevel=2)
    return _build(directory, settings, build)


def scratch(staging: Path) -> Path:
    """The folder of a build's intermediate files (``datasets``' ``cache_dir``), deleted when it ends."""
    return staging / WORK_FOLDER


def _build(directory: Path, settings: Mapping[str, Any], build: Build) -> dict[str, Any]:
    from datasets import DatasetDict

    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.tmp-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        splits, extra = build(staging)
        _refuse_empty_splits(directory, splits)
        DatasetDict(dict(splits)).save_to_disk(str(staging / SPLITS_FOLDER))
        shutil.rmtree(scratch(staging), ignore_errors=True)
        files = {
            path.relative_to(staging).as_posix(): {"size": path.stat().st_size, "sha256": _file_sha256(path)}
            for path in sorted(staging.rglob("*"))
            if path.is_file()
        }
        meta = {
            "format": STORE_FORMAT,
            "settings": canonical_settings(settings),
            "splits": {name: len(split) for name, split in splits.items()},
            "files": files,
            "extra": canonical_settings(extra),
        }
        (staging / META_FILE).write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        _fsync_tree(staging)
        if directory.exists():
            shutil.rmtree(directory)  # damaged (checked by ensure)
        _move_into_place(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return extra


def _refuse_empty_splits(directory: Path, splits: Mapping[str, Dataset]) -> None:
    """``ValueError`` naming the cache ``directory`` and the splits of ``splits`` that hold no rows: a model
    can neither learn from nor be scored on an empty split, so such a cache is never kept."""
    empty = sorted(name for name, split in splits.items() if len(split) == 0)
    if empty:
        raise ValueError(
            f"the build of cache {directory} gave no examples for split {', '.join(map(repr, empty))}; nothing was "
            f"kept. Ask for at least one example per split (data.n_<split>) and check the split's source files"
        )


def remove_leftover_staging(parent: Path) -> None:
    """Delete the staging folders in ``parent`` of builds on this host whose process no longer runs."""
    if not parent.is_dir():
        return
    host = socket.gethostname()
    for child in parent.iterdir():
        name = child.name
        if not (child.is_dir() and name.startswith(".") and ".tmp-" in name):
            continue
        owner = name.rpartition(".tmp-")[2].rsplit("-", 2)
        if len(owner) == 3 and owner[0] == host and owner[1].isdigit() and not _running(int(owner[1])):
            log.info("removing %s, left by an interrupted build", child)
            shutil.rmtree(child, ignore_errors=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _move_into_place(staging: Path, directory: Path) -> None:
    """Rename ``staging`` to ``directory``; if a concurrent build finished first, keep that one."""
    try:
        os.replace(staging, directory)
    except OSError:
        if not (directory / META_FILE).is_file():
            raise
        shutil.rmtree(staging, ignore_errors=True)
    _fsync_directory(directory.parent)


def _fsync_tree(folder: Path) -> None:
    """Flush every file below ``folder``, then the folders themselves, to disk."""
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())
    for path in sorted((p for p in folder.rglob("*") if p.is_dir()), reverse=True):
        _fsync_directory(path)
    _fsync_directory(folder)


def _fsync_directory(folder: Path) -> None:
    """Flush a folder's entries (where the platform can open folders; a no-op elsewhere)."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# --------------------------------------------------------------------------- datasets helpers


def features(columns: Mapping[str, Column]) -> Any:
    """``datasets.Features`` of ``columns`` (name -> ``Column``), so a caller need not import ``datasets``."""
    from datasets import Features, List, Value

    def feature(column: Column) -> Any:
        if isinstance(column, str):
            return Value(column)
        if isinstance(column, list):
            return List(Value(column[0]))
        return List(Value(column[0]), length=column[1])

    return Features({name: feature(column) for name, column in columns.items()})


def from_generator(
    generator: Callable[..., Any],
    columns: Mapping[str, Column],
    staging: Path,
    name: str,
    num_proc: int = 1,
    **gen_kwargs: Any,
) -> Dataset:
    """``datasets.Dataset.from_generator`` writing under this build's scratch folder.

    ``name`` makes the builder's fingerprint unique within the build (nothing else is hashed);
    ``num_proc`` > 1 shards the lists in ``gen_kwargs`` over processes, keeping their order. An
    error of the generator is raised as it is, not wrapped.
    """
    from datasets import Dataset
    from datasets.exceptions import DatasetGenerationError

    try:
        return Dataset.from_generator(
            generator,
            features=features(columns),
            cache_dir=str(scratch(staging)),
            gen_kwargs=gen_kwargs or None,
            num_proc=num_proc if num_proc > 1 else None,
            fingerprint=_fingerprint(f"{staging.name}/{name}"),
        )
    except DatasetGenerationError as error:
        if error.__cause__ is None:
            raise
        raise error.__cause__ from None  # what the generator raised (e.g. a format error naming file and line)


def from_columns(data: Mapping[str, Any], columns: Mapping[str, Column], name: str) -> Dataset:
    """A ``datasets.Dataset`` of whole columns (lists, numpy or Arrow arrays, name -> values) typed by
    ``columns``, held in memory until a ``map`` or the cache writes it: each column becomes one Arrow
    array in a single conversion (no per-row encoding, no builder).

    ``name`` (unique within the build) makes the fingerprint, as for ``from_generator``, so ``datasets``
    does not hash the whole table to make one (``Dataset.from_dict`` would).
    """
    import pyarrow as pa
    from datasets import Dataset, DatasetInfo
    from datasets.table import InMemoryTable

    schema = features(columns)
    fields = schema.arrow_schema
    arrays = [
        values.cast(fields.field(column).type)
        if isinstance(values := data[column], (pa.Array, pa.ChunkedArray))
        else pa.array(values, type=fields.field(column).type)
        for column in columns
    ]
    table = InMemoryTable(pa.Table.from_arrays(arrays, schema=fields))
    return Dataset(table, info=DatasetInfo(features=schema), fingerprint=_fingerprint(name))


def from_rows(rows: Iterable[Mapping[str, Any]], columns: Mapping[str, Column], name: str) -> Dataset:
    """``from_columns`` of ``rows`` (dicts holding every column), converted to Arrow ``ROWS_PER_CHUNK`` rows
    at a time, so a large source is never held as Python objects and as Arrow at once."""
    import pyarrow as pa

    schema = features(columns).arrow_schema
    chunks, pending = [], []
    for row in rows:
        pending.append(row)
        if len(pending) == ROWS_PER_CHUNK:
            chunks.append(pa.Table.from_pylist(pending, schema=schema))
            pending = []
    chunks.append(pa.Table.from_pylist(pending, schema=schema))
    table = pa.concat_tables(chunks)
    return from_columns({column: table.column(column) for column in columns}, columns, name)


def binary_rows(rows: np.ndarray) -> pa.Array:
    """The rows of a 2-D uint8 array as one Arrow ``binary`` array, one value per row, made from the
    array's bytes and computed offsets (no Python object per row)."""
    import pyarrow as pa

    rows = np.ascontiguousarray(rows, dtype=np.uint8)
    if rows.nbytes > np.iinfo(np.int32).max:
        raise ValueError(f"{rows.nbytes} bytes of rows: one Arrow binary array holds at most 2 GiB")
    offsets = np.arange(len(rows) + 1, dtype=np.int32) * rows.shape[1]
    return pa.Array.from_buffers(pa.binary(), len(rows), [None, pa.py_buffer(offsets), pa.py_buffer(rows)])


def list_array(values: np.ndarray, offsets: np.ndarray) -> pa.Array:
    """Rows of ``values`` cut at ``offsets`` (row ``i``: ``values[offsets[i] : offsets[i + 1]]``) as one
    Arrow list array, the values' buffer used as it is (a batched ``map`` may return it in a table)."""
    import pyarrow as pa

    if len(offsets) and offsets[-1] > np.iinfo(np.int32).max:
        raise ValueError(f"{offsets[-1]} values: one Arrow list array holds at most 2**31 - 1; use smaller batches")
    return pa.ListArray.from_arrays(pa.array(np.asarray(offsets, dtype=np.int32)), pa.array(values))


def map_batches(
    dataset: Dataset,
    function: Callable[..., Any],
    columns: Mapping[str, Column],
    staging: Path,
    name: str,
    num_proc: int = 1,
    with_indices: bool = False,
    batch_size: int = 1000,
    **fn_kwargs: Any,
) -> Dataset:
    """``dataset.map(function, batched=True)`` replacing every column by ``columns``, its
    Arrow file written under this build's scratch folder (never beside a source, e.g. a Hub snapshot).

    ``name`` (unique within the build) names the file and makes the new fingerprint: the function and
    its arguments are not hashed, the cache folder's hash already covers every setting.
    ``num_proc`` > 1 splits the batches over processes.
    """
    fingerprint = _fingerprint(name)
    scratch(staging).mkdir(parents=True, exist_ok=True)
    return dataset.map(
        function,
        batched=True,
        batch_size=batch_size,
        with_indices=with_indices,
        fn_kwargs=fn_kwargs or None,
        remove_columns=dataset.column_names,
        features=features(columns),
        num_proc=num_proc if num_proc > 1 else None,
        new_fingerprint=fingerprint,
        cache_file_name=str(scratch(staging) / f"map-{fingerprint}.arrow"),
    )


def select(dataset: Dataset, indices: Any) -> Dataset:
    """The rows ``indices`` of ``dataset``, in that order (an index mapping kept in memory: nothing is
    written beside the source)."""
    return dataset.select(indices, keep_in_memory=True)


def column(dataset: Dataset, name: str) -> Any:
    """Column ``name`` of ``dataset`` (through its index mapping) as a numpy array, read as one Arrow column."""
    return dataset.with_format("arrow")[name].to_numpy()


def _fingerprint(name: str) -> str:
    """A ``datasets`` fingerprint (32 hex digits) naming one step of a build."""
    return hashlib.sha256(name.encode()).hexdigest()[:32]
