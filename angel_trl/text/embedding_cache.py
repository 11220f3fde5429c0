"""Text embeddings of one encoder cached on disk by text, in chunks: reusable and resumable.

Encoding the 676k MeSH chemical names with a sentence encoder takes hours on a CPU. Keying the
cache by text (not by the whole name list) means the "KB + training mentions" table encodes only
the mentions it adds to the KB-only one, and saving every chunk as it is done means an interrupted
encoding resumes where it stopped. Each chunk is ``<key>.npy`` (float32 rows, no pickle) plus
``<key>.jsonl`` (its texts, one JSON string per line), written last: a chunk counts only once both exist.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from angel_trl.data.files import atomic_open, atomic_write_text, read_lines
from angel_trl.errors import InputFormatError
from angel_trl.progress import progress_bar

ENCODE_CHUNK = 20_000  # texts encoded (and, in the cache, saved) at a time: what an interrupted encoding loses at most


class EmbeddingCache:
    """Embeddings of one encoder under ``directory`` (use one directory per encoder)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def _chunks(self) -> list[tuple[Path, list[str], np.ndarray]]:
        """Every saved chunk as ``(texts file, texts, vectors)``, checked (:func:`_read_chunk`) and of one width."""
        chunks = []
        for texts_path in sorted(self.directory.glob("*.jsonl")):
            texts, vectors = _read_chunk(texts_path)
            if chunks and vectors.shape[1] != chunks[0][2].shape[1]:
                raise _damaged(texts_path, None, f"vectors of width {vectors.shape[1]}, but {chunks[0][0].name} holds width {chunks[0][2].shape[1]}: chunks of two encoders in one directory?")
            chunks.append((texts_path, texts, vectors))
        return chunks

    def _save(self, texts: list[str], vectors: np.ndarray) -> Path:
        """Write one chunk (vectors first: a chunk counts once its texts file exists); returns its texts file."""
        key = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:16]
        with atomic_open(self.directory / f"{key}.npy", "wb") as f:
            np.save(f, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
        atomic_write_text(self.directory / f"{key}.jsonl", "".join(json.dumps(t) + "\n" for t in texts))
        return self.directory / f"{key}.jsonl"

    def vectors(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray], chunk_size: int = ENCODE_CHUNK, progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts`` in order; ``encode`` runs only on texts no saved chunk holds, ``chunk_size`` at a time."""
        chunks = self._chunks()
        where = {t: (c, r) for c, (_, chunk_texts, _) in enumerate(chunks) for r, t in enumerate(chunk_texts)}
        missing = list(dict.fromkeys(t for t in texts if t not in where))
        if missing:
            bar = progress_bar(total=len(missing), show=progress, desc=f"encoding ({len(texts) - len(missing):,} of {len(texts):,} cached)", unit="text")
            for lo in range(0, len(missing), chunk_size):
                part = missing[lo : lo + chunk_size]
                vectors = np.asarray(encode(part), dtype=np.float32)
                self._check_encoded(vectors, len(part), chunks[0][2].shape[1] if chunks else None)
                texts_path = self._save(part, vectors)
                for r, t in enumerate(part):
                    where[t] = (len(chunks), r)
                chunks.append((texts_path, part, vectors))
                bar.update(len(part))
            bar.close()
        out = np.empty((len(texts), chunks[0][2].shape[1] if chunks else 0), dtype=np.float32)  # one encoder: one width
        # Gather chunk by chunk: one fancy-indexing read per chunk, not one per text.
        by_chunk: dict[int, tuple[list[int], list[int]]] = {}
        for i, t in enumerate(texts):
            c, r = where[t]
            positions, rows = by_chunk.setdefault(c, ([], []))
            positions.append(i)
            rows.append(r)
        for c, (positions, rows) in by_chunk.items():
            block = chunks[c][2][rows]
            if not np.isfinite(block).all():  # only the rows read: a whole-chunk pass would read every vector again
                raise _damaged(chunks[c][0], None, f"{chunks[c][0].with_suffix('.npy').name} holds vectors that are not finite (NaN or infinity)")
            out[positions] = block
        return out

    def _check_encoded(self, vectors: np.ndarray, count: int, width: int | None) -> None:
        """Refuse to save what the encoder returned unless it is ``count`` finite rows of the cached width."""
        if vectors.ndim != 2 or len(vectors) != count:
            raise ValueError(f"the encoder returned an array of shape {vectors.shape} for {count} texts; expected one row a text (nothing was cached)")
        if not np.isfinite(vectors).all():
            raise ValueError("the encoder returned vectors that are not finite (NaN or infinity); nothing was cached")
        if width is not None and vectors.shape[1] != width:
            raise InputFormatError(self.directory, None, f"the encoder gives vectors of width {vectors.shape[1]} but the chunks cached here hold width {width}: a cache of another encoder? delete its .npy and .jsonl files to re-encode")


def _read_chunk(texts_path: Path) -> tuple[list[str], np.ndarray]:
    """A chunk's texts and its vectors (memory-mapped); a damaged chunk is an :class:`InputFormatError`
    naming its files (and the line of the texts file), where it would otherwise fail deep inside numpy."""
    texts = _read_texts(texts_path)
    vectors_path = texts_path.with_suffix(".npy")
    if not vectors_path.exists():
        raise _damaged(texts_path, None, f"its vectors file {vectors_path.name} is missing")
    try:
        vectors = np.load(vectors_path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:  # cut (mmap longer than the file), not .npy, pickled objects
        raise _damaged(texts_path, None, f"{vectors_path.name} is not a readable .npy array ({e})") from None
    if vectors.dtype != np.float32 or vectors.ndim != 2 or len(vectors) != len(texts):
        raise _damaged(texts_path, None, f"{len(texts)} texts but {vectors_path.name} holds a {vectors.dtype} array of shape {vectors.shape} (expected float32 rows, one per text)")
    return texts, vectors


def _read_texts(path: Path) -> list[str]:
    """The texts of a chunk's ``.jsonl``: one JSON string a line, no blank line (it would shift every
    row after it). Decoded whole, as fast as before the checks: 676k texts are read at every start."""
    try:
        lines = path.read_bytes().decode("utf-8").split("\n")
    except UnicodeDecodeError:
        raise _not_utf8(path) from None
    if lines[-1] == "":  # the newline ending the last text
        lines.pop()
    texts = []
    for lineno, line in enumerate(lines, start=1):
        try:
            text = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            text = None
        if not isinstance(text, str):
            raise _damaged(path, lineno, "a blank line" if not line.strip() else "expected one JSON string a line")
        texts.append(text)
    return texts


def _not_utf8(path: Path) -> InputFormatError:
    """The error of a texts file with bytes that are not UTF-8: :func:`read_lines` names their line and column."""
    try:
        for _ in read_lines(path):
            pass
    except InputFormatError as e:
        return _damaged(path, e.line, e.problem)
    return _damaged(path, None, "not valid UTF-8")


def _damaged(texts_path: Path, line: int | None, problem: str) -> InputFormatError:
    """The error of a damaged chunk: it names both of its files and says how to get it back."""
    vectors = texts_path.with_suffix(".npy").name
    return InputFormatError(texts_path, line, f"{problem}; a damaged embedding cache chunk: delete {texts_path.name} and {vectors} (in {texts_path.parent}) to re-encode its texts")
