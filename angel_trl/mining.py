"""Mining preference pairs from a linker's own ranked predictions (ANGEL stage 2 data).

For each training mention the linker returns its top-k distinct concepts. The paper's rule keeps
(chosen = a correct name, rejected = a wrong one) only where a wrong concept ranks above the
correct one; when top-1 is correct it is paired with the highest-ranked wrong concept. ``chosen``
is always the correct name the model ranked highest. Variants (the paper's ablations): every
(correct, wrong) pair of the beam, and TF-IDF-similar names of other concepts as negatives.
The result is a ``datasets.Dataset`` with ``prompt`` / ``chosen`` / ``rejected`` plus metadata.
"""

from __future__ import annotations

import functools
import json
import logging
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from datasets import Dataset

from angel_trl.data.corpus import Corpus, Mention
from angel_trl.text.examples import SKIP_COUNTS, ExampleConfig
from angel_trl.data.kb import KnowledgeBase
from angel_trl.data.unseen_concepts import ADDED as ADDED_UNSEEN, NO_OWN_NAME, is_unseen_concept_name, with_unseen_concept_names
from angel_trl.hybrid.linker import HybridConfig, HybridLinker
from angel_trl.linking.linker import BeamName, Candidate, EntityLinker, LinkingResult
from angel_trl.data.names import NameTable
from angel_trl.text.tfidf import TfidfNameMatcher
from angel_trl.defaults import MINING_DEFAULTS, MINING_NEGATIVE_SOURCES, MINING_RULES, MINING_SUMMARY, check_beams
from angel_trl.errors import FieldError, InputFormatError, check_at_least, check_choice
from angel_trl.data.files import atomic_write_text, check_replaceable_dataset, exclusive_output_dir, replaced_dir

PAIR_RULES = MINING_RULES

logger = logging.getLogger(__name__)


@dataclass
class MiningConfig:
    """How pairs are mined (fields parsed by ``recipes/mine.py``, and by ``recipes/stage2_dpo.py`` for its later rounds)."""

    rule: str = field(default=MINING_DEFAULTS["rule"], metadata={"help": "paper (misranked pairs, or top-1 vs best wrong), all (every correct/wrong pair in the beam), official (the official ANGEL code: over the top_k beam names, every correct name paired with every wrong name ranked above it) or tfidf (TF-IDF negatives)."})
    top_k: int = field(default=MINING_DEFAULTS["top_k"], metadata={"help": "Distinct concepts kept per mention (the paper: 5; ablation: 10)."})
    num_beams: int = field(default=MINING_DEFAULTS["num_beams"], metadata={"help": "Beams of constrained decoding while mining (the official code: 10). Beams hold synonyms of one concept, so more beams than top_k find top_k distinct concepts."})
    gold_fallback: bool = field(default=False, metadata={"help": "When no correct concept is in the beam, use the gold concept's most TF-IDF-similar name as chosen (counted)."})
    tfidf_negatives: int = field(default=MINING_DEFAULTS["tfidf_negatives"], metadata={"help": "Negatives per mention for rule=tfidf."})
    negatives_from: str = field(default=MINING_DEFAULTS["negatives_from"], metadata={"help": "The ranking rules paper and all pair: 'beam' (the paper: the constrained beam's top_k concepts) or 'hybrid' (the hybrid linker's candidates: the beam's concepts plus TF-IDF-retrieved ones over the KB names, every one scored exactly by the model and ranked by that score, so a confusable concept the beam pruned can be a negative, and a gold concept it missed a chosen)."})
    unseen_concept_names: int = field(default=0, metadata={"help": "Also mine this many KB names of concepts no training mention carries, each as a mention of its own without context (a seeded sample of those concepts, one name each): pairs that show stage 2 where the model gives an untrained concept's name a trained concept. Added to the training split's pairs only; 0: none (the paper)."})
    unseen_concept_seed: int = field(default=42, metadata={"help": "Seed of the unseen_concept_names sample."})

    def __post_init__(self) -> None:
        check_choice("rule", self.rule, MINING_RULES)  # at parse time, not after the linker loads
        check_choice("negatives_from", self.negatives_from, MINING_NEGATIVE_SOURCES)
        if self.negatives_from == "hybrid" and self.rule not in ("paper", "all"):
            raise FieldError("negatives_from", f"'hybrid' ranks concepts for the rules paper and all, not {self.rule!r}")
        for name in ("num_beams", "top_k", "tfidf_negatives"):
            check_at_least(name, getattr(self, name), 1)
        check_at_least("unseen_concept_names", self.unseen_concept_names, 0)
        try:
            check_beams(self.num_beams, self.top_k)
        except ValueError as e:  # (its message names both fields)
            raise FieldError("top_k", str(e)) from None


