"""The zero-shot protocol: training and dev data without any concept that occurs in test.

Real KBs have far more concepts than any annotated corpus covers, so a linker meets concepts no
training mention carries. Dropping from train and dev every mention of which a gold concept also
occurs in test makes every test concept new, for every system alike. Deterministic (no sampling);
the documents keep their text, only the mentions go, and how many went is counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from angel_trl.data.corpus import Corpus, Document
from angel_trl.data.kb import KnowledgeBase

DROPPED = "zero_shot_dropped_mentions"


def gold_concepts(corpus: Corpus, kb: KnowledgeBase) -> set[str]:
    """Canonical ids of every gold concept of ``corpus`` (ids missing from the KB left out)."""
    return {kb.canonical_id(g) for m in corpus.mentions for g in m.ids} - {None}


def without_concepts(corpus: Corpus, concepts: set[str], kb: KnowledgeBase) -> Corpus:
    """``corpus`` without the mentions that have a gold concept in ``concepts`` (counted as
    ``zero_shot_dropped_mentions``); NIL mentions and the documents' text stay."""
    dropped = 0
    documents = []
    for doc in corpus.documents:
        kept = [m for m in doc.mentions if not ({kb.canonical_id(g) for g in m.ids} & concepts)]
        dropped += len(doc.mentions) - len(kept)
        documents.append(Document(doc.id, doc.text, kept))
    return replace(corpus, documents=documents, counts=Counter({**corpus.counts, DROPPED: dropped}))
