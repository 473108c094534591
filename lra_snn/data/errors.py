"""Errors every dataset raises (data.md): a missing file names the command that creates it,
a malformed line names its file and 1-based line number, a stale cache names the settings that differ.
"""

from __future__ import annotations

from pathlib import Path


class DataNotFoundError(FileNotFoundError):
    """A data file or folder is absent; the message names the path and the command that creates it."""

    def __init__(self, path: str | Path, create_with: str, detail: str = "") -> None:
        self.path = Path(path)
        self.create_with = create_with
        reason = f" ({detail})" if detail else ""
        super().__init__(f"no data at {self.path}{reason}; create it with `{create_with}`")


class DataFormatError(ValueError):
    """A line of a data file is malformed; the message reads ``<file>:<line>: <what is wrong>``."""

    def __init__(self, path: str | Path, line: int, problem: str) -> None:
        self.path = Path(path)
        self.line = line
        self.problem = problem
        super().__init__(f"{self.path}:{line}: {problem}")


class CacheMismatchError(ValueError):
    """A cache folder holds data built with settings other than the requested ones."""

    def __init__(self, directory: str | Path, differences: list[str]) -> None:
        self.directory = Path(directory)
        self.differences = differences
        listed = "; ".join(differences)
        super().__init__(
            f"cache {self.directory} was built with other settings ({listed}); "
            f"delete that folder to rebuild it"
        )
