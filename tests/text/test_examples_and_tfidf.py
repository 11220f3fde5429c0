import pytest

from angel_trl.data.corpus import read_corpus_jsonl
from angel_trl.text.examples import ExampleConfig, build_kb_rows, build_stage1_rows
from angel_trl.data.names import NameTable
from angel_trl.text.tfidf import TfidfNameMatcher

from tests.conftest import write_jsonl


def test_source_context_budget_and_markers_survive_lowercasing():
    cfg = ExampleConfig(max_context_words=2, lowercase=True)
    text = "One two Three four LUNG Cancer five Six seven"
    start = text.index("LUNG")
    src = cfg.source(text, start, start + len("LUNG Cancer"))
    assert src == "three four [ST] lung cancer [ET] five six"
    assert cfg.prompt("LUNG  Cancer") == "lung cancer is"
    assert ExampleConfig(max_context_words=0).source(text, start, start + 11) == "[ST] lung cancer [ET]"


def test_top_names_most_similar_first(toy_kb):
    table = NameTable.from_kb(toy_kb)
    matcher = TfidfNameMatcher(table)
    names = table.names_of_concept("C1")
    top = [table.names[i] for i in matcher.top_names("lung carcinoma", names, 3)]
    assert len(top) == 3 and set(top) == {"lung cancer", "carcinoma of the lung", "pulmonary carcinoma"}
    assert top[0] in ("carcinoma of the lung", "lung cancer")
    sims = matcher.similarities("lung carcinoma", [table.index_of(n) for n in top])
    assert list(sims) == sorted(sims, reverse=True)


def test_shared_names_avoided_when_asked(toy_kb):
    table = NameTable.from_kb(toy_kb)
    matcher = TfidfNameMatcher(table)
    cands = table.names_of_concept("C2")
    assert table.names[matcher.top_names("ADA", cands, 1)[0]] == "ada"
    best = table.names[matcher.top_names("ADA", cands, 1, avoid_shared=True)[0]]
    assert best == "ada deficiency"  # unique to C2, unlike "ada"


def test_stage1_rows_skip_and_count(tmp_path, toy_kb):
    docs = [
        {"id": "a", "text": "lung cancer and ADA and X and breast or lung cancer", "mentions": [
            {"start": 0, "end": 11, "text": "lung cancer", "ids": ["C1"]},
            {"start": 16, "end": 19, "text": "ADA", "ids": []},
            {"start": 24, "end": 25, "text": "X", "ids": ["UNKNOWN"]},
            {"start": 30, "end": 51, "text": "breast or lung cancer", "ids": ["C4", "C1"], "composite": True},
        ]}
    ]
    corpus = read_corpus_jsonl(write_jsonl(tmp_path / "c.jsonl", docs))
    table = NameTable.from_kb(toy_kb)
    rows = build_stage1_rows(corpus, toy_kb, table, TfidfNameMatcher(table), ExampleConfig(), top_k=2)
    assert rows.counts == {"rows_mention": 2, "skipped_nil": 1, "skipped_gold_not_in_kb": 1, "skipped_composite": 1}
    assert rows.targets == ["lung cancer", "carcinoma of the lung"]
    assert rows.prompts == ["lung cancer is"] * 2


def test_kb_rows_cover_every_name_and_stay_in_concept(toy_kb):
    table = NameTable.from_kb(toy_kb)
    rows = build_kb_rows(table, TfidfNameMatcher(table), ExampleConfig(), top_k=2)
    sources = {s.removeprefix("[ST] ").removesuffix(" [ET]") for s in rows.sources}
    assert sources == set(table.names)
    for src, tgt in zip(rows.sources, rows.targets):
        name = src.removeprefix("[ST] ").removesuffix(" [ET]")
        assert set(table.concept_ids[table.index_of(name)]) & set(table.concept_ids[table.index_of(tgt)])
    sampled = build_kb_rows(table, TfidfNameMatcher(table), ExampleConfig(), top_k=1, max_names=5, seed=3)
    assert len(sampled) == 5 and sampled.counts["kb_names_not_sampled"] == len(table) - 5
    again = build_kb_rows(table, TfidfNameMatcher(table), ExampleConfig(), top_k=1, max_names=5, seed=3)
    assert again.sources == sampled.sources


def test_kb_rows_sampled_per_concept_give_every_concept_a_row(toy_kb):
    table = NameTable.from_kb(toy_kb)
    concepts = {cid for ids in table.concept_ids for cid in ids}
    rows = build_kb_rows(table, TfidfNameMatcher(table), ExampleConfig(), top_k=1, names_per_concept=1, seed=3)
    sources = [s.removeprefix("[ST] ").removesuffix(" [ET]") for s in rows.sources]
    covered = {cid for name in sources for cid in table.concept_ids[table.index_of(name)]}
    assert covered == concepts
    # one name per concept, but a name of two concepts ("ada") can serve both
    assert len(set(sources)) <= len(concepts) and rows.counts["kb_names_not_sampled"] == len(table) - len(set(sources))
    again = build_kb_rows(table, TfidfNameMatcher(table), ExampleConfig(), top_k=1, names_per_concept=1, seed=3)
    assert again.sources == rows.sources
    two = build_kb_rows(table, TfidfNameMatcher(table), ExampleConfig(), top_k=1, names_per_concept=2, seed=3)
    per_concept = {cid: sum(cid in table.concept_ids[table.index_of(s.removeprefix("[ST] ").removesuffix(" [ET]"))] for s in two.sources) for cid in concepts}
    assert all(1 <= n <= len(table.names_of_concept(cid)) for cid, n in per_concept.items())
    assert len(two) > len(rows)
    with pytest.raises(ValueError, match="not both"):
        build_kb_rows(table, TfidfNameMatcher(table), ExampleConfig(), max_names=3, names_per_concept=1)
