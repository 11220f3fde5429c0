"""The KB pre-training corpus assembled from its shards: in memory, or as resumable parquet shards.

:meth:`PretrainCorpusBuilder.build` keeps the corpus in memory (small KBs);
:meth:`PretrainCorpusBuilder.write` writes one parquet file per shard and split (``positives/``,
``pairs/``) and a ``manifest.json`` (written atomically after each shard) so that a restarted run
skips finished shards. Rows never depend on the shard layout, on resuming or on ``num_proc``:
``num_proc`` worker processes (:mod:`angel_trl.pretraining.workers`) generate shards in parallel,
while this process alone records finished shards in the manifest.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from functools import partial
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from datasets import Dataset, Features, load_dataset
from tqdm.auto import tqdm

from angel_trl.data.files import write_json
from angel_trl.pretraining.corpus import PAIR_FEATURES, POSITIVE_FEATURES, PretrainCorpus, PretrainRowGenerator, empty_columns
from angel_trl.pretraining.workers import map_shards
from angel_trl.progress import progress_bar
from angel_trl.text.examples import Stage1Rows

MANIFEST = "manifest.json"
MANIFEST_FORMAT = "angel-trl-pretrain-corpus"
SPLITS = ("positives", "pairs")


class PretrainCorpusBuilder(PretrainRowGenerator):
    """Makes the whole KB pre-training corpus from its shards, in memory or on disk (see the module docstring)."""

    def build(self, show_progress: bool = False, num_proc: int | None = None) -> PretrainCorpus:
        """The whole corpus in memory (small KBs; the same rows as :meth:`write`). ``num_proc``:
        worker processes (default ``config.num_proc``); their shards are put back in order."""
        rows, pairs, counts = Stage1Rows(), empty_columns(PAIR_FEATURES), Counter()
        indices = list(range(self.num_shards))
        with progress_bar(total=self.num_sources(indices), show=show_progress, unit="name", desc="KB pre-training corpus") as progress:
            shards = dict(map_shards(self, PretrainCorpusBuilder.shard, indices, self._num_proc(num_proc), progress))
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
        manifest = self._open_manifest(manifest_path)
        done = {k for k, v in manifest["shards"].items() if all((corpus_dir / f).exists() for f in v["files"])}
        manifest["shards"] = {k: manifest["shards"][k] for k in sorted(done)}
        todo = [i for i in range(self.num_shards) if _shard_key(i) not in done][:max_shards]
        names = self.num_sources(todo)

        def shards_saved() -> str:  # a long build shows what a restart would keep
            return f"KB pre-training corpus ({len(manifest['shards'])}/{self.num_shards} shards saved)"

        with progress_bar(total=names, show=show_progress, unit="name", desc=shards_saved()) as progress:
            for index, entry in map_shards(self, partial(_shard_files, corpus_dir=corpus_dir), todo, num_proc, progress):
                manifest["shards"][_shard_key(index)] = entry
                # Sorted: workers finish in any order, the manifest is the same as with one process.
                manifest["shards"] = dict(sorted(manifest["shards"].items()))
                write_json(manifest_path, manifest)  # atomic: a shard counts as done only once listed here
                progress.set_description(shards_saved(), refresh=False)
        summary = corpus_summary(manifest)
        summary.update(shards_skipped=len(done), shards_written=len(todo), names_written=names)
        return summary

    def _open_manifest(self, manifest_path: Path) -> dict:
        """The manifest of a corpus being resumed (refused if built from another KB or config), or a new one."""
        fingerprint = self.fingerprint()
        if not manifest_path.exists():
            return {"format": MANIFEST_FORMAT, "version": 1, "fingerprint": fingerprint, "num_shards": self.num_shards, "shards": {}}
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"{manifest_path}: not an angel-trl pre-training corpus manifest")
        if manifest["fingerprint"] != fingerprint:
            raise ValueError(f"{manifest_path}: the corpus there was built from another KB or config; use another corpus_dir or delete it")
        return manifest

    def write_shard(self, corpus_dir: Path, index: int, progress: tqdm | None = None) -> dict:
        """Write the two parquet files of shard ``index`` (each atomically); returns its manifest entry."""
        positives, pairs, counts = self.shard(index, progress)
        files = []
        for split, cols, features in (("positives", positives, POSITIVE_FEATURES), ("pairs", pairs, PAIR_FEATURES)):
            files.append(f"{split}/{_shard_key(index)}.parquet")
            _write_parquet(corpus_dir / files[-1], cols, features)
        return {"files": files, "positive_rows": len(positives["source"]), "pairs": len(pairs["prompt"]), "counts": dict(counts)}

    def _num_proc(self, num_proc: int | None) -> int:
        num_proc = self.config.num_proc if num_proc is None else num_proc
        if not isinstance(num_proc, int) or num_proc < 1:
            raise ValueError(f"num_proc must be an integer of at least 1, not {num_proc!r}")
        return num_proc


# A module-level function, so that it reaches a worker by name (see workers._run_in_worker).
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
