"""Property-based tests (hypothesis): readers round-trip what the writers write, the trie agrees with
a brute-force prefix set, and mining's pairs and counts obey the paper's rule on any ranking."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from unittest import mock

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from angel_trl.data.corpus import NIL_IDS, Corpus, Document, Mention, read_corpus_jsonl, read_pubtator
from angel_trl.data.kb import Concept, KnowledgeBase, normalize_concept_id, normalize_name, read_kb_jsonl
from angel_trl.linking.linker import Candidate, EntityLinker, LinkingResult
from angel_trl.mining import MiningConfig, Pair, mine_pairs, pairs_from_ranking
from angel_trl.data.names import NameTable
from angel_trl.linking.trie import NameTrie

SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
EOS = 2

# Any text that UTF-8 can hold (no lone surrogates), unicode and control characters included.
any_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
# Ids: no whitespace or control characters (stripped), no '|' / '+' (id separators), not a NIL marker.
concept_id = st.text(st.characters(exclude_categories=("Cs", "Z", "C"), exclude_characters="|+"), min_size=1, max_size=8).filter(
    lambda s: normalize_concept_id(s) == s and s not in NIL_IDS
)
clean_name = any_text.map(lambda s: " ".join(s.split())).filter(bool)


@st.composite
def knowledge_bases(draw) -> list[Concept]:
    """Concepts with unique ids, names drawn from a shared pool (so names are shared), unique alt ids."""
    ids = draw(st.lists(concept_id, min_size=1, max_size=6, unique=True))
    pool = draw(st.lists(clean_name, min_size=1, max_size=8, unique=True))
    alt_pool = iter(draw(st.lists(concept_id.filter(lambda a: a not in ids), max_size=6, unique=True)))
    concepts = []
    for cid in ids:
        names = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=4, unique=True))
        alt_ids = [a for a, _ in zip(alt_pool, range(draw(st.integers(0, 2))))]
        definition = draw(st.none() | clean_name)
        concepts.append(Concept(cid, names, alt_ids, definition))
    return concepts


@SETTINGS
@given(knowledge_bases())
def test_kb_jsonl_round_trip(concepts):
    kb = KnowledgeBase([Concept(c.id, list(c.names), list(c.alt_ids), c.definition) for c in concepts])
    with tempfile.TemporaryDirectory() as d:
        kb.to_jsonl(Path(d) / "kb.jsonl")
        again = read_kb_jsonl(Path(d) / "kb.jsonl")
    assert [(c.id, c.names, c.alt_ids, c.definition) for c in again.concepts.values()] == [(c.id, c.names, c.alt_ids, c.definition) for c in concepts]
    expected: dict[str, list[str]] = {}
    for c in concepts:
        for name in c.names:
            ids = expected.setdefault(normalize_name(name), [])
            if c.id not in ids:
                ids.append(c.id)
    assert again.name_index == expected  # shared names keep every concept, in KB order
    for c in concepts:
        assert all(again.canonical_id(a) == c.id for a in c.alt_ids)
    assert again.stats()["empty_names_skipped"] == 0


@st.composite
def documents(draw, text=any_text, doc_ids=st.text(min_size=1, max_size=6).filter(str.strip)) -> list[Document]:
    """Documents with unique ids and mentions on real spans of their text (at least one mention)."""
    ids = draw(st.lists(doc_ids, min_size=1, max_size=4, unique=True))
    docs = []
    for doc_id in ids:
        body = draw(text.filter(bool))
        mentions = []
        for _ in range(draw(st.integers(0, 3))):
            start = draw(st.integers(0, len(body) - 1))
            end = draw(st.integers(start + 1, len(body)))
            gold = tuple(draw(st.lists(concept_id, max_size=3, unique=True)))
            mtype = draw(st.sampled_from(["Disease", "Chemical", "CompositeMention"]))
            composite = "composite" in mtype.lower() or len(gold) > 1
            mentions.append(Mention(doc_id, start, end, body[start:end], gold, mtype, composite))
        docs.append(Document(doc_id, body, mentions))
    if not any(d.mentions for d in docs):
        docs[0].mentions.append(Mention(docs[0].id, 0, len(docs[0].text), docs[0].text, ("D1",), "Disease"))
    return docs


def duplicates(docs: list[Document]) -> Counter:
    """What a reader counts of ``docs`` as read back: mentions of one span, ids and type repeated."""
    n = sum(len(d.mentions) - len({(m.start, m.end, m.ids, m.type) for m in d.mentions}) for d in docs)
    return Counter({"duplicate_mentions": n} if n else {})


@SETTINGS
@given(documents())
def test_corpus_jsonl_round_trip(docs):
    with tempfile.TemporaryDirectory() as d:
        Corpus(docs).to_jsonl(Path(d) / "c.jsonl")
        again = read_corpus_jsonl(Path(d) / "c.jsonl")
    assert again.documents == docs and again.counts == duplicates(docs)


# PubTator lines hold the text: no tab or line break inside; PMIDs are digits.
pubtator_text = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\t\n\r"), max_size=30)


def with_title(doc: Document, cut: int) -> tuple[str, str, Document]:
    """Title and abstract of ``doc`` once a space is inserted at ``cut`` (offsets index title + " " + abstract)."""
    cut = min(cut, len(doc.text))
    text = doc.text[:cut] + " " + doc.text[cut:]

    def shift(o: int) -> int:
        return o if o <= cut else o + 1

    mentions = [Mention(doc.id, shift(m.start), shift(m.end), text[shift(m.start) : shift(m.end)], m.ids, m.type, m.composite) for m in doc.mentions]
    return text[:cut], text[cut + 1 :], Document(doc.id, text, mentions)


@SETTINGS
@given(documents(text=pubtator_text, doc_ids=st.integers(1, 10**8).map(str)), st.lists(st.integers(0, 30), min_size=4, max_size=4), st.lists(st.integers(0, 2), min_size=4, max_size=4))
def test_pubtator_round_trip(docs, cuts, relations):
    lines, expected = [], []
    for doc, cut, rel in zip(docs, cuts, relations):
        title, abstract, doc = with_title(doc, cut)
        expected.append(doc)
        lines += [f"{doc.id}|t|{title}", f"{doc.id}|a|{abstract}"]
        lines += [f"{doc.id}\t{m.start}\t{m.end}\t{m.text}\t{m.type}\t{'|'.join(m.ids) or '-1'}" for m in doc.mentions]
        lines += [f"{doc.id}\tCID\tD{i}\tD{i + 1}" for i in range(rel)]
        lines.append("")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "c.txt"
        path.write_text("\n".join(lines), encoding="utf-8")
        again = read_pubtator(path)
    assert again.documents == expected
    assert again.counts == Counter({"relation_lines": sum(relations[: len(docs)])} if any(relations[: len(docs)]) else {}) + duplicates(expected)


# ------------------------------------------------------------------------------------ trie
token = st.one_of(st.integers(3, 12), st.integers(3, 70_000))  # small: shared prefixes; large: 32-bit token arrays
sequences = st.lists(st.lists(token, max_size=6).map(lambda s: [*s, EOS]), min_size=1, max_size=40)


@SETTINGS
@given(sequences)
def test_trie_agrees_with_brute_force(seqs):
    trie = NameTrie.build(seqs, EOS)
    continuations: dict[tuple[int, ...], set[int]] = {}
    for s in seqs:
        for k in range(len(s)):
            continuations.setdefault(tuple(s[:k]), set()).add(s[k])
    for prefix, allowed in continuations.items():
        node = trie.walk(prefix)
        assert node >= 0 and set(trie.allowed(node).tolist()) == allowed  # never empty before EOS
        assert trie.step(node, 71_000) == -1
    for s in seqs:
        end = trie.walk(s)
        assert trie.name_of(s) == seqs.index(s)  # identical sequences map to the first name
        assert len(trie.allowed(end)) == 0  # nothing follows EOS
    with tempfile.TemporaryDirectory() as d:
        trie.save(Path(d) / "trie.npz")
        again = NameTrie.load(Path(d) / "trie.npz")
    for a, b in zip((trie.first_child, trie.node_token, trie.terminal_name), (again.first_child, again.node_token, again.terminal_name)):
        assert np.array_equal(a, b) and a.dtype == b.dtype
    assert [again.name_of(s) for s in seqs] == [trie.name_of(s) for s in seqs]


# ------------------------------------------------------------------------------------ mining
CONCEPTS = [f"C{i}" for i in range(1, 8)]
CASES = {"empty", "all_correct", "no_correct", "top1_correct", "misranked"}


@st.composite
def rankings(draw) -> tuple[list[Candidate], set[str]]:
    """Distinct concepts in rank order (as the linker returns them) and a gold set, maybe outside the ranking."""
    ids = draw(st.lists(st.sampled_from(CONCEPTS + ["X1", "X2"]), max_size=6, unique=True))
    gold = set(draw(st.lists(st.sampled_from(CONCEPTS), min_size=1, max_size=2, unique=True)))
    return [Candidate(cid, f"name of {cid}", -float(i)) for i, cid in enumerate(ids)], gold


@SETTINGS
@given(rankings(), st.sampled_from(["paper", "all"]), st.booleans())
def test_pairs_from_ranking(ranking, rule, fallback):
    cands, gold = ranking
    pairs, case = pairs_from_ranking(cands, gold, rule, fallback)
    correct = [i for i, c in enumerate(cands) if c.concept_id in gold]
    wrong = [i for i, c in enumerate(cands) if c.concept_id not in gold]
    assert case in CASES
    for p in pairs:
        assert cands[p.rejected].concept_id not in gold and p.chosen != p.rejected
        if p.chosen >= 0:
            assert p.chosen == correct[0]  # chosen: the best-ranked correct name
        else:
            assert fallback and not correct
    if not correct or not wrong:
        assert (pairs == [Pair(-1, w) for w in wrong]) if fallback and not correct and wrong else pairs == []
    elif rule == "all":
        assert pairs == [Pair(correct[0], w) for w in wrong]
    elif correct[0] == 0:  # paper rule, top-1 correct: against the highest-ranked wrong concept
        assert case == "top1_correct" and pairs == [Pair(0, wrong[0])]
    else:  # paper rule: exactly the wrong concepts ranked above the best correct one
        assert case == "misranked" and pairs == [Pair(correct[0], w) for w in wrong if w < correct[0]] and pairs


class _Tokenizer:
    """Just enough of a BART tokenizer for SequenceEncoder: its special ids and its frame <s> ... </s>."""

    bos_token_id, pad_token_id, eos_token_id = 0, 1, 2

    def __call__(self, text, add_special_tokens=True, **kwargs):
        return {"input_ids": [0, 5, 2] if add_special_tokens else [5]}


@st.composite
def mining_inputs(draw) -> tuple[Corpus, list[list[Candidate]]]:
    """A corpus with NIL, composite, out-of-KB and linkable mentions, and one ranking per mention."""
    text = "x " * 40
    mentions = []
    for i in range(draw(st.integers(1, 12))):
        kind = draw(st.sampled_from(["ok", "ok", "nil", "composite", "missing"]))
        ids = {"ok": (draw(st.sampled_from(CONCEPTS)),), "nil": (), "composite": ("C1", "C2"), "missing": ("C999",)}[kind]
        mentions.append(Mention("d", 2 * i, 2 * i + 1, "x", ids, "Disease", kind == "composite"))
    ranked = draw(st.lists(st.lists(st.sampled_from(CONCEPTS), max_size=5, unique=True), min_size=len(mentions), max_size=len(mentions)))
    return Corpus([Document("d", text, mentions)]), ranked


@SETTINGS
@given(mining_inputs(), st.sampled_from(["paper", "all"]))
def test_mining_summary_adds_up(toy_kb, inputs, rule):
    corpus, ranked = inputs
    table = NameTable.from_kb(toy_kb)
    linker = EntityLinker(None, _Tokenizer(), table, NameTrie.build([[5, EOS]], EOS), kb=toy_kb)

    def link(self, items, show_progress=False):
        # Each concept is ranked with its first name: a stand-in for constrained beam search.
        return [LinkingResult(it.mention, [Candidate(c, table.names[table.names_of_concept(c)[0]], -float(r)) for r, c in enumerate(ids)]) for it, ids in zip(items, ranked)]

    with mock.patch.object(EntityLinker, "link", link):
        pairs, summary = mine_pairs(linker, corpus, toy_kb, MiningConfig(rule=rule), show_progress=False)
    skipped = summary["skipped_nil"] + summary["skipped_composite"] + summary["skipped_gold_not_in_kb"]
    assert summary["corpus_mentions"] == len(corpus.mentions) == summary["mentions"] + skipped
    assert summary["mentions_linked"] == summary["mentions"] == sum(v for k, v in summary.items() if k.startswith("case_"))
    assert summary["pairs"] == len(pairs)
    expected = Counter()
    for ids, m in zip(ranked, [m for m in corpus.mentions if m.ids and not m.composite and m.ids != ("C999",)]):
        found, _ = pairs_from_ranking([Candidate(c, "", 0.0) for c in ids], set(m.ids), rule)
        expected["pairs"] += len(found)
    assert summary["pairs"] + summary.get("skipped_same_name", 0) == expected["pairs"]
    for row in pairs:
        assert row["chosen"] != row["rejected"] and row["rejected_id"] not in row["gold_ids"]


# Pieces of every format the readers know, so that random files reach deep into each parser.
_FRAGMENTS = ["|", "||", "\t", "0", "12", "t", "a", "|t|", "|a|", "D1", "MESH:", " ", "Lung", "\n", "\r", "\r\n", "-1", "CID", "Disease",
              '{"id": ', '"d"', '"text": ', '"mentions": [', "]", "}", ", ", '{"start": 0, "end": 1, "text": "L", "ids": ["D1"]}',
              '"names": ["a"]', "null", "1e5", "true", "\x00", "é", "\ufeff", "#", "&amp;", "&#99999999;"]


@SETTINGS
@given(st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=40).map("".join), st.sampled_from(["medic", "mesh", "kb_jsonl", "pubtator", "corpus_jsonl"]))
def test_readers_fail_only_with_input_errors(content, reader):
    """Whatever a file holds, a reader returns or raises InputFormatError (file and line): never a traceback."""
    from angel_trl.data.kb import read_medic, read_mesh
    from angel_trl.errors import InputFormatError

    readers = {"medic": read_medic, "mesh": read_mesh, "kb_jsonl": read_kb_jsonl, "pubtator": read_pubtator, "corpus_jsonl": read_corpus_jsonl}
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "input.txt"
        path.write_bytes(content.encode())
        try:
            readers[reader](path)
        except InputFormatError as e:
            assert e.path == str(path)
