"""Peers on the same protocol: exact match, training-mention dictionary, TF-IDF and dense nearest name.

Each ``link`` returns :class:`~angel_trl.linking.linker.LinkingResult` lists, so :func:`evaluate_linking`
scores them exactly like the generative linker. Their dictionaries (KB, or KB + training mentions)
come from :func:`angel_trl.data.dictionary.dictionary_protocol`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from angel_trl.data.corpus import Mention
from angel_trl.data.kb import normalize_name
from angel_trl.linking.linker import Candidate, LinkingResult
from angel_trl.data.names import NameTable
from angel_trl.text.dense import DenseNameMatcher
from angel_trl.text.tfidf import TfidfNameMatcher

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
    """Nearest names by cosine similarity of sentence-encoder embeddings (all-MiniLM-L6-v2 by default;
    :class:`~angel_trl.text.dense.DenseNameMatcher`, whose ``cache_dir`` keeps name embeddings)."""

    def __init__(self, table: NameTable, model_path: str | None = None, top_k: int = 5, names_per_query: int = 50, batch_size: int = 256, device: str = "cpu", cache_dir: str | Path | None = None, show_progress: bool = False):
        self.table = table
        self.top_k = top_k
        self.names_per_query = names_per_query
        self.matcher = DenseNameMatcher(table, model_path, batch_size, device, cache_dir, show_progress)

    def link(self, mentions: Sequence[Mention]) -> list[LinkingResult]:
        idx, sims = self.matcher.nearest(self.matcher.encode_mentions([m.text for m in mentions]), self.names_per_query)
        return [_distinct_concepts(self.table, list(zip(row.tolist(), sim.tolist())), self.top_k, LinkingResult(m.text)) for m, row, sim in zip(mentions, idx, sims)]