def also_rule_dirs(output_dir: str | Path, rule: str, also_rules: Sequence[str]) -> dict[str, Path]:
    """Where the pairs of each further rule mined from the same decoding go: ``<output_dir>-<rule>``
    (beside ``output_dir``, as a run of that rule alone would be named). Refuses an unknown or repeated
    rule, and ``rule`` itself."""
    for other in also_rules:
        check_choice("also_rules", other, MINING_RULES)
    repeated = sorted({r for r in also_rules if r == rule or list(also_rules).count(r) > 1})
    if repeated:
        raise FieldError("also_rules", f"{', '.join(repeated)} named twice (rule {rule!r} is the one of output_dir itself)")
    base = Path(output_dir)
    return {other: base.with_name(f"{base.name}-{other}") for other in also_rules}


@dataclass(frozen=True)
class Pair:
    """Indices into a candidate list; ``chosen`` is -1 for the gold fallback name."""

    chosen: int
    rejected: int


def pairs_from_ranking(candidates: Sequence[Candidate], gold: set[str], rule: str = "paper", gold_fallback: bool = False) -> tuple[list[Pair], str]:
    """The pairs one mention yields under ``rule`` (``paper`` or ``all``) and which case it fell in.

    Cases: ``empty`` (no candidate), ``all_correct`` (no wrong concept: nothing to contrast),
    ``no_correct`` (no pair unless ``gold_fallback``; then the fallback is paired with every wrong
    one), ``top1_correct`` and ``misranked``.
    """
    if rule not in ("paper", "all"):
        raise ValueError(f"pairs_from_ranking handles rule 'paper' or 'all', not {rule!r}")
    if not candidates:
        return [], "empty"
    correct = [i for i, c in enumerate(candidates) if c.concept_id in gold]
    wrong = [i for i, c in enumerate(candidates) if c.concept_id not in gold]
    if not wrong:
        return [], "all_correct"
    if not correct:
        return ([Pair(-1, w) for w in wrong] if gold_fallback else []), "no_correct"
    best = correct[0]
    if rule == "all":
        return [Pair(best, w) for w in wrong], "top1_correct" if best == 0 else "misranked"
    if best == 0:
        return [Pair(0, wrong[0])], "top1_correct"
    return [Pair(best, w) for w in wrong if w < best], "misranked"


def official_pairs(beam: Sequence[BeamName], gold: set[str], top_k: int) -> list[tuple[int, int]]:
    """The official ANGEL code's rule over the top ``top_k`` beam *names*: every correct name at
    rank k paired with every wrong name ranked above it (a name of a gold concept counts as correct,
    shared or not, so it is never a rejected name)."""
    top = beam[:top_k]
    correct = [bool(gold & set(b.concept_ids)) for b in top]
    return [(k, j) for k in range(len(top)) if correct[k] for j in range(k) if not correct[j]]


def training_corpus_to_mine(corpus: Corpus, kb: KnowledgeBase, config: MiningConfig) -> Corpus:
    """The training corpus as mined: ``corpus``, plus ``config.unseen_concept_names`` pseudo-mentions
    of concepts none of its mentions carries (:func:`with_unseen_concept_names`)."""
    if not config.unseen_concept_names:
        return corpus
    return with_unseen_concept_names(corpus, kb, config.unseen_concept_names, config.unseen_concept_seed)


