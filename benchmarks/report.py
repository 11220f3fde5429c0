"""One report from the benchmark results: accuracy on every dataset, seeds, and the speed goals.

    python benchmarks/report.py                      # benchmarks/results/*.json -> benchmarks/results/REPORT.md

Reads what ``accuracy.py`` (``<dataset>.json``, ``<dataset>_abbreviations.json``, ``<dataset>_zeroshot.json``), ``seeds_summary.py``
(files with ``arms``), ``trie_bench.py`` (``trie.json``) and ``speed_bench.py`` (``speed_*.json``) wrote, and
lays it out side by side: test acc@1 (seen / unseen) per system, dataset and dictionary protocol, the
gap between the best angel-trl system and the best peer, and each speed goal of the benchmark against
what was measured. Nothing is measured here; a file that is absent leaves its cells empty.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from angel_trl.data.files import atomic_write_text
from angel_trl.baselines.comparison import ANGEL, PEER, best_of_each_side, result_kinds

DATASETS = {"ncbi": "NCBI", "bc5cdr-disease": "BC5CDR-disease", "bc5cdr-chemical": "BC5CDR-chemical"}
PROTOCOLS = {"KB": "KB names only", "KB + train": "KB + training mentions as synonyms"}
# Protocols beside the standard one: (file suffix, section title, gap-table title).
PROTOCOL_VARIANTS = (
    ("_abbreviations", "Accuracy with abbreviations expanded (`--expand-abbreviations`)", "abbreviations expanded"),
    ("_zeroshot", "Zero-shot protocol (`--zero-shot`: train and dev without any test concept)", "zero-shot"),
)
# Runs written with --tag NAME (files <dataset>_NAME.json): (tag, section title, gap-table title). Each
# may have a twin with abbreviations expanded (<dataset>_abbreviations_NAME.json), reported after it.
TAGGED_RUNS = (
    ("hybrid_pt2ep", "Hybrid linker with the dense retriever among its candidates, on stage 1 fine-tuned from MEDIC pre-training "
     "(`--hybrid --hybrid-ablation --tag hybrid_pt2ep`; NCBI: from (a), BC5CDR-disease: from (b), docs/pretraining.md)", "hybrid with dense candidates"),
    ("hybrid_negatives", "Hybrid linker on stage 1 and on stage 2 with beam or hybrid negatives (`bash benchmarks/hybrid_negatives.sh bench`, docs/hybrid.md)",
     "stage 1 or 2 under the hybrid"),
    ("hybrid_name_prior", "Hybrid linker with the name prior on the menu and in the ablation (`--hybrid --hybrid-ablation --tag hybrid_name_prior`, docs/hybrid.md)",
     "hybrid, name prior measured"),
    ("hybrid_seed43", "Hybrid linker on a second stage-1 seed (`--hybrid --hybrid-ablation --tag hybrid_seed43`, stage 1 seed 43)", "hybrid, stage 1 seed 43"),
    ("unseen_concept_negatives", "Hybrid linker on stage 2 with and without pairs mined from unseen concepts' KB names "
     "(`bash benchmarks/unseen_concept_negatives.sh bench`, docs/mining.md)", "stage 2 with unseen-concept negatives"),
    ("unseen_concept_negatives_seed43", "The same, stage 2 seed 43 (`SEED=43 bash benchmarks/unseen_concept_negatives.sh bench`)",
     "stage 2 seed 43 with unseen-concept negatives"),
    ("hybrid_stage2", "Hybrid linker on BC5CDR-chemical's stage 2 from scratch, with the dense retriever among its candidates "
     "(`bash benchmarks/bc5cdr_chemical_hybrid.sh bench`)", "hybrid on stage 2 with dense candidates"),
)
VARIANTS = PROTOCOL_VARIANTS + tuple(
    variant
    for tag, title, gap_title in TAGGED_RUNS
    for variant in ((f"_{tag}", title, gap_title), (f"_abbreviations_{tag}", f"{title}, with abbreviations expanded (`--expand-abbreviations`)", f"{gap_title}, abbreviations expanded"))
)


def load(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.exists() else None


def cell(score: dict | None) -> str:
    if score is None:
        return ""

    def part(group: str) -> str:  # a group without mentions has no score: its 0.0 is over nothing
        return "-" if score.get(f"{group}_mentions") == 0 else f"{score[f'{group}_acc@1']:.1f}"

    concept = f" / {part('unseen_concept')}" if "unseen_concept_acc@1" in score else ""  # results before the concept split lack it
    return f"{score['acc@1']:.1f} ({part('seen')} / {part('unseen')}{concept})"


def accuracy_section(results: dict[str, dict], split: str = "test") -> list[str]:
    """Per protocol, one table: a row per system (in order of first appearance), a column per dataset, the best cell bold."""
    lines = []
    for protocol, title in PROTOCOLS.items():
        rows: dict[str, dict[str, dict]] = {}
        for dataset, result in results.items():
            for system, by_protocol in result["splits"].get(split, {}).items():
                if protocol in by_protocol:
                    rows.setdefault(system, {})[dataset] = by_protocol[protocol]
        if not rows:
            continue
        best = {d: max((r[d]["acc@1"] for r in rows.values() if d in r), default=None) for d in results}
        lines += [f"### {title} ({protocol})", "", "| system | " + " | ".join(DATASETS[d] for d in results) + " |", "|---|" + "---|" * len(results)]
        for system, scores in rows.items():
            cells = []
            for d in results:
                text = cell(scores.get(d))
                cells.append(f"**{text}**" if text and scores[d]["acc@1"] == best[d] else text)
            lines.append(f"| {system} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def gap_section(results: dict[str, dict], split: str = "test") -> list[str]:
    """Best angel-trl system against the best peer, per dataset and protocol (positive: angel-trl ahead),
    with the benchmark's paired test of those two rows where its result file has one, and the hybrid row
    dev picks against the best peer where the benchmark paired it (``paired_dev_chosen``)."""
    lines = ["| dataset | protocol | best angel-trl | best peer | angel-trl − peer (seen / unseen) | paired p |", "|---|---|---|---|---|---|"]
    for dataset, result in results.items():
        kinds = result_kinds(result)
        for protocol in PROTOCOLS:
            scores = {s: p[protocol] for s, p in result["splits"].get(split, {}).items() if protocol in p}
            angel, peer = best_of_each_side(scores, kinds)
            if angel is None or peer is None:
                continue
            test = result.get("paired", {}).get(split, {}).get(protocol)
            p_value = f"{test['p_value']:.2g} ({test['a_only']} vs {test['b_only']})" if test and (test[ANGEL], test[PEER]) == (angel, peer) else "-"
            lines.append(gap_row(DATASETS[dataset], protocol, scores, angel, peer, p_value))
            # The best row on test is a choice made on test; where the benchmark paired the hybrid row that
            # dev's document folds pick, that row is the one a user choosing on dev would get (shown when it is another row).
            chosen = result.get("paired_dev_chosen", {}).get(split, {}).get(protocol)
            if chosen and chosen[ANGEL] != angel and chosen[ANGEL] in scores and chosen[PEER] in scores:
                p_value = f"{chosen['p_value']:.2g} ({chosen['a_only']} vs {chosen['b_only']})"
                lines.append(gap_row(DATASETS[dataset], protocol, scores, chosen[ANGEL], chosen[PEER], p_value, "dev-chosen hybrid: "))
    return lines + [""]


def gap_row(dataset: str, protocol: str, scores: dict[str, dict], angel: str, peer: str, p_value: str, prefix: str = "") -> str:
    """One row of the gap table: ``angel`` against ``peer`` (positive: angel-trl ahead)."""
    diff = {k: scores[angel][k] - scores[peer][k] for k in ("acc@1", "seen_acc@1", "unseen_acc@1")}
    return (
        f"| {dataset} | {protocol} | {prefix}{angel}: {scores[angel]['acc@1']:.1f} | {peer}: {scores[peer]['acc@1']:.1f} | "
        f"{diff['acc@1']:+.1f} ({diff['seen_acc@1']:+.1f} / {diff['unseen_acc@1']:+.1f}) | {p_value} |"
    )


def seeds_section(results_dir: Path) -> list[str]:
    lines = []
    for path in sorted(results_dir.glob("*.json")):
        summary = json.loads(path.read_text())
        if "arms" not in summary:  # not a seeds_summary.py result
            continue
        lines += [f"`{path.name}`:", "", "| arm | seeds | dev acc@1 | test acc@1 | test unseen acc@1 |", "|---|---|---|---|---|"]
        for arm, entry in summary["arms"].items():

            def spread(split: str, metric: str) -> str:
                s = entry.get(split, {}).get(metric)
                return "" if s is None else f"{s['mean']:.2f}" + (f" ± {s['sd']:.2f}" if s["sd"] is not None else "")

            lines.append(f"| {arm} | {', '.join(map(str, entry['seeds']))} | {spread('dev', 'acc@1')} | {spread('test', 'acc@1')} | {spread('test', 'unseen_acc@1')} |")
        lines.append("")
    return lines


def verdict(value: float | None, goal: float, at_most: bool) -> str:
    if value is None:
        return "not measured"
    return "met" if (value <= goal if at_most else value >= goal) else "not met"


def speed_rows(results_dir: Path) -> list[tuple[str, str, float | None, str, str]]:
    """(measure, goal, measured ratio, verdict, source) for each speed goal, from every file that measured it."""
    rows = []
    gpu_batching_measured = False
    trie = load(results_dir / "trie.json")
    if trie is not None:
        for kind, key, judged in (
            ("loaded for linking", "mesh_chem_memory_ratio_nested_over_flat_loaded", True),
            ("peak while building", "mesh_chem_memory_ratio_nested_over_flat_peak_build", True),
            ("after building: what the allocator keeps", "mesh_chem_memory_ratio_nested_over_flat_build", False),  # allocator behaviour, not the trie's size
        ):
            if key in trie:
                value = trie[key]
                rows.append((f"trie memory (RSS) at 676k MeSH names, nested dict / ours ({kind})", ">= 10x" if judged else "(context)", value, verdict(value, 10, False) if judged else "", "trie.json"))
        for race in trie.get("lookup_races", []):
            value = race["lookup_ratio_flat_over_nested"]
            rows.append((f"trie lookup time, ours / nested dict ({race['kb']})", "<= 1x", value, verdict(value, 1.0, True), "trie.json"))
    for path in sorted(results_dir.glob("speed_*.json")):
        speed = json.loads(path.read_text())
        on_gpu = "device cuda" in speed.get("machine", "")
        decoding, training = speed.get("decoding", {}), speed.get("training", {})
        context = f"{decoding.get('num_beams')} beams, {speed.get('names_in_trie', '?')} names"
        if decoding.get("constrained_over_unconstrained_time") is not None:
            value = decoding["constrained_over_unconstrained_time"]
            rows.append((f"constrained / unconstrained decoding time ({context})", "<= 1.15x", value, verdict(value, 1.15, True), path.name))
        if decoding.get("batched_over_bs1_speedup") is not None:
            value = decoding["batched_over_bs1_speedup"]
            gpu_batching_measured |= on_gpu
            rows.append((f"batched / batch-size-1 decoding speed ({context})", ">= 5x on a GPU", value, verdict(value, 5, False) if on_gpu else "CPU: context only", path.name))
        if decoding.get("shared_source_cache_over_default_time") is not None:
            value = decoding["shared_source_cache_over_default_time"]
            rows.append((f"our beam cache / transformers' cache, decoding time ({context})", "(no goal)", value, "", path.name))
        if training.get("dpo_precomputed_over_stage1_step") is not None:
            value = training["dpo_precomputed_over_stage1_step"]
            rows.append(("DPO step with precomputed reference / stage-1 step", "<= 2.5x", value, verdict(value, 2.5, True), path.name))
            other = training.get("dpo_reference_model_over_stage1_step")
            rows.append(("DPO step with a live reference model / stage-1 step", "(no goal)", other, "", path.name))
    if not gpu_batching_measured:
        rows.append(("batched / batch-size-1 decoding speed on a GPU", ">= 5x on a GPU", None, "not measured (no GPU run in benchmarks/results/)", ""))
    return rows


def speed_section(results_dir: Path) -> list[str]:
    lines = ["| measure | goal | measured | verdict | source |", "|---|---|---|---|---|"]
    for measure, goal, value, outcome, source in speed_rows(results_dir):
        lines.append(f"| {measure} | {goal} | {'' if value is None else f'{value:.2f}x'} | {outcome} | {source} |")
    return lines + [""]


def sources_section(results_dir: Path, names: list[str]) -> list[str]:
    lines = ["| file | command | machine |", "|---|---|---|"]
    for name in names:
        data = load(results_dir / name)
        if data is not None:
            machine = data.get("machine")
            machine = ", ".join(f"{k} {v}" for k, v in machine.items() if v is not None) if isinstance(machine, dict) else machine
            command = f"`{data['command']}`" if data.get("command") else "(not recorded)"
            lines.append(f"| `{name}` | {command} | {machine or ''} |")
    return lines + [""]


def build_report(results_dir: Path) -> str:
    def results(suffix: str) -> dict[str, dict]:
        return {d: r for d in DATASETS if (r := load(results_dir / f"{d}{suffix}.json")) is not None}

    plain = results("")
    lines = [
        "# angel-trl benchmark report",
        "",
        f"Written by `python benchmarks/report.py` from the result files in `{results_dir}` (their commands and machines are listed at the end). "
        "Cells: test acc@1 (seen / unseen mention text; then unseen concepts, in results that have the split); bold: the best system of the column.",
        "",
        "## Accuracy",
        "",
    ]
    lines += accuracy_section(plain) if plain else ["No accuracy results yet: run `benchmarks/accuracy.py` (or `make bench`).", ""]
    if plain:
        lines += ["### Best angel-trl system against the best peer", ""] + gap_section(plain)
    accuracy_files = [f"{d}.json" for d in plain]
    for suffix, title, gap_title in VARIANTS:
        variant = results(suffix)
        if variant:
            lines += [f"## {title}", ""] + accuracy_section(variant)
            lines += [f"### Best angel-trl system against the best peer, {gap_title}", ""] + gap_section(variant)
            accuracy_files += [f"{d}{suffix}.json" for d in variant]
    seeds = seeds_section(results_dir)
    if seeds:
        lines += ["## Seeds", ""] + seeds
    lines += ["## Speed and memory goals", ""] + speed_section(results_dir)
    lines += ["## Sources", ""] + sources_section(results_dir, accuracy_files + ["trie.json"] + [p.name for p in sorted(results_dir.glob("speed_*.json"))])
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--results-dir", type=Path, default=Path("benchmarks/results"))
    ap.add_argument("--out", type=Path, help="Default: <results-dir>/REPORT.md.")
    args = ap.parse_args()
    out = args.out or args.results_dir / "REPORT.md"
    atomic_write_text(out, build_report(args.results_dir))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
