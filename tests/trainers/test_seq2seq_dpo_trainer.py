import math

import pytest
import torch
from datasets import Dataset

from angel_trl.trainers.collators import PromptedSeq2SeqCollator
from angel_trl.linking.linker import EntityLinker
from angel_trl.trainers import Seq2SeqDPOConfig, Seq2SeqDPOTrainer, refuse_causal_dpo_for_encoder_decoder
from angel_trl.trainers.seq2seq_dpo_trainer import PreferenceCollator, dpo_losses, sequence_logps, tokenize_pairs


def test_dpo_losses_match_hand_computation():
    c, r = torch.tensor([-1.0, -2.0]), torch.tensor([-3.0, -1.5])
    rc, rr = torch.tensor([-2.0, -2.0]), torch.tensor([-2.0, -2.0])
    tok = torch.tensor([[-0.5, -0.5, 0.0], [-1.0, -0.5, -0.5]])
    mask = torch.tensor([[True, True, False], [True, True, True]])
    beta = 0.5
    # delta = (c - rc) - (r - rr) = [1 - (-1), 0 - 0.5] = [2, -0.5]
    sig = (-math.log(1 / (1 + math.exp(-1.0))) - math.log(1 / (1 + math.exp(0.25)))) / 2
    common = (c, r, rc, rr, tok, mask, mask)
    assert dpo_losses(["sigmoid"], [1.0], beta, 0.0, *common).item() == pytest.approx(sig, rel=1e-6)
    assert dpo_losses(["hinge"], [1.0], beta, 0.0, *common).item() == pytest.approx((0 + 1.25) / 2)
    ipo = (((1 / 2 - -1 / 2) - 1) ** 2 + ((0 / 3 - 0.5 / 3) - 1) ** 2) / 2
    assert dpo_losses(["ipo"], [1.0], beta, 0.0, *common).item() == pytest.approx(ipo, rel=1e-6)
    sft = (0.5 + 0.5 + 1.0 + 0.5 + 0.5) / 5
    assert dpo_losses(["sft"], [1.0], beta, 0.0, *common).item() == pytest.approx(sft)
    assert dpo_losses(["sigmoid", "sft"], [1.0, 0.3], beta, 0.0, *common).item() == pytest.approx(sig + 0.3 * sft, rel=1e-6)
    smoothed = (
        -0.9 * math.log(1 / (1 + math.exp(-1.0))) - 0.1 * math.log(1 / (1 + math.exp(1.0)))
        - 0.9 * math.log(1 / (1 + math.exp(0.25))) - 0.1 * math.log(1 / (1 + math.exp(-0.25)))
    ) / 2
    assert dpo_losses(["sigmoid"], [1.0], beta, 0.1, *common).item() == pytest.approx(smoothed, rel=1e-6)


@pytest.fixture()
def stage1_linker(trained_toy):
    out, _ = trained_toy
    return EntityLinker.from_pretrained(out)


def pairs():
    return Dataset.from_dict(
        {
            "prompt": ["the guidelines of the [ST] ada [ET] recommend yearly screening.", "severe combined immunodeficiency due to [ST] ada [ET] in two children."],
            "decoder_prompt": ["ada is", "ada is"],
            "chosen": ["american diabetes association", "ada deficiency"],
            "rejected": ["ada deficiency", "american diabetes association"],
        }
    )


def test_sequence_logps_equal_teacher_forced_name_scores(stage1_linker):
    """The DPO score of a pair's names is exactly the linker's beam score of those names."""
    linker = stage1_linker
    model = linker.model.eval()
    ds, truncated = tokenize_pairs(pairs(), linker.encoder)
    assert truncated == 0
    batch = PreferenceCollator(linker.encoder.pad, model.config.decoder_start_token_id)([ds[0], ds[1]])
    with torch.no_grad():
        logps, _, _ = sequence_logps(model, batch)
    results = linker.link([pairs()["prompt"][0]])  # a source is also valid marked text
    by_name = {c.name: c.score for c in results[0].candidates}
    assert logps[0].item() == pytest.approx(by_name["american diabetes association"], abs=1e-4)
    # and equals a hand-rolled teacher-forced computation through the stage-1 collator
    single = PromptedSeq2SeqCollator(linker.encoder.pad, model.config.decoder_start_token_id)([{"input_ids": ds[1]["input_ids"], "prompt_ids": ds[1]["prompt_ids"], "target_ids": ds[1]["rejected_ids"]}])
    with torch.no_grad():
        lp = model(**{k: v for k, v in single.items() if k != "labels"}).logits.log_softmax(-1)
    keep = single["labels"][0] != -100
    expected = lp[0, keep].gather(-1, single["labels"][0, keep, None]).sum().item()
    assert logps[3].item() == pytest.approx(expected, abs=1e-4)


def make_trainer(linker, tmp_path, **overrides):
    args = dict(output_dir=str(tmp_path), per_device_train_batch_size=2, learning_rate=5e-3, max_steps=15, beta=0.5, logging_steps=5, report_to="none", use_cpu=True, save_strategy="no", disable_tqdm=True)
    args.update(overrides)
    return Seq2SeqDPOTrainer(model=linker.model, args=Seq2SeqDPOConfig(**args), train_dataset=pairs(), processing_class=linker.tokenizer)


