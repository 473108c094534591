"""Errors and warnings every dataset raises: a missing file names the command that creates it, a
malformed line names its file and 1-based line number, a damaged cache is named when it is rebuilt.
"""

from __future__ import annotations

from pathlib import Path


class DataNotFoundError(FileNotFoundError):
    """A data file or folder is absent; the message names the path and the command that creates it."""

    def __init__(self, path: str | Path, create_with: str, detail: str = "") -> None:
        self.path = Path(path)
        self.create_with = create_with
        self.detail = detail
        reason = f" ({detail})" if detail else ""
        super().__init__(f"no data at {self.path}{reason}; create it with `{create_with}`")

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.create_with, self.detail)  # picklable across worker processes


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
