"""Artefacts angel-trl writes into a directory and reads back (linker directory, hybrid.json, ranker
files, candidates files): a damaged or mismatched one is one InputFormatError naming the file (and
line or field) when it is read, never a traceback at link time nor silently wrong output."""

import json
import re
import shutil

import numpy as np
import pytest

from angel_trl.errors import FieldError, InputFormatError
from angel_trl.hybrid.candidates_file import read_candidates, write_candidates
from angel_trl.hybrid.linker import HYBRID_FILE, HybridConfig, HybridLinker, MentionCandidates
from angel_trl.hybrid.ranker import LinearRanker
from angel_trl.linking.linker import BeamName, Candidate, EntityLinker, LinkingResult
from angel_trl.linking.trie import NameTrie


@pytest.fixture(scope="module")
def linker(trained_toy):
    return EntityLinker.from_pretrained(trained_toy[0], num_beams=6, top_k=3)


def _raises(match: str, path, load) -> None:
    """``load()`` raises an InputFormatError naming ``path`` (and, in ``match``, the line or field and problem)."""
    with pytest.raises(InputFormatError, match=re.escape(str(path)) + match) as e:
        load()
    assert "\n" not in str(e.value)


# ---------------------------------------------------------------------------------------- rankers
RANKER = {"features": ["model", "tfidf"], "mean": [0.5, 0.1], "scale": [1.0, 2.0], "coef": [1.5, -0.5], "intercept": 0.0, "objective": "listwise"}
# Each problem with {k} where the field's key goes: nothing in a ranker file, "ranker." in hybrid.json.
BAD_RANKERS = {
    "NaN coef": ({"coef": [float("nan"), 0.5]}, r"{k}coef\[0\] must be a finite number, not NaN"),
    "infinite mean": ({"mean": [0.0, float("inf")]}, r"{k}mean\[1\] must be a finite number, not Infinity"),
    "zero scale": ({"scale": [0.0, 1.0]}, r"{k}scale\[0\] must be positive"),
    "negative scale": ({"scale": [1.0, -2.0]}, r"{k}scale\[1\] must be positive"),
    "short coef": ({"coef": [1.0]}, "features, mean, scale and coef must be lists of one length: {k}coef has 1 values for 2 features"),
    "string coef": ({"coef": ["1", 0.5]}, r'{k}coef\[0\] must be a finite number, not "1"'),
    "boolean coef": ({"coef": [True, 0.5]}, r"{k}coef\[0\] must be a finite number, not true"),
    "coef not a list": ({"coef": 1.0}, "{k}coef must be a list of numbers"),
    "string intercept": ({"intercept": "0"}, "{k}intercept must be a finite number"),
    "misspelt objective": ({"objective": "lisstwise"}, '{k}objective "lisstwise" is not one of listwise, pointwise'),
    "unknown feature": ({"features": ["model", "tfidff"]}, "{k}features: unknown \\['tfidff'\\]"),
    "features not strings": ({"features": ["model", 3]}, "{k}features must be a list of feature names"),
    "unknown field": ({"bias": 1.0}, "ranker: unknown field\\(s\\) 'bias'"),
}


def _with(base: dict, change: dict) -> dict:
    return {**base, **change}


@pytest.mark.parametrize("damage", sorted(BAD_RANKERS))
def test_a_bad_ranker_is_refused_by_both_loaders(linker, tmp_path, damage):
    change, problem = BAD_RANKERS[damage]
    ranker_file = tmp_path / "ranker.json"
    ranker_file.write_text(json.dumps({"format": "angel-trl-ranker", "version": 1, **_with(RANKER, change)}))
    _raises(": " + problem.replace("{k}", ""), ranker_file, lambda: LinearRanker.load(ranker_file))
    hybrid_file = tmp_path / HYBRID_FILE
    hybrid_file.write_text(json.dumps(_hybrid(ranker=_with(RANKER, change))))
    _raises(": " + problem.replace("{k}", "ranker\\."), hybrid_file, lambda: HybridLinker.load(linker, hybrid_file))


