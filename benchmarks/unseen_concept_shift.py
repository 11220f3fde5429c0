"""Why a ranker fit on dev cannot close the test gap on unseen concepts: each candidate source alone
and the hybrid, on dev (held out by document folds) and on test, split by whether the gold concept
occurs in training.

It reads the hybrid's scored candidates that `benchmarks/accuracy.py --hybrid --cache-dir DIR` wrote
for one model under "KB + train" (DIR/hybrid/<dataset>/<model>_KB_train/{dev-fit,test}.jsonl): no
model runs. Each source's top-1 is the candidate with its best score (the model's exact log-prob, the
TF-IDF cosine, the dense cosine); the hybrid is the default ranker (model + retriever scores), on dev
fit on the other document folds (as the ranker choice judges rankers), on test fit on all of dev (as
the benchmark's hybrid row).

    python benchmarks/unseen_concept_shift.py --dataset ncbi \
        --candidates "stage 1=/work/cache/bench/hybrid/ncbi/angel-trl_stage_1_from_scratch_KB_train" \
        --out benchmarks/results/ncbi_unseen_concept_shift
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from angel_trl.data.arguments import BENCHMARKS, benchmark_data
from angel_trl.data.files import atomic_write_text
from angel_trl.errors import InputFormatError
from angel_trl.evaluation import TrainingSeen
from angel_trl.hybrid.linker import FEATURES, feature_matrix
from angel_trl.hybrid.ranker import LinearRanker
from angel_trl.hybrid.selection import DEFAULT_RANKER_FEATURES, document_folds
from angel_trl.metrics import linking_accuracy
from common import REPO_DATA_DIR

SOURCES = {"model": "model", "TF-IDF": "tfidf", "dense": "dense"}
RECALL = "gold among candidates"
FOLDS, SEED = 5, 42


def read_rows(path: Path, mentions: list) -> list[dict]:
    """The candidate rows of ``path``, one per mention of ``mentions``, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    header = json.loads(lines[0]) if lines else {}
    if header.get("features") != list(FEATURES):
        raise InputFormatError(path, 1, f"written with other features than this version's ({header.get('features')})")
    rows = [json.loads(line) for line in lines[1:]]
    if len(rows) != len(mentions):
        raise InputFormatError(path, None, f"{len(rows)} candidate rows for {len(mentions)} mentions")
    for lineno, (row, mention) in enumerate(zip(rows, mentions), start=2):
        if row["mention"].lower() != mention.text.lower():
            raise InputFormatError(path, lineno, f"mention {row['mention']!r} where the split has {mention.text!r} (another split or protocol?)")
    return rows


def ranked_by(scores: np.ndarray, concept_ids: list[str]) -> list[str]:
    """Concept ids, best score first (ties: the union's order, as the ranker choice breaks them)."""
    return [concept_ids[i] for i in np.lexsort((np.arange(len(scores)), -scores))]


SHORT = 4  # a one-word mention this short is mostly an abbreviation (BC5CDR-chemical: STZ, Pb, GTN, PTU)


def candidate_misses(mentions: list, rows: list[dict], gold: list[list[str]], kb, most: int = 10) -> dict:
    """Of the mentions with a gold concept: how many have it outside the KB, how many outside the
    candidate union (no ranker can reach those), how many of the latter are short one-word
    mentions, and their most frequent texts (lowercased)."""
    outside_kb, outside, texts = 0, 0, Counter()
    for mention, row, ids in zip(mentions, rows, gold):
        if not ids:
            continue
        if not any(kb.canonical_id(g) for g in ids):
            outside_kb += 1
        elif not set(ids) & set(row["concept_ids"]):
            outside += 1
            texts[mention.text.lower()] += 1
    short = sum(n for text, n in texts.items() if len(text) <= SHORT and " " not in text)
    return {"gold_not_in_kb": outside_kb, "gold_outside_candidates": outside, "short_outside_candidates": short, "most_frequent": texts.most_common(most)}