@pytest.mark.parametrize("precompute", [False, True])
def test_short_dpo_run_raises_margin_and_keeps_reference(stage1_linker, tmp_path, precompute):
    linker = stage1_linker
    trainer = make_trainer(linker, tmp_path, precompute_ref_log_probs=precompute)
    ds = trainer.train_dataset
    batch = trainer.collator([ds[0], ds[1]])

    def margin(model):
        model.eval()
        with torch.no_grad():
            lp, _, _ = sequence_logps(model, batch)
        c, r = lp.chunk(2)
        return (c - r).mean().item()

    before = margin(linker.model)
    if trainer.ref_model is not None:
        ref_before = [p.detach().clone() for p in trainer.ref_model.parameters()]
    trainer.train()
    after = margin(trainer.model)
    assert after > before + 0.5, (before, after)
    if trainer.ref_model is not None:
        assert all(torch.equal(a, b) for a, b in zip(ref_before, trainer.ref_model.parameters()))
        assert not any(p.requires_grad for p in trainer.ref_model.parameters())
    else:
        assert "ref_chosen_logps" in ds.column_names
    logged = {k for entry in trainer.state.log_history for k in entry}
    assert {"rewards/chosen", "rewards/rejected", "rewards/accuracies", "rewards/margins", "logps/chosen", "logps/rejected"} <= logged


def test_trainer_refuses_bad_data(stage1_linker, tmp_path):
    linker = stage1_linker
    cfg = Seq2SeqDPOConfig(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    good = pairs()
    with pytest.raises(ValueError, match="empty"):
        Seq2SeqDPOTrainer(model=linker.model, args=cfg, train_dataset=good.select([]), processing_class=linker.tokenizer)
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['decoder_prompt'\]"):
        Seq2SeqDPOTrainer(model=linker.model, args=cfg, train_dataset=good.remove_columns("decoder_prompt"), processing_class=linker.tokenizer)
    same = good.map(lambda r: {"rejected": r["chosen"]})
    with pytest.raises(ValueError, match="chosen == rejected"):
        Seq2SeqDPOTrainer(model=linker.model, args=cfg, train_dataset=same, processing_class=linker.tokenizer)
    with pytest.raises(ValueError, match="not supported"):
        Seq2SeqDPOTrainer(model=linker.model, args=Seq2SeqDPOConfig(output_dir=str(tmp_path), loss_type=["bco_pair"], report_to="none", use_cpu=True), train_dataset=good, processing_class=linker.tokenizer)


def test_plain_trl_dpo_is_refused_for_bart(stage1_linker):
    with pytest.raises(TypeError, match="Seq2SeqDPOTrainer"):
        refuse_causal_dpo_for_encoder_decoder(stage1_linker.model)


def test_config_defaults_run_on_a_cpu_only_machine(tmp_path):
    import torch

    cfg = Seq2SeqDPOConfig(output_dir=str(tmp_path), report_to="none")
    if not torch.cuda.is_available():
        assert cfg.bf16 is False  # TRL's default (bf16 on) would stop a CPU run at start-up
    assert cfg.loss_type == ["sigmoid"] and cfg.remove_unused_columns is False


@pytest.mark.parametrize("precompute", [False, True])
def test_step_zero_margin_is_zero_and_reference_runs_on_the_trainer_device(stage1_linker, tmp_path, precompute):
    """Before any update the policy is the reference: every implicit reward is 0, whether the
    reference log-probs come from a live model or were precomputed (on the accelerator's device)."""
    trainer = make_trainer(stage1_linker, tmp_path, precompute_ref_log_probs=precompute)
    metrics = trainer.evaluate(pairs())
    assert metrics["eval_rewards/margins"] == pytest.approx(0.0, abs=1e-5)
    assert metrics["eval_rewards/chosen"] == pytest.approx(0.0, abs=1e-5)
    if precompute:
        assert trainer.reference_device == str(trainer.accelerator.device)
        assert "ref_chosen_logps" in trainer.train_dataset.column_names
        trainer.train()
        # evaluate() on a dataset it has not seen: scored with the (offloaded) reference, not a crash.
        again = trainer.evaluate(pairs().select([1]))
        assert math.isfinite(again["eval_rewards/margins"]) and again["eval_rewards/margins"] != 0.0


def test_reloading_a_checkpoint_does_not_warn_about_tied_weights(caplog):
    """Trainer reports the tied copies of model.shared as missing keys; only real ones are warned about."""
    import logging

    from torch.nn.modules.module import _IncompatibleKeys
    from transformers import Trainer

    from angel_trl.trainers import LinkingEvalMixin
    from angel_trl.modeling import build_model, train_tokenizer

    class Reloading(LinkingEvalMixin, Trainer):
        pass

    trainer = object.__new__(Reloading)  # only the reload hook is exercised
    trainer.model = build_model("tiny", train_tokenizer(["lung cancer", "cystic fibrosis"], 300))
    tied = sorted(trainer.model.all_tied_weights_keys)
    assert "lm_head.weight" in tied
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        trainer._issue_warnings_after_load(_IncompatibleKeys(missing_keys=tied, unexpected_keys=[]))
    assert "missing keys" not in caplog.text
    with caplog.at_level(logging.WARNING, logger="transformers.trainer"):
        trainer._issue_warnings_after_load(_IncompatibleKeys(missing_keys=[*tied, "model.encoder.layernorm_embedding.weight"], unexpected_keys=[]))
    assert "missing keys" in caplog.text and "layernorm_embedding" in caplog.text and "lm_head" not in caplog.text
