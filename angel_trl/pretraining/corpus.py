"""What the KB pre-training corpus (ANGEL_PT) is made of: template rows and TF-IDF preference pairs.

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

:class:`PretrainRowGenerator` makes the rows of one chunk of concepts (a shard) at a time; rows
depend only on the KB, the config and the seed, never on the shard layout.
:mod:`angel_trl.pretraining.shards` assembles the shards, in memory or on disk.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
from datasets import Dataset, Features, List, Value
from tqdm.auto import tqdm

from angel_trl.data.kb import Concept, KnowledgeBase
from angel_trl.data.names import NameTable
from angel_trl.errors import FieldError, check_at_least, check_choice
from angel_trl.text.examples import ExampleConfig, Stage1Rows, marked_source, plain_text
from angel_trl.text.tfidf import TfidfNameMatcher

SINGLE_NAME_MODES = ("self", "skip")
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
        # FieldError: a recipe names the config line of the field
        check_choice("single_name_concepts", self.single_name_concepts, SINGLE_NAME_MODES)
        for name in ("concepts_per_shard", "similarity_chunk_size", "num_proc"):
            check_at_least(name, getattr(self, name), 1)
        for name in ("context_synonyms", "negatives_per_name"):
            check_at_least(name, getattr(self, name), 0)
        if self.pairs_dir and self.negatives_per_name == 0:
            raise FieldError("negatives_per_name", "is 0, so there are no pairs to save in pairs_dir: give at least 1, or no pairs_dir")
        if self.pairs_dir and self.corpus_dir and Path(self.pairs_dir).resolve() == Path(self.corpus_dir).resolve():
            raise FieldError("pairs_dir", f"is corpus_dir ({self.corpus_dir}): the pairs would replace the corpus; give them a folder of their own")


@dataclass
class PretrainCorpus:
    """An in-memory pre-training corpus: stage-1 rows, preference pairs and counts."""

    positives: Stage1Rows
    pairs: Dataset
    summary: dict


def empty_columns(features: Features) -> dict[str, list]:
    """One empty list per column of ``features``: what a shard's rows are appended to."""
    return {k: [] for k in features}


class PretrainRowGenerator:
    """Makes the positive rows and preference pairs of the KB pre-training corpus, one shard (a chunk
    of ``concepts_per_shard`` concepts) at a time (see the module docstring)."""

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

    def _shard_concepts(self, index: int) -> list[Concept]:
        per = self.config.concepts_per_shard
        return self.concepts[index * per : (index + 1) * per]

    def _keeps(self, own: list[int]) -> bool:
        return len(own) > 1 or self.config.single_name_concepts == "self"

    def num_sources(self, shards) -> int:
        """Source names (concept, name) of the given shards: the progress bar's total."""
        owns = (self.table.names_of_concept(c.id) for i in shards for c in self._shard_concepts(i))
        return sum(len(own) for own in owns if self._keeps(own))

    def shard(self, index: int, progress: tqdm | None = None) -> tuple[dict, dict, Counter]:
        """Positive rows, pairs (column dicts) and counts of the ``index``-th chunk of concepts."""
        positives, pairs, counts = empty_columns(POSITIVE_FEATURES), empty_columns(PAIR_FEATURES), Counter()
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
        clauses = self._clauses(concept, i, [j for j in others if j != target])
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
            self._add_pairs(pairs, counts, source, prompt, kind, concept.id, i, target, negatives)

    def _clauses(self, concept: Concept, i: int, rest: list[int]) -> list[tuple[str, str]]:
        """``(source, kind)`` of each template clause of name ``i``; ``rest``: the synonyms it may list."""
        names = self.table.names
        # One generator per (seed, concept, name): the sample does not depend on chunking or resuming.
        rng = random.Random(f"{self.seed}\t{concept.id}\t{names[i]}")
        listed = rng.sample(rest, min(self.config.context_synonyms, len(rest)))
        head = marked_source("", names[i], "")
        clauses = []
        if listed:
            clauses.append((f"{head} has synonyms such as {plain_text(', '.join(names[j] for j in listed))}", "pt_synonyms"))
        definition = self._definition(concept)
        if definition:
            clauses.append((f"{head} is defined as {plain_text(definition)}", "pt_definition"))
        if not clauses:
            clauses.append((head, "pt_name"))
        return clauses

    def _add_pairs(self, pairs: dict, counts: Counter, source: str, prompt: str, kind: str, concept_id: str, i: int, target: int, negatives: list[tuple[int, float]]) -> None:
        """One preference pair per negative of the row ``source`` -> ``target`` (name ``i`` of ``concept_id``)."""
        names = self.table.names
        for rank, (j, score) in enumerate(negatives):
            pairs["prompt"].append(source)
            pairs["decoder_prompt"].append(prompt)
            pairs["chosen"].append(names[target])
            pairs["rejected"].append(names[j])
            pairs["mention_id"].append(f"{concept_id}|{names[i]}|{kind}")
            pairs["mention"].append(names[i])
            pairs["gold_ids"].append([concept_id])
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
