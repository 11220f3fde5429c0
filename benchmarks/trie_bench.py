"""Trie build time, memory and lookup speed: angel-trl's flat trie vs a nested-dict trie (GENRE/GenBioEL).

    python benchmarks/trie_bench.py --kbs medic mesh_chem synthetic_3m --out benchmarks/results/trie.json

Each (KB, structure) is measured in a fresh subprocess so that RSS deltas do not mix: the RSS after
building (what the allocator keeps), the peak RSS while building (the kernel's high-water mark, reset
just before), and for ``flat_loaded`` what a linker holds, the saved arrays loaded. The lookup
ratio comes from a race in one more process: loaded flat trie and nested dict alternate over the same
probes, so machine load slows both alike.
Token ids come from a byte-level BPE (8k) trained on the KB's names, as for a from-scratch model.
``synthetic_3m`` is UMLS-sized: 3M distinct names made from the MeSH-chemical token sequences, each
with one or two random tokens inserted before EOS (same token statistics, 4.4x the names).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> None:
    """Restart the kernel's high-water mark of this process's RSS (VmHWM), so peak_rss_mb() sees only what follows."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def load_sequences(kb_name: str, cache: Path) -> list[list[int]]:
    from angel_trl.data.kb import read_medic, read_mesh
    from angel_trl.modeling import train_tokenizer
    from angel_trl.data.names import NameTable
    from angel_trl.text.tokenization import SequenceEncoder
    from common import benchmark_data_dir

    path = cache / f"{kb_name}.npz"
    if kb_name == "synthetic_3m":
        return synthetic_sequences(load_sequences("mesh_chem", cache), 3_000_000)
    if not path.exists():
        d = benchmark_data_dir()
        if kb_name == "medic":
            kb = read_medic(d / "kb/medic/medic_06Jul2012.txt")
        else:
            kb = read_mesh(d / "kb/mesh2024/mesh_id_label_mappings.tsv", d / "kb/mesh2024/mesh_supp_id_label_mappings.tsv", ["D"])
        names = NameTable.from_kb(kb).names
        enc = SequenceEncoder(train_tokenizer(names, 8000))
        seqs = enc.names(names)
        lengths = np.array([len(s) for s in seqs])
        np.savez(path, flat=np.concatenate([np.asarray(s) for s in seqs]), lengths=lengths)
    with np.load(path, allow_pickle=False) as z:
        return [a.tolist() for a in np.split(z["flat"], np.cumsum(z["lengths"])[:-1])]


def synthetic_sequences(seqs: list[list[int]], n: int, vocab: int = 8000, seed: int = 0) -> list[list[int]]:
    """``n`` distinct sequences: real ones with 1-2 random tokens inserted before their EOS (seeded)."""
    rng = np.random.default_rng(seed)
    out, seen = [], set()
    while len(out) < n:
        base = seqs[len(out) % len(seqs)]
        extra = rng.integers(3, vocab, size=int(rng.integers(1, 3))).tolist()
        s = base[:-1] + extra + base[-1:]
        key = tuple(s)
        if key not in seen:
            seen.add(key)
            out.append(s)
    return out


def nested_dict_trie(seqs):
    root: dict = {}
    for s in seqs:
        node = root
        for t in s:
            node = node.setdefault(t, {})
    return root


def probes_for(seqs: list[list[int]], n: int = 20000) -> list[list[int]]:
    """Random proper prefixes of random names (seeded): what a decoding step looks up."""
    rng = np.random.default_rng(0)
    return [seqs[i][: rng.integers(0, len(seqs[i]))] for i in rng.integers(0, len(seqs), n)]


def flat_lookup(trie, prefix: list[int]):
    """One decoding step's lookup: walk the prefix, list the tokens allowed next."""
    return trie.allowed(trie.walk(prefix))


def nested_lookup(trie: dict, prefix: list[int]) -> list[int]:
    node = trie
    for t in prefix:
        node = node[t]
    return list(node)


def time_lookups(lookup, probes: list[list[int]]) -> float:
    """Seconds per lookup over ``probes``."""
    t0 = time.perf_counter()
    for p in probes:
        lookup(p)
    return (time.perf_counter() - t0) / len(probes)


