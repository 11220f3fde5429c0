"""Constrained beam search returns the model's real top-k, whatever the checkpoint's own settings."""

import math

import pytest
import torch

from angel_trl.linking.linker import EntityLinker, LinkerConfig
from angel_trl.modeling import build_model, neutral_generation_config, train_tokenizer
from angel_trl.data.names import NameTable
from angel_trl.linking.trie import NameTrie


@pytest.fixture(scope="module")
def bigram_linker():
    """A model whose next-token distribution depends only on the last token (a bigram table), over
    three names: "a" (short, finishes first), "b z" (finishes next) and "b c d e" (best: it keeps
    0.9 at every step). With 2 beams, stopping once 2 hypotheses have finished misses "b c d e"."""
    torch.manual_seed(0)
    tokenizer = train_tokenizer(["the mention is here", "some other words"], 400)
    model = build_model("tiny", tokenizer).eval()
    vocab = model.config.vocab_size
    eos = tokenizer.eos_token_id
    a, b, c, d, e, z = range(vocab - 6, vocab)
    table = torch.full((vocab, vocab), -30.0)
    table[:, b], table[:, a] = math.log(0.9), math.log(0.1)  # after the prompt (any other token)
    for tok in (a, z, e):
        table[tok] = -30.0
        table[tok, eos] = 0.0
    table[b] = -30.0
    table[b, c], table[b, z] = math.log(0.9), math.log(0.1)
    table[c] = -30.0
    table[c, d] = 0.0
    table[d] = -30.0
    table[d, e] = 0.0

    def bigram(module, args, kwargs, output):
        output.logits = table[kwargs["decoder_input_ids"]].log_softmax(-1)
        return output

    model.register_forward_hook(bigram, with_kwargs=True)
    names = NameTable(["name a", "name bcde", "name bz"], [["SHORT"], ["BEST"], ["NEXT"]], lowercase=True)
    trie = NameTrie.build([[a, eos], [b, c, d, e, eos], [b, z, eos]], eos)
    linker = EntityLinker(model, tokenizer, names, trie, LinkerConfig(num_beams=2, top_k=2, batch_size=1))
    assert not {a, b, c, d, e, z} & set(linker.encoder.prompts(["mention is"])[0])
    return linker


def test_beam_search_does_not_stop_when_a_short_wrong_name_finishes_first(bigram_linker):
    (result,) = bigram_linker.link(["the [ST] mention [ET] is here"])
    assert [c.concept_id for c in result.candidates] == ["BEST", "SHORT"]
    assert result.candidates[0].score == pytest.approx(2 * math.log(0.9), abs=1e-4)
    assert result.candidates[1].score == pytest.approx(math.log(0.1), abs=1e-4)


def test_checkpoint_generation_settings_do_not_leak_into_linking(bigram_linker):
    """bart-large-cnn ships min_length 56: transformers 5 would fill it into our config and every
    name (at most 4 tokens here) would be cut off, linking nothing."""
    model = bigram_linker.model
    saved = model.generation_config
    model.generation_config = neutral_generation_config(model.config)
    model.generation_config.min_length = 56
    model.generation_config.no_repeat_ngram_size = 1
    model.generation_config.repetition_penalty = 5.0
    try:
        (result,) = bigram_linker.link(["the [ST] mention [ET] is here"])
    finally:
        model.generation_config = saved
    assert [c.concept_id for c in result.candidates] == ["BEST", "SHORT"]
    assert result.candidates[0].score == pytest.approx(2 * math.log(0.9), abs=1e-4)


def test_loaded_checkpoints_carry_only_special_token_ids(tmp_path):
    from angel_trl.modeling import load_pretrained

    tokenizer = train_tokenizer(["some words here"], 300)
    model = build_model("tiny", tokenizer)
    model.generation_config.min_length = 56
    model.generation_config.no_repeat_ngram_size = 3
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    loaded, _ = load_pretrained(str(tmp_path))
    assert loaded.generation_config.min_length in (None, 0)
    assert loaded.generation_config.no_repeat_ngram_size in (None, 0)
    assert loaded.generation_config.eos_token_id == loaded.config.eos_token_id


def test_dev_subset_is_a_seeded_sample_not_the_first_mentions():
    from angel_trl.trainers.linking_eval import dev_subset

    first = dev_subset(1000, 100, seed=42)
    assert first == dev_subset(1000, 100, seed=42) and first == sorted(first)
    assert len(set(first)) == 100 and first != list(range(100))
    assert first != dev_subset(1000, 100, seed=43)
    assert dev_subset(50, 100, seed=42) == list(range(50)) == dev_subset(50, None, seed=42)


def test_dpo_turns_dropout_off_in_modules_but_keeps_it_in_the_saved_config():
    """The stage-2 linker's config is what the next fine-tune starts from: it must keep dropout."""
    from angel_trl.trainers.seq2seq_dpo_trainer import _disable_dropout

    torch.manual_seed(0)
    tokenizer = train_tokenizer(["some words here"], 300)
    model = build_model("tiny", tokenizer)
    before = model.config.to_dict()
    assert model.config.dropout > 0
    _disable_dropout(model.train())
    assert model.config.to_dict() == before
    ids = torch.tensor([[0, 5, 6, 2]])
    out1 = model(input_ids=ids, decoder_input_ids=ids).logits
    out2 = model(input_ids=ids, decoder_input_ids=ids).logits
    assert torch.equal(out1, out2)  # train mode, yet deterministic: no dropout anywhere


@pytest.mark.parametrize("option", [{"use_weighting": True}, {"ld_alpha": 0.5}, {"f_divergence_type": "js_divergence"}, {"sync_ref_model": True}, {"padding_free": True}, {"max_length": 64}])
def test_dpo_options_that_would_be_ignored_are_refused(option, tmp_path):
    from angel_trl.trainers import Seq2SeqDPOConfig

    with pytest.raises(ValueError, match=next(iter(option))):
        Seq2SeqDPOConfig(output_dir=str(tmp_path), use_cpu=True, **option)
    assert Seq2SeqDPOConfig(output_dir=str(tmp_path), use_cpu=True).gradient_checkpointing is False


def test_length_normalised_ranking_is_an_option(bigram_linker):
    from dataclasses import replace

    linker = EntityLinker(bigram_linker.model, bigram_linker.tokenizer, bigram_linker.table, bigram_linker.trie, replace(bigram_linker.config, length_penalty=1.0))
    (result,) = linker.link(["the [ST] mention [ET] is here"])
    prompt = len(linker.encoder.prompts(["mention is"])[0])
    best = result.candidates[0]
    assert best.concept_id == "BEST"  # 5 name tokens (with EOS) after the prompt
    assert best.score == pytest.approx(2 * math.log(0.9) / (prompt + 5), abs=1e-4)
