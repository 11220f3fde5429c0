"""Checking that an output path can be written, before the work whose result goes there.

Torch-free: the command line checks ``--output`` before it loads a model. Nothing is created: a
check only looks at the path and at its nearest existing ancestor.
"""

from __future__ import annotations

import os
from pathlib import Path

from angel_trl.errors import InputFormatError


def _dir_problem(path: Path) -> str | None:
    """Why files cannot be written in the directory ``path`` (created with its parents if missing)."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a directory" if existing == path else f"{existing} is a file, not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable" if existing == path else f"cannot create it: {existing} is not writable"
    return None


def unwritable_reason(path: str | Path, directory: bool = False) -> str | None:
    """Why ``path`` (a file, or with ``directory`` a directory to write in) cannot be written; None when it can.

    A file's directory must be writable too: files are written atomically, through a temporary sibling."""
    path = Path(path)
    if directory:
        return _dir_problem(path)
    if path.is_dir():
        return "is a directory, not a file"
    if path.exists() and not os.access(path, os.W_OK):
        return "is not writable"
    return _dir_problem(path.parent)


def check_output(path: str | Path, directory: bool = False) -> None:
    """Raise :class:`InputFormatError` naming ``path`` when it cannot be written (:func:`unwritable_reason`)."""
    reason = unwritable_reason(path, directory)
    if reason is not None:
        raise InputFormatError(path, None, f"cannot write here: {reason}")
