"""The hybrid linker: beam-search candidates meet retrieved ones, all scored exactly by the model.

The generative linker wins far from any dictionary name and where context decides (ambiguous
names); string matchers win on near-exact mentions and on synonyms missing from what the model
learnt. For each mention the hybrid takes the union of

* the concepts of the constrained beam search (the generative linker's own candidates),
* the top concepts of a TF-IDF retriever (character 3-grams within words) over the dictionary,
* optionally (``dense_candidates``), the top concepts of a dense retriever (sentence-encoder
  cosine, :class:`~angel_trl.text.dense.DenseNameMatcher`): synonyms that share few letters,
* the concepts with a name equal to the mention, and the concepts training mentions with this
  text were linked to (the "KB + train" dictionary),

scores every candidate concept exactly with the model (teacher-forced log p(name | mention) of its
best-scoring name among the beam's names and its names nearest the mention by each retriever,
:func:`~angel_trl.hybrid.scoring.name_log_probs`), and ranks them with a
:class:`~angel_trl.hybrid.ranker.LinearRanker` fit on dev over these features:

``model`` (that log-prob), ``model_margin`` (to the mention's best), ``model_rank``, ``model_top``
(rank 0), ``in_beam``, ``beam_rank``, ``beam_top`` (the beam's top-1), ``tfidf`` (best cosine of the
concept's names), ``tfidf_margin``, ``tfidf_rank``, ``tfidf_top``, ``dense``, ``dense_margin``,
``dense_rank``, ``dense_top`` (the same four for the dense cosine; constant, so inert, without the
dense retriever), ``exact`` (a name equals the mention), ``train_share`` (share of this text's
training links that go to the concept), ``mention_seen`` (the text occurs in training), ``name_tokens`` (length of
the best name) and ``concept_seen`` (some training mention of the dictionary links to the concept: the
model learnt it from annotated text, not from KB names alone; ``model*concept_seen`` lets a ranker trust
the model's log-prob apart on the concepts it was trained on and on the others). A candidate's score
in the results is the ranker's probability that it is right.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np

from angel_trl.data.corpus import Corpus, Mention
from angel_trl.data.dictionary import table_with_training_texts, training_link_counts
from angel_trl.data.files import atomic_write_text, read_json_object
from angel_trl.data.kb import KnowledgeBase
from angel_trl.hybrid.candidates_file import PartialCandidates, read_candidates
from angel_trl.errors import FieldError, InputFormatError
from angel_trl.hybrid.ranker import FEATURES, LinearRanker, check_features, ranker_from_dict
from angel_trl.hybrid.selection import DEFAULT_RANKER_FEATURES, choose_ranker
from angel_trl.hybrid.scoring import name_log_probs
from angel_trl.linking.linker import Candidate, EntityLinker, LinkInput, LinkingResult, as_link_inputs
from angel_trl.progress import progress_bar
from angel_trl.text.examples import marked_source
from angel_trl.text.tfidf import TfidfNameMatcher

HYBRID_FILE = "hybrid.json"
HYBRID_FORMAT = "angel-trl-hybrid"
HYBRID_KEYS = ("format", "version", "config", "ranker", "train_counts")
EMBEDDINGS_DIR = "hybrid_embeddings"  # beside hybrid.json: the dense retriever's name embeddings


def feature_matrix(features: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """The columns ``names`` (:func:`check_features`) of a candidates' :data:`FEATURES` matrix."""
    columns = []
    for name in names:
        a, _, b = name.partition("*")
        column = features[:, FEATURES.index(a)]
        columns.append(column * features[:, FEATURES.index(b)] if b else column)
    return np.column_stack(columns) if columns else np.zeros((len(features), 0))
NO_RANK = 100.0  # the rank feature of a candidate a source did not return
# The encoder input of ``name_prior``: the markers around an empty mention, no context (the decoder
# prompt is an empty mention's too). A model trained on a few thousand annotated mentions learns their
# concepts' names as likely outputs whatever the input; its log-prob of a name given nothing measures
# that, and subtracting it (PMI, as in calibration of language-model answer scores) leaves what the
# mention itself says for the name.
NULL_SOURCE = marked_source("", "", "")


