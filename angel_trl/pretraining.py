"""KB-guided pre-training data (ANGEL_PT): training rows and preference pairs made from the KB alone.

For every name ``s1`` of every concept (the paper's template clauses, section "Application in
Pre-training" of the ANGEL summary)::

    source  [ST] s1 [ET] has synonyms such as s2, s3        (other names of the concept, seeded sample)
            [ST] s1 [ET] is defined as d                    (when the concept has a definition)
            [ST] s1 [ET]                                    (neither: a bare name)
    prompt  s1 is
    target  the concept's name most similar to s1 (TF-IDF char 3-grams), s1 itself excluded

One positive row per source clause, in the column format stage 1 trains on (``source``, ``prompt``,
``target``, ``kind``), and per positive row one preference pair per negative, in the format of
:mod:`angel_trl.mining` (``prompt`` = source, ``decoder_prompt``, ``chosen`` = target, ``rejected``
plus metadata). Negatives are the names of OTHER concepts nearest to ``s1`` by TF-IDF (one name per
concept, never a name the positive concept also has, e.g. a shared "ada"), found by exact chunked
sparse products, not model predictions (the paper's choice for pre-training, for speed).

Choices:

* The target is left out of the synonym clause: with it in the input the model would learn to copy.
  A two-name concept therefore has no synonym clause (a bare row, or its definition).
* As in stage 1, a target unique to the concept is preferred over a name shared with other concepts.
* A concept with a single name has no other synonym: by default (``single_name_concepts="self"``)
  its name is its own target (as in stage 1's KB rows) so the model still learns to produce it;
  ``"skip"`` leaves it out. Both are counted (``single_name_concepts``, ``skipped_single_name_concepts``).
* Definitions exist only where the KB file has them: our JSONL format (``"definition"``). The MEDIC
  and MeSH files read here carry none, so their corpora have synonym and bare rows only.

The corpus is generated concept-chunk by concept-chunk: :meth:`PretrainCorpusBuilder.build` keeps it
in memory (small KBs); :meth:`PretrainCorpusBuilder.write` writes one parquet file per chunk and
split (``positives/``, ``pairs/``) and a ``manifest.json`` (written atomically after each shard) so
that a restarted run skips finished shards. Rows depend only on the KB, the config and the seed,
never on the shard layout, on resuming or on ``num_proc``: shards are independent, so ``num_proc``
worker processes (forked, sharing the parent's TF-IDF index) generate them in parallel, while the
parent alone records finished shards in the manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import random
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, Features, List, Value, load_dataset
from tqdm.auto import tqdm

from .data import DataArguments
from .examples import END_MARKER, START_MARKER, ExampleConfig, Stage1Rows
from .io_utils import atomic_save_dataset, write_json
from .kb import Concept, KnowledgeBase
from .names import NameTable
from .targets import TfidfNameMatcher

if TYPE_CHECKING:  # stage 1 imports torch: loaded only when training, not to build a corpus
    from .stage1 import ModelArguments
    from .trainers import Stage1Config

logger = logging.getLogger(__name__)
T = TypeVar("T")

SINGLE_NAME_MODES = ("self", "skip")
MANIFEST = "manifest.json"
MANIFEST_FORMAT = "angel-trl-pretrain-corpus"
SPLITS = ("positives", "pairs")
# Stage 1's row columns (examples.Stage1Rows.to_dict) and mining's pair columns (mining._COLUMNS).
POSITIVE_FEATURES = Features({k: Value("string") for k in ("source", "prompt", "target", "kind")})
PAIR_FEATURES = Features(
    {
        **{k: Value("string") for k in ("prompt", "decoder_prompt", "chosen", "rejected", "mention_id", "mention")},
        "gold_ids": List(Value("string")),
        "rejected_id": Value("string"),
        "case": Value("string"),
        "chosen_rank": Value("int64"),
        "rejected_rank": Value("int64"),
        "chosen_score": Value("float64"),
        "rejected_score": Value("float64"),
    }
)
PAIR_CASE = "kb_tfidf"


@dataclass
class PretrainCorpusConfig:
    """How the KB pre-training corpus is made (text normalisation, seed and shared-name targets come
    from the stage-1 config: ``lowercase``, ``max_context_words``, ``seed``, ``avoid_shared_targets``)."""

    corpus_dir: str | None = field(default=None, metadata={"help": "Write the corpus here as parquet shards + manifest.json (resumable); kept in memory when unset."})
    pairs_dir: str | None = field(default=None, metadata={"help": "Also save the KB preference pairs here (`save_to_disk`), the train_pairs of recipes/stage2_dpo.py."})
    context_synonyms: int = field(default=3, metadata={"help": "Other names listed in '[ST] s1 [ET] has synonyms such as ...' (seeded sample; the target is never listed)."})
    use_definitions: bool = field(default=True, metadata={"help": "Add a '[ST] s [ET] is defined as d' row for concepts with a definition (JSONL KBs only)."})
    negatives_per_name: int = field(default=3, metadata={"help": "Preference pairs per positive row: the TF-IDF-nearest names of this many other concepts."})
    single_name_concepts: str = field(default="self", metadata={"help": "Concepts with one name: 'self' (the name is its own target) or 'skip' (counted)."})
    concepts_per_shard: int = field(default=20000, metadata={"help": "Concepts per generated chunk (one parquet file per split): the unit of progress and resume."})
    similarity_chunk_size: int = field(default=128, metadata={"help": "Names per sparse similarity product; bounds memory (MeSH chemicals: ~160k stored similarities a name)."})
    num_proc: int = field(default=1, metadata={"help": "Worker processes generating shards in parallel (forked on Linux, sharing the TF-IDF index); the rows do not depend on it. Under `accelerate launch`, only the main process builds the corpus: this is how it uses more cores."})

    def __post_init__(self):
        if self.single_name_concepts not in SINGLE_NAME_MODES:
            raise ValueError(f"single_name_concepts must be one of {SINGLE_NAME_MODES}, not {self.single_name_concepts!r}")
        for name in ("concepts_per_shard", "similarity_chunk_size", "num_proc"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.context_synonyms < 0 or self.negatives_per_name < 0:
            raise ValueError("context_synonyms and negatives_per_name cannot be negative")


@dataclass
class PretrainCorpus:
    """An in-memory pre-training corpus: stage-1 rows, preference pairs and counts."""

    positives: Stage1Rows
    pairs: Dataset
    summary: dict


def _empty(features: Features) -> dict[str, list]:
    return {k: [] for k in features}


class PretrainCorpusBuilder:
    """Makes the KB pre-training corpus, chunk by chunk (see the module docstring)."""

    def __init__(self, kb: KnowledgeBase, config: PretrainCorpusConfig, example: ExampleConfig | None = None, seed: int = 0, avoid_shared: bool = True):
        self.kb = kb
        self.config = config
        self.example = example or ExampleConfig()
        self.seed = seed
        self.avoid_shared = avoid_shared
        self.table = NameTable.from_kb(kb, self.example.lowercase)
        self.concepts: list[Concept] = list(kb.concepts.values())

    @cached_property
    def matcher(self) -> TfidfNameMatcher:
        # Built only when a shard is generated: a resumed, finished corpus needs no TF-IDF index.
        return TfidfNameMatcher(self.table)

    @property
    def num_shards(self) -> int:
        return -(-len(self.concepts) // self.config.concepts_per_shard)

    def fingerprint(self) -> dict:
        """What the rows depend on: a corpus directory built with another fingerprint is not resumed."""
        digest = hashlib.sha256()
        for c in self.concepts:
            digest.update(json.dumps([c.id, c.names, c.definition], ensure_ascii=False).encode())
        # Left out: what changes where or how fast the rows are made, not the rows (a corpus started
        # with num_proc=1 resumes with num_proc=4).
        corpus = {k: v for k, v in asdict(self.config).items() if k not in ("corpus_dir", "pairs_dir", "similarity_chunk_size", "num_proc")}
        return {
            "corpus": corpus,
            "example": asdict(self.example),
            "seed": self.seed,
            "avoid_shared": self.avoid_shared,
            # The content, not the path: a KB read from a moved data folder resumes.
            "kb": {"concepts": len(self.concepts), "names": len(self.table), "sha256": digest.hexdigest()},
        }

    # Generation -----------------------------------------------------------------------------

    def _shard_concepts(self, index: int) -> list[Concept]:
        per = self.config.concepts_per_shard
        return self.concepts[index * per : (index + 1) * per]

    def _keeps(self, own: list[int]) -> bool:
        return len(own) > 1 or self.config.single_name_concepts == "self"

    def _num_sources(self, shards) -> int:
        """Source names (concept, name) of the given shards: the progress bar's total."""
        owns = (self.table.names_of_concept(c.id) for i in shards for c in self._shard_concepts(i))
        return sum(len(own) for own in owns if self._keeps(own))

    def shard(self, index: int, progress: tqdm | None = None) -> tuple[dict, dict, Counter]:
        """Positive rows, pairs (column dicts) and counts of the ``index``-th chunk of concepts."""
        positives, pairs, counts = _empty(POSITIVE_FEATURES), _empty(PAIR_FEATURES), Counter()
        sources: list[tuple[Concept, int]] = []
        for concept in self._shard_concepts(index):
            own = self.table.names_of_concept(concept.id)
            counts["concepts"] += 1
            counts["single_name_concepts"] += len(own) == 1
            if not self._keeps(own):
                counts["skipped_single_name_concepts"] += 1
                continue
            sources.extend((concept, i) for i in own)
        step = self.config.similarity_chunk_size
        for start in range(0, len(sources), step):
            part = sources[start : start + step]
            rows = sorted({i for _, i in part})
            sims = self.matcher.name_similarities(rows)
            row_of = {i: r for r, i in enumerate(rows)}
            for concept, i in part:
                r = row_of[i]
                lo_, hi_ = sims.indptr[r], sims.indptr[r + 1]
                self._add_name(concept, i, sims.indices[lo_:hi_], sims.data[lo_:hi_], positives, pairs, counts)
            if progress is not None:
                progress.update(len(part))
        return positives, pairs, counts

    def _add_name(self, concept: Concept, i: int, cols: np.ndarray, sims: np.ndarray, positives: dict, pairs: dict, counts: Counter) -> None:
        """Rows and pairs of name ``i`` of ``concept``; ``cols``/``sims``: its similarity row (sorted columns)."""
        names = self.table.names
        own = self.table.names_of_concept(concept.id)
        others = [j for j in own if j != i]
        counts["source_names"] += 1
        target = self._target(others, cols, sims, counts) if others else i
        rest = [j for j in others if j != target]
        # One generator per (seed, concept, name): the sample does not depend on chunking or resuming.
        rng = random.Random(f"{self.seed}\t{concept.id}\t{names[i]}")
        listed = rng.sample(rest, min(self.config.context_synonyms, len(rest)))
        head = f"{START_MARKER} {names[i]} {END_MARKER}"
        clauses = []
        if listed:
            clauses.append((f"{head} has synonyms such as {', '.join(names[j] for j in listed)}", "pt_synonyms"))
        definition = self._definition(concept)
        if definition:
            clauses.append((f"{head} is defined as {definition}", "pt_definition"))
        if not clauses:
            clauses.append((head, "pt_name"))
        negatives = self._negatives(concept.id, own, cols, sims)
        if len(negatives) < self.config.negatives_per_name:
            counts["names_short_of_negatives"] += 1
        prompt = self.example.prompt(names[i])
        for source, kind in clauses:
            positives["source"].append(source)
            positives["prompt"].append(prompt)
            positives["target"].append(names[target])
            positives["kind"].append(kind)
            counts[f"rows_{kind}"] += 1
            for rank, (j, score) in enumerate(negatives):
                pairs["prompt"].append(source)
                pairs["decoder_prompt"].append(prompt)
                pairs["chosen"].append(names[target])
                pairs["rejected"].append(names[j])
                pairs["mention_id"].append(f"{concept.id}|{names[i]}|{kind}")
                pairs["mention"].append(names[i])
                pairs["gold_ids"].append([concept.id])
                pairs["rejected_id"].append(self.table.concept_ids[j][0])
                pairs["case"].append(PAIR_CASE)
                pairs["chosen_rank"].append(-1)  # as mining's TF-IDF rule: not a model ranking
                pairs["rejected_rank"].append(rank)
                pairs["chosen_score"].append(None)
                pairs["rejected_score"].append(score)
                counts["pairs"] += 1

    def _target(self, others: list[int], cols: np.ndarray, sims: np.ndarray, counts: Counter) -> int:
        """The most similar of ``others`` (unique names first when ``avoid_shared``), ties to the lowest index."""
        candidates = others
        if self.avoid_shared:
            candidates = [j for j in others if len(self.table.concept_ids[j]) == 1] or others
        cand = np.asarray(candidates)
        pos = np.searchsorted(cols, cand)
        hit = pos < len(cols)
        hit[hit] = cols[pos[hit]] == cand[hit]
        cand_sims = np.zeros(len(cand), dtype=sims.dtype)
        cand_sims[hit] = sims[pos[hit]]  # a name sharing no 3-gram with the source scores 0
        best = int(cand[np.lexsort((cand, -cand_sims))[0]])
        if len(self.table.concept_ids[best]) > 1:
            counts["targets_shared_name"] += 1
        return best

    def _negatives(self, concept_id: str, own: list[int], cols: np.ndarray, sims: np.ndarray) -> list[tuple[int, float]]:
        """Names of other concepts most similar to the source (one per concept, ties to the lowest index).

        Exact: the ``m`` best similarities (all ties at the cut included) are sorted; when they do
        not hold enough names of other concepts, ``m`` grows.
        """
        want = self.config.negatives_per_name
        if want == 0:
            return []
        m = 2 * want + len(own)
        while True:
            if m >= len(sims):
                top = np.arange(len(sims))
            else:
                cut = sims[np.argpartition(-sims, m - 1)[m - 1]]
                top = np.flatnonzero(sims >= cut)
            top = top[np.lexsort((cols[top], -sims[top]))]
            out: list[tuple[int, float]] = []
            used: set[str] = set()
            for p in top:
                ids = self.table.concept_ids[int(cols[p])]
                if concept_id in ids or used.intersection(ids):
                    continue
                used.update(ids)
                out.append((int(cols[p]), float(sims[p])))
                if len(out) == want:
                    return out
            if len(top) == len(sims):
                return out
            m *= 4

    def _definition(self, concept: Concept) -> str:
        if not (self.config.use_definitions and concept.definition):
            return ""
        # Cut like a mention's context, so one long definition cannot fill the encoder.
        return self.example.norm(" ".join(concept.definition.split()[: self.example.max_context_words]))

    # In memory ------------------------------------------------------------------------------

    def build(self, show_progress: bool = False, num_proc: int | None = None) -> PretrainCorpus:
        """The whole corpus in memory (small KBs; the same rows as :meth:`write`). ``num_proc``:
        worker processes (default ``config.num_proc``); their shards are put back in order."""
        rows, pairs, counts = Stage1Rows(), _empty(PAIR_FEATURES), Counter()
        indices = list(range(self.num_shards))
        with tqdm(total=self._num_sources(indices), unit="name", desc="KB pre-training corpus", disable=not show_progress) as progress:
            shards = dict(self._map_shards(PretrainCorpusBuilder.shard, indices, self._num_proc(num_proc), progress))
        for index in indices:
            pos, prs, c = shards.pop(index)
            for source, prompt, target, kind in zip(pos["source"], pos["prompt"], pos["target"], pos["kind"]):
                rows.add(source, prompt, target, kind)
            for k in pairs:
                pairs[k].extend(prs[k])
            counts.update(c)
        rows.counts = Counter(counts)
        summary = {"shards": self.num_shards, **_totals(counts)}
        return PretrainCorpus(rows, Dataset.from_dict(pairs, features=PAIR_FEATURES), summary)

    # Streaming to disk ----------------------------------------------------------------------

    def write(self, corpus_dir: str | Path, show_progress: bool = True, num_proc: int | None = None, max_shards: int | None = None) -> dict:
        """Write (or finish) the sharded corpus in ``corpus_dir``; returns its summary.

        Shards listed in the manifest (with both files present) are skipped, so a killed run
        resumes where it stopped. A directory built with another KB or config is an error.
        ``num_proc`` (default ``config.num_proc``) worker processes write shard files in parallel;
        this process alone updates the manifest as each one finishes, so the output is the same.
        ``max_shards`` writes at most that many of the missing shards, in order (a time-boxed build;
        a later call finishes it). ``shards_written`` / ``names_written`` count this call's work.
        """
        if max_shards is not None and max_shards < 1:
            raise ValueError(f"max_shards must be at least 1, not {max_shards!r}")
        num_proc = self._num_proc(num_proc)
        corpus_dir = Path(corpus_dir)
        manifest_path = corpus_dir / MANIFEST
        fingerprint = self.fingerprint()
        if manifest_path.exists():
            manifest = json.loads(manifest_path.read_text())
            if manifest.get("format") != MANIFEST_FORMAT:
                raise ValueError(f"{manifest_path}: not an angel-trl pre-training corpus manifest")
            if manifest["fingerprint"] != fingerprint:
                raise ValueError(f"{manifest_path}: the corpus there was built from another KB or config; use another corpus_dir or delete it")
        else:
            manifest = {"format": MANIFEST_FORMAT, "version": 1, "fingerprint": fingerprint, "num_shards": self.num_shards, "shards": {}}
        done = {k for k, v in manifest["shards"].items() if all((corpus_dir / f).exists() for f in v["files"])}
        manifest["shards"] = {k: manifest["shards"][k] for k in sorted(done)}
        todo = [i for i in range(self.num_shards) if _shard_key(i) not in done][:max_shards]
        names = self._num_sources(todo)
        def shards_saved() -> str:  # a long build shows what a restart would keep
            return f"KB pre-training corpus ({len(manifest['shards'])}/{self.num_shards} shards saved)"

        with tqdm(total=names, unit="name", desc=shards_saved(), disable=not show_progress) as progress:
            for index, entry in self._map_shards(partial(_shard_files, corpus_dir=corpus_dir), todo, num_proc, progress):
                manifest["shards"][_shard_key(index)] = entry
                # Sorted: workers finish in any order, the manifest is the same as with one process.
                manifest["shards"] = dict(sorted(manifest["shards"].items()))
                write_json(manifest_path, manifest)  # atomic: a shard counts as done only once listed here
                progress.set_description(shards_saved(), refresh=False)
        summary = corpus_summary(manifest)
        summary.update(shards_skipped=len(done), shards_written=len(todo), names_written=names)
        return summary

    def write_shard(self, corpus_dir: Path, index: int, progress: tqdm | None = None) -> dict:
        """Write the two parquet files of shard ``index`` (each atomically); returns its manifest entry."""
        positives, pairs, counts = self.shard(index, progress)
        files = []
        for split, cols, features in (("positives", positives, POSITIVE_FEATURES), ("pairs", pairs, PAIR_FEATURES)):
            files.append(f"{split}/{_shard_key(index)}.parquet")
            _write_parquet(corpus_dir / files[-1], cols, features)
        return {"files": files, "positive_rows": len(positives["source"]), "pairs": len(pairs["prompt"]), "counts": dict(counts)}

    # Worker processes -----------------------------------------------------------------------

    def _num_proc(self, num_proc: int | None) -> int:
        num_proc = self.config.num_proc if num_proc is None else num_proc
        if not isinstance(num_proc, int) or num_proc < 1:
            raise ValueError(f"num_proc must be an integer of at least 1, not {num_proc!r}")
        return num_proc

    def _map_shards(self, task: Callable[[PretrainCorpusBuilder, int, tqdm | None], T], indices: list[int], num_proc: int, progress: tqdm) -> Iterator[tuple[int, T]]:
        """``(index, task(self, index, ...))`` for each shard, as they finish (in any order when
        ``num_proc`` > 1). The progress bar moves per similarity chunk in this process, per shard in workers."""
        num_proc = min(num_proc, len(indices))
        if num_proc > 1 and "fork" not in multiprocessing.get_all_start_methods():
            logger.warning("num_proc=%d needs the 'fork' start method, not available here: building the corpus in one process", num_proc)
            num_proc = 1
        if num_proc <= 1:
            for index in indices:
                yield index, task(self, index, progress)
            return
        # Built here, before forking: the workers share the TF-IDF index (copy-on-write) instead of
        # each fitting its own, and the builder reaches them by fork, never pickled.
        _ = self.matcher._names_by_ngram
        context = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(num_proc, mp_context=context, initializer=_set_worker_builder, initargs=(self,)) as pool:
            pending = {pool.submit(_run_in_worker, task, index): index for index in indices}
            try:
                while pending:
                    finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in sorted(finished, key=pending.get):
                        index = pending.pop(future)
                        result = future.result()  # a worker's exception is raised here
                        progress.update(self._num_sources([index]))
                        yield index, result
            finally:
                # On an error (or the caller stopping early), shards not started yet are dropped,
                # and the pool's exit waits only for the running ones.
                for future in pending:
                    future.cancel()


