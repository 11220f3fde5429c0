"""LoRA in both stages: TRL-named fields, stage-2 DPO against the adapter-free base, merged + adapter saving."""

import json

import pytest
import torch
from datasets import Dataset
from peft import LoraConfig, PeftModel
from transformers import set_seed
from trl import TrlParser

from angel_trl.data.arguments import DataArguments
from angel_trl.linking.linker import EntityLinker
from angel_trl.modeling import load_pretrained
from angel_trl.training.lora import ADAPTER_DIR, apply_lora, lora_config
from angel_trl.training.stage1 import ModelArguments, train_stage1
from angel_trl.training.stage2 import Stage2Arguments, train_stage2
from angel_trl.trainers import Seq2SeqDPOConfig, Seq2SeqDPOTrainer, Stage1Config
from angel_trl.trainers.seq2seq_dpo_trainer import sequence_logps

KB_NAMES = {"american diabetes association", "ada deficiency", "ada", "adenosine deaminase deficiency"}


def pairs() -> Dataset:
    return Dataset.from_dict(
        {
            "prompt": ["the guidelines of the [ST] ada [ET] recommend yearly screening.", "severe combined immunodeficiency due to [ST] ada [ET] in two children."],
            "decoder_prompt": ["ada is", "ada is"],
            "chosen": ["american diabetes association", "ada deficiency"],
            "rejected": ["ada deficiency", "american diabetes association"],
        }
    )


def test_lora_fields_map_to_lora_config():
    assert lora_config(ModelArguments()) is None  # use_peft is off by default
    args = ModelArguments(use_peft=True, lora_r=4, lora_alpha=8, lora_dropout=0.1, lora_target_modules=["q_proj", "v_proj"], lora_modules_to_save=["lm_head"], use_rslora=True, use_dora=True)
    cfg = lora_config(args)
    assert isinstance(cfg, LoraConfig) and cfg.task_type == "SEQ_2_SEQ_LM"
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout, cfg.bias) == (4, 8, 0.1, "none")
    assert set(cfg.target_modules) == {"q_proj", "v_proj"} and cfg.modules_to_save == ["lm_head"]
    assert cfg.use_rslora and cfg.use_dora
    # One entry is passed as a string, as trl.ModelConfig does, so PEFT reads "all-linear" as its keyword.
    assert lora_config(ModelArguments(use_peft=True, lora_target_modules=["all-linear"])).target_modules == "all-linear"
    # The same flags parse for stage 2, whose own fields stay required.
    stage2, _ = TrlParser((Stage2Arguments, DataArguments)).parse_args_into_dataclasses(
        ["--stage1_model", "m", "--train_pairs", "p", "--kb_path", "kb.jsonl", "--use_peft", "--lora_r", "4", "--lora_target_modules", "q_proj", "v_proj"]
    )
    assert stage2.use_peft and lora_config(stage2).r == 4 and set(lora_config(stage2).target_modules) == {"q_proj", "v_proj"}


@pytest.mark.parametrize("precompute", [False, True])
def test_lora_dpo_trains_adapters_against_the_adapter_free_base(trained_toy, tmp_path, precompute):
    out, _ = trained_toy
    linker = EntityLinker.from_pretrained(out)
    original = load_pretrained(str(out))[0].eval()  # the stage-1 model, only to compare against
    # Seeded adapter init (otherwise it depends on which tests ran before) and an lr of 5e-3: at 2e-2 the
    # tiny model collapsed the margin to ~0 for 2 of 4 init seeds; at 5e-3 it rose from 4.2 to ~18 for all 4.
    set_seed(0)
    model = apply_lora(linker.model, Stage2Arguments(stage1_model=str(out), train_pairs="-", use_peft=True, lora_r=8, lora_alpha=16, lora_target_modules=["all-linear"]))
    config = Seq2SeqDPOConfig(
        output_dir=str(tmp_path), per_device_train_batch_size=2, learning_rate=5e-3, max_steps=15, beta=0.5, logging_steps=5,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, precompute_ref_log_probs=precompute,
    )
    trainer = Seq2SeqDPOTrainer(model=model, args=config, train_dataset=pairs(), processing_class=linker.tokenizer)
    assert trainer.ref_model is None  # no second copy: the reference is the base model
    batch = trainer.collator([trainer.train_dataset[0], trainer.train_dataset[1]])
    with torch.no_grad():
        original_logps = sequence_logps(original, batch)[0]
    if precompute:
        precomputed = torch.tensor(list(trainer.train_dataset["ref_chosen_logps"]) + list(trainer.train_dataset["ref_rejected_logps"]))
        torch.testing.assert_close(precomputed, original_logps, atol=1e-5, rtol=0)

    def margin() -> float:
        model.eval()
        with torch.no_grad():
            chosen, rejected = sequence_logps(model, batch)[0].chunk(2)
        return (chosen - rejected).mean().item()

    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    frozen_before = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora_before = {n: model.get_parameter(n).detach().clone() for n in trainable}
    before = margin()
    trainer.train()
    assert margin() > before + 0.5
    assert all(torch.equal(p, frozen_before[n]) for n, p in model.named_parameters() if n in frozen_before)
    assert any(not torch.equal(model.get_parameter(n), lora_before[n]) for n in trainable)
    # After training the adapters moved the policy, yet the reference (adapters disabled) is still the stage-1 model.
    torch.testing.assert_close(trainer.reference_logps(model, batch), original_logps, atol=1e-5, rtol=0)
    logged = {k for entry in trainer.state.log_history for k in entry}
    assert {"rewards/margins", "logps/chosen"} <= logged