@dataclass
class HybridConfig:
    """How candidates are gathered and scored; saved with the ranker."""

    tfidf_candidates: int = field(default=10, metadata={"help": "Concepts the TF-IDF retriever adds per mention."})
    names_per_query: int = field(default=50, metadata={"help": "Nearest dictionary names the TF-IDF retriever reads to find its concepts."})
    names_per_concept: int = field(default=3, metadata={"help": "Names of a candidate concept the model scores besides the beam's (its nearest to the mention by TF-IDF; with the dense retriever, also its one nearest by that)."})
    dense_candidates: int = field(default=0, metadata={"help": "Concepts the dense retriever adds per mention; 0 leaves it out (it needs sentence-transformers: pip install 'angel-trl[bench]')."})
    dense_model: str | None = field(default=None, metadata={"help": "Sentence-transformers model of the dense retriever (the packaged all-MiniLM-L6-v2 when unset)."})
    top_k: int = field(default=5, metadata={"help": "Concepts returned per mention."})
    mentions_per_batch: int = field(default=16, metadata={"help": "Mentions whose candidates are scored together (one encoder pass)."})

    def __post_init__(self) -> None:
        """Refuse settings that cannot work (a :class:`FieldError` naming the field): a recipe's
        parser says where the value came from, :meth:`HybridLinker.load` names its file."""
        for name, least in _HYBRID_CONFIG_LEAST.items():
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise FieldError(name, f"must be an integer of at least {least}, not {value!r}")
        if self.dense_model is not None and (not isinstance(self.dense_model, str) or not self.dense_model.strip()):
            raise FieldError("dense_model", f"must be a model name or path (or unset), not {self.dense_model!r}")


# The least value of each integer HybridConfig field. Zero retrieved concepts leaves a retriever
# out; a candidate needs at least one of its names scored, a mention one candidate and a batch one mention.
_HYBRID_CONFIG_LEAST = {"tfidf_candidates": 0, "names_per_query": 1, "names_per_concept": 1, "dense_candidates": 0, "top_k": 1, "mentions_per_batch": 1}


@dataclass
class MentionCandidates:
    """The union of candidate concepts of one mention, with each one's best name and features."""

    concept_ids: list[str]
    names: list[str]
    features: np.ndarray  # (len(concept_ids), len(FEATURES))


