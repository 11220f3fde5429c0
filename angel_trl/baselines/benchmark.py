"""The accuracy benchmark on any KB and corpus: every peer and the given angel-trl models, under both
dictionary protocols (KB names only; KB + training mentions as synonyms), each split into mentions of
seen / unseen text and concepts, with the acc@1-by-similarity analysis and its plot.

Systems: exact match, TF-IDF (char 3-grams), dense all-MiniLM-L6-v2 nearest name, the training
dictionary with TF-IDF back-off, and each angel-trl model (also with exact name matches ranked
first; with ``hybrid``, as a hybrid linker fit on dev). ``benchmarks/accuracy.py`` runs it on the
preset benchmarks, ``angel-trl benchmark`` on a user's own files. Writes
``<results_dir>/<name>.json``, ``<name>.md`` and ``<name>_<split>_similarity.png``.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from angel_trl.baselines.analysis import GoldSimilarity, accuracy_by_similarity, bins_table, plot_bins
from angel_trl.baselines.comparison import ABLATION, ANGEL, PEER, best_of_each_side
from angel_trl.baselines.peers import DenseLinker, ExactMatchLinker, TfidfLinker, TrainDictionaryLinker
from angel_trl.data.arguments import DataArguments, resolve_expansion
from angel_trl.data.corpus import Corpus, mentions_shared_with
from angel_trl.data.dictionary import dictionary_protocol
from angel_trl.data.files import atomic_write_text, write_json
from angel_trl.data.names import NameTable
from angel_trl.defaults import ABLATION_OPEN, EXACT_FIRST_SUFFIX, HYBRID_FIT_SET_INFO, HYBRID_FIT_SETS, HYBRID_SUFFIX
from angel_trl.errors import FieldError, check_choice
from angel_trl.evaluation import TrainingSeen, count_truncated_sources, evaluate_linking, group_cell, mcnemar, saved_results
from angel_trl.hybrid.linker import FEATURES, HybridConfig, HybridLinker
from angel_trl.hybrid.selection import DEFAULT_RANKER_FEATURES, RANKER_MENU, REJECTED_RANKERS, fit_set_filter
from angel_trl.linking.linker import EntityLinker, LinkingResult, put_exact_matches_first
from angel_trl.machine import describe_machine


PROTOCOLS = ("kb", "kb+train")


@dataclass
class BenchmarkOptions:
    """What to run and where the results go (every field has the preset benchmarks' default)."""

    splits: list[str] = field(default_factory=lambda: ["test"])
    # "kb": KB names only; "kb+train": training mentions join them as synonyms. One alone halves a
    # run's cost (the hybrid's scoring of a large test set takes CPU hours).
    protocols: list[str] = field(default_factory=lambda: list(PROTOCOLS))
    no_dense: bool = False
    expand_abbreviations: bool = False
    zero_shot: bool = False
    hybrid: bool = False
    hybrid_ablation: bool = False
    # Which dev mentions the hybrid's ranker is fit on (HYBRID_FIT_SETS); unset: those of unseen concepts
    # under the zero-shot protocol (every test concept is new there), all of dev otherwise.
    hybrid_fit_on: str | None = None
    # The hybrid row's ranker chosen on dev by document folds (all features and RANKER_MENU) instead of the
    # fixed default; the ablation's row for the other then fits the default.
    hybrid_choose_ranker: bool = False
    decode_again: bool = False
    device: str = field(default_factory=lambda: "cuda" if torch.cuda.is_available() else "cpu")
    link_batch_size: int = 32
    results_dir: str = "benchmarks/results"
    cache_dir: str = "benchmarks/work"
    # Appended to the result files' name (<dataset>[_abbreviations][_zeroshot]_<tag>.*): a second run of
    # the same protocol (another model, a variant) beside the first, which REPORT.md reads.
    tag: str | None = None
    # Bars for decoding, candidate scoring and dense encoding: off for a log file (a bar redrawn into
    # a file leaves a line per update).
    show_progress: bool = True


def peer_run(linker):
    """Link a corpus's mentions with a peer (mention text only)."""
    return lambda corpus, split: linker.link(corpus.mentions)


def generative_runs(linker: EntityLinker, table: NameTable, saved_dir: str | None = None, show_progress: bool = True):
    """Two runs of an angel-trl linker (each mention in its own context window): the model's ranking,
    and the same ranking with exact name matches of ``table`` first. The second reorders the
    first's output for the same corpus instead of decoding again. With ``saved_dir`` (the KB
    protocol, whose names and linker settings are the training run's own), the ranking the run saved
    in ``predictions_<split>.jsonl`` is reused when it holds the same model inputs (mentions in their contexts): one decode less.
    The third function returned gives the ranking decoded here for a corpus (``None`` when it was
    read from a file, which keeps no beam, or not made yet): the hybrid starts from it instead of decoding again."""
    linked: dict[int, tuple[list, bool]] = {}  # corpus -> (its ranking, decoded here: it has its beams)

    def model_ranking(corpus, split):
        if id(corpus) not in linked:
            linked.clear()
            saved = Path(saved_dir or "", f"predictions_{split}.jsonl")
            inputs = linker.inputs_for(corpus.mentions, corpus.texts())
            results = saved_results(saved, corpus.mentions, [it.source for it in inputs]) if saved_dir and saved.exists() else None
            decoded = results is None
            if decoded:
                results = linker.link(inputs, show_progress=show_progress)
                count_truncated_sources(linker, inputs, split)  # logs a warning when some were cut
            else:
                print(f"{split}: reusing {saved}", flush=True)
            linked[id(corpus)] = results, decoded
        return linked[id(corpus)][0]

    def exact_first(corpus, split):
        return [put_exact_matches_first(r, table, linker.config.top_k) for r in model_ranking(corpus, split)]

    def decoded_ranking(corpus) -> list | None:
        results, decoded = linked.get(id(corpus), (None, False))
        return results if decoded else None

    return model_ranking, exact_first, decoded_ranking


# Rankers fit beside the full one by --hybrid-ablation: which features carry the gain, and what the
# listwise objective adds over the pointwise one. Each reuses the full hybrid's scored candidates.
HYBRID_ABLATION = {
    "all features": (FEATURES, "listwise"),
    "model score only": (("model",), "listwise"),
    "model + TF-IDF scores": (("model", "tfidf"), "listwise"),
    "model (trained concepts apart) + retriever scores": RANKER_MENU["model (trained concepts apart) + retriever scores"],
    **REJECTED_RANKERS,
    "all features, pointwise": (FEATURES, "pointwise"),
}
# With the dense retriever among the candidates: what its features add.
DENSE_FEATURES = ("dense", "dense_margin", "dense_rank", "dense_top")
HYBRID_DENSE_ABLATION = {
    "all features but dense": (tuple(f for f in FEATURES if f not in DENSE_FEATURES), "listwise"),
}
# The ablation row whose ranker is chosen on dev by document folds (choose_ranker), from all features and RANKER_MENU,
# and, when the hybrid row is that one (--hybrid-choose-ranker), the row of the fixed default ranker.
CHOSEN_ROW = "ranker chosen on dev"
# The menu's name of the default ranker (the dev folds' score of the hybrid row when it is not chosen).
DEFAULT_RANKER_NAME = next(name for name, (features, _) in RANKER_MENU.items() if features == DEFAULT_RANKER_FEATURES)
DEFAULT_ROW = f"default ranker: {DEFAULT_RANKER_NAME}"
HYBRID_DENSE_CANDIDATES = 10  # as many as the TF-IDF retriever adds
# The ablation's rows with the ranker fit on the other sets of dev mentions (each the hybrid's default ranker).
FIT_SET_ROWS = {name: info["row"] for name, info in HYBRID_FIT_SET_INFO.items()}


def hybrid_runs(
    linker: EntityLinker,
    train_counts,
    dev,
    kb,
    fits: dict,
    cache: Path,
    ablation: bool,
    log: dict,
    embedding_cache_dir: str | None = None,
    system: str = "hybrid",
    fit_on: str = "all",
    seen: TrainingSeen | None = None,
    show_progress: bool = True,
    choose: bool = False,
    decoded: Callable[[Corpus], list[LinkingResult] | None] | None = None,
) -> list[tuple[str, object]]:
    """Runs of the hybrid over ``linker`` (its dictionary: the protocol's): the full ranker and, with
    ``ablation``, the :data:`HYBRID_ABLATION` ones and the hybrid fit on each other set of
    :data:`FIT_SET_ROWS`, as (label suffix, run). Each ranker is fit on ``dev`` (its mentions chosen
    by ``fit_on``, see :func:`~angel_trl.hybrid.selection.fit_set_filter`; ``seen``: what training
    holds) at its first call (what the fit saw goes to ``fits``); the candidates of every split are
    scored once, kept in files under ``cache`` and reused (``log`` says which were computed). With
    ``embedding_cache_dir`` the dense retriever joins the candidates (its name embeddings cached
    there, shared with the dense peer) and the ablation adds :data:`HYBRID_DENSE_ABLATION`. The full
    ranker is the fixed default, or with ``choose`` the one chosen on dev by document folds (the
    ablation then has the default's row instead of :data:`CHOSEN_ROW`). Each fit in ``fits`` names
    its row: ``system`` and the label. ``decoded``: ``linker``'s ranking of a corpus when already
    decoded (:func:`generative_runs`), so its beams are not decoded twice."""
    dense = embedding_cache_dir is not None
    config = HybridConfig(top_k=linker.config.top_k, dense_candidates=HYBRID_DENSE_CANDIDATES if dense else 0)
    base = HybridLinker(linker, train_counts, config, embedding_cache_dir=embedding_cache_dir, show_progress=show_progress)
    fixed = HYBRID_ABLATION | (HYBRID_DENSE_ABLATION if dense else {}) if ablation else {}

    # Each fit set is checked now, before any decoding: an empty one is an error for the hybrid row, and
    # leaves the other set's ablation row out (said on the console).
    def fit_size(fit_set: str) -> int:
        keep = fit_set_filter(fit_set, seen, kb)
        return sum(not m.is_nil and (keep is None or keep(m)) for m in dev.mentions)

    if not fit_size(fit_on):
        kept = HYBRID_FIT_SET_INFO[fit_on]["keeps"]
        raise FieldError("hybrid_fit_on", f"{system}: no dev mention to fit the ranker on with {fit_on!r} ({len(dev.mentions)} dev mentions; {fit_on!r} keeps {kept})")
    # The hybrid row fits the default ranker (DEFAULT_RANKER_FEATURES), or with ``choose`` the one chosen on
    # dev; the ablation adds the other, and its other rows fit theirs as given.
    default_ranker = (DEFAULT_RANKER_FEATURES, "listwise", None, fit_on)
    chosen_ranker = (FEATURES, "listwise", RANKER_MENU, fit_on)
    variants = {"": chosen_ranker if choose else default_ranker}
    if ablation:
        variants[DEFAULT_ROW if choose else CHOSEN_ROW] = default_ranker if choose else chosen_ranker
    variants |= {label: (features, objective, None, fit_on) for label, (features, objective) in fixed.items()}
    for other, label in FIT_SET_ROWS.items():
        if ablation and other != fit_on:
            if fit_size(other):
                variants[label] = (DEFAULT_RANKER_FEATURES, "listwise", None, other)
            else:
                print(f"{system}: no row [{label}]: dev has no such mention", flush=True)

    def cached(split: str) -> Path:
        path = cache / f"{split}.jsonl"
        log.setdefault(str(path), "reused" if path.exists() else "computed")
        return path

    def variant(label, features, objective, choose_from, fit_set):
        hybrid = copy.copy(base)  # shares the dictionary and its retrievers

        def run(corpus, split):
            if hybrid.ranker is None:
                keep = fit_set_filter(fit_set, seen, kb)
                fit = hybrid.fit_on(dev, kb, features, objective=objective, show_progress=show_progress, cache=cached("dev-fit"), choose_from=choose_from, keep=keep)
                fits[f"{len(fits)}"] = {"system": system + (f" [{label}]" if label else ""), "fit_on": fit_set, **fit}
            inputs = hybrid.inputs_for(corpus.mentions, corpus.texts())
            return hybrid.rank(*hybrid.candidates_cached(inputs, cached(split), show_progress=show_progress, beams=decoded(corpus) if decoded else None))

        return run

    return [(label, variant(label, *spec)) for label, spec in variants.items()]


def hybrid_choice_lines(fits: dict) -> list[str]:
    """Markdown: the ranker each hybrid row chose on dev, beside every option's held-out acc@1."""
    chosen = [f for f in fits.values() if "selection" in f]
    if not chosen:
        return []
    lines = ["## The hybrid's ranker, chosen on dev", "", "Held-out acc@1 over document folds of dev (the ranker with the best one is then fit on all of dev; test plays no part):", ""]
    for fit in chosen:
        sel = fit["selection"]
        options = ", ".join(f"{'**' if n == sel['name'] else ''}{n} {acc:.2f}{'**' if n == sel['name'] else ''}" for n, acc in sel["cv_acc1"].items())
        kept = HYBRID_FIT_SET_INFO[fit["fit_on"]]["keeps"] if fit.get("fit_on", "all") != "all" else ""  # fits written here all name their set
        on = f" of {fit['mentions']} dev mentions" + (f" ({kept})" if kept else "")
        lines.append(f"- {fit['system']}, {sel['folds']} folds{on}: {options} (\"given\": all features, listwise)")
    return lines + [""]


def model_info(directory: str) -> dict:
    info = {"dir": directory}
    args = Path(directory) / "training_args.json"
    if args.exists():
        info["seed"] = json.loads(args.read_text()).get("seed")
    return info


def best_rows_paired(scores: dict[str, dict[str, dict]], rows_of: dict[tuple[str, str], list[dict]], kinds: dict[str, str]) -> dict[str, dict]:
    """Per protocol, the best angel-trl row against the best peer row (as REPORT.md's gap picks them),
    with the exact McNemar test on their per-mention acc@1: is the gap more than chance?"""
    paired = {}
    for protocol in dict.fromkeys(p for by_protocol in scores.values() for p in by_protocol):
        angel, peer = best_of_each_side({s: bp[protocol] for s, bp in scores.items() if protocol in bp}, kinds)
        if angel is not None and peer is not None:
            paired[protocol] = {ANGEL: angel, PEER: peer, **mcnemar(rows_of[angel, protocol], rows_of[peer, protocol])}
    return paired


def per_mention_correct(rows_of: dict[tuple[str, str], list[dict]]) -> dict:
    """Every row's acc@1 mention by mention, so that any two rows of a result file can be paired
    later (:func:`paired_from_report`), not only the two the report pairs: ``mention_ids`` in order,
    and per ``"<system> | <protocol>"`` a string of ``1`` (right at top-1) and ``0``."""
    first = next(iter(rows_of.values()), [])
    ids = [r["mention_id"] for r in first]
    correct = {}
    for (system, protocol), rows in rows_of.items():
        if [r["mention_id"] for r in rows] != ids:
            raise ValueError(f"{system} ({protocol}) scored other mentions than {next(iter(rows_of))[0]}")
        correct[f"{system} | {protocol}"] = "".join("1" if r["correct@1"] else "0" for r in rows)
    return {"mention_ids": ids, "systems": correct}


def paired_from_report(report: dict, row_a: str, row_b: str, protocol: str, split: str = "test") -> dict:
    """The exact McNemar test on acc@1 of two rows of a benchmark result (its ``correct@1``)."""
    saved = report.get("correct@1", {}).get(split)
    if saved is None:
        raise ValueError(f"the result holds no per-mention acc@1 for {split!r} (files written before it was saved have none)")

    def rows(system: str) -> list[dict]:
        key = f"{system} | {protocol}"
        if key not in saved["systems"]:
            raise ValueError(f"no row {key!r}; rows: {', '.join(saved['systems'])}")
        return [{"mention_id": m, "correct@1": c == "1"} for m, c in zip(saved["mention_ids"], saved["systems"][key], strict=True)]

    return {"a": row_a, "b": row_b, "protocol": protocol, "split": split, **mcnemar(rows(row_a), rows(row_b))}


def dev_chosen_hybrid_paired(scores: dict[str, dict[str, dict]], rows_of: dict[tuple[str, str], list[dict]], kinds: dict[str, str],
                             fits: dict, models: list[str], choose: bool) -> dict[str, dict]:
    """Per protocol, the hybrid row dev picks among the models' hybrid rows against the best peer
    row, paired. With several models under the hybrid, the best row on test is a choice made on
    test; this one is the row whose ranker has the best held-out acc@1 over dev's document folds
    (the first model on a tie). Those scores come from the ranker choice on dev: the ablation's
    :data:`CHOSEN_ROW` fit (its entry for the default ranker), or with ``choose`` the hybrid row's own."""
    paired = {}
    for protocol in dict.fromkeys(p for by_protocol in scores.values() for p in by_protocol):
        folds = {}
        for model in models:
            chooser = f"{model}{HYBRID_SUFFIX} ({protocol})" + ("" if choose else f" [{CHOSEN_ROW}]")
            selection = next((f["selection"] for f in fits.values() if f["system"] == chooser and "selection" in f), None)
            if selection is not None:
                folds[model + HYBRID_SUFFIX] = selection["cv_acc1"][selection["name"] if choose else DEFAULT_RANKER_NAME]
        _, peer = best_of_each_side({s: bp[protocol] for s, bp in scores.items() if protocol in bp}, kinds)
        if folds and peer is not None:
            angel = max(folds, key=folds.get)
            paired[protocol] = {ANGEL: angel, PEER: peer, "dev_folds_acc1": folds, **mcnemar(rows_of[angel, protocol], rows_of[peer, protocol])}
    return paired


def paired_lines(split: str, paired: dict[str, dict]) -> list[str]:
    if not paired:
        return []
    lines = ["", f"### {split}: the best angel-trl row against the best peer row, paired", "",
             "| protocol | best angel-trl | best peer | only angel-trl right | only the peer right | p (exact McNemar) |", "|---|---|---|---|---|---|"]
    for protocol, t in paired.items():
        lines.append(f"| {protocol} | {t[ANGEL]} | {t[PEER]} | {t['a_only']} | {t['b_only']} | {t['p_value']:.3g} |")
    return lines


def dev_chosen_lines(split: str, paired: dict[str, dict]) -> list[str]:
    if not paired:
        return []
    lines = ["", f"### {split}: the hybrid row dev picks against the best peer row, paired", "",
             "The hybrid row whose ranker has the best held-out acc@1 over dev's document folds (test plays no part in the pick).", "",
             "| protocol | hybrid row dev picks (dev folds: every model's) | best peer | only angel-trl right | only the peer right | p (exact McNemar) |", "|---|---|---|---|---|---|"]
    for protocol, t in paired.items():
        folds = ", ".join(f"{row} {acc:.2f}" for row, acc in t["dev_folds_acc1"].items())
        lines.append(f"| {protocol} | {t[ANGEL]} ({folds}) | {t[PEER]} | {t['a_only']} | {t['b_only']} | {t['p_value']:.3g} |")
    return lines


def run_benchmark(data: DataArguments, name: str, models: dict[str, str], args: BenchmarkOptions, command: str = "") -> dict:
    """Benchmark ``models`` (label -> linker directory) and every peer on ``data``; returns the
    report written to ``<results_dir>/<name>.json`` (beside its markdown and plots)."""
    data = dataclasses.replace(data, expand_abbreviations=args.expand_abbreviations, zero_shot=args.zero_shot)
    stem = name + ("_abbreviations" if args.expand_abbreviations else "") + ("_zeroshot" if args.zero_shot else "")
    cache_stem, stem = stem, stem + (f"_{args.tag}" if args.tag else "")  # the hybrid's caches are per protocol and model, whatever the tag
    if args.tag is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.tag):
        raise FieldError("tag", f"{args.tag!r}: letters, digits, '.', '_' and '-' only (it names files)")
    kb = data.load_kb()
    train = data.load_split("train", kb)
    dev = data.load_split("dev", kb) if args.hybrid else None
    fit_on = args.hybrid_fit_on or ("unseen-concept" if args.zero_shot else "all")
    check_choice("hybrid_fit_on", fit_on, HYBRID_FIT_SETS)
    seen = TrainingSeen.of(train.mentions, kb)
    unknown = sorted(set(args.protocols) - set(PROTOCOLS))
    if unknown or not args.protocols:
        raise ValueError(f"protocols: {unknown or 'none'} (choose from {', '.join(PROTOCOLS)})")
    protocols = [dictionary_protocol(kb) if p == "kb" else dictionary_protocol(kb, train) for p in PROTOCOLS if p in args.protocols]
    gold_similarity = GoldSimilarity(kb)
    models = dict(models)
    linkers = {model: EntityLinker.from_pretrained(d, device=args.device, batch_size=args.link_batch_size) for model, d in models.items()}
    for linker in linkers.values():
        resolve_expansion(args.expand_abbreviations, linker.config.expand_abbreviations)  # warns when a model was trained the other way

    # Built once and reused for every split: TF-IDF fits, dense encodings and tries do not depend on it.
    systems = []
    kinds: dict[str, str] = {}  # each row's side (comparison.PEER / ANGEL / ABLATION), saved with the results

    def add(system: str, protocol: str, run, kind: str = PEER) -> None:
        systems.append((system, protocol, run))
        kinds[system] = kind

    report_fits: dict = {}  # the hybrid rankers' fits on dev, in the order they ran
    candidate_files: dict = {}  # the hybrid's scored candidates: file -> computed here or reused
    for p in protocols:
        add("exact match", p.name, peer_run(ExactMatchLinker(p.table)))
        tfidf = TfidfLinker(p.table)
        add("TF-IDF char-3 (word-bounded)", p.name, peer_run(tfidf))
        if p.train_counts is not None:
            add("train dictionary + TF-IDF", p.name, peer_run(TrainDictionaryLinker(p.train_counts, tfidf)))
        if not args.no_dense:
            add("dense MiniLM-L6", p.name, peer_run(DenseLinker(p.table, device=args.device, cache_dir=args.cache_dir, show_progress=args.show_progress)))
        for model, linker in linkers.items():
            # Under KB a model decodes over its own saved trie when that holds this KB's names (then its
            # training run's saved ranking can serve); a model trained on another reading of the KB (an
            # older reader, another release) is given this one's, like every peer.
            own_trie = p.train_counts is None and linker.table.names == p.table.names
            if p.train_counts is None and not own_trie:
                print(f"{model}: its saved names differ from this KB's in {len(set(linker.table.names) ^ set(p.table.names))} names; decoding over this KB's", flush=True)
            under = linker if own_trie else EntityLinker(linker.model, linker.tokenizer, p.table, config=linker.config, kb=p.kb)
            reuse = own_trie and not args.decode_again
            model_ranking, exact_first, decoded = generative_runs(under, p.table, models[model] if reuse else None, args.show_progress)
            add(model, p.name, model_ranking, ANGEL)
            add(model + EXACT_FIRST_SUFFIX, p.name, exact_first, ANGEL)
            if args.hybrid:
                cache = Path(args.cache_dir, "hybrid", cache_stem, re.sub(r"[^A-Za-z0-9.-]+", "_", f"{model}_{p.name}"))
                dense_cache = None if args.no_dense else args.cache_dir
                for label, run in hybrid_runs(under, p.train_counts, dev, kb, report_fits, cache, args.hybrid_ablation, candidate_files, dense_cache, f"{model}{HYBRID_SUFFIX} ({p.name})", fit_on, seen, args.show_progress, args.hybrid_choose_ranker, decoded):
                    add(model + HYBRID_SUFFIX + (f"{ABLATION_OPEN}{label}]" if label else ""), p.name, run, ABLATION if label else ANGEL)

    report: dict = {
        "dataset": name,
        "abbreviations_expanded": args.expand_abbreviations,
        "command": command,
        "machine": describe_machine(args.device),
        "kb": kb.stats(),
        "models": {model: model_info(d) for model, d in models.items()},
        "systems": kinds,
        "zero_shot": {"train": train.stats().get("zero_shot_dropped_mentions", 0)} if args.zero_shot else None,
        "hybrid_fit_on": fit_on if args.hybrid else None,
        "hybrid_choose_ranker": args.hybrid_choose_ranker if args.hybrid else None,
        "hybrid_fits": report_fits,
        "hybrid_candidates": candidate_files,
        "splits": {},
    }
    md = [f"# {name}: acc@1 / acc@5 by system and dictionary protocol" + (", abbreviations expanded" if args.expand_abbreviations else ""), "", f"Command: `{report['command']}`", ""]
    reuse_note = "" if args.decode_again or not models else (
        " Under KB, an angel-trl model's ranking is the one its training run saved (`predictions_<split>.jsonl`, same names and"
        " decoding settings) where that holds the same inputs (mentions in their contexts), so its seconds exclude decoding too (`--decode-again` decodes it here)."
    )
    hybrid_note = "" if not args.hybrid else (
        " A hybrid row's seconds include fitting its ranker on dev and, for a model's first hybrid row under a protocol, decoding and"
        " scoring dev's and the split's candidates (the split's beam search is the model row's, timed there, when that row decoded it in this run),"
        " unless the JSON's `hybrid_candidates` says they were reused from an earlier run; the bracketed ablation rows reuse those candidates."
    )
    for split in args.splits:
        corpus = data.load_split(split)
        mentions = corpus.mentions
        shared = mentions_shared_with(corpus, train)
        if shared:  # said, not refused: a user may mean it (a sanity check on training data)
            print(f"{split}: {shared} of its {len(mentions)} mentions are training mentions too (same document text and span): its scores are partly on what was trained on", file=sys.stderr, flush=True)
        report.setdefault("mentions_shared_with_train", {})[split] = shared
        out = report["splits"].setdefault(split, {})
        rows_of: dict[tuple[str, str], list[dict]] = {}
        sims = None
        for system, protocol, run in systems:
            t0 = time.perf_counter()
            metrics, rows = evaluate_linking(mentions, run(corpus, split), kb, seen)
            metrics["seconds"] = round(time.perf_counter() - t0, 2)
            if sims is None:
                sims = [gold_similarity(r["mention"], r["gold"]) for r in rows]
            metrics["by_similarity"] = accuracy_by_similarity(rows, sims)
            out.setdefault(system, {})[protocol] = metrics
            rows_of[system, protocol] = rows
            print(f"{split} | {system} | {protocol} | acc@1 {metrics['acc@1']:.1f} | unseen {metrics['unseen_acc@1']:.1f} | unseen concept {metrics['unseen_concept_acc@1']:.1f} | {metrics['seconds']} s", flush=True)
        md += [f"## {split} ({next(iter(out[next(iter(out))].values()))['evaluated']} mentions)", "", "`+ exact match first` reorders the output of the run above it, so its seconds exclude decoding." + reuse_note + hybrid_note, "", "| system | protocol | acc@1 | acc@5 | seen acc@1 (n) | unseen acc@1 (n) | unseen-concept acc@1 (n) | seconds |", "|---|---|---|---|---|---|---|---|"]
        for system, by_protocol in out.items():
            for protocol, m in by_protocol.items():
                md.append(f"| {system} | {protocol} | {m['acc@1']:.1f} | {m['acc@5']:.1f} | {group_cell(m, 'seen')} | {group_cell(m, 'unseen')} | {group_cell(m, 'unseen_concept')} | {m['seconds']} |")
        report.setdefault("paired", {})[split] = paired = best_rows_paired(out, rows_of, kinds)
        report.setdefault("correct@1", {})[split] = per_mention_correct(rows_of)
        md += paired_lines(split, paired)
        dev_chosen = dev_chosen_hybrid_paired(out, rows_of, kinds, report_fits, list(models), args.hybrid_choose_ranker)
        report.setdefault("paired_dev_chosen", {})[split] = dev_chosen
        md += dev_chosen_lines(split, dev_chosen)
        by_system = {f"{s} ({p})": m["by_similarity"] for s, bp in out.items() for p, m in bp.items() if s != "exact match"}
        md += ["", f"### {split}: acc@1 by TF-IDF similarity between mention and closest gold name", "", bins_table(by_system), ""]
        plot_systems = {s: m for s, m in by_system.items() if s.endswith("(KB)")}
        plot_bins(plot_systems or by_system, Path(args.results_dir) / f"{stem}_{split}_similarity.png", f"{stem} {split}: acc@1 by mention-gold similarity" + (" (KB names)" if plot_systems else ""))
        md += [f"![acc@1 by similarity]({stem}_{split}_similarity.png)", ""]
    md += hybrid_choice_lines(report_fits)
    write_json(Path(args.results_dir) / f"{stem}.json", report)
    atomic_write_text(Path(args.results_dir) / f"{stem}.md", "\n".join(md) + "\n")
    print("\n".join(md))
    return report