def test_a_ranker_missing_a_field_or_not_an_object_is_refused(linker, tmp_path):
    path = tmp_path / HYBRID_FILE
    path.write_text(json.dumps(_hybrid(ranker={k: v for k, v in RANKER.items() if k != "features"})))
    _raises(": ranker: missing features", path, lambda: HybridLinker.load(linker, path))
    path.write_text(json.dumps(_hybrid(ranker=[1, 2])))
    _raises(": ranker must be a JSON object", path, lambda: HybridLinker.load(linker, path))
    ranker_file = tmp_path / "ranker.json"
    ranker_file.write_bytes(b'{"format": "angel-trl-ranker", "features": ["mod\xffel"]}')
    _raises(":1: not valid UTF-8", ranker_file, lambda: LinearRanker.load(ranker_file))


# ---------------------------------------------------------------------------------------- hybrid.json
def _hybrid(**change) -> dict:
    """A valid hybrid.json payload (over the toy linker's KB), with ``change`` applied."""
    config = {"tfidf_candidates": 5, "names_per_query": 20, "names_per_concept": 2, "dense_candidates": 0, "dense_model": None, "top_k": 3, "mentions_per_batch": 16}
    payload = {"format": "angel-trl-hybrid", "version": 1, "config": config, "ranker": RANKER, "train_counts": {"ada": {"C2": 2, "C3": 1}}}
    return {**payload, **change}


def test_a_valid_hybrid_file_loads_and_ranks_with_its_ranker(linker, tmp_path):
    path = tmp_path / HYBRID_FILE
    path.write_text(json.dumps(_hybrid()))
    hybrid = HybridLinker.load(linker, tmp_path)
    assert hybrid.ranker == LinearRanker(**RANKER) and hybrid.config.top_k == 3 and hybrid.trained_concepts == {"C2", "C3"}
    result = hybrid.link(["Immunodeficiency due to [ST] ADA [ET]."])[0]
    assert result.candidates and all(0.0 <= c.score <= 1.0 for c in result.candidates)


BAD_CONFIGS = {
    "negative top_k": ({"top_k": -1}, "config.top_k must be an integer of at least 1, not -1"),
    "string count": ({"tfidf_candidates": "5"}, "config.tfidf_candidates must be an integer of at least 0, not '5'"),
    "float count": ({"names_per_query": 20.5}, "config.names_per_query must be an integer of at least 1, not 20.5"),
    "boolean count": ({"mentions_per_batch": True}, "config.mentions_per_batch must be an integer of at least 1, not True"),
    "no name scored": ({"names_per_concept": 0}, "config.names_per_concept must be an integer of at least 1, not 0"),
    "empty dense model": ({"dense_model": " "}, "config.dense_model must be a model name or path"),
    "unknown field": ({"tfidf_cands": 5}, "config: unknown field\\(s\\) 'tfidf_cands'"),
}


@pytest.mark.parametrize("damage", sorted(BAD_CONFIGS))
def test_a_bad_hybrid_config_is_refused_naming_the_field(linker, tmp_path, damage):
    change, problem = BAD_CONFIGS[damage]
    path = tmp_path / HYBRID_FILE
    path.write_text(json.dumps(_hybrid(config={**_hybrid()["config"], **change})))
    _raises(f": {problem}", path, lambda: HybridLinker.load(linker, path))


def test_hybrid_config_values_are_checked_wherever_one_is_built():
    # A recipe's parser builds one from the command line or the --config YAML: it reports the FieldError's field.
    with pytest.raises(FieldError, match="top_k: must be an integer of at least 1, not 0"):
        HybridConfig(top_k=0)
    assert HybridConfig(tfidf_candidates=0, dense_candidates=0).top_k == 5  # zero leaves a retriever out


