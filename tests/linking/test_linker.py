import io
import math

import pytest
import torch

from angel_trl.trainers.collators import PromptedSeq2SeqCollator
from angel_trl.linking.linker import EntityLinker, LinkerConfig, LinkInput, PromptForcingLogitsProcessor, TrieConstrainedLogitsProcessor
from angel_trl.modeling import build_model, train_tokenizer
from angel_trl.data.names import NameTable


@pytest.fixture(scope="module")
def random_linker(toy_kb):
    torch.manual_seed(0)
    table = NameTable.from_kb(toy_kb)
    tokenizer = train_tokenizer(table.names + ["patients with lung cancer were treated"], 400)
    model = build_model("tiny", tokenizer).eval()  # no dropout: scores are compared exactly
    return EntityLinker(model, tokenizer, table, config=LinkerConfig(num_beams=8, top_k=7, batch_size=3), kb=toy_kb)


INPUTS = [
    "Patients with [ST] lung cancer [ET] were treated.",
    "Immunodeficiency due to [ST] ADA [ET].",
    "[ST] something unknown entirely [ET]",
    "A [ST] CF [ET] case.",
]


def test_every_output_is_a_kb_name_and_allowed_never_empty(random_linker, monkeypatch):
    finite_per_row = []
    original = TrieConstrainedLogitsProcessor.__call__

    def spy(self, input_ids, scores):
        out = original(self, input_ids, scores)
        finite_per_row.extend(torch.isfinite(out).sum(-1).tolist())
        return out

    monkeypatch.setattr(TrieConstrainedLogitsProcessor, "__call__", spy)
    results = random_linker.link(INPUTS)
    names = set(random_linker.table.names)
    assert len(results) == len(INPUTS)
    for r in results:
        assert r.candidates, "an untrained model still yields KB names"
        assert len({c.concept_id for c in r.candidates}) == len(r.candidates)  # distinct concepts
        for c in r.candidates:
            assert c.name in names and c.concept_id in random_linker.table.concept_ids[random_linker.table.index_of(c.name)]
        assert [c.score for c in r.candidates] == sorted((c.score for c in r.candidates), reverse=True)
    assert finite_per_row and min(finite_per_row) >= 1  # never an empty allowed set


def test_processor_never_returns_empty_allowed_set(random_linker):
    trie = random_linker.trie
    proc = TrieConstrainedLogitsProcessor(trie, [[0, 50]], num_beams=1, eos_token_id=2)
    scores = torch.zeros(1, 400)
    forced = proc(torch.tensor([[2, 0]]), scores.clone())  # step 1: prompt token 50 forced at log-prob 0
    assert forced[0, 50] == 0 and torch.isinf(forced).sum() == 399
    off_trie = proc(torch.tensor([[2, 0, 50, 399]]), scores.clone())  # a path outside the trie
    assert torch.isfinite(off_trie).sum() == 1 and off_trie[0, 2] == 0  # EOS only, never nothing


def test_prompt_forcing_alone_forces_the_prompt_then_frees_every_token():
    proc = PromptForcingLogitsProcessor([[0, 50]], num_beams=2)
    scores = torch.zeros(2, 400)
    forced = proc(torch.tensor([[2, 0], [2, 0]]), scores.clone())  # step 1: prompt token 50 in both beams
    assert forced[:, 50].tolist() == [0.0, 0.0] and torch.isinf(forced).sum() == 2 * 399
    free = proc(torch.tensor([[2, 0, 50], [2, 0, 50]]), scores.clone())  # past the prompt: untouched
    assert torch.equal(free, scores)


def test_unconstrained_switch_decodes_without_the_trie(random_linker, monkeypatch):
    """constrained=False (speed benchmarking) never consults the trie while decoding; what it
    decodes still links only through KB names."""
    from dataclasses import replace

    trie_steps = []
    monkeypatch.setattr(TrieConstrainedLogitsProcessor, "__call__", lambda self, input_ids, scores: trie_steps.append(1) or scores)
    free = EntityLinker(random_linker.model, random_linker.tokenizer, random_linker.table, random_linker.trie, replace(random_linker.config, constrained=False), random_linker.kb)
    results = free.link(INPUTS)
    assert not trie_steps and len(results) == len(INPUTS)
    names = set(random_linker.table.names)
    assert all(c.name in names for r in results for c in r.candidates)
    random_linker.link(INPUTS[:1])
    assert trie_steps  # the default decodes with the trie


