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
from tqdm.auto import tqdm

from angel_trl.data.files import atomic_open, atomic_write_text


class EmbeddingCache:
    """Embeddings of one encoder under ``directory`` (use one directory per encoder)."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)

    def _chunks(self) -> list[tuple[list[str], np.ndarray]]:
        chunks = []
        for texts_path in sorted(self.directory.glob("*.jsonl")):
            texts = [json.loads(line) for line in texts_path.read_text(encoding="utf-8").splitlines()]
            vectors = np.load(texts_path.with_suffix(".npy"), mmap_mode="r", allow_pickle=False)
            if vectors.ndim != 2 or len(vectors) != len(texts):
                raise ValueError(f"{texts_path}: {len(texts)} texts but {texts_path.with_suffix('.npy').name} holds shape {vectors.shape}; delete both files to re-encode them")
            chunks.append((texts, vectors))
        return chunks

    def _save(self, texts: list[str], vectors: np.ndarray) -> None:
        key = hashlib.sha1("\n".join(texts).encode()).hexdigest()[:16]
        with atomic_open(self.directory / f"{key}.npy", "wb") as f:
            np.save(f, np.asarray(vectors, dtype=np.float32), allow_pickle=False)
        atomic_write_text(self.directory / f"{key}.jsonl", "".join(json.dumps(t) + "\n" for t in texts))

    def vectors(self, texts: Sequence[str], encode: Callable[[list[str]], np.ndarray], chunk_size: int = 20_000, progress: bool = False) -> np.ndarray:
        """Embeddings of ``texts`` in order; ``encode`` runs only on texts no saved chunk holds, ``chunk_size`` at a time."""
        chunks = self._chunks()
        where = {t: (c, r) for c, (chunk_texts, _) in enumerate(chunks) for r, t in enumerate(chunk_texts)}
        missing = list(dict.fromkeys(t for t in texts if t not in where))
        if missing:
            bar = tqdm(total=len(missing), desc=f"encoding ({len(texts) - len(missing):,} of {len(texts):,} cached)", unit="text", disable=not progress)
            for lo in range(0, len(missing), chunk_size):
                part = missing[lo : lo + chunk_size]
                vectors = np.asarray(encode(part), dtype=np.float32)
                self._save(part, vectors)
                for r, t in enumerate(part):
                    where[t] = (len(chunks), r)
                chunks.append((part, vectors))
                bar.update(len(part))
            bar.close()
        out = np.empty((len(texts), chunks[0][1].shape[1] if chunks else 0), dtype=np.float32)  # one encoder: one width
        # Gather chunk by chunk: one fancy-indexing read per chunk, not one per text.
        by_chunk: dict[int, tuple[list[int], list[int]]] = {}
        for i, t in enumerate(texts):
            c, r = where[t]
            positions, rows = by_chunk.setdefault(c, ([], []))
            positions.append(i)
            rows.append(r)
        for c, (positions, rows) in by_chunk.items():
            out[positions] = chunks[c][1][rows]
        return out
