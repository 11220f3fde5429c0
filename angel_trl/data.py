"""Where the KB and the corpus splits come from (a dataclass the recipes parse) and loading them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .corpus import Corpus, load_corpus
from .kb import KnowledgeBase, load_kb

DATA_DIR_ENV = "ANGEL_TRL_DATA"


def shared_data_dir() -> Path:
    """The real-benchmark folder: ``$ANGEL_TRL_DATA`` or ``../shared/data`` beside the project."""
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    return Path(__file__).resolve().parent.parent.parent / "shared" / "data"


def _resolve(path: str | None) -> str | None:
    """Expand ``{data_dir}`` in configured paths so configs work wherever the benchmarks live."""
    return path.replace("{data_dir}", str(shared_data_dir())) if path else path


@dataclass
class DataArguments:
    """The knowledge base and corpus files of a run."""

    kb_path: str = field(metadata={"help": "KB file. `{data_dir}` expands to $ANGEL_TRL_DATA or ../shared/data."})
    kb_format: str = field(default="jsonl", metadata={"help": "KB format: jsonl, medic or mesh."})
    kb_supplementary_path: str | None = field(default=None, metadata={"help": "MeSH supplementary-records TSV (kb_format=mesh)."})
    mesh_tree_prefixes: list[str] | None = field(default=None, metadata={"help": "Keep MeSH descriptors whose tree numbers start so, e.g. D for chemicals."})
    train_file: str | None = field(default=None, metadata={"help": "Training corpus."})
    dev_file: str | None = field(default=None, metadata={"help": "Development corpus (model selection)."})
    test_file: str | None = field(default=None, metadata={"help": "Test corpus."})
    corpus_format: str = field(default="jsonl", metadata={"help": "Corpus format: jsonl or pubtator."})
    entity_types: list[str] | None = field(default=None, metadata={"help": "Mention types to keep, e.g. Disease (BC5CDR); all when unset."})

    def load_kb(self) -> KnowledgeBase:
        return load_kb(_resolve(self.kb_path), self.kb_format, _resolve(self.kb_supplementary_path), self.mesh_tree_prefixes)

    def load_split(self, split: str) -> Corpus | None:
        path = _resolve(getattr(self, f"{split}_file"))
        return load_corpus(path, self.corpus_format, self.entity_types) if path else None