BAD_HYBRID_FILES = {
    "a JSON array": (b"[1, 2]", ": expected a JSON object, not a JSON list"),
    "empty": (b"", ":1: not valid JSON: Expecting value \\(column 1\\) \\(an empty file\\)"),
    "cut": (json.dumps(_hybrid()).encode()[:150], ":1: not valid JSON"),
    "not UTF-8": (json.dumps(_hybrid(ranker={**RANKER, "objective": "list\udcffwise"}), ensure_ascii=False).encode("utf-8", "surrogateescape"), ":1: not valid UTF-8: byte 0xff"),
    "another format": (json.dumps(_hybrid(format="angel-trl-ranker")).encode(), ": not an angel-trl hybrid linker file"),
    "no train_counts": (json.dumps({k: v for k, v in _hybrid().items() if k != "train_counts"}).encode(), ": missing train_counts"),
    "train_counts a list": (json.dumps(_hybrid(train_counts=[1])).encode(), ": train_counts must be a JSON object"),
    "counts not a map": (json.dumps(_hybrid(train_counts={"ada": ["C2"]})).encode(), ': train_counts\\["ada"\\] must map concept ids to positive link counts'),
    "zero count": (json.dumps(_hybrid(train_counts={"ada": {"C2": 0}})).encode(), ': train_counts\\["ada"\\] must map'),
    "string count": (json.dumps(_hybrid(train_counts={"ada": {"C2": "2"}})).encode(), ': train_counts\\["ada"\\] must map'),
}


@pytest.mark.parametrize("damage", sorted(BAD_HYBRID_FILES))
def test_a_damaged_hybrid_file_is_one_error_naming_it(linker, tmp_path, damage):
    content, problem = BAD_HYBRID_FILES[damage]
    path = tmp_path / HYBRID_FILE
    path.write_bytes(content)
    _raises(problem, path, lambda: HybridLinker.load(linker, path))


def test_a_hybrid_fit_over_another_linker_is_refused(linker, tmp_path):
    path = tmp_path / HYBRID_FILE
    # Used with another model: its training dictionary links to a concept this linker's KB lacks
    # (linking would fail with "argmax of an empty sequence" on the candidate without a name).
    path.write_text(json.dumps(_hybrid(train_counts={"ada": {"C2": 3}, "lung tumour": {"D999": 1}})))
    _raises(": train_counts links to 1 concept\\(s\\) the linker's KB .* lacks, e.g. D999: this hybrid linker was fit over another linker", path, lambda: HybridLinker.load(linker, path))
    # Fit over a linker that does not lowercase: this one would never look its texts up.
    path.write_text(json.dumps(_hybrid(train_counts={"ADA": {"C2": 3}})))
    _raises(': train_counts text "ADA" is not normalised as the linker normalises mentions', path, lambda: HybridLinker.load(linker, path))


# ---------------------------------------------------------------------------------------- candidates files
FEATURE_NAMES = ["model", "tfidf"]
KEY = {"model": "toy", "dictionary": "abc"}
MENTIONS = ["ADA", "CF"]


def _candidates_file(path):
    """A candidates file of two mentions, and what it holds."""
    beams = [
        LinkingResult("ADA", [Candidate("C2", "ada", -0.25, ["ada"])], [BeamName("ada", -0.25, ["C2", "C3"])]),
        LinkingResult("CF", [Candidate("C5", "cf", -0.5, ["cf"])], [BeamName("cf", -0.5, ["C5"])]),
    ]
    candidates = [
        MentionCandidates(["C2", "C3"], ["ada", "ada"], np.array([[-0.25, 1.0], [-1.5, 1.0]])),
        MentionCandidates(["C5"], ["cf"], np.array([[-0.5, 0.75]])),
    ]
    write_candidates(path, beams, candidates, FEATURE_NAMES, KEY)
    return beams, candidates


def _row_edit(path, line: int, **change) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = json.dumps({**json.loads(lines[line - 1]), **change})
    path.write_text("\n".join(lines) + "\n")