class HybridLinker:
    """A generative :class:`EntityLinker` plus retrievers over its dictionary, ranked by ``ranker``
    (fit with :meth:`fit`; unfit, candidates are ranked by the model score alone)."""

    def __init__(
        self, linker: EntityLinker, train_counts: Mapping[str, Mapping[str, int]] | None = None, config: HybridConfig | None = None, ranker: LinearRanker | None = None,
        embedding_cache_dir: str | Path | None = None, show_progress: bool = False,
    ):
        """``train_counts`` (normalised training mention text -> {concept id: links}) makes the
        dictionary "KB + train" (the texts become synonyms of their concepts); without it the
        retrievers search the linker's own KB names. ``embedding_cache_dir`` keeps the dense
        retriever's name embeddings (encoding a large KB takes long on a CPU: ``show_progress``
        draws its bar)."""
        self.linker = linker
        self.train_counts = {text: dict(counts) for text, counts in (train_counts or {}).items()}
        # The concepts training mentions link to (the dictionary's, so composites and NIL are out, as
        # in the model's training rows): the ``concept_seen`` feature.
        self.trained_concepts = frozenset(cid for counts in self.train_counts.values() for cid in counts)
        if self.train_counts and linker.kb is None:
            raise ValueError("a KB + train dictionary needs the linker's KB (a linker saved without kb.jsonl has none)")
        if unknown := sorted({cid for counts in self.train_counts.values() for cid in counts if cid not in linker.kb.concepts}):
            # Their texts would name no concept of the dictionary (training_link_counts gives KB ids only).
            raise ValueError(f"training links to {len(unknown)} concept id(s) the KB does not have: {', '.join(unknown[:5])}{' ...' if len(unknown) > 5 else ''}")
        self.table = table_with_training_texts(linker.kb, self.train_counts, linker.table.lowercase) if self.train_counts else linker.table
        self.config = config or HybridConfig(top_k=linker.config.top_k)
        self.ranker = ranker
        self.matcher = TfidfNameMatcher(self.table, analyzer="char_wb")
        self.name_priors: dict[str, float] = {}  # name -> log p(name | NULL_SOURCE), scored once per name
        self.dense = None
        if self.config.dense_candidates > 0:
            from angel_trl.text.dense import DenseNameMatcher  # optional dependency, imported only when asked for

            self.dense = DenseNameMatcher(self.table, self.config.dense_model, device=str(linker.model.device), cache_dir=embedding_cache_dir, show_progress=show_progress)

    # What evaluation.link_and_score needs of a linker, as the generative linker has it.
    @property
    def encoder(self):
        return self.linker.encoder

    def inputs_for(self, mentions, texts):
        return self.linker.inputs_for(mentions, texts)

    # ------------------------------------------------------------------ candidates and features
    def candidates(
        self,
        inputs: Sequence[LinkInput | str],
        show_progress: bool = False,
        beams: Sequence[LinkingResult] | None = None,
        on_batch: Callable[[list[LinkingResult], list[MentionCandidates]], None] | None = None,
    ) -> tuple[list[LinkingResult], list[MentionCandidates]]:
        """The beam's results and every mention's candidate union with its features. ``beams``: this
        linker's results for these inputs, already decoded (beam search is then not run again).
        ``on_batch`` is given each scored batch's beams and candidates as soon as they are done."""
        ex = self.linker.config.example_config
        items = as_link_inputs(inputs, ex)
        if beams is None:
            beams = self.linker.link(items, show_progress=show_progress)
        elif len(beams) != len(items) or any(b.mention != it.mention for b, it in zip(beams, items)):
            raise ValueError(f"beams: {len(beams)} results given for {len(items)} inputs, not one per input in order")
        else:
            beams = list(beams)
        retrieved = self._tfidf_concepts([it.mention for it in items])
        queries, dense = self._dense_concepts([it.mention for it in items])
        out: list[MentionCandidates] = []
        step = self.config.mentions_per_batch
        for lo in progress_bar(range(0, len(items), step), show=show_progress, desc="hybrid scoring", unit="batch"):
            batch = range(lo, min(lo + step, len(items)))
            # per mention: each candidate concept's names to score, and its best TF-IDF cosine
            gathered = [self._gather(items[i].mention, beams[i], retrieved[i], dense[i], queries[i] if self.dense else None) for i in batch]
            flat = [[name for names in concepts.values() for name in names] for concepts, _, _ in gathered]
            scores = name_log_probs(self.linker.model, self.linker.encoder, [items[i].source for i in batch], [ex.prompt(items[i].mention) for i in batch], flat, mentions_per_batch=step)
            scored = [self._features(items[i].mention, concepts, cosines, dense_cosines, beams[i], score) for i, (concepts, cosines, dense_cosines), score in zip(batch, gathered, scores)]
            self._set_name_priors(scored)
            out.extend(scored)
            if on_batch is not None:
                on_batch(beams[lo : lo + step], scored)
        return beams, out

    def _set_name_priors(self, candidates: Sequence[MentionCandidates]) -> None:
        """Fill the ``name_prior`` column: each best name's log-prob given :data:`NULL_SOURCE`, scored
        once per name (a batch's new names in sorted order, so a run is reproducible)."""
        new = sorted({n for c in candidates for n in c.names} - self.name_priors.keys())
        if new:
            prompt = self.linker.config.example_config.prompt("")
            scores = name_log_probs(self.linker.model, self.linker.encoder, [NULL_SOURCE], [prompt], [new])[0]
            self.name_priors.update(zip(new, scores))
        column = FEATURES.index("name_prior")
        for c in candidates:
            c.features[:, column] = [self.name_priors[n] for n in c.names]

    def candidates_cached(
        self, inputs: Sequence[LinkInput], path: str | Path | None, show_progress: bool = False, beams: Sequence[LinkingResult] | None = None
    ) -> tuple[list[LinkingResult], list[MentionCandidates]]:
        """:meth:`candidates`, read from the candidates file ``path`` when it holds these mentions
        scored with these settings, else computed (from ``beams`` when given) and written there (no
        file: computed only). While computed, the rows go batch by batch into ``<path>.partial``,
        so that a stopped run resumes after its last saved batch."""
        if path is None:
            return self.candidates(inputs, show_progress, beams)
        mentions = [it.mention for it in inputs]
        if Path(path).exists():
            cached = read_candidates(path, mentions, FEATURES, self.cache_key())
            if cached is not None:
                return cached
        partial = PartialCandidates(path, mentions, FEATURES, self.cache_key())
        # Resume where an uninterrupted run's scoring batches (and, when it decodes, its beam-search
        # batches) start too, so that the rows after it come out of the same batches.
        unit = self.config.mentions_per_batch if beams is not None else math.lcm(self.config.mentions_per_batch, self.linker.config.batch_size)
        saved_beams, saved = partial.resume(unit)
        self._restore_name_priors(saved)
        rest = len(saved)
        new_beams, new = self.candidates(inputs[rest:], show_progress, None if beams is None else beams[rest:], on_batch=partial.append)
        beams, candidates = saved_beams + new_beams, saved + new
        partial.finish(beams, candidates)
        return beams, candidates

    def _restore_name_priors(self, candidates: Sequence[MentionCandidates]) -> None:
        """The name priors that rows scored before hold, so that later batches score only the names
        those did not have (as an uninterrupted run would)."""
        column = FEATURES.index("name_prior")
        for c in candidates:
            for name, prior in zip(c.names, c.features[:, column]):
                self.name_priors.setdefault(name, float(prior))

    def cache_key(self) -> dict:
        """What a candidates file must have been written with to be reused: the model, the beam,
        the candidate settings and a digest of the dictionary (names and training links)."""
        digest = hashlib.sha256(json.dumps([self.table.names, self.table.concept_ids, sorted(self.train_counts.items())], ensure_ascii=False).encode()).hexdigest()[:16]
        settings = {k: v for k, v in asdict(self.config).items() if k not in ("top_k", "mentions_per_batch")}
        return {"model": str(getattr(self.linker.model.config, "_name_or_path", "")), "num_beams": self.linker.config.num_beams, **settings, "dictionary": digest}

    def _tfidf_concepts(self, mentions: Sequence[str]) -> list[dict[str, float]]:
        """Per mention, the first ``tfidf_candidates`` concepts of its nearest names -> best cosine."""
        if not mentions:
            return []
        return self._first_concepts(*self.matcher.nearest(list(mentions), self.config.names_per_query), self.config.tfidf_candidates)

    def _dense_concepts(self, mentions: Sequence[str]) -> tuple[np.ndarray | None, list[dict[str, float]]]:
        """The mentions' dense embeddings and, per mention, the first ``dense_candidates`` concepts
        of its nearest names by the dense retriever -> best cosine (none without it)."""
        if self.dense is None or not mentions:
            return None, [{} for _ in mentions]
        queries = self.dense.encode_mentions(mentions)
        return queries, self._first_concepts(*self.dense.nearest(queries, self.config.names_per_query), self.config.dense_candidates)

    def _first_concepts(self, idx: np.ndarray, sims: np.ndarray, most: int) -> list[dict[str, float]]:
        """Per row of ranked names, the concepts of its first names (at most ``most``) -> best cosine."""
        found = []
        for row, sim in zip(idx, sims):
            concepts: dict[str, float] = {}
            for i, s in zip(row.tolist(), sim.tolist()):
                for cid in self.table.concept_ids[i]:
                    if cid not in concepts and len(concepts) < most:
                        concepts[cid] = float(s)
            found.append(concepts)
        return found

    def _union(self, mention: str, beam: LinkingResult, tfidf: dict[str, float], dense: dict[str, float]) -> list[str]:
        """Beam concepts, then retrieved (TF-IDF, dense), exact-match and training-dictionary ones (first seen first)."""
        union = dict.fromkeys(cid for b in beam.beam for cid in b.concept_ids)
        union.update(dict.fromkeys(tfidf))
        union.update(dict.fromkeys(dense))
        exact = self.table.index_of(mention)
        if exact is not None:
            union.update(dict.fromkeys(self.table.concept_ids[exact]))
        union.update(dict.fromkeys(self.train_counts.get(self.table.normalize(mention), {})))
        return list(union)

    def _gather(
        self, mention: str, beam: LinkingResult, tfidf: dict[str, float], dense: dict[str, float], query: np.ndarray | None
    ) -> tuple[dict[str, list[str]], list[float], list[float]]:
        """Each candidate concept's names to score (its beam names, then its dictionary names nearest
        the mention by TF-IDF, then its one nearest by the dense retriever, no repeats) and its best
        TF-IDF and dense cosines over all its names (dense: 0 without the dense retriever)."""
        union = self._union(mention, beam, tfidf, dense)
        name_idx = [np.asarray(self.table.names_of_concept(cid), dtype=np.int64) for cid in union]
        # One product per retriever for all the names of all candidates of this mention.
        every = np.concatenate(name_idx) if union else np.zeros(0, dtype=np.int64)
        sims = self.matcher.similarities(mention, every) if union else np.zeros(0)
        dense_sims = self.dense.similarities(query, every) if union and self.dense is not None else None
        concepts, cosines, dense_cosines, pos = {}, [], [], 0
        for cid, idx in zip(union, name_idx):
            sim = sims[pos : pos + len(idx)]
            nearest = idx[np.lexsort((idx, -sim))[: self.config.names_per_concept]]  # as TfidfNameMatcher.top_names
            names = [b.name for b in beam.beam if cid in b.concept_ids] + [self.table.names[i] for i in nearest.tolist()]
            if dense_sims is not None:
                dense_sim = dense_sims[pos : pos + len(idx)]
                names.append(self.table.names[int(idx[np.lexsort((idx, -dense_sim))[0]])])  # one: it is dearer to score than to find
                dense_cosines.append(float(dense_sim.max()) if len(dense_sim) else 0.0)
            else:
                dense_cosines.append(0.0)
            pos += len(idx)
            concepts[cid] = list(dict.fromkeys(names))  # never empty
            cosines.append(float(sim.max()) if len(sim) else 0.0)
        return concepts, cosines, dense_cosines

    def _features(self, mention: str, concepts: dict[str, list[str]], cosines: list[float], dense_cosines: list[float], beam: LinkingResult, scores: list[float]) -> MentionCandidates:
        """Features of each candidate concept; ``scores`` are its names' log-probs, concept by concept."""
        union = list(concepts)
        key = self.table.normalize(mention)
        counts = self.train_counts.get(key, {})
        total = sum(counts.values())
        exact = self.table.index_of(mention)
        exact_ids = set(self.table.concept_ids[exact]) if exact is not None else set()
        beam_rank: dict[str, int] = {}
        for rank, b in enumerate(beam.beam):
            for cid in b.concept_ids:
                beam_rank.setdefault(cid, rank)
        best_name, best_score, pos = [], [], 0
        for names in concepts.values():
            j = int(np.argmax(scores[pos : pos + len(names)]))
            best_name.append(names[j])
            best_score.append(scores[pos + j])
            pos += len(names)
        model = np.asarray(best_score)
        cos, dense = np.asarray(cosines), np.asarray(dense_cosines)
        rows = np.column_stack(
            [
                model,
                model - model.max(),
                _ranks(model),
                _ranks(model) == 0,
                [cid in beam_rank for cid in union],
                [beam_rank.get(cid, NO_RANK) for cid in union],
                [beam_rank.get(cid) == 0 for cid in union],
                cos,
                cos - cos.max(),
                _ranks(cos),
                _ranks(cos) == 0,
                dense,
                dense - dense.max(),
                _ranks(dense),
                _ranks(dense) == 0,
                [cid in exact_ids for cid in union],
                [counts.get(cid, 0) / total if total else 0.0 for cid in union],
                np.full(len(union), float(total > 0)),
                [len(self.linker.encoder.names([n])[0]) for n in best_name],
                [cid in self.trained_concepts for cid in union],
                np.zeros(len(union)),  # name_prior: filled by _set_name_priors, one scoring per name
            ]
        ).astype(float)
        return MentionCandidates(union, best_name, rows)

    # ------------------------------------------------------------------ ranking
    def rank(self, beams: Sequence[LinkingResult], candidates: Sequence[MentionCandidates]) -> list[LinkingResult]:
        results = []
        for beam, cands in zip(beams, candidates):
            if self.ranker is None:
                score = cands.features[:, FEATURES.index("model")]
            else:
                score = self.ranker.probability(feature_matrix(cands.features, self.ranker.features))
            order = np.lexsort((np.arange(len(score)), -score))[: self.config.top_k]
            ranked = [Candidate(cands.concept_ids[j], cands.names[j], float(score[j]), [cands.names[j]]) for j in order]
            results.append(LinkingResult(beam.mention, ranked, beam.beam))
        return results

    def link(self, inputs: Sequence[LinkInput | str], show_progress: bool = False) -> list[LinkingResult]:
        """Link like :meth:`EntityLinker.link`; each candidate's score is the ranker's probability
        that it is right (the model log-prob when no ranker is fit)."""
        return self.rank(*self.candidates(inputs, show_progress))

    def fit(self, candidates: Sequence[MentionCandidates], gold: Sequence[set[str]], features: Sequence[str] = DEFAULT_RANKER_FEATURES, seed: int = 42, objective: str = "listwise") -> LinearRanker:
        """Fit the ranker on dev mentions' candidates and their gold concept ids (canonical)."""
        check_features(features)
        if not candidates or len(candidates) != len(gold):
            raise ValueError(f"the ranker is fit on one gold set per mention's candidates: {len(candidates)} candidates, {len(gold)} gold sets")
        X = np.concatenate([feature_matrix(c.features, features) for c in candidates])
        y = np.concatenate([[cid in g for cid in c.concept_ids] for c, g in zip(candidates, gold)]).astype(int)
        self.ranker = LinearRanker.fit(X, y, features, groups=[len(c.concept_ids) for c in candidates], objective=objective, seed=seed)
        return self.ranker

    # ------------------------------------------------------------------ saving
    def save(self, directory: str | Path) -> Path:
        """``hybrid.json`` beside the linker: config, ranker and training dictionary (plain JSON);
        with the dense retriever, its name embeddings in ``hybrid_embeddings/`` (``.npy``, no pickle)."""
        if self.ranker is None:
            raise ValueError("fit the ranker before saving the hybrid linker")
        path = Path(directory) / HYBRID_FILE
        if self.dense is not None:
            self.dense.save_name_vectors(Path(directory) / EMBEDDINGS_DIR)
        payload = {"format": HYBRID_FORMAT, "version": 1, "config": asdict(self.config), "ranker": asdict(self.ranker), "train_counts": self.train_counts}
        atomic_write_text(path, json.dumps(payload, ensure_ascii=False) + "\n")
        return path

    @classmethod
    def from_training(
        cls, linker: EntityLinker, train: Corpus | None, config: HybridConfig | None = None, embedding_cache_dir: str | Path | None = None, show_progress: bool = False,
    ) -> HybridLinker:
        """The hybrid over "KB + train" (``train`` given; its mentions' links become the training
        dictionary) or over the KB alone (``train`` is None)."""
        counts = training_link_counts(train, linker.kb, linker.table.lowercase) if train is not None else None
        return cls(linker, counts, config, embedding_cache_dir=embedding_cache_dir, show_progress=show_progress)

    def fit_on(
        self,
        corpus: Corpus,
        kb: KnowledgeBase,
        features: Sequence[str] = DEFAULT_RANKER_FEATURES,
        seed: int = 42,
        show_progress: bool = False,
        objective: str = "listwise",
        cache: str | Path | None = None,
        choose_from: Mapping[str, tuple[Sequence[str], str]] | None = None,
        folds: int = 5,
        keep: Callable[[Mention], bool] | None = None,
    ) -> dict:
        """Fit the ranker on ``corpus`` (the dev split; NIL mentions left out); returns what it saw.
        ``cache``: a candidates file to reuse or write (:meth:`candidates_cached`); ``choose_from``:
        see :meth:`fit_mentions`; ``keep``: which mentions the fit uses (e.g.
        :func:`~angel_trl.hybrid.selection.fit_set_filter`; all when unset). Every mention is scored
        (and cached) either way, so fits on different subsets share one candidates file."""
        mentions = [m for m in corpus.mentions if not m.is_nil]
        in_kb = sum(any(kb.canonical_id(g) for g in m.ids) for m in mentions)
        if not in_kb:  # before any scoring: no gold concept to learn from
            raise InputFormatError(corpus.source, None, f"none of its {len(mentions)} non-NIL mentions has a gold concept in the KB ({kb.source}): the hybrid's ranker has nothing to fit on")
        _, candidates = self.candidates_cached(self.inputs_for(mentions, corpus.texts()), cache, show_progress)
        return self.fit_mentions(mentions, candidates, kb, features, seed, objective, choose_from, folds, keep)

    def fit_mentions(
        self,
        mentions: Sequence[Mention],
        candidates: Sequence[MentionCandidates],
        kb: KnowledgeBase,
        features: Sequence[str] = DEFAULT_RANKER_FEATURES,
        seed: int = 42,
        objective: str = "listwise",
        choose_from: Mapping[str, tuple[Sequence[str], str]] | None = None,
        folds: int = 5,
        keep: Callable[[Mention], bool] | None = None,
    ) -> dict:
        """Fit the ranker on scored ``candidates`` of ``mentions`` (NIL ones and, with ``keep``, those
        it rejects are left out); returns what it saw. With ``choose_from`` (name -> (features,
        objective), e.g. :data:`~angel_trl.hybrid.selection.RANKER_MENU`), the ranker fit is the best
        by held-out acc@1 over ``folds`` document folds among ``features``/``objective`` ("given") and those."""
        kept = [(m, c) for m, c in zip(mentions, candidates, strict=True) if not m.is_nil and (keep is None or keep(m))]
        if not kept:
            raise ValueError(f"no dev mention is left to fit the hybrid's ranker on ({len(mentions)} given, {sum(m.is_nil for m in mentions)} NIL)")
        left_out = sum(not m.is_nil for m in mentions) - len(kept)  # by ``keep``
        mentions, candidates = [m for m, _ in kept], [c for _, c in kept]
        gold = [{kb.canonical_id(g) for g in m.ids} - {None} for m in mentions]
        choice = None
        if choose_from:
            for names, _ in choose_from.values():
                check_features(names)
            menu = {"given": (tuple(features), objective), **choose_from}
            rows = [np.asarray([cid in g for cid in c.concept_ids]) for c, g in zip(candidates, gold)]
            choice = choose_ranker(lambda names: [feature_matrix(c.features, names) for c in candidates], rows, [m.doc_id for m in mentions], menu, folds, seed)
            features, objective = choice.features, choice.objective
        ranker = self.fit(candidates, gold, features, seed, objective)
        return {
            **({"selection": asdict(choice)} if choice else {}),
            "objective": objective,
            "mentions": len(mentions),
            "mentions_left_out": left_out,
            "candidates": int(sum(len(c.concept_ids) for c in candidates)),
            "gold_in_candidates": int(sum(bool(set(c.concept_ids) & g) for c, g in zip(candidates, gold))),
            "features": dict(zip(ranker.features, ranker.coef)),
        }

    @classmethod
    def load(cls, linker: EntityLinker, path: str | Path, show_progress: bool = False) -> HybridLinker:
        """The hybrid saved at ``path`` (``hybrid.json`` or its folder) over ``linker``; ``show_progress``
        draws a bar while the dense retriever encodes names its cache lacks. A damaged file, or one
        fit over another linker, is an :class:`InputFormatError` naming it and the field."""
        path = Path(path)
        if path.is_dir():
            path = path / HYBRID_FILE
        data = read_json_object(path)
        if data.get("format") != HYBRID_FORMAT or data.get("version") != 1:
            raise InputFormatError(path, None, f"not an angel-trl hybrid linker file (expected \"format\": \"{HYBRID_FORMAT}\", \"version\": 1)")
        missing, unknown = [k for k in HYBRID_KEYS if k not in data], [k for k in data if k not in HYBRID_KEYS]
        if missing or unknown:
            raise InputFormatError(path, None, "; ".join(filter(None, [missing and f"missing {', '.join(missing)}", unknown and f"unknown field(s) {', '.join(map(repr, unknown))}"])))
        config = hybrid_config_from_dict(data["config"], path)
        ranker = ranker_from_dict(data["ranker"], path, "ranker")
        counts = _train_counts(data["train_counts"], path)
        _check_dictionary(linker, counts, path)
        return cls(linker, counts, config, ranker, embedding_cache_dir=path.parent / EMBEDDINGS_DIR, show_progress=show_progress)