def test_beam_score_is_summed_name_logprob(random_linker):
    """The score of a candidate equals teacher-forced log p(name + EOS | input, prompt): forced
    prompt tokens add nothing and there is no length penalty."""
    linker = random_linker
    ex = linker.config.example_config
    item = LinkInput.from_marked(INPUTS[0], ex)
    result = linker.link([item])[0]
    enc = linker.encoder
    src, _ = enc.sources([item.source])
    prompt = enc.prompts([ex.prompt(item.mention)])[0]
    collator = PromptedSeq2SeqCollator(enc.pad, linker.model.config.decoder_start_token_id)
    for cand in result.candidates[:3]:
        target = enc.names([cand.name])[0]
        batch = collator([{"input_ids": src[0], "prompt_ids": prompt, "target_ids": target}])
        with torch.no_grad():
            logits = linker.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=batch["decoder_input_ids"]).logits
        logp = torch.log_softmax(logits, -1)
        labels = batch["labels"][0]
        keep = labels != -100
        expected = logp[0, keep].gather(-1, labels[keep, None]).sum().item()
        assert cand.score == pytest.approx(expected, abs=1e-4)


def test_batched_equals_one_at_a_time(random_linker):
    batched = random_linker.link(INPUTS)
    random_linker.config.batch_size = 1
    try:
        single = random_linker.link(INPUTS)
    finally:
        random_linker.config.batch_size = 3
    for a, b in zip(batched, single):
        assert [c.concept_id for c in a.candidates] == [c.concept_id for c in b.candidates]
        assert all(math.isclose(x.score, y.score, abs_tol=1e-4) for x, y in zip(a.candidates, b.candidates))


def test_from_marked_parses_the_span():
    from angel_trl.text.examples import ExampleConfig

    item = LinkInput.from_marked("Due to [ST]  ADA [ET] in kids.", ExampleConfig())
    assert item.mention == "ADA" and item.source == "due to [ST] ada [ET] in kids."
    with pytest.raises(ValueError, match=r"\[ST\] mention \[ET\]"):
        LinkInput.from_marked("no marks", ExampleConfig())


