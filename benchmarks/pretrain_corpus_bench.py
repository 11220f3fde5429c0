"""Throughput of the KB pre-training corpus build (angel_trl.pretraining.shards): names/s, rows, shards, peak RSS.

    python benchmarks/pretrain_corpus_bench.py --kb medic       # -> benchmarks/results/pretrain_corpus_medic.json
    python benchmarks/pretrain_corpus_bench.py --kb mesh_chem   # MeSH 2024 chemicals (675k names)
    python benchmarks/pretrain_corpus_bench.py --kb medic --num_proc 2 --out benchmarks/results/pretrain_corpus_medic_2proc.json
    python benchmarks/pretrain_corpus_bench.py --kb mesh_chem --num_proc 2 --max_shards 4   # a time-boxed sample

The corpus is written from scratch (parquet shards + manifest) under --work, which is deleted
first unless --resume. names/s counts only the names generated in this run (``--max_shards`` N:
the first N missing shards, against the full KB's TF-IDF index). Peak RSS is the process's ``ru_maxrss``: KB, name table, TF-IDF index and
the largest similarity chunk together; ``rss_before_generation_mb`` is what KB and index hold.
With ``--num_proc`` > 1 the shards are generated in forked worker processes, whose memory
``ru_maxrss`` of this process does not count (``peak_rss_children_mb``: the largest worker's, pages
shared with this process included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def load_kb(name: str):
    from angel_trl.data.kb import read_medic, read_mesh
    from common import benchmark_data_dir

    d = benchmark_data_dir()
    if name == "medic":
        return read_medic(d / "kb/medic/medic_06Jul2012.txt")
    return read_mesh(d / "kb/mesh2024/mesh_id_label_mappings.tsv", d / "kb/mesh2024/mesh_supp_id_label_mappings.tsv", ["D"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kb", choices=["medic", "mesh_chem"], default="medic")
    ap.add_argument("--work", default=None, help="Corpus directory (default benchmarks/work/pretrain_corpus_<kb>).")
    ap.add_argument("--out", default=None, help="Result JSON (default benchmarks/results/pretrain_corpus_<kb>.json).")
    ap.add_argument("--resume", action="store_true", help="Keep --work and finish it instead of starting afresh.")
    ap.add_argument("--concepts_per_shard", type=int, default=2000)
    ap.add_argument("--similarity_chunk_size", type=int, default=128)
    ap.add_argument("--negatives_per_name", type=int, default=3)
    ap.add_argument("--num_proc", type=int, default=1, help="Worker processes generating shards in parallel (PretrainCorpusConfig.num_proc).")
    ap.add_argument("--max_shards", type=int, default=None, help="Generate only the first N missing shards (a sample of a long build; --resume continues it).")
    args = ap.parse_args()

    from angel_trl.text.examples import ExampleConfig
    from angel_trl.pretraining.corpus import PretrainCorpusConfig
    from angel_trl.pretraining.shards import PretrainCorpusBuilder

    work = Path(args.work or f"benchmarks/work/pretrain_corpus_{args.kb}")
    out = Path(args.out or f"benchmarks/results/pretrain_corpus_{args.kb}.json")
    if work.exists() and not args.resume:
        shutil.rmtree(work)
    t0 = time.perf_counter()
    kb = load_kb(args.kb)
    load_s = time.perf_counter() - t0
    config = PretrainCorpusConfig(concepts_per_shard=args.concepts_per_shard, similarity_chunk_size=args.similarity_chunk_size, negatives_per_name=args.negatives_per_name, num_proc=args.num_proc)
    t0 = time.perf_counter()
    builder = PretrainCorpusBuilder(kb, config, ExampleConfig(max_context_words=32), seed=42)
    ngrams = builder.matcher.name_vectors.shape[1]  # fits the TF-IDF index: timed apart from generation
    index_s = time.perf_counter() - t0
    rss_before = rss_mb()
    t0 = time.perf_counter()
    summary = builder.write(work, max_shards=args.max_shards)
    generate_s = time.perf_counter() - t0
    names = summary["names_written"]  # this run's: a resumed run's earlier shards took no time here
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores (load average {os.getloadavg()[0]:.1f}), python {platform.python_version()}",
        "kb": args.kb,
        "concepts": len(kb),
        "distinct_names": len(builder.table),
        "tfidf_ngrams": ngrams,
        "config": {"concepts_per_shard": args.concepts_per_shard, "similarity_chunk_size": args.similarity_chunk_size, "negatives_per_name": args.negatives_per_name, "num_proc": args.num_proc, "max_shards": args.max_shards},
        "load_kb_s": round(load_s, 1),
        "name_table_and_tfidf_s": round(index_s, 1),
        "generate_s": round(generate_s, 1),
        "source_names": names,
        "names_per_s": round(names / generate_s, 1) if generate_s and names else None,
        "positive_rows": summary["positive_rows"],
        "pairs": summary["pairs"],
        "shards": summary["shards"],
        "num_shards": summary["num_shards"],
        "complete": summary["complete"],
        "shards_written": summary["shards_written"],
        "shards_skipped": summary["shards_skipped"],
        "disk_mb": round(sum(f.stat().st_size for f in work.rglob("*.parquet")) / 2**20, 1),
        "rss_before_generation_mb": round(rss_before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "peak_rss_children_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "counts": summary["counts"],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
