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


class OutputDirBusyError(RuntimeError):
    """An output directory another run is writing (it holds the directory's lock)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        super().__init__(f"{self.path}: another run is writing to this output directory (it holds {self.path}/.angel-trl.lock); wait for it or choose another directory")
