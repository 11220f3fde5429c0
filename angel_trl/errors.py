"""Errors raised for bad user input: each names the file, the line and the problem."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# The shell's status for a process ended by Ctrl-C (SIGINT: 128 + 2); the CLI and the recipes exit with it.
INTERRUPTED_EXIT = 130


def exit_quietly_on_ctrl_c(prog: str | None = None) -> None:
    """Make a Ctrl-C that nothing catches end the process with one ``interrupted`` line and status 130.

    A recipe's ``run_recipe`` does that for Ctrl-C during its run; this hook covers the seconds
    before it, while the recipe's module-level imports (torch, transformers, TRL) load, where
    Python would print a traceback. Recipes call it before those imports, so this module imports
    nothing heavy.
    """
    name = prog or os.path.basename(sys.argv[0])
    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            print(f"{name}: interrupted", file=sys.stderr, flush=True)
            os._exit(INTERRUPTED_EXIT)  # nothing to clean up: the recipe has not started
        previous(kind, value, tb)

    sys.excepthook = hook


class InputFormatError(ValueError):
    """A KB or corpus file that cannot be read as documented."""

    def __init__(self, path: str | Path, line: int | None, problem: str):
        self.path = str(path)
        self.line = line
        self.problem = problem
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {problem}")


class FieldError(ValueError):
    """A recipe argument (a field of the dataclasses a recipe parses) whose value cannot work.

    ``field`` lets the recipe parser say where the value came from: the command line or a line of
    the ``--config`` YAML.
    """

    def __init__(self, field: str, problem: str):
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")


def check_choice(field: str, value: object, choices: tuple[str, ...] | list[str]) -> None:
    """Raise :class:`FieldError` unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise FieldError(field, f"{value!r} is not one of {', '.join(choices)}")


def check_at_least(field: str, value: float | None, minimum: float) -> None:
    """Raise :class:`FieldError` when ``value`` is set (not None) and below ``minimum``."""
    if value is not None and not value >= minimum:  # (not "<": NaN is below every minimum too)
        raise FieldError(field, f"must be at least {minimum}, not {value}")


class OutputDirBusyError(RuntimeError):
    """An output directory another run is writing (it holds the directory's lock)."""

    def __init__(self, path: str | Path):
        self.path = str(path)
        super().__init__(f"{self.path}: another run is writing to this output directory (it holds {self.path}/.angel-trl.lock); wait for it or choose another directory")
