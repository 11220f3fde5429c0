"""Constrained-decoding speed of a saved linker: mentions/s at several batch sizes, same run.

    python benchmarks/decode_bench.py --model_dir outputs/ncbi-stage1 --corpus "{data_dir}/ncbi-disease/NCBIdevelopset_corpus.txt" \
        --corpus_format pubtator --mentions 256 --batch_sizes 1 32 --out benchmarks/results/decode.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from angel_trl.corpus import load_corpus
from angel_trl.data import _resolve
from angel_trl.linking import EntityLinker


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model_dir", required=True)
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--corpus_format", default="jsonl")
    ap.add_argument("--mentions", type=int, default=256)
    ap.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--num_beams", type=int, default=10)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--out", default="benchmarks/results/decode.json")
    args = ap.parse_args()

    linker = EntityLinker.from_pretrained(args.model_dir, device=args.device, num_beams=args.num_beams)
    corpus = load_corpus(_resolve(args.corpus), args.corpus_format)
    mentions = [m for m in corpus.mentions if not m.is_nil][: args.mentions]
    inputs = linker.inputs_for(mentions, corpus.texts())
    linker.config.batch_size = max(args.batch_sizes)
    linker.link(inputs[: linker.config.batch_size])  # warm-up
    rows, reference = [], None
    for bs in args.batch_sizes:
        linker.config.batch_size = bs
        t0 = time.perf_counter()
        results = linker.link(inputs)
        seconds = time.perf_counter() - t0
        top1 = [r.top_ids[:1] for r in results]
        reference = reference or top1
        rows.append({"batch_size": bs, "mentions": len(inputs), "seconds": round(seconds, 2), "mentions_per_s": round(len(inputs) / seconds, 2), "same_top1_as_first": sum(a == b for a, b in zip(top1, reference)) / len(top1)})
        print(rows[-1], flush=True)
    out = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, torch threads {torch.get_num_threads()}, device {args.device}",
        "model_dir": args.model_dir,
        "parameters": linker.model.num_parameters(),
        "names_in_trie": len(linker.table),
        "num_beams": args.num_beams,
        "rows": rows,
        "speedup_largest_over_bs1": round(rows[-1]["mentions_per_s"] / rows[0]["mentions_per_s"], 2),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
