"""Errors raised for bad user input: each names the file, the line and the problem."""

from __future__ import annotations

from pathlib import Path


class InputFormatError(ValueError):
    """A KB or corpus file that cannot be read as documented."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")