def trainable_mentions(corpus: Corpus, kb: KnowledgeBase, counts: Counter) -> list[Mention]:
    """Mentions usable for preference pairs: not NIL, not composite, gold concept in the KB."""
    counts.update(dict.fromkeys(SKIP_COUNTS, 0))
    out = []
    for m in corpus.mentions:
        if m.is_nil:
            counts["skipped_nil"] += 1
        elif m.composite:
            counts["skipped_composite"] += 1
        elif not any(kb.canonical_id(i) for i in m.ids):
            counts["skipped_gold_not_in_kb"] += 1
        else:
            out.append(m)
    return out


def mine_pairs(
    linker: EntityLinker,
    corpus: Corpus,
    kb: KnowledgeBase,
    config: MiningConfig,
    matcher: TfidfNameMatcher | None = None,
    show_progress: bool = True,
) -> tuple[Dataset, dict]:
    """Preference pairs for every trainable mention of ``corpus``, and a summary of what happened.

    Rule ``tfidf`` takes its negatives from TF-IDF alone (:func:`_mine_tfidf_negatives`); the other
    rules pair names of the linker's own ranked predictions (:func:`_mine_ranked_predictions`).
    Under ``accelerate launch`` mentions are split across processes and gathered back in order, so
    the pairs do not depend on the number of processes.
    """
    return mine_pairs_by_rule(linker, corpus, kb, [config], matcher, show_progress)[0]


def mine_pairs_by_rule(
    linker: EntityLinker,
    corpus: Corpus,
    kb: KnowledgeBase,
    configs: Sequence[MiningConfig],
    matcher: TfidfNameMatcher | None = None,
    show_progress: bool = True,
) -> list[tuple[Dataset, dict]]:
    """:func:`mine_pairs` for each of ``configs``, in order, with one constrained decoding per
    distinct decoding setting (beams, top-k, where negatives come from): the paper and official rules
    read the same beams, and decoding is nearly all of mining's time. The pairs of each config are
    the ones a run of it alone gives."""
    for config in configs:
        if config.rule not in PAIR_RULES:
            raise ValueError(f"unknown mining rule {config.rule!r}; expected one of {PAIR_RULES}")
    counts: Counter = Counter()
    mentions = trainable_mentions(corpus, kb, counts)
    if matcher is None and any(c.rule == "tfidf" or c.gold_fallback for c in configs):
        matcher = TfidfNameMatcher(linker.table)
    decoded: dict[tuple, list[tuple[int, LinkingResult]]] = {}
    results = []
    for config in configs:
        rows = _PairRows(linker.config.example_config, corpus.texts(), Counter(counts))
        if config.rule == "tfidf":
            _mine_tfidf_negatives(mentions, kb, linker.table, matcher, config.tfidf_negatives, rows)
        else:
            setting = (config.num_beams, config.top_k, config.negatives_from)
            if setting not in decoded:
                decoded[setting] = _link_across_processes(linker, mentions, rows.texts, config, show_progress)
            _mine_ranked_predictions(linker.table, decoded[setting], mentions, kb, config, matcher, rows)
        rows.counts["pairs"] = len(rows.rows)
        if ADDED_UNSEEN in corpus.counts:  # the training corpus with unseen-concept names: what they gave
            rows.counts.update({k: corpus.counts[k] for k in (ADDED_UNSEEN, NO_OWN_NAME)})
            rows.counts["pairs_from_unseen_concept_names"] = sum(is_unseen_concept_name(r["mention_id"]) for r in rows.rows)
        summary = {"rule": config.rule, "negatives_from": config.negatives_from, "corpus_mentions": len(corpus.mentions), "mentions": len(mentions), **dict(sorted(rows.counts.items()))}
        if rows.counts.get("mentions_linked"):
            summary["top1_correct_share"] = round(rows.counts["top1_correct"] / rows.counts["mentions_linked"], 4)
        results.append((rows.dataset(), summary))
    return results


