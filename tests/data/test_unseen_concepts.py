"""KB names of untrained concepts as pseudo-mentions (mining's unseen-concept lever)."""

import pytest

from angel_trl.data.corpus import Corpus, Document, Mention
from angel_trl.data.kb import Concept, KnowledgeBase
from angel_trl.data.unseen_concepts import ADDED, NO_OWN_NAME, is_unseen_concept_name, with_unseen_concept_names
from tests.conftest import TOY_KB, TOY_MENTIONS


def corpus_of(mentions) -> Corpus:
    docs = []
    for i, (ctx, text, cid) in enumerate(mentions):
        doc_text = ctx.format(text)
        start = doc_text.index(text)
        docs.append(Document(f"d{i}", doc_text, [Mention(f"d{i}", start, start + len(text), text, (cid,))]))
    return Corpus(docs)


def toy_kb(*extra: Concept) -> KnowledgeBase:
    return KnowledgeBase([*(Concept(c["id"], list(c["names"]), list(c.get("alt_ids", []))) for c in TOY_KB), *extra])


def test_every_untrained_concept_gets_one_name_of_its_own_alone_in_a_document():
    train = corpus_of(TOY_MENTIONS[:2])  # C1 and C2 trained; C2's "ADA" is also C3's
    out = with_unseen_concept_names(train, toy_kb(), count=100, seed=0)
    added = out.documents[len(train.documents):]
    assert out.documents[: len(train.documents)] == train.documents and out.counts[ADDED] == len(added) == 5
    assert sorted(m.ids[0] for d in added for m in d.mentions) == ["C3", "C4", "C5", "C6", "C7"]
    for doc in added:
        (m,) = doc.mentions
        assert doc.text == m.text and (m.start, m.end) == (0, len(doc.text)) and is_unseen_concept_name(m.mention_id)
        assert m.text != "ADA"  # a name a trained concept shares is never drawn
    assert not is_unseen_concept_name(train.mentions[0].mention_id)


def test_the_sample_is_seeded_and_bounded():
    train = corpus_of(TOY_MENTIONS[:2])
    texts = lambda corpus: [m.text for m in corpus.mentions]  # noqa: E731
    a = with_unseen_concept_names(train, toy_kb(), count=2, seed=1)
    assert texts(a) == texts(with_unseen_concept_names(train, toy_kb(), count=2, seed=1))
    assert a.counts[ADDED] == 2 and len(a.mentions) == 4
    draws = {tuple(texts(with_unseen_concept_names(train, toy_kb(), count=2, seed=s))) for s in range(8)}
    assert len(draws) > 1  # the seed picks the sample
    assert with_unseen_concept_names(train, toy_kb(), count=0, seed=0).mentions == train.mentions


def test_a_concept_whose_every_name_a_trained_concept_shares_is_counted_not_drawn():
    train = corpus_of(TOY_MENTIONS)  # every toy concept trained
    out = with_unseen_concept_names(train, toy_kb(Concept("C8", ["ada", "CF"]), Concept("C9", ["mucoviscidosis type 2"])), count=5, seed=0)
    assert [m.text for m in out.mentions[len(TOY_MENTIONS):]] == ["mucoviscidosis type 2"]
    assert (out.counts[ADDED], out.counts[NO_OWN_NAME]) == (1, 1)


def test_a_document_id_of_the_corpus_that_collides_is_refused():
    train = corpus_of(TOY_MENTIONS[:2])
    train.documents[0] = Document("unseen-concept-name-0", train.documents[0].text, [])
    with pytest.raises(ValueError, match="reserved for unseen-concept names"):
        with_unseen_concept_names(train, toy_kb(), count=1, seed=0)
    with pytest.raises(ValueError, match=">= 0"):
        with_unseen_concept_names(train, toy_kb(), count=-1, seed=0)
