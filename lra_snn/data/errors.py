"""Errors and warnings every dataset raises: a missing file names the command that creates it, a
malformed line names its file and 1-based line number, a damaged cache is named when it is rebuilt or
refused, and a path blocked by something else names that path and how to clear it.
"""

from __future__ import annotations

from pathlib import Path


class DataNotFoundError(FileNotFoundError):
    """A data file or folder is absent; the message names the path and the command that creates it."""

    def __init__(self, path: str | Path, create_with: str, detail: str = "") -> None:
        self.path = Path(path)
        self.create_with = create_with
        self.detail = detail
        super().__init__(self.describe())

    def describe(self) -> str:
        """The message: the path, what is wrong with it (``detail``) and the command that creates it."""
        reason = f" ({self.detail})" if self.detail else ""
        return f"no data at {self.path}{reason}; create it with `{self.create_with}`"

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.create_with, self.detail)  # picklable across worker processes


class DamagedCacheError(DataNotFoundError):
    """A cache folder holds values its task cannot take (a token id outside the vocabulary, a label outside the
    classes); the message names the folder and says how to build it anew: remove it and run the same command
    again (training, evaluation and ``make data-<task>`` all build a missing cache with the settings in use)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        super().__init__(path, f"rm -r {path}", detail=problem)

    def describe(self) -> str:
        return (
            f"cache {self.path} is damaged ({self.detail}); remove it with `{self.create_with}` and run the same "
            f"command again, which builds this cache anew"
        )

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.detail)


class BlockedPathError(OSError):
    """Something other than what the data layer keeps there occupies one of its paths (a file where a cache
    folder belongs, a folder where a file belongs); the message names the path and the command that clears it."""

    def __init__(self, path: str | Path, expected: str, found_folder: bool) -> None:
        self.path = Path(path)
        self.expected = expected
        self.found_folder = found_folder
        found, remove = ("a folder", f"rm -r {self.path}") if found_folder else ("a file", f"rm {self.path}")
        super().__init__(
            f"{self.path} is {found}, where {expected} belongs; nothing was written. Remove it with `{remove}` "
            f"(after moving anything of yours out of it) and run again"
        )

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.expected, self.found_folder)


class DataFormatError(ValueError):
    """A line of a data file is malformed; the message reads ``<file>:<line>: <what is wrong>``."""

    def __init__(self, path: str | Path, line: int, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{self.path}:{line}: {problem}")

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.line, self.problem)  # picklable across worker processes


class CacheRebuiltWarning(UserWarning):
    """A cache folder failed its checks when opened (truncated, edited, half-deleted) and was built again."""
