"""Small file helpers: UTF-8 line readers whose errors name the file and line, and atomic writes so
that a killed run never leaves a half-written artefact (a file, or a saved dataset directory)."""

from __future__ import annotations

import codecs
import ctypes
import difflib
import errno
import json
import os
import re
import shutil
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from angel_trl.errors import InputFormatError, OutputDirBusyError

# What Dataset.save_to_disk and DatasetDict.save_to_disk write in their folder (the latter lists its
# splits); a directory holding one of _DATASET_MARKERS may be replaced.
SAVED_DATASET, SAVED_DATASET_DICT = "state.json", "dataset_dict.json"
_DATASET_MARKERS = (SAVED_DATASET, "dataset_info.json", SAVED_DATASET_DICT)
# The lock file of an output directory (hidden: Hub pushes skip dot files).
LOCK_FILE = ".angel-trl.lock"
# Output directories this process has locked, with how many times: nested use is no conflict.
_held_locks: dict[Path, int] = {}


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """``(line number, line without its ending)`` of a UTF-8 file (a leading BOM is skipped).

    Lines end at ``\n``, ``\r\n`` or a bare ``\r`` (files saved by old Mac tools: read as one
    line, a whole KB would be one concept). Bytes that are not UTF-8 are an input error naming the
    line and the byte offset.
    """
    with open(path, "rb") as f:
        yield from decoded_lines(f, path)


def decoded_lines(stream: Iterable[bytes], name: str | Path) -> Iterator[tuple[int, str]]:
    """:func:`read_lines` over a binary stream (standard input: ``sys.stdin.buffer``) called ``name``
    in errors. Decoding the bytes here, not through the text layer, matters for standard input: its
    text layer escapes undecodable bytes as lone surrogates, which no tokenizer accepts."""
    offset, lineno = 0, 0
    for raw in stream:
        start = 0
        if offset == 0:
            if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise InputFormatError(name, 1, "UTF-16 file (byte-order mark); expected UTF-8")
            if raw.startswith(codecs.BOM_UTF8):
                start = len(codecs.BOM_UTF8)
        try:
            text = raw[start:].decode("utf-8")
        except UnicodeDecodeError as e:
            at = start + e.start
            line_start = raw.rfind(b"\r", 0, at) + 1  # a bare CR before it ended a line
            raise InputFormatError(
                name,
                lineno + 1 + raw[:at].count(b"\r"),
                f"not valid UTF-8: byte {raw[at]:#04x} at column {at - line_start + 1} (file offset {offset + at}); a binary or Latin-1 file? convert it to UTF-8",
            ) from None
        offset += len(raw)
        text = text.removesuffix("\n").removesuffix("\r")
        for line in text.split("\r"):
            lineno += 1
            yield lineno, line


# A JSON escape of a UTF-16 surrogate: paired, json.loads joins it into one character; alone, it
# stays a lone surrogate, which is not Unicode text (tokenizers and UTF-8 writers reject it).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


class _RepeatedKey(Exception):
    """A key given twice in one JSON object (its name in ``args[0]``)."""


def _object_without_repeated_keys(pairs: list[tuple[str, object]]) -> dict:
    obj = dict(pairs)
    if len(obj) < len(pairs):
        seen: set[str] = set()
        raise _RepeatedKey(next(k for k, _ in pairs if k in seen or seen.add(k)))
    return obj


def read_jsonl_objects(path: str | Path) -> Iterator[tuple[int, dict]]:
    """``(line number, JSON object)`` for each non-blank line; anything else is an input error."""
    for lineno, line in read_lines(path):
        if not line.strip():
            continue
        try:
            row = json.loads(line, object_pairs_hook=_object_without_repeated_keys)
        except json.JSONDecodeError as e:
            raise InputFormatError(path, lineno, f"invalid JSON ({e.msg} at column {e.colno})") from None
        except RecursionError:
            raise InputFormatError(path, lineno, "invalid JSON (nested too deeply)") from None
        except _RepeatedKey as e:
            raise InputFormatError(path, lineno, f"key {e.args[0]!r} twice in one object: JSON keeps the last value, the other would be lost") from None
        if not isinstance(row, dict):
            raise InputFormatError(path, lineno, "expected a JSON object")
        if _SURROGATE_ESCAPE.search(line):
            check_unicode_text(row, path, lineno)
        yield lineno, row