def test_a_candidates_file_reads_back_what_was_written_and_a_trailing_blank_line_is_nothing(tmp_path):
    path = tmp_path / "dev.jsonl"
    beams, candidates = _candidates_file(path)
    for text in (path.read_text(), path.read_text() + "\n"):
        path.write_text(text)
        got_beams, got = read_candidates(path, MENTIONS, FEATURE_NAMES, KEY)
        assert [(b.mention, b.candidates, b.beam) for b in got_beams] == [(b.mention, b.candidates, b.beam) for b in beams]
        assert [(c.concept_ids, c.names, c.features.tolist()) for c in got] == [(c.concept_ids, c.names, c.features.tolist()) for c in candidates]
    # Files written before candidates carried their other names still load.
    _row_edit(path, 2, beam_candidates=[{"concept_id": "C2", "name": "ada", "score": -0.25}])
    assert read_candidates(path, MENTIONS, FEATURE_NAMES, KEY)[0][0].candidates == [Candidate("C2", "ada", -0.25, [])]


BAD_ROWS = {
    "names shorter than concept_ids": ({"names": ["ada"]}, "2 concept_ids but 1 names"),
    "NaN feature": ({"features": [[float("nan"), 1.0], [-1.5, 1.0]]}, "'features' holds a number that is not finite"),
    "string feature": ({"features": [["-0.25", 1.0], [-1.5, 1.0]]}, "'features' must be 2 rows \\(one per concept\\) of 2 numbers"),
    "ragged features": ({"features": [[-0.25], [-1.5, 1.0]]}, "'features' must be 2 rows"),
    "a row too many": ({"features": [[-0.25, 1.0], [-1.5, 1.0], [0.0, 0.0]]}, "'features' must be 2 rows"),
    "string beam score": ({"beam_candidates": [{"concept_id": "C2", "name": "ada", "score": "-0.25", "names": []}]}, "'beam_candidates.score' must be a finite number"),
    "infinite beam score": ({"beam": [{"name": "ada", "score": float("-inf"), "concept_ids": ["C2"]}]}, "'beam.score' must be a finite number"),
    "beam name without ids": ({"beam": [{"name": "ada", "score": -0.25}]}, "each of 'beam' must be an object with the fields name, score, concept_ids"),
    "ids not strings": ({"concept_ids": None}, "'concept_ids' must be a list of strings"),
    "unknown field": ({"extra": 1}, "expected the fields"),
}


@pytest.mark.parametrize("damage", sorted(BAD_ROWS))
def test_a_damaged_candidates_row_is_refused_naming_its_line(tmp_path, damage):
    change, problem = BAD_ROWS[damage]
    path = tmp_path / "dev.jsonl"
    _candidates_file(path)
    _row_edit(path, 2, **change)
    _raises(f":2: not a candidates row: {problem}", path, lambda: read_candidates(path, MENTIONS, FEATURE_NAMES, KEY))


def test_a_damaged_candidates_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "dev.jsonl"
    _candidates_file(path)
    text = path.read_bytes()
    path.write_bytes(text.replace(b'"ada"', b'"\xffda"', 1))
    _raises(":2: not valid UTF-8", path, lambda: read_candidates(path, MENTIONS, FEATURE_NAMES, KEY))
    path.write_bytes(b"[1, 2]\n" + text.split(b"\n", 1)[1])
    _raises(":1: expected a JSON object", path, lambda: read_candidates(path, MENTIONS, FEATURE_NAMES, KEY))
    path.write_bytes(text)
    _row_edit(path, 1, mentions="2")
    _raises(":1: the header's 'mentions' must be a count", path, lambda: read_candidates(path, MENTIONS, FEATURE_NAMES, KEY))
    path.write_bytes(text + text.split(b"\n")[2] + b"\n")
    _raises(":4: the header says 2 mentions but more rows follow", path, lambda: read_candidates(path, MENTIONS, FEATURE_NAMES, KEY))
    path.write_bytes(b"")
    _raises(": an empty file", path, lambda: read_candidates(path, MENTIONS, FEATURE_NAMES, KEY))


