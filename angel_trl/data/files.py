"""Small file helpers: UTF-8 line readers whose errors name the file and line, and atomic writes so
that a killed run never leaves a half-written artefact (a file, or a saved dataset directory)."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from angel_trl.errors import InputFormatError

# Files written by Dataset.save_to_disk / DatasetDict.save_to_disk: a directory holding one may be replaced.
_DATASET_MARKERS = ("state.json", "dataset_info.json", "dataset_dict.json")


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line without its ending)`` of a UTF-8 file (a leading BOM is skipped).

    Lines end at ``\n``, ``\r\n`` or a bare ``\r`` (files saved by old Mac tools: read as one
    line, a whole KB would be one concept). Bytes that are not UTF-8 are an input error naming the
    line and the byte offset.
    """
    offset, lineno = 0, 0
    with open(path, "rb") as f:
        for raw in f:
            start = 0
            if offset == 0:
                if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                    raise InputFormatError(path, 1, "UTF-16 file (byte-order mark); expected UTF-8")
                if raw.startswith(codecs.BOM_UTF8):
                    start = len(codecs.BOM_UTF8)
            try:
                text = raw[start:].decode("utf-8")
            except UnicodeDecodeError as e:
                at = start + e.start
                line_start = raw.rfind(b"\r", 0, at) + 1  # a bare CR before it ended a line
                raise InputFormatError(
                    path,
                    lineno + 1 + raw[:at].count(b"\r"),
                    f"not valid UTF-8: byte {raw[at]:#04x} at column {at - line_start + 1} (file offset {offset + at}); a binary or Latin-1 file? convert it to UTF-8",
                ) from None
            offset += len(raw)
            text = text.removesuffix("\n").removesuffix("\r")
            for line in text.split("\r"):
                lineno += 1
                yield lineno, line


def read_jsonl_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, JSON object)`` for each non-blank line; anything else is an input error."""
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise InputFormatError(path, lineno, f"invalid JSON ({e.msg} at column {e.colno})") from None
        except RecursionError:
            raise InputFormatError(path, lineno, "invalid JSON (nested too deeply)") from None
        if not isinstance(row, dict):
            raise InputFormatError(path, lineno, "expected a JSON object")
        yield lineno, row


def _temporary_sibling(path: Path) -> Path:
    # A unique hidden name in the same directory, so the final os.replace is a rename on one file system.
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write ``path`` through a temporary sibling file that replaces it only once fully written.

    ``mode`` is ``"w"`` (UTF-8 text) or ``"wb"``. On an error the temporary file is removed and
    ``path`` keeps its old content; a kill leaves at most a hidden ``.NAME.*.tmp`` file behind.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes with mode 'w' or 'wb', not {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        # "x" (not mkstemp) so that the file gets the usual umask permissions, not 0600.
        with open(tmp, mode.replace("w", "x"), **({"encoding": "utf-8"} if mode == "w" else {})) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path) as f:
        f.write(text)


def write_json(path: str | Path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> None:
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))


def atomic_save_dataset(dataset, path: str | Path) -> None:
    """``dataset.save_to_disk(path)`` (a ``Dataset`` or ``DatasetDict``) without a half-written state.

    The dataset is saved into a temporary sibling directory, which then replaces ``path``. A
    directory can only be renamed onto a missing or empty one, so an existing dataset is first moved
    aside and deleted after: a kill between the two renames leaves no ``path`` (and the old dataset in
    ``.NAME.*.tmp``), never one that loads half. An existing ``path`` that is not a saved dataset is
    refused rather than deleted.
    """
    path = Path(path)
    if path.exists() and not _replaceable_dataset_dir(path):
        raise FileExistsError(f"{path}: exists and is not a saved dataset; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    old = None
    try:
        tmp.mkdir()
        dataset.save_to_disk(str(tmp))
        if path.exists():
            moved = _temporary_sibling(path)
            os.replace(path, moved)
            old = moved
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)  # put the previous dataset back
            old = None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _replaceable_dataset_dir(path: Path) -> bool:
    """An empty directory or one written by ``save_to_disk``."""
    return path.is_dir() and (not any(path.iterdir()) or any((path / m).exists() for m in _DATASET_MARKERS))