def hybrid_config_from_dict(data: object, path: str | Path) -> HybridConfig:
    """The :class:`HybridConfig` saved in ``path`` (its ``config``); a field missing takes its
    default (files written before it), an unknown or bad one is an :class:`InputFormatError`."""
    if not isinstance(data, dict):
        raise InputFormatError(path, None, "config must be a JSON object of hybrid settings")
    known = [f.name for f in fields(HybridConfig)]
    unknown = [k for k in data if k not in known]
    if unknown:
        raise InputFormatError(path, None, f"config: unknown field(s) {', '.join(map(repr, unknown))}; a hybrid config has {', '.join(known)}")
    try:
        return HybridConfig(**data)
    except FieldError as e:
        raise InputFormatError(path, None, f"config.{e.field} {e.problem}") from None


def _train_counts(data: object, path: str | Path) -> dict[str, dict[str, int]]:
    """The saved training dictionary (mention text -> {concept id: links}), its shape checked."""
    if not isinstance(data, dict):
        raise InputFormatError(path, None, "train_counts must be a JSON object: training mention text -> {concept id: links}")
    for text, counts in data.items():
        if not isinstance(counts, dict) or not counts or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in counts.values()):
            raise InputFormatError(path, None, f"train_counts[{json.dumps(text, ensure_ascii=False)}] must map concept ids to positive link counts, not {json.dumps(counts, ensure_ascii=False)[:80]}")
    return data


