"""Fitting a hybrid linker end to end: a saved linker + train (dictionary) + dev (ranker) -> hybrid.json and scores."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from angel_trl.data.arguments import DataArguments
from angel_trl.data.files import write_json, write_jsonl
from angel_trl.defaults import HYBRID_FIT_SETS, fit_sets_help
from angel_trl.errors import FieldError, check_at_least, check_choice
from angel_trl.evaluation import TrainingSeen, evaluate_linking
from angel_trl.hybrid.linker import EMBEDDINGS_DIR, FEATURES, HybridConfig, HybridLinker, check_features
from angel_trl.hybrid.ranker import OBJECTIVES, precision_coverage
from angel_trl.hybrid.selection import DEFAULT_RANKER_FEATURES, RANKER_MENU, fit_set_filter
from angel_trl.linking.linker import EntityLinker

logger = logging.getLogger(__name__)
HYBRID_RESULTS = "hybrid_results.json"
CV_FOLDS = 5  # document folds of dev when the ranker is chosen


@dataclass
class HybridArguments:
    model_dir: str = field(metadata={"help": "Linker directory (a stage-1 or stage-2 output) the hybrid builds on."})
    output_dir: str | None = field(default=None, metadata={"help": "Where hybrid.json, predictions and scores go (model_dir when unset: the linker then loads it with --hybrid)."})
    dictionary: str = field(default="kb+train", metadata={"help": "What the retrievers search: 'kb+train' (training mentions as synonyms, the peers' strongest protocol) or 'kb'."})
    features: list[str] = field(default_factory=lambda: list(DEFAULT_RANKER_FEATURES), metadata={"help": f"Ranker features (default: the model and retriever scores, {', '.join(DEFAULT_RANKER_FEATURES)}; docs/hybrid.md says why): any of {', '.join(FEATURES)}, or a*b, the product of two."})
    objective: str = field(default="listwise", metadata={"help": "Ranker objective: 'listwise' (softmax over each mention's candidates) or 'pointwise' (logistic regression per candidate)."})
    choose_ranker: bool = field(default=False, metadata={"help": "Choose the ranker among `features`/`objective` and the menu of simpler ones (model + retriever scores; model + TF-IDF; model alone) by held-out acc@1 over `cv_folds` document folds of dev; off (the default): fit `features` with `objective`. On dev splits of a few thousand mentions the choice is noise-limited (docs/hybrid.md)."})
    fit_on: str = field(default="all", metadata={"help": "Which dev mentions the ranker is fit on: " + fit_sets_help() + ". unseen-text suits a test with more new synonyms than dev (the dictionary does not answer them); unseen-concept suits KBs where most concepts were never annotated. Both subsets need train_file."})
    cv_folds: int = field(default=CV_FOLDS, metadata={"help": "Document folds of dev for choose_ranker."})
    seed: int = field(default=42, metadata={"help": "Seed of the ranker fit and of the folds."})
    link_batch_size: int | None = field(default=None, metadata={"help": "Mentions per beam-search batch (the saved linker config when unset)."})
    device: str | None = field(default=None, metadata={"help": "cpu, cuda, ... (model default when unset)."})

    def __post_init__(self) -> None:
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("dictionary", self.dictionary, ("kb+train", "kb"))
        check_choice("fit_on", self.fit_on, HYBRID_FIT_SETS)
        try:
            check_features(self.features)
        except ValueError as e:
            raise FieldError("features", str(e)) from None
        check_at_least("cv_folds", self.cv_folds, 2)
        if self.cv_folds != CV_FOLDS and not self.choose_ranker:
            raise FieldError("cv_folds", "folds dev to choose the ranker: it applies only with choose_ranker: true")
        check_at_least("link_batch_size", self.link_batch_size, 1)


def fit_hybrid(args: HybridArguments, config: HybridConfig, data_args: DataArguments, show_progress: bool = True) -> dict:
    """Fit the ranker on dev, save it, and score dev (seen by the fit) and test (touched once) with
    the hybrid and with beam search alone, plus test's precision-coverage curve."""
    overrides = {"batch_size": args.link_batch_size} if args.link_batch_size else {}
    linker = EntityLinker.from_pretrained(args.model_dir, device=args.device, **overrides)
    data_args = data_args.following_linker(linker.config.expand_abbreviations)
    kb = data_args.load_kb()
    linker = linker.over_kb(kb)  # the trie decides what can be predicted: it must hold the KB scored against
    train, dev = data_args.load_split("train"), data_args.load_split("dev")
    if dev is None:
        raise ValueError("the hybrid's ranker is fit on the dev split: set dev_file")
    if args.dictionary == "kb+train" and train is None:
        raise ValueError("dictionary 'kb+train' needs train_file (or use dictionary: kb)")
    out = Path(args.output_dir or args.model_dir)
    hybrid = HybridLinker.from_training(linker, train if args.dictionary == "kb+train" else None, config, embedding_cache_dir=out / EMBEDDINGS_DIR, show_progress=show_progress)
    # Dev's candidates are scored once: the ranker is fit on them and dev is then ranked with them.
    dev_scored = hybrid.candidates(hybrid.inputs_for(dev.mentions, dev.texts()), show_progress)
    seen = TrainingSeen.of(train.mentions, kb) if train else None
    keep = fit_set_filter(args.fit_on, seen, kb)
    if keep is not None and not any(keep(m) for m in dev.mentions if not m.is_nil):
        raise FieldError("fit_on", f"no mention of {args.fit_on!r} in dev ({data_args.dev_file}: {len(dev.mentions)} mentions, every gold concept carried by a training mention)")
    fit = hybrid.fit_mentions(dev.mentions, dev_scored[1], kb, args.features, args.seed, args.objective, RANKER_MENU if args.choose_ranker else None, args.cv_folds, keep)
    summary: dict = {"model_dir": args.model_dir, "dictionary": args.dictionary, "config": vars(config), "fit": {"fit_on": args.fit_on, **fit}}
    hybrid.save(out)
    for split in ("dev", "test"):
        corpus = dev if split == "dev" else data_args.load_split(split)
        if corpus is None:
            continue
        beams, candidates = dev_scored if split == "dev" else hybrid.candidates(hybrid.inputs_for(corpus.mentions, corpus.texts()), show_progress)
        summary[split], rows = evaluate_linking(corpus.mentions, hybrid.rank(beams, candidates), kb, seen)
        summary[f"{split}_beam_only"], _ = evaluate_linking(corpus.mentions, beams, kb, seen)
        write_jsonl(out / f"predictions_hybrid_{split}.jsonl", rows)
        if split == "test":
            summary["test_precision_coverage"] = precision_coverage([r["predictions"][0]["score"] if r["predictions"] else 0.0 for r in rows], [r["correct@1"] for r in rows])
    write_json(out / HYBRID_RESULTS, summary)
    return summary
