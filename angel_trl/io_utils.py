"""Small file helpers: atomic writes so that a killed run never leaves a half-written artefact."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from .errors import InputFormatError


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line without its newline)``; a file that is not UTF-8 is an input error."""
    try:
        with open(path, encoding="utf-8") as f:
            for lineno, line in enumerate(f, start=1):
                yield lineno, line.rstrip("\n").rstrip("\r")
    except UnicodeDecodeError as e:
        raise InputFormatError(path, None, f"not valid UTF-8 ({e})") from None


def read_jsonl_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, JSON object)`` for each non-blank line; anything else is an input error."""
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputFormatError(path, lineno, f"invalid JSON ({e.msg})") from None
        if not isinstance(row, dict):
            raise InputFormatError(path, lineno, "expected a JSON object")
        yield lineno, row


def atomic_write_text(path: str | Path, text: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