def check_unicode_text(value, path: str | Path, lineno: int | None) -> None:
    """Raise an input error naming ``path`` and ``lineno`` if a string in ``value`` (nested lists and
    dicts, keys too) holds a lone UTF-16 surrogate, e.g. from a JSON escape like ``"\\ud800"``."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:
        bad = e.object[e.start : e.end].encode("unicode_escape").decode()
        raise InputFormatError(path, lineno, f"a lone UTF-16 surrogate ({bad}, a JSON escape like '\\ud800' without its pair) is not text") from None


def read_json_object(path: str | Path) -> dict:
    """The JSON object ``path`` holds; bytes that are not UTF-8, invalid JSON or another JSON value
    is an :class:`InputFormatError` naming the file (and the line), not a traceback."""
    text = "\n".join(line for _, line in read_lines(path))
    try:
        data = json.loads(text, object_pairs_hook=_object_without_repeated_keys)
    except json.JSONDecodeError as e:
        raise InputFormatError(path, e.lineno, f"not valid JSON: {e.msg} (column {e.colno})" + (" (an empty file)" if not text.strip() else "")) from None
    except RecursionError:
        raise InputFormatError(path, None, "not valid JSON (nested too deeply)") from None
    except _RepeatedKey as e:
        raise InputFormatError(path, None, f"key {e.args[0]!r} twice in one object: JSON keeps the last value, the other would be lost") from None
    if not isinstance(data, dict):
        raise InputFormatError(path, None, f"expected a JSON object, not a JSON {type(data).__name__}")
    if _SURROGATE_ESCAPE.search(text):
        check_unicode_text(data, path, None)
    return data


def extra_keys_problem(obj: dict, known: Sequence[str], what: str, counts: Counter) -> str | None:
    """What is wrong with the keys of ``obj`` beyond ``known``, for the caller to raise where it
    points (a file's line, a dataset's row); None when nothing is. A known key misspelt (other case,
    a letter off) is a problem: its value would be lost without a word (a mention's ``"id"`` for
    ``"ids"`` would make it NIL). Any other key is extra data the format has no place for: ignored,
    and counted as ``ignored_<what>_keys``."""
    for key in sorted(obj.keys() - set(known)):
        close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.75)
        if close:
            return f"{what} key {key!r} is not one of {', '.join(known)}: did you mean {close[0]!r}?"
        counts[f"ignored_{what}_keys"] += 1
    return None


def _temporary_sibling(path: Path) -> Path:
    # A unique hidden name in the same directory, so the final os.replace is a rename on one file system.
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


@contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO]:
    """Write ``path`` through a temporary sibling file that replaces it only once fully written.

    ``mode`` is ``"w"`` (UTF-8 text) or ``"wb"``. On an error the temporary file is removed and
    ``path`` keeps its old content; a kill leaves at most a hidden ``.NAME.*.tmp`` file behind.
    A symbolic link stays a link: the file it points to is replaced. Something that is not a file
    (``/dev/null``, ``/dev/stdout``, a named pipe) is written directly: a rename would replace it.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes with mode 'w' or 'wb', not {mode!r}")
    encoding = {"encoding": "utf-8"} if mode == "w" else {}
    path = Path(path)
    if path.exists() and not path.is_file() and not path.is_dir():  # both follow links
        with open(path, mode, **encoding) as f:
            yield f
        return
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        try:
            # "x" (not mkstemp) so that the file gets the usual umask permissions, not 0600.
            f = open(tmp, mode.replace("w", "x"), **encoding)
        except OSError as e:  # name the file asked for, not the hidden temporary one
            raise OSError(e.errno, e.strerror, str(path)) from None
        with f:
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
    check_replaceable_dataset(path)
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


def check_replaceable_dataset(path: str | Path) -> None:
    """Refuse to let a saved dataset replace ``path`` when it exists and is not one (nor an empty directory)."""
    path = Path(path)
    if path.exists() and not _replaceable_dataset_dir(path):
        raise FileExistsError(f"{path}: exists and is not a saved dataset; refusing to replace it")


def _replaceable_dataset_dir(path: Path) -> bool:
    """An empty directory or one written by ``save_to_disk``."""
    return path.is_dir() and (not any(path.iterdir()) or any((path / m).exists() for m in _DATASET_MARKERS))