def _check_dictionary(linker: EntityLinker, counts: Mapping[str, Mapping[str, int]], path: str | Path) -> None:
    """Refuse a training dictionary that is not over ``linker``: its concepts must be in the
    linker's KB (a missing one would be a candidate without a name) and its texts normalised as
    the linker normalises mentions (another text would never be looked up)."""
    if not counts:
        return
    if linker.kb is None:
        raise InputFormatError(path, None, "its training dictionary (train_counts) needs the linker's KB, and the linker was saved without kb.jsonl")
    missing = sorted({cid for ids in counts.values() for cid in ids} - linker.kb.concepts.keys())
    if missing:
        raise InputFormatError(path, None, f"train_counts links to {len(missing)} concept(s) the linker's KB ({linker.kb.source}) lacks, e.g. {', '.join(missing[:3])}: this hybrid linker was fit over another linker")
    odd = [text for text in counts if linker.table.normalize(text) != text]
    if odd:
        raise InputFormatError(path, None, f"train_counts text {json.dumps(odd[0], ensure_ascii=False)} is not normalised as the linker normalises mentions (lowercase={linker.table.lowercase}): this hybrid linker was fit over another linker")


def _ranks(values: np.ndarray) -> np.ndarray:
    """0 for the highest value, 1 for the next, ...; ties share the better rank."""
    return np.asarray([float((values > v).sum()) for v in values])