_COLUMNS = ("prompt", "decoder_prompt", "chosen", "rejected", "mention_id", "mention", "gold_ids", "rejected_id", "case", "chosen_rank", "rejected_rank", "chosen_score", "rejected_score")


@dataclass
class _PairRows:
    """The pair rows mined so far, and the counts of what happened to the mentions (the summary's)."""

    example_config: ExampleConfig
    texts: dict[str, str]  # document id -> text, for the encoder input
    counts: Counter
    rows: list[dict] = field(default_factory=list)

    def add(self, m: Mention, gold: set[str], chosen: str, rejected: str, rejected_id: str, case: str, **meta) -> None:
        if chosen == rejected:
            # A name shared by the gold and a wrong concept: DPO cannot tell them apart.
            self.counts["skipped_same_name"] += 1
            return
        ex = self.example_config
        self.rows.append({"prompt": ex.source_for(m, self.texts[m.doc_id]), "decoder_prompt": ex.prompt(m.text), "chosen": chosen, "rejected": rejected,
                          "mention_id": m.mention_id, "mention": m.text, "gold_ids": sorted(gold), "rejected_id": rejected_id, "case": case, **meta})

    def dataset(self) -> Dataset:
        return Dataset.from_list(self.rows) if self.rows else Dataset.from_dict({k: [] for k in _COLUMNS})


def _mine_tfidf_negatives(mentions: list[Mention], kb: KnowledgeBase, table: NameTable, matcher: TfidfNameMatcher, negatives_per_mention: int, rows: _PairRows) -> None:
    """Rule ``tfidf`` (no model): chosen is the gold name most similar to the mention, rejected each of
    the ``negatives_per_mention`` names most TF-IDF-similar to the mention that name no gold concept."""
    # 10 spare neighbours, as some of the nearest names are the gold concept's own.
    negatives, sims = matcher.nearest([m.text for m in mentions], negatives_per_mention + 10)
    for m, idx, sim in zip(mentions, negatives, sims):
        gold = _gold(m, kb)
        chosen = _fallback_name(m, gold, table, matcher)
        wrong = [(int(i), float(s)) for i, s in zip(idx, sim) if not gold & set(table.concept_ids[i])][:negatives_per_mention]
        rows.counts["case_tfidf"] += 1
        for rank, (i, s) in enumerate(wrong):
            rows.add(m, gold, chosen, table.names[i], table.concept_ids[i][0], "tfidf", chosen_rank=-1, rejected_rank=rank, chosen_score=None, rejected_score=s)


def _mine_ranked_predictions(table: NameTable, ranked: list[tuple[int, LinkingResult]], mentions: list[Mention], kb: KnowledgeBase, config: MiningConfig, matcher: TfidfNameMatcher | None, rows: _PairRows) -> None:
    """Rules ``paper``, ``all`` and ``official``: pair names of the linker's ranked predictions of
    every mention (``ranked``: :func:`_link_across_processes`; :func:`_add_ranking_pairs`, :func:`_add_official_pairs`)."""
    # Built only when a shared name forces a pick among KB names (fitting it over MeSH takes seconds).
    matcher_for_names = functools.cache(lambda: matcher if matcher is not None else TfidfNameMatcher(table))
    rows.counts["mentions_linked"] = len(ranked)
    for i, result in ranked:
        m, cands = mentions[i], result.candidates
        gold = _gold(m, kb)
        rows.counts["top1_correct"] += bool(cands) and cands[0].concept_id in gold
        if config.rule == "official":
            _add_official_pairs(m, gold, result, config.top_k, rows)
        else:
            _add_ranking_pairs(m, gold, result, config, table, matcher_for_names, rows)


