"""KB names of concepts no mention carries, as mentions of their own (mining's unseen-concept lever).

A model trained on annotated mentions meets, at link time, concepts that no training mention
carries, and it tends to give their mentions a name of a trained concept instead (a shorter, more
general one). Mining only the training mentions never shows stage 2 those mistakes. These
pseudo-mentions do: each is one KB name of an untrained concept, alone in a document of its own (no
context, like stage 1's KB synonym rows), with that concept as gold, so that the model's own ranking
of it gives pairs whose chosen name is an untrained concept's.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import replace

from angel_trl.data.corpus import Corpus, Document, Mention
from angel_trl.data.kb import KnowledgeBase
from angel_trl.data.zero_shot import gold_concepts

DOC_PREFIX = "unseen-concept-name-"  # document ids of the pseudo-mentions (and so of their pairs' mention ids)
ADDED = "unseen_concept_names"
NO_OWN_NAME = "unseen_concepts_without_an_own_name"


def is_unseen_concept_name(mention_id: str) -> bool:
    """Whether a mention (or a mined pair's ``mention_id``) is one of :func:`with_unseen_concept_names`'."""
    return mention_id.startswith(DOC_PREFIX)


def with_unseen_concept_names(corpus: Corpus, kb: KnowledgeBase, count: int, seed: int) -> Corpus:
    """``corpus`` plus up to ``count`` pseudo-mentions, one for each of a seeded sample of the KB's
    concepts that no mention of ``corpus`` carries: one of the concept's names, drawn at random among
    those that name no concept ``corpus`` carries (a name a trained concept shares would teach the
    pair nothing it can tell apart). Gold is every concept of that name. Counted in ``corpus.counts``:
    how many were added (``unseen_concept_names``) and how many sampled concepts had no such name.
    """
    if count < 0:
        raise ValueError(f"unseen_concept_names must be >= 0, got {count}")
    trained = gold_concepts(corpus, kb)
    untrained = sorted(set(kb.concepts) - trained)
    rng = random.Random(seed)
    documents, no_own_name = [], 0
    for cid in rng.sample(untrained, min(count, len(untrained))):
        own = [n for n in kb.names(cid) if not set(kb.ids_for_name(n)) & trained]
        if not own:
            no_own_name += 1
            continue
        name = rng.choice(own)
        doc_id = f"{DOC_PREFIX}{len(documents)}"
        mention = Mention(doc_id=doc_id, start=0, end=len(name), text=name, ids=tuple(kb.ids_for_name(name)))
        documents.append(Document(doc_id, name, [mention]))
    taken = {d.id for d in corpus.documents} & {d.id for d in documents}
    if taken:
        raise ValueError(f"{corpus.source}: document id {sorted(taken)[0]!r} is reserved for unseen-concept names")
    counts = Counter({**corpus.counts, ADDED: len(documents), NO_OWN_NAME: no_own_name})
    return replace(corpus, documents=[*corpus.documents, *documents], counts=counts)