def check_saved_linker(directory, base_dir) -> None:
    """The linker directory holds a plain merged model that links; the adapter rebuilds it from the base."""
    linker = EntityLinker.from_pretrained(directory)
    assert not isinstance(linker.model, PeftModel) and not any("lora_" in n for n, _ in linker.model.named_parameters())
    results = linker.link(["Severe combined immunodeficiency due to [ST] ADA [ET] in two children."])
    assert results[0].candidates and all(c.name in linker.table.names for c in results[0].candidates)
    adapter_dir = directory / ADAPTER_DIR
    assert json.loads((adapter_dir / "adapter_config.json").read_text())["task_type"] == "SEQ_2_SEQ_LM"
    rebuilt = PeftModel.from_pretrained(load_pretrained(str(base_dir))[0], str(adapter_dir)).eval()
    inputs = linker.tokenizer(["ada [ST] ada [ET]"], return_tensors="pt")
    decoder_input_ids = torch.tensor([[linker.model.config.decoder_start_token_id, linker.encoder.bos]])
    with torch.no_grad():
        merged = linker.model.eval()(**inputs, decoder_input_ids=decoder_input_ids).logits
        adapted = rebuilt(**inputs, decoder_input_ids=decoder_input_ids).logits
    torch.testing.assert_close(adapted, merged, atol=1e-4, rtol=1e-4)


def test_lora_stage1_from_checkpoint_saves_merged_linker_and_adapter(trained_toy, toy_dir, tmp_path):
    base, _ = trained_toy
    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), dev_file=str(toy_dir / "train.jsonl"))
    config = Stage1Config(
        output_dir=str(tmp_path), num_train_epochs=2, learning_rate=1e-3, per_device_train_batch_size=16,
        eval_strategy="epoch", save_strategy="epoch", load_best_model_at_end=True, save_total_limit=1, max_eval_mentions=4,
        link_num_beams=5, logging_steps=50, seed=0, use_cpu=True, disable_tqdm=True, report_to="none",
    )
    model_args = ModelArguments(model_name_or_path=str(base), use_peft=True, lora_r=4, lora_alpha=8)
    summary = train_stage1(data, model_args, config)
    assert 0 < summary["trainable_parameters"] < summary["parameters"]
    assert summary["trie_collisions"] == 0  # the toy KB's names all tokenise apart
    assert "acc@1" in summary["dev"]
    # Dev linking ran during training (constrained generate through the PeftModel) and its checkpoints hold adapters.
    (checkpoint,) = tmp_path.glob("checkpoint-*")
    assert any("eval_acc@1" in entry for entry in json.loads((checkpoint / "trainer_state.json").read_text())["log_history"])
    assert (checkpoint / "adapter_model.safetensors").exists()
    check_saved_linker(tmp_path, base)


def test_lora_stage2_run_saves_merged_linker_and_adapter(trained_toy, toy_dir, tmp_path):
    base, _ = trained_toy
    pairs().save_to_disk(str(tmp_path / "pairs"))
    data = DataArguments(kb_path=str(toy_dir / "kb.jsonl"), train_file=str(toy_dir / "train.jsonl"), test_file=str(toy_dir / "train.jsonl"))
    args = Stage2Arguments(stage1_model=str(base), train_pairs=str(tmp_path / "pairs"), use_peft=True, lora_r=4, lora_alpha=8)
    config = Seq2SeqDPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=2, max_steps=2, learning_rate=1e-3,
        report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True, link_num_beams=5,
    )
    summary = train_stage2(data, args, config)
    assert "acc@1" in summary["test"]
    check_saved_linker(tmp_path / "out", base)
