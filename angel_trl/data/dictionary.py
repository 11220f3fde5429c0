"""The dictionary a mention is matched against: KB names only, or KB + training mentions.

Under "KB + train" the training mentions become extra synonyms of their gold concepts, and a name
shared by several concepts lists first the concept that training mentions with that text link to
most often (KB order would otherwise decide, which is arbitrary). The peers, the hybrid linker and
the accuracy benchmark all build their dictionaries here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from angel_trl.data.corpus import Corpus
from angel_trl.data.kb import Concept, KnowledgeBase, normalize_name
from angel_trl.data.names import NameTable


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


def table_with_training_texts(kb: KnowledgeBase, counts: Mapping[str, Mapping[str, int]], lowercase: bool = True) -> NameTable:
    """The "KB + train" name table from training link counts alone (what a saved hybrid linker
    keeps instead of the corpus): the same table :func:`dictionary_protocol` builds from the corpus."""
    extra: dict[str, list[str]] = {}
    for text, ids in counts.items():
        for cid in ids:
            extra.setdefault(cid, []).append(text)
    concepts = [Concept(c.id, list(dict.fromkeys(c.names + extra.get(c.id, []))), list(c.alt_ids), c.definition) for c in kb.concepts.values()]
    return NameTable.from_kb(KnowledgeBase(concepts, source=f"{kb.source} + training mentions"), lowercase, priority=counts)