def _link_across_processes(linker: EntityLinker, mentions: list[Mention], texts: dict[str, str], config: MiningConfig, show_progress: bool) -> list[tuple[int, LinkingResult]]:
    """``(mention index, result)`` for every mention, in order, linked with the mining beams and top-k;
    under ``accelerate launch`` each process links its share and the results are gathered."""
    from accelerate import PartialState
    from accelerate.utils import gather_object

    state = PartialState()
    # Mine the model's own ranking (never dictionary-first) with the mining beams, on a view of the
    # linker: the caller's linker config stays as it was.
    linker = EntityLinker(linker.model, linker.tokenizer, linker.table, linker.trie, replace(linker.config, num_beams=config.num_beams, top_k=config.top_k, exact_match_first=False), linker.kb)
    if config.negatives_from == "hybrid":
        # Unfit, the hybrid ranks its candidates by the model's exact log-prob. Its dictionary is the
        # KB's names alone: training mentions as synonyms would hand every mined mention its own gold link.
        linker = HybridLinker(linker, None, HybridConfig(top_k=config.top_k))
    with state.split_between_processes(list(range(len(mentions)))) as mine:
        local = list(zip(mine, linker.link(linker.inputs_for([mentions[i] for i in mine], texts), show_progress=show_progress)))
    return sorted(gather_object(local) if state.num_processes > 1 else local, key=lambda x: x[0])


def _add_official_pairs(m: Mention, gold: set[str], result: LinkingResult, top_k: int, rows: _PairRows) -> None:
    """Rule ``official``: the beam names :func:`official_pairs` pairs, with their beam scores."""
    official = official_pairs(result.beam, gold, top_k)
    rows.counts["case_official_paired" if official else "case_official_unpaired"] += 1
    for k, j in official:
        good, bad = result.beam[k], result.beam[j]
        rows.add(m, gold, good.name, bad.name, bad.concept_ids[0], "official", chosen_rank=k, rejected_rank=j, chosen_score=good.score, rejected_score=bad.score)


def _add_ranking_pairs(m: Mention, gold: set[str], result: LinkingResult, config: MiningConfig, table: NameTable, matcher: Callable[[], TfidfNameMatcher], rows: _PairRows) -> None:
    """Rules ``paper`` and ``all``: the concept pairs of :func:`pairs_from_ranking`, each as a name of
    the correct concept (or the gold fallback name) and a name of the wrong one that no gold concept shares."""
    cands, counts = result.candidates, rows.counts
    pairs, case = pairs_from_ranking(cands, gold, config.rule, config.gold_fallback)
    counts[f"case_{case}"] += 1
    scores: dict[str, float] = {}
    for b in result.beam:  # best first: a name's score is its best beam's
        scores.setdefault(b.name, b.score)
    for c in cands:  # a hybrid candidate's name outside the beam has the exact score it was ranked by
        scores.setdefault(c.name, c.score)
    for p in pairs:
        rej = cands[p.rejected]
        rejected, rejected_score = _rejected_name(rej, gold, table, matcher, m, scores)
        if rejected is None:
            counts["skipped_rejected_only_gold_names"] += 1
            continue
        if p.chosen < 0:
            counts["pairs_gold_fallback"] += 1
            chosen, chosen_score = _fallback_name(m, gold, table, matcher()), None
        else:
            chosen, chosen_score = _chosen_name(cands[p.chosen], gold, table, matcher, m, scores)
            if chosen is None:
                counts["skipped_no_gold_only_name"] += 1
                continue
            if chosen_score is None:
                counts["chosen_from_kb"] += 1
        if rejected_score is None:
            counts["rejected_from_kb"] += 1
        rows.add(m, gold, chosen, rejected, rej.concept_id, case, chosen_rank=p.chosen, rejected_rank=p.rejected, chosen_score=chosen_score, rejected_score=rejected_score)


def _gold(m: Mention, kb: KnowledgeBase) -> set[str]:
    return {kb.canonical_id(g) for g in m.ids} - {None}


def _chosen_name(cand: Candidate, gold: set[str], table: NameTable, matcher: Callable[[], TfidfNameMatcher], m: Mention, scores: dict[str, float]) -> tuple[str | None, float | None]:
    """A name of the gold concept that names no wrong concept; None when the gold concept has no
    name of its own, so no pair can tell it from the concepts sharing its names."""
    own = [j for cid in sorted(gold) for j in table.names_of_concept(cid)]
    return _pick_name(cand, own, lambda ids: ids <= gold, table, matcher, m, scores)