def lookup_race(kb_name: str, cache: Path, rounds: int = 5) -> dict:
    """Loaded flat trie vs nested dict in one process, alternating rounds over the same probes; the
    median per-lookup time of each. Measured side by side, the ratio holds on a loaded machine, where
    the per-structure timings of ``measure`` (separate processes, minutes apart) drift."""
    from angel_trl.linking.trie import NameTrie

    seqs = load_sequences(kb_name, cache)
    flat, nested = NameTrie.load(cache / f"{kb_name}.trie.npz"), nested_dict_trie(seqs)
    probes = probes_for(seqs)
    times: dict[str, list[float]] = {"flat": [], "nested_dict": []}
    for _ in range(rounds):
        times["flat"].append(time_lookups(partial(flat_lookup, flat), probes))
        times["nested_dict"].append(time_lookups(partial(nested_lookup, nested), probes))
    flat_us, nested_us = (float(np.median(times[k])) * 1e6 for k in ("flat", "nested_dict"))
    return {"kb": kb_name, "rounds": rounds, "flat_lookup_us": round(flat_us, 2), "nested_lookup_us": round(nested_us, 2), "lookup_ratio_flat_over_nested": round(flat_us / nested_us, 2)}


def measure(kb_name: str, structure: str, cache: Path) -> dict:
    seqs = load_sequences(kb_name, cache)
    gc.collect()
    before = rss_mb()
    reset_peak_rss()
    t0 = time.perf_counter()
    saved = cache / f"{kb_name}.trie.npz"
    if structure == "nested_dict":
        trie = nested_dict_trie(seqs)
    else:
        from angel_trl.linking.trie import NameTrie

        if structure == "flat":  # build: RSS includes what the allocator keeps after the build's temporaries
            trie = NameTrie.build(seqs, eos_token_id=2)
            trie.save(saved)
        else:  # what a linker holds: the saved arrays loaded in a fresh process
            trie = NameTrie.load(saved)
    build_s = time.perf_counter() - t0
    peak = peak_rss_mb() - before
    gc.collect()
    mem = rss_mb() - before
    size = None if structure == "nested_dict" else saved.stat().st_size  # GENRE pickles the dict; we do not write pickle
    lookup = partial(nested_lookup if structure == "nested_dict" else flat_lookup, trie)
    lookup_us = time_lookups(lookup, probes_for(seqs)) * 1e6
    return {"kb": kb_name, "structure": structure, "names": len(seqs), "tokens": sum(map(len, seqs)), "build_s": round(build_s, 2), "rss_delta_mb": round(mem, 1), "peak_rss_delta_mb": round(peak, 1), "file_mb": round(size / 2**20, 1) if size else None, "lookup_us": round(lookup_us, 2)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--kbs", nargs="+", default=["medic", "mesh_chem", "synthetic_3m"], choices=["medic", "mesh_chem", "synthetic_3m"])
    ap.add_argument("--cache", default="benchmarks/work")
    ap.add_argument("--out", default="benchmarks/results/trie.json")
    ap.add_argument("--one", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--race", help=argparse.SUPPRESS)
    args = ap.parse_args()
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    if args.one:
        print(json.dumps(measure(args.one[0], args.one[1], cache)))
        return
    if args.race:
        print(json.dumps(lookup_race(args.race, cache)))
        return
    rows, races = [], []
    for kb in args.kbs:
        load_sequences(kb, cache)
        for structure in ("flat", "flat_loaded", "nested_dict"):
            out = subprocess.run([sys.executable, __file__, "--cache", str(cache), "--one", kb, structure], capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
        out = subprocess.run([sys.executable, __file__, "--cache", str(cache), "--race", kb], capture_output=True, text=True, check=True)
        races.append(json.loads(out.stdout.strip().splitlines()[-1]))
        print(races[-1], flush=True)
    result = {"command": " ".join([Path(sys.executable).name, *sys.argv]), "machine": f"{platform.machine()} {os.cpu_count()} cores, python {platform.python_version()}", "rows": rows, "lookup_races": races}
    for kb in args.kbs:
        flat, loaded, nested = (next(r for r in rows if r["kb"] == kb and r["structure"] == s) for s in ("flat", "flat_loaded", "nested_dict"))
        result[f"{kb}_memory_ratio_nested_over_flat_build"] = round(nested["rss_delta_mb"] / max(flat["rss_delta_mb"], 0.1), 1)
        result[f"{kb}_memory_ratio_nested_over_flat_loaded"] = round(nested["rss_delta_mb"] / max(loaded["rss_delta_mb"], 0.1), 1)
        result[f"{kb}_memory_ratio_nested_over_flat_peak_build"] = round(nested["peak_rss_delta_mb"] / max(flat["peak_rss_delta_mb"], 0.1), 1)
        result[f"{kb}_lookup_ratio_flat_over_nested"] = next(r for r in races if r["kb"] == kb)["lookup_ratio_flat_over_nested"]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