# Set in each worker process by the pool's initializer (inherited through fork).
_worker_builder: PretrainCorpusBuilder | None = None


def _set_worker_builder(builder: PretrainCorpusBuilder) -> None:
    global _worker_builder
    _worker_builder = builder


def _run_in_worker(task: Callable[[PretrainCorpusBuilder, int, tqdm | None], T], index: int) -> T:
    return task(_worker_builder, index, None)


# Tasks reach a worker by name (what ``submit`` sends is pickled): a module-level function, or a method
# such as ``PretrainCorpusBuilder.shard``, which ``build`` passes directly.
def _shard_files(builder: PretrainCorpusBuilder, index: int, progress: tqdm | None, corpus_dir: Path) -> dict:
    return builder.write_shard(corpus_dir, index, progress)


def _shard_key(index: int) -> str:
    return f"shard-{index:05d}"


def _write_parquet(path: Path, cols: dict, features: Features) -> None:
    """Write ``cols`` atomically (temporary file, then rename): a killed run leaves no half shard."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # features.arrow_schema carries the `datasets` feature metadata, so load_dataset restores the types.
    pq.write_table(pa.Table.from_pydict(cols, schema=features.arrow_schema), tmp)
    os.replace(tmp, path)


def _totals(counts: Counter) -> dict:
    return {"positive_rows": sum(v for k, v in counts.items() if k.startswith("rows_")), "pairs": counts.get("pairs", 0), "counts": dict(sorted(counts.items()))}


def read_manifest(corpus_dir: str | Path) -> dict:
    path = Path(corpus_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: no pre-training corpus in {corpus_dir}")
    return json.loads(path.read_text())


def corpus_summary(manifest: dict) -> dict:
    """Counts of a (possibly partial) on-disk corpus, summed over its finished shards."""
    counts: Counter = Counter()
    for shard in manifest["shards"].values():
        counts.update(shard["counts"])
    return {"shards": len(manifest["shards"]), "num_shards": manifest["num_shards"], "complete": len(manifest["shards"]) == manifest["num_shards"], **_totals(counts)}


def load_pretrain_split(corpus_dir: str | Path, split: str) -> Dataset:
    """``positives`` or ``pairs`` of a finished corpus as one ``Dataset`` (shards in order; the
    ``datasets`` cache goes under ``corpus_dir``)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    manifest = read_manifest(corpus_dir)
    summary = corpus_summary(manifest)
    if not summary["complete"]:
        raise ValueError(f"{Path(corpus_dir) / MANIFEST}: only {summary['shards']} of {summary['num_shards']} shards are finished; run the corpus build again to resume")
    files = [str(Path(corpus_dir) / f) for key in sorted(manifest["shards"]) for f in manifest["shards"][key]["files"] if f.startswith(f"{split}/")]
    return load_dataset("parquet", data_files=files, split="train", cache_dir=str(Path(corpus_dir) / ".hf_cache"))


