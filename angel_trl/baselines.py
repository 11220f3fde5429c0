"""Non-neural peers on the same protocol: exact dictionary match and TF-IDF nearest name.

Both return :class:`~angel_trl.linking.LinkingResult` lists, so :func:`evaluate_linking` scores
them exactly like the generative linker. ``with_training_mentions`` adds the training mentions
as extra synonyms of their gold concepts (the "KB + train" dictionary protocol).
"""

from __future__ import annotations

from collections.abc import Sequence

from .corpus import Corpus, Mention
from .kb import Concept, KnowledgeBase, normalize_name
from .linking import Candidate, LinkingResult
from .names import NameTable
from .targets import TfidfNameMatcher


def with_training_mentions(kb: KnowledgeBase, train: Corpus) -> KnowledgeBase:
    """A copy of ``kb`` whose concepts also carry the training mentions linked to them."""
    extra: dict[str, list[str]] = {}
    for m in train.mentions:
        if m.is_nil or m.composite:
            continue
        for raw in m.ids:
            cid = kb.canonical_id(raw)
            if cid is not None:
                extra.setdefault(cid, []).append(m.text)
    concepts = [Concept(c.id, list(dict.fromkeys(c.names + extra.get(c.id, []))), list(c.alt_ids), c.definition) for c in kb.concepts.values()]
    return KnowledgeBase(concepts, source=f"{kb.source} + training mentions")


class ExactMatchLinker:
    """The concepts whose normalised name equals the normalised mention (KB order), else nothing."""

    def __init__(self, kb: KnowledgeBase):
        self.kb = kb

    def link(self, mentions: Sequence[Mention]) -> list[LinkingResult]:
        return [LinkingResult(m.text, [Candidate(cid, normalize_name(m.text), 0.0) for cid in self.kb.ids_for_name(m.text)]) for m in mentions]


class TfidfLinker:
    """Nearest KB names by cosine similarity of character 3-gram TF-IDF vectors -> distinct concepts."""

    def __init__(self, kb: KnowledgeBase, top_k: int = 5, names_per_query: int = 50):
        self.table = NameTable.from_kb(kb)
        self.matcher = TfidfNameMatcher(self.table)
        self.top_k = top_k
        self.names_per_query = names_per_query

    def link(self, mentions: Sequence[Mention]) -> list[LinkingResult]:
        idx, sims = self.matcher.nearest([m.text for m in mentions], self.names_per_query)
        results = []
        for m, row, sim in zip(mentions, idx, sims):
            result, seen = LinkingResult(m.text), set()
            for i, s in zip(row, sim):
                for cid in self.table.concept_ids[i]:
                    if cid not in seen and len(result.candidates) < self.top_k:
                        seen.add(cid)
                        result.candidates.append(Candidate(cid, self.table.names[i], float(s)))
            results.append(result)
        return results