# ---------------------------------------------------------------------------------------- linker directories
@pytest.fixture
def linker_dir(trained_toy, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(trained_toy[0], copy)
    return copy


def _names_rows(directory) -> list[dict]:
    return [json.loads(line) for line in (directory / "names.jsonl").read_text().splitlines()]


def _write_names(directory, rows) -> None:
    (directory / "names.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _edit_config(directory, **change) -> None:
    path = directory / "linker_config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}, indent=2))


BAD_CONFIG_VALUES = {
    "string boolean": ({"lowercase": "false"}, "lowercase must be true or false, not \"false\""),
    "fractional length": ({"max_source_length": 192.5}, "max_source_length must be an integer of at least 1, not 192.5"),
    "null top_k": ({"top_k": None}, "top_k must be an integer of at least 1, not null"),
    "string beams": ({"num_beams": "10"}, 'num_beams must be an integer of at least 1, not "10"'),
    "negative context": ({"max_context_words": -1}, "max_context_words must be an integer of at least 0, not -1"),
    "NaN length penalty": ({"length_penalty": float("nan")}, "length_penalty must be a finite number, not NaN"),
    "more top_k than beams": ({"num_beams": 2, "top_k": 5}, "top_k \\(5\\) is more than num_beams \\(2\\)"),
}


@pytest.mark.parametrize("damage", sorted(BAD_CONFIG_VALUES))
def test_a_bad_linker_config_value_is_refused_naming_the_file_and_field(linker_dir, damage):
    change, problem = BAD_CONFIG_VALUES[damage]
    _edit_config(linker_dir, **change)
    _raises(f": {problem}", linker_dir / "linker_config.json", lambda: EntityLinker.from_pretrained(linker_dir))


def test_this_runs_settings_are_judged_with_the_saved_ones(linker_dir):
    _edit_config(linker_dir, num_beams=2, top_k=5)  # refused alone (above)...
    assert EntityLinker.from_pretrained(linker_dir, num_beams=6).config.num_beams == 6  # ...decodes with more beams
    _edit_config(linker_dir, num_beams=4, top_k=2)
    with pytest.raises(ValueError, match=r"top_k \(9\) is more than num_beams \(4\).* \(the saved linker config with top_k=9\)"):
        EntityLinker.from_pretrained(linker_dir, top_k=9)  # this run's setting is at fault, not the file
    with pytest.raises(ValueError, match="unknown linker setting.*'beam_width'"):
        EntityLinker.from_pretrained(linker_dir, beam_width=4)
    for setting, problem in [({"batch_size": 0}, "batch_size must be an integer of at least 1, not 0"), ({"lowercase": "false"}, "lowercase must be true or false"),
                             ({"length_penalty": "x"}, "length_penalty must be a finite number"), ({"max_context_words": -1}, "max_context_words must be an integer of at least 0")]:
        with pytest.raises(ValueError, match=problem):
            EntityLinker.from_pretrained(linker_dir, **setting)  # this run's settings are checked as the saved ones are
    saved = json.loads((linker_dir / "linker_config.json").read_text())
    with pytest.raises(ValueError, match="max_name_tokens is .* the saved names and trie were built with it"):
        EntityLinker.from_pretrained(linker_dir, max_name_tokens=saved["max_name_tokens"] + 1)
    assert EntityLinker.from_pretrained(linker_dir, lowercase=saved["lowercase"]).config.lowercase == saved["lowercase"]  # the same value is no change


def test_a_linker_config_that_is_not_utf8_names_the_file_and_line(linker_dir):
    path = linker_dir / "linker_config.json"
    path.write_bytes(path.read_bytes().replace(b'"num_beams"', b'"num_b\xffeams"'))
    _raises(":2: not valid UTF-8", path, lambda: EntityLinker.from_pretrained(linker_dir))


def _drop_last_name(d):
    _write_names(d, _names_rows(d)[:-1])


def _empty_ids(d):
    _write_names(d, [{**r, "ids": []} if i == 3 else r for i, r in enumerate(_names_rows(d))])


def _unknown_id(d):
    _write_names(d, [{**r, "ids": [*r["ids"], "D999"]} if i == 2 else r for i, r in enumerate(_names_rows(d))])


def _extra_name(d):
    rows = _names_rows(d)
    _write_names(d, [*rows, {"name": "zygomycosis", "ids": rows[1]["ids"]}])


def _renamed(d):
    _write_names(d, [{**r, "name": "zygomycosis"} if i == 2 else r for i, r in enumerate(_names_rows(d))])


def _extra_concept(d):
    with open(d / "kb.jsonl", "a") as f:
        f.write(json.dumps({"id": "C8", "names": ["gout"]}) + "\n")


def _uppercase_names(d):
    rows = _names_rows(d)
    _write_names(d, [{**rows[0], "lowercase": False}, *rows[1:]])


def _other_eos(d):
    trie = NameTrie.load(d / "trie.npz")
    trie.eos_token_id += 1
    trie.save(d / "trie.npz")


MISMATCHES = {
    "names.jsonl shorter than the trie": (_drop_last_name, "trie.npz", ": its paths end in name #\\d+ but names.jsonl holds \\d+ names"),
    "a name without ids": (_empty_ids, "names.jsonl", ":4: expected .* with at least one non-empty id"),
    "an id kb.jsonl lacks": (_unknown_id, "names.jsonl", ":3: concept id 'D999' is not in kb.jsonl"),
    "a name the trie lacks": (_extra_name, "trie.npz", ": has no path for name 'zygomycosis' of names.jsonl"),
    "a name renamed": (_renamed, "trie.npz", ": the tokens of name 'zygomycosis' of names.jsonl do not lead to it"),
    "a concept names.jsonl lacks": (_extra_concept, "kb.jsonl", ": 1 concept\\(s\\) have no name in names.jsonl, e.g. C8"),
    "lowercasing differs": (_uppercase_names, "names.jsonl", ":1: written with lowercase=false but linker_config.json says lowercase=true"),
    "another tokenizer's EOS": (_other_eos, "trie.npz", ": built with EOS token \\d+ but the tokenizer's is \\d+"),
}


@pytest.mark.parametrize("mismatch", sorted(MISMATCHES))
def test_linker_files_that_do_not_belong_together_are_refused(linker_dir, mismatch):
    spoil, file, problem = MISMATCHES[mismatch]
    spoil(linker_dir)
    _raises(problem, linker_dir / file, lambda: EntityLinker.from_pretrained(linker_dir))


def _trie_arrays(path) -> dict:
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


DAMAGED_TRIES = {
    "first_child cut": (lambda a: {"first_child": a["first_child"][:-1]}, "its arrays disagree on the number of nodes"),
    "first_child decreasing": (lambda a: {"first_child": np.concatenate([a["first_child"][:1], a["first_child"][1:][::-1]])}, "first_child is not an increasing list"),
    "terminal below -1": (lambda a: {"terminal_name": np.where(np.arange(len(a["terminal_name"])) == 0, -2, a["terminal_name"])}, "a negative name index"),
    "float tokens": (lambda a: {"node_token": a["node_token"].astype(np.float32)}, "node_token is a float32 array"),
    "aliases of two lengths": (lambda a: {"alias_rep": np.zeros(1, dtype=np.int64), "alias_name": np.zeros(0, dtype=np.int64)}, "alias_rep and alias_name are not two lists"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGED_TRIES))
def test_a_trie_whose_arrays_do_not_fit_together_is_refused(linker_dir, damage):
    change, problem = DAMAGED_TRIES[damage]
    path = linker_dir / "trie.npz"
    arrays = _trie_arrays(path)
    np.savez(path, **{**arrays, **change(arrays)})
    _raises(f": a damaged trie: {problem}", path, lambda: NameTrie.load(path))