def load_positive_rows(corpus_dir: str | Path) -> Stage1Rows:
    """The positive rows of a finished corpus as stage-1 rows, with the corpus counts."""
    data = load_pretrain_split(corpus_dir, "positives").to_dict()
    counts = Counter(corpus_summary(read_manifest(corpus_dir))["counts"])
    return Stage1Rows(data["source"], data["prompt"], data["target"], data["kind"], counts)


def train_pretrain(data_args: DataArguments, model_args: ModelArguments, corpus_config: PretrainCorpusConfig, config: Stage1Config) -> dict:
    """KB pre-training, positive-only: build (or resume) the corpus of ``data_args``' KB, save the
    pairs if asked, then train through stage 1 (``train_stage1`` with the corpus rows) and save a
    linker in ``config.output_dir`` that stage 1 (``model_name_or_path``) or stage 2
    (``stage1_model``) starts from. Dev/test files, if set, give zero-shot scores; a train file only
    splits them into seen / unseen mentions."""
    from accelerate import PartialState

    from .stage1 import train_stage1

    state = PartialState()
    builder = PretrainCorpusBuilder(data_args.load_kb(), corpus_config, ExampleConfig(config.max_context_words, config.lowercase), config.seed, config.avoid_shared_targets)
    if corpus_config.corpus_dir:
        # The main process writes the shards (with `num_proc` worker processes: the way to use more
        # cores here); the others wait, then find them finished.
        with state.main_process_first():
            corpus = builder.write(corpus_config.corpus_dir, show_progress=state.is_main_process)
        rows = load_positive_rows(corpus_config.corpus_dir)
        if corpus_config.pairs_dir and state.is_main_process:
            atomic_save_dataset(load_pretrain_split(corpus_config.corpus_dir, "pairs"), corpus_config.pairs_dir)
    else:
        # Every process builds its own copy here: workers only where one process would leave cores idle.
        built = builder.build(show_progress=state.is_main_process, num_proc=corpus_config.num_proc if state.num_processes == 1 else 1)
        rows, corpus = built.positives, built.summary
        if corpus_config.pairs_dir and state.is_main_process:
            atomic_save_dataset(built.pairs, corpus_config.pairs_dir)
    del builder  # frees the TF-IDF index before training
    summary = train_stage1(data_args, model_args, config, rows=rows)
    summary["pretrain_corpus"] = corpus
    if state.is_main_process:
        write_json(Path(config.output_dir) / "pretrain_corpus.json", corpus)
    return summary
