"""Decoding and training speed of a saved linker: every number a ratio within one run.

    python benchmarks/speed_bench.py --model_dir outputs/ncbi-stage1 --pairs outputs/ncbi-pairs/train \
        --corpus "{data_dir}/ncbi-disease/NCBIdevelopset_corpus.txt" --corpus_format pubtator

Decoding: mentions/s of trie-constrained beam search against the same beam search with the prompt
forced but no trie (beams 5), and batch size 1 (GenBioEL) against batched. Conditions alternate
over ``--rounds`` and the median is kept, so load drifting during the run hits both alike.
The beam cache that leaves the encoder keys/values in place (``angel_trl.linking.beam_cache``) is timed against
transformers' default cache, which copies them at every step. Both baselines are ``LinkerConfig``
switches: ``constrained=False`` and ``beam_cache=False``.
Training: samples/s of a stage-1 step and of a DPO step with and without precomputed reference
log-probs, on the same mined pairs (stage 1 trains on their chosen names), same model and batch.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from datasets import Dataset

from angel_trl.trainers.collators import PromptedSeq2SeqCollator
from angel_trl.data.corpus import load_corpus
from angel_trl.data.arguments import resolve_data_path
from angel_trl.data.files import write_json
from angel_trl.linking.linker import EntityLinker
from angel_trl.modeling import load_pretrained
from angel_trl.training.stage2 import load_pairs
from angel_trl.text.tokenization import SequenceEncoder
from angel_trl.trainers import Seq2SeqDPOConfig, Seq2SeqDPOTrainer, Stage1Config, Stage1Trainer
from common import REPO_DATA_DIR


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def decoding(linker: EntityLinker, inputs, batch_sizes: list[int], num_beams: int, rounds: int) -> dict:
    big = max(batch_sizes)
    base = replace(linker.config, num_beams=num_beams)
    # condition -> the linker config it decodes with
    conditions = {f"constrained bs{bs}": replace(base, batch_size=bs) for bs in batch_sizes}
    conditions[f"unconstrained bs{big}"] = replace(base, batch_size=big, constrained=False)
    conditions[f"constrained bs{big}, default cache"] = replace(base, batch_size=big, beam_cache=False)
    linkers = {name: EntityLinker(linker.model, linker.tokenizer, linker.table, linker.trie, config, linker.kb) for name, config in conditions.items()}
    seconds: dict[str, list[float]] = {name: [] for name in conditions}
    linkers[f"constrained bs{big}"].link(inputs[:big])  # warm-up
    for _ in range(rounds):
        for name, timed_linker in linkers.items():
            seconds[name].append(timed(lambda: timed_linker.link(inputs)))
    rows = {name: {"median_seconds": round(statistics.median(s), 3), "mentions_per_s": round(len(inputs) / statistics.median(s), 2), "seconds": [round(x, 3) for x in s]} for name, s in seconds.items()}
    return {
        "mentions": len(inputs),
        "num_beams": num_beams,
        "conditions": rows,
        "constrained_over_unconstrained_time": round(rows[f"constrained bs{big}"]["median_seconds"] / rows[f"unconstrained bs{big}"]["median_seconds"], 3),
        "shared_source_cache_over_default_time": round(rows[f"constrained bs{big}"]["median_seconds"] / rows[f"constrained bs{big}, default cache"]["median_seconds"], 3),
        "batched_over_bs1_speedup": round(rows[f"constrained bs{min(batch_sizes)}"]["median_seconds"] / rows[f"constrained bs{big}"]["median_seconds"], 3) if len(batch_sizes) > 1 else None,
    }


def training(model_dir: str, pairs: Dataset, batch_size: int, steps: int, rounds: int) -> dict:
    """Seconds per optimizer step of stage 1 and DPO (with/without precomputed reference)."""
    out_dir = tempfile.mkdtemp(prefix="speed-bench-")
    common = dict(output_dir=out_dir, per_device_train_batch_size=batch_size, report_to=[], logging_strategy="no", save_strategy="no", eval_strategy="no", seed=0, dataloader_num_workers=0)
    pairs = pairs.select(range(min(len(pairs), batch_size * (steps + 1))))

    def stage1_trainer():
        model, tokenizer = load_pretrained(model_dir)
        enc = SequenceEncoder(tokenizer)
        rows = Dataset.from_dict({"input_ids": enc.sources(pairs["prompt"])[0], "prompt_ids": enc.prompts(pairs["decoder_prompt"]), "target_ids": enc.names(pairs["chosen"])})
        return Stage1Trainer(model=model, args=Stage1Config(**common), data_collator=PromptedSeq2SeqCollator(tokenizer.pad_token_id, model.config.decoder_start_token_id), train_dataset=rows, processing_class=tokenizer)

    def dpo_trainer(precompute: bool):
        def make():
            model, tokenizer = load_pretrained(model_dir)
            config = Seq2SeqDPOConfig(**common, loss_type=["sigmoid", "sft"], loss_weights=[1.0, 1.0], precompute_ref_log_probs=precompute)
            t0 = time.perf_counter()
            trainer = Seq2SeqDPOTrainer(model=model, args=config, train_dataset=pairs, processing_class=tokenizer, ref_model=None if precompute else load_pretrained(model_dir)[0])
            trainer.setup_seconds = time.perf_counter() - t0
            return trainer
        return make

    makers = {"stage 1": stage1_trainer, "dpo, reference model": dpo_trainer(False), "dpo, precomputed reference": dpo_trainer(True)}
    trainers = {name: make() for name, make in makers.items()}
    per_step: dict[str, list[float]] = {name: [] for name in trainers}
    for name, trainer in trainers.items():
        trainer.create_optimizer()
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer.train(); we drive the steps ourselves
        trainer.batches = list(trainer.get_train_dataloader())

    def run(trainer, n: int) -> float:
        model = trainer.model
        model.train()

        def body():
            for batch in trainer.batches[:n]:
                trainer.training_step(model, batch)
                trainer.optimizer.step()
                trainer.optimizer.zero_grad()
        return timed(body) / n

    for trainer in trainers.values():
        run(trainer, 1)  # warm-up
    for _ in range(rounds):
        for name, trainer in trainers.items():
            per_step[name].append(run(trainer, steps))
    rows = {name: {"seconds_per_step": round(statistics.median(s), 4), "samples_per_s": round(batch_size / statistics.median(s), 2), "setup_seconds": round(getattr(trainers[name], "setup_seconds", 0.0), 2)} for name, s in per_step.items()}
    base = rows["stage 1"]["seconds_per_step"]
    return {
        "batch_size": batch_size,
        "steps": steps,
        "rounds": rounds,
        "note": "a stage-1 sample is one (source, name) row; a DPO sample is one pair: two names decoded against the same source",
        "conditions": rows,
        "dpo_precomputed_over_stage1_step": round(rows["dpo, precomputed reference"]["seconds_per_step"] / base, 3),
        "dpo_reference_model_over_stage1_step": round(rows["dpo, reference model"]["seconds_per_step"] / base, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--pairs", help="Mined pairs (save_to_disk dir or Hub id) for the training steps; decoding only when unset.")
    ap.add_argument("--corpus", required=True, help="Corpus whose mentions are decoded.")
    ap.add_argument("--corpus_format", default="jsonl")
    ap.add_argument("--entity_types", nargs="+", help="Mention types to keep, e.g. Chemical (BC5CDR); all when unset.")
    ap.add_argument("--mentions", type=int, default=128)
    ap.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--num_beams", type=int, default=5)
    ap.add_argument("--train_batch_size", type=int, default=32)
    ap.add_argument("--train_steps", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="benchmarks/results/speed_cpu.json")
    args = ap.parse_args()

    linker = EntityLinker.from_pretrained(args.model_dir, device=args.device)
    corpus = load_corpus(resolve_data_path(args.corpus, REPO_DATA_DIR), args.corpus_format, args.entity_types)
    mentions = [m for m in corpus.mentions if not m.is_nil][: args.mentions]
    report = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, device {args.device}" + (f" ({torch.cuda.get_device_name()})" if args.device.startswith("cuda") else ""),
        "model_dir": args.model_dir,
        "corpus": args.corpus,
        "parameters": linker.model.num_parameters(),
        "names_in_trie": len(linker.table),
        "decoding": decoding(linker, linker.inputs_for(mentions, corpus.texts()), args.batch_sizes, args.num_beams, args.rounds),
    }
    print(report["decoding"], flush=True)
    if args.pairs:
        report["training"] = training(args.model_dir, load_pairs(args.pairs), args.train_batch_size, args.train_steps, args.rounds)
        print(report["training"], flush=True)
    write_json(Path(args.out), report)


if __name__ == "__main__":
    main()