# ---------------------------------------------------------------------------------------- output directories
@contextmanager
def exclusive_output_dir(path: str | Path) -> Iterator[Path]:
    """Hold ``path`` (created if missing) as this process's output directory, or fail at once.

    An ``fcntl.flock`` on ``path/.angel-trl.lock``, non-blocking: a second run writing into the same
    directory raises :class:`~angel_trl.errors.OutputDirBusyError` before doing any work, instead of
    both finishing and one silently overwriting the other. The OS drops the lock when the process
    dies, so a killed run leaves no stale lock. Re-entrant within one process. The lock file stays
    (deleting it would let a waiting run lock a file no one else sees), except where this call made
    the directory and the run wrote nothing into it (it failed first): then the directory goes too,
    so a failed run leaves no empty output directory behind.
    """
    path = Path(path)
    created = not path.exists()
    path.mkdir(parents=True, exist_ok=True)
    key = path.resolve()
    if key in _held_locks:
        _held_locks[key] += 1
        try:
            yield path
        finally:
            _held_locks[key] -= 1
        return
    import fcntl  # POSIX only: imported here so that the readers above work anywhere

    fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputDirBusyError(path) from None
        _held_locks[key] = 1
        try:
            yield path
        finally:
            del _held_locks[key]
            if created and os.listdir(path) == [LOCK_FILE]:
                # Still locked here, so no other run writes into it while it goes.
                os.unlink(path / LOCK_FILE)
                os.rmdir(path)
    finally:
        os.close(fd)  # releases the lock


@contextmanager
def replaced_dir(path: str | Path, rewritten: Iterable[str]) -> Iterator[Path]:
    """Build the next content of directory ``path`` in a temporary sibling that then replaces it in one step.

    The sibling starts with hard links to (copies, across file systems) every entry of ``path`` but the
    ``rewritten`` names; the body writes those names into the yielded directory. On success the two
    directories are swapped at once (Linux ``renameat2(RENAME_EXCHANGE)``), so ``path`` always holds the
    complete old or the complete new content; the old one is then deleted. On an error the sibling is
    removed and ``path`` is untouched. The lock file is carried over like any entry (a hard link: the
    same file, so a held :func:`exclusive_output_dir` lock still holds). Where the swap is not available,
    the old directory is moved aside first and a kill between the two renames leaves it in
    ``.NAME.*.tmp`` beside a missing ``path``, as with :func:`atomic_save_dataset`.
    The body must not write into carried entries in place: they are shared with the old directory.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temporary_sibling(path)
    try:
        tmp.mkdir()
        if path.is_dir():
            _carry_entries(path, tmp, set(rewritten))
        yield tmp
        _swap_in(tmp, path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # the new content on an error, the old one after a swap


def _carry_entries(src: Path, dst: Path, skipped: set[str]) -> None:
    for entry in src.iterdir():
        if entry.name in skipped:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, dst / entry.name, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, dst / entry.name)


def _link_or_copy(src: str | Path, dst: str | Path) -> None:
    if os.path.islink(src):
        os.symlink(os.readlink(src), dst)
        return
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _swap_in(new: Path, path: Path) -> None:
    """Put directory ``new`` at ``path``; the old ``path`` (if any) ends at ``new``'s name."""
    if not path.exists():
        os.replace(new, path)
        return
    if _exchange(new, path):
        return
    moved = _temporary_sibling(path)
    os.replace(path, moved)
    try:
        os.replace(new, path)
    except BaseException:
        os.replace(moved, path)  # put the old directory back
        raise
    os.replace(moved, new)  # deleted by the caller with the rest


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths in one atomic step (Linux ``renameat2``); False where the system cannot."""
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):  # a file system or kernel without it
        return False
    raise OSError(err, os.strerror(err), str(b))


# ---------------------------------------------------------------------------------------- permissions
def usual_permissions(directory: str | Path) -> None:
    """Give the 0600 files directly in ``directory`` the mode a plain ``open`` gives (0644 under umask 022).

    safetensors (0.8) writes weights through a private temporary file and keeps its 0600: on a shared
    cluster other users and jobs could not read the model. Files with any other mode are left alone."""
    mode = 0o666 & ~_umask()
    for path in Path(directory).iterdir():
        if path.is_file() and not path.is_symlink() and path.stat().st_mode & 0o777 == 0o600 != mode:
            path.chmod(mode)


def _umask() -> int:
    mask = os.umask(0o022)  # the only way to read it: set it and put it back
    os.umask(mask)
    return mask