def model_scores(directory: Path, splits: dict[str, list], gold: dict[str, list], seen: TrainingSeen, kb) -> dict:
    """Per split: each source's and the hybrid's acc@1 and the candidates' recall, by concept seen."""
    rows = {split: read_rows(directory / f"{'dev-fit' if split == 'dev' else split}.jsonl", mentions) for split, mentions in splits.items()}
    X = {split: [np.asarray(r["features"], dtype=float).reshape(len(r["concept_ids"]), len(FEATURES)) for r in split_rows] for split, split_rows in rows.items()}

    def fit(keep: list[int]) -> LinearRanker:
        labels = np.concatenate([[cid in gold["dev"][i] for cid in rows["dev"][i]["concept_ids"]] for i in keep]).astype(int)
        return LinearRanker.fit(np.concatenate([feature_matrix(X["dev"][i], DEFAULT_RANKER_FEATURES) for i in keep]), labels, DEFAULT_RANKER_FEATURES,
                                groups=[len(rows["dev"][i]["concept_ids"]) for i in keep], seed=SEED)

    on_dev = [i for i, g in enumerate(gold["dev"]) if g]
    fold = document_folds([m.doc_id for m in splits["dev"]], FOLDS, SEED)
    by_fold = {k: fit([i for i in on_dev if fold[i] != k]) for k in range(FOLDS)}
    rankers = {"dev": [by_fold[int(fold[i])] for i in range(len(splits["dev"]))], "test": [fit(on_dev)] * len(splits["test"])}
    out = {}
    for split, mentions in splits.items():
        groups = {"seen_concept": [seen.has_concept_of(m.ids, kb) for m in mentions], "unseen_concept": [not seen.has_concept_of(m.ids, kb) for m in mentions]}
        ids = [r["concept_ids"] for r in rows[split]]
        systems = {name: [ranked_by(x[:, FEATURES.index(col)], c) for x, c in zip(X[split], ids)] for name, col in SOURCES.items()}
        systems["hybrid"] = [ranked_by(r.decision(feature_matrix(x, r.features)), c) for r, x, c in zip(rankers[split], X[split], ids)]
        systems[RECALL] = ids  # acc@k over the whole union: k = its size
        entry = {}
        for name, predictions in systems.items():
            k = max(map(len, ids)) if name == RECALL else 1
            scores, _ = linking_accuracy(predictions, gold[split], k=(k,), groups=groups)
            entry[name] = {group: round(scores[f"{prefix}acc@{k}"], 1) for group, prefix in (("all", ""), ("seen_concept", "seen_concept_"), ("unseen_concept", "unseen_concept_"))}
        entry["mentions"] = {"all": scores["evaluated"], "seen_concept": scores["seen_concept_mentions"], "unseen_concept": scores["unseen_concept_mentions"]}
        entry["misses"] = candidate_misses(mentions, rows[split], gold[split], kb)
        out[split] = entry
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=sorted(BENCHMARKS), default="ncbi")
    ap.add_argument("--candidates", required=True, action="append", metavar="LABEL=DIR", help="A model's folder of dev-fit.jsonl and test.jsonl (KB + train) (repeatable).")
    ap.add_argument("--out", required=True, help="Writes OUT.json and OUT.md.")
    args = ap.parse_args()
    models = dict(spec.split("=", 1) for spec in args.candidates)
    data = benchmark_data(args.dataset, REPO_DATA_DIR)
    kb = data.load_kb()
    seen = TrainingSeen.of(data.load_split("train", kb).mentions, kb)
    splits = {"dev": [m for m in data.load_split("dev", kb).mentions if not m.is_nil], "test": list(data.load_split("test", kb).mentions)}
    gold = {split: [[kb.canonical_id(g) or g for g in m.ids] for m in mentions] for split, mentions in splits.items()}
    report = {"dataset": args.dataset, "ranker": list(DEFAULT_RANKER_FEATURES), "dev": f"{FOLDS} document folds, seed {SEED}",
              "models": {label: {"candidates": directory, **model_scores(Path(directory), splits, gold, seen, kb)} for label, directory in models.items()}}

    names = [*SOURCES, "hybrid", RECALL]
    command = " ".join(["python benchmarks/unseen_concept_shift.py", "--dataset", args.dataset, *(f'--candidates "{c}"' for c in args.candidates), "--out", args.out])
    md = [
        f"# {args.dataset}: each candidate source alone and the hybrid, dev against test, by concept seen in training",
        "",
        f"Command: `{command}`",
        "",
        "acc@1 of each source's best candidate within the hybrid's candidate union (KB + train), all mentions (seen concept / unseen concept). "
        f"Hybrid: the default ranker ({' + '.join(DEFAULT_RANKER_FEATURES)}); on dev each of {FOLDS} document folds is ranked by a fit on the others, "
        "on test by the fit on all of dev (the benchmark's hybrid row). Last column: the gold concept is among the candidates.",
        "",
        "| model | split | mentions (seen / unseen concept) | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for label, entry in report["models"].items():
        for split in splits:
            e, n = entry[split], entry[split]["mentions"]
            cells = [f"{e[s]['all']:.1f} ({e[s]['seen_concept']:.1f} / {e[s]['unseen_concept']:.1f})" for s in names]
            md.append(f"| {label} | {split} | {n['all']} ({n['seen_concept']} / {n['unseen_concept']}) | " + " | ".join(cells) + " |")
    md += [
        "",
        "Where no ranker reaches: mentions whose gold concept the KB lacks, and those whose gold is outside the candidate union; "
        f"of the latter, the one-word ones of at most {SHORT} characters (mostly abbreviations) and the most frequent texts.",
        "",
        f"| model | split | gold not in KB | gold outside the candidates | of those, one word of <= {SHORT} characters | most frequent |",
        "|---|---|---|---|---|---|",
    ]
    for label, entry in report["models"].items():
        for split in splits:
            m = entry[split]["misses"]
            common = ", ".join(f"{text} ({n})" for text, n in m["most_frequent"])
            md.append(f"| {label} | {split} | {m['gold_not_in_kb']} | {m['gold_outside_candidates']} | {m['short_outside_candidates']} | {common} |")
    atomic_write_text(f"{args.out}.json", json.dumps(report, indent=2) + "\n")
    atomic_write_text(f"{args.out}.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