def _rejected_name(cand: Candidate, gold: set[str], table: NameTable, matcher: Callable[[], TfidfNameMatcher], m: Mention, scores: dict[str, float]) -> tuple[str | None, float | None]:
    """A name of the wrong concept that is not also a gold name; None when every name of it is."""
    return _pick_name(cand, table.names_of_concept(cand.concept_id), lambda ids: not ids & gold, table, matcher, m, scores)


def _pick_name(cand: Candidate, kb_names: list[int], keep: Callable[[set[str]], bool], table: NameTable,
               matcher: Callable[[], TfidfNameMatcher], m: Mention, scores: dict[str, float]) -> tuple[str | None, float | None]:
    """The candidate's best beam name whose concepts pass ``keep`` (with its beam score); else the one
    of ``kb_names`` passing ``keep`` most TF-IDF-similar to the mention (score None); else None."""
    for name in cand.names or [cand.name]:
        if keep(set(table.concept_ids[table.index_of(name)])):
            return name, scores.get(name)
    kept = [j for j in kb_names if keep(set(table.concept_ids[j]))]
    return (table.names[matcher().top_names(m.text, kept, 1)[0]], None) if kept else (None, None)


def _fallback_name(m: Mention, gold: set[str], table: NameTable, matcher: TfidfNameMatcher) -> str:
    """The gold concept's name most similar to the mention (unique names preferred)."""
    candidates = [j for cid in sorted(gold) for j in table.names_of_concept(cid)]
    return table.names[matcher.top_names(m.text, candidates, 1, avoid_shared=True)[0]]


def read_mining_summaries(output_dir: str | Path) -> dict:
    """The mining summaries already in ``output_dir`` (keyed by split), or {}; a damaged file is an input error."""
    path = Path(output_dir) / MINING_SUMMARY
    if not path.exists():
        return {}
    try:
        summaries = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputFormatError(path, None, f"not a mining summary ({e})") from None
    if not isinstance(summaries, dict):
        raise InputFormatError(path, None, "not a mining summary (expected a JSON object keyed by split)")
    return summaries


def save_mined_pairs(output_dir: str | Path, pairs_by_split: dict[str, Dataset], summaries: dict[str, dict], earlier: dict | None = None,
                     files: dict[str, str] | None = None) -> dict:
    """The one layout of mined pairs (``recipes/mine.py``, ``angel-trl mine``): each split's pairs in
    ``<output_dir>/<split>`` (``save_to_disk``) and one ``mining_summary.json`` keyed by split,
    ``summaries`` over the ``earlier`` ones (mining train and dev with two commands gives what stage 2
    expects); ``files`` are more text files written with them (the recipe's dataset card).
    Returns the summaries written.

    All of it replaces the old output in one step (:func:`~angel_trl.data.files.replaced_dir`): an
    interrupted save leaves the old pairs with their old summary, never new pairs beside an old
    summary. Splits not rewritten (and any other file) are kept. Holds the directory's lock meanwhile."""
    for split, pairs in pairs_by_split.items():
        check_replaceable_dataset(Path(output_dir) / split)
        if not len(pairs):  # saved all the same, with its summary; stage 2 refuses it by name
            logger.warning("%s: no pairs mined from the %s split; its summary in %s says what happened to its mentions: %s",
                           Path(output_dir) / split, split, MINING_SUMMARY, json.dumps(summaries.get(split, {})))
    merged = {**(earlier or {}), **summaries}
    files = {**(files or {}), MINING_SUMMARY: json.dumps(merged, indent=2, ensure_ascii=False) + "\n"}
    with exclusive_output_dir(output_dir) as out, replaced_dir(out, [*pairs_by_split, *files]) as new:
        for split, pairs in pairs_by_split.items():
            pairs.save_to_disk(str(new / split))
        for name, text in files.items():
            atomic_write_text(new / name, text)
    return merged