def test_collator_feeds_prompt_to_decoder_and_masks_it():
    c = PromptedSeq2SeqCollator(pad_token_id=1, decoder_start_token_id=2)
    b = c([{"input_ids": [0, 7, 2], "prompt_ids": [0, 8, 9], "target_ids": [10, 11, 2]}, {"input_ids": [0, 2], "prompt_ids": [0, 8], "target_ids": [12, 2]}])
    assert b["decoder_input_ids"].tolist() == [[2, 0, 8, 9, 10, 11], [2, 0, 8, 12, 1, 1]]
    assert b["labels"].tolist() == [[-100, -100, -100, 10, 11, 2], [-100, -100, 12, 2, -100, -100]]
    assert b["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]


def test_trained_tiny_model_reproduces_its_training_names(trained_toy, toy_dir, toy_kb):
    out, summary = trained_toy
    assert summary["dev"]["acc@1"] == 100.0, summary["dev"]
    linker = EntityLinker.from_pretrained(out)
    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.evaluation import link_and_score

    reloaded, rows = link_and_score(linker, read_corpus_jsonl(toy_dir / "train.jsonl"), toy_kb)
    assert reloaded["acc@1"] == 100.0
    ada = [r for r in rows if r["mention"] == "ADA"]
    assert {r["predictions"][0]["id"] for r in ada} == {"C2", "C3"}  # context disambiguates the shared name
    assert not (out / "training_args.bin").exists()


def test_exact_matches_come_first_in_model_order(toy_kb):
    from angel_trl.linking.linker import Candidate, LinkingResult, put_exact_matches_first

    table = NameTable.from_kb(toy_kb)
    model = LinkingResult("ada", [Candidate("C5", "cf", -1.0), Candidate("C3", "ada", -2.0), Candidate("C1", "lung cancer", -3.0)])
    out = put_exact_matches_first(model, table, top_k=5)
    # "ADA" names C2 and C3: C3 keeps its model score and leads, C2 (missed by the beam) follows as a dictionary hit.
    assert [(c.concept_id, c.score) for c in out.candidates] == [("C3", -2.0), ("C2", 0.0), ("C5", -1.0), ("C1", -3.0)]
    assert out.candidates[1].name == "ada"
    assert put_exact_matches_first(model, table, top_k=2).top_ids == ["C3", "C2"]
    unknown = LinkingResult("lung tumour", list(model.candidates))
    assert put_exact_matches_first(unknown, table, 5) is unknown
    assert put_exact_matches_first(LinkingResult("Lung  Cancer", []), table, 5).top_ids == ["C1"]  # normalised as the table is


def test_exact_match_first_linking_and_mining_ignores_it(random_linker, toy_dir, toy_kb):
    from dataclasses import replace

    from angel_trl.data.corpus import read_corpus_jsonl
    from angel_trl.mining import MiningConfig, mine_pairs

    corpus = read_corpus_jsonl(toy_dir / "train.jsonl")
    inputs = random_linker.inputs_for(corpus.mentions, corpus.texts())
    exact = EntityLinker(random_linker.model, random_linker.tokenizer, random_linker.table, random_linker.trie, replace(random_linker.config, exact_match_first=True), toy_kb)
    plain, first = random_linker.link(inputs), exact.link(inputs)
    for m, p, f in zip(corpus.mentions, plain, first):
        names_concepts = set(toy_kb.ids_for_name(m.text))
        assert set(f.top_ids[: len(names_concepts)]) == names_concepts and set(p.top_ids) <= set(f.top_ids) | set(p.top_ids[-len(names_concepts) :])
    assert [p.top_ids for p in plain] != [f.top_ids for f in first]  # the random model misranks some exact names
    config = MiningConfig(num_beams=6, top_k=5)
    assert mine_pairs(exact, corpus, toy_kb, config, show_progress=False)[0].to_list() == mine_pairs(random_linker, corpus, toy_kb, config, show_progress=False)[0].to_list()


@pytest.mark.parametrize("show", [True, False])
def test_linking_reports_progress_in_a_log_only_when_asked(random_linker, monkeypatch, show):
    log = io.StringIO()  # stderr redirected to a file: timed plain lines, no carriage returns
    monkeypatch.setattr("sys.stderr", log)
    random_linker.link(INPUTS, show_progress=show)
    assert ("linking:" in log.getvalue()) is show and "\r" not in log.getvalue()
    if show:
        assert "2/2" in log.getvalue().strip().split("\n")[-1]  # 4 inputs, batches of 3: the last line says done


def test_a_linker_decodes_over_the_kb_it_is_scored_against(random_linker, toy_kb):
    from angel_trl.data.kb import KnowledgeBase

    said = []
    assert random_linker.over_kb(toy_kb, warn=said.append) is random_linker and not said
    smaller = KnowledgeBase([c for c in toy_kb.concepts.values() if c.id != "C1"], source="smaller.jsonl")
    over = random_linker.over_kb(smaller, warn=said.append)
    assert over is not random_linker and "C1" not in set(over.table.concept_ids[i][0] for i in range(len(over.table.names)))
    assert len(said) == 1 and "linking over smaller.jsonl" in said[0] and "its name trie is rebuilt" in said[0]
    bare = EntityLinker(random_linker.model, random_linker.tokenizer, random_linker.table, random_linker.trie, random_linker.config)
    assert bare.over_kb(toy_kb, warn=said.append) is bare and bare.kb is toy_kb and len(said) == 1  # its names are the KB's: no rebuild
