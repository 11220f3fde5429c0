"""Where the KB and the corpus splits come from (a dataclass the recipes parse) and loading them."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from angel_trl.data.abbreviations import expand_abbreviations
from angel_trl.data.corpus import CORPUS_FORMATS, Corpus, load_corpus
from angel_trl.data.kb import KB_FORMATS, KnowledgeBase, load_kb
from angel_trl.data.zero_shot import gold_concepts, without_concepts
from angel_trl.errors import FieldError, check_choice

DATA_DIR_ENV = "ANGEL_TRL_DATA"
DATA_DIR_PLACEHOLDER = "{data_dir}"
logger = logging.getLogger(__name__)


def shared_data_dir(data_dir: str | Path | None = None) -> Path:
    """The folder ``{data_dir}`` stands for: ``$ANGEL_TRL_DATA`` when set, else ``data_dir``.

    No default lives here: an installed package has no repository beside it, so where the data is
    belongs to whoever runs (the recipe configs, the benchmarks and the tests each name theirs).
    """
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        return Path(env)
    if data_dir is None:
        raise ValueError(f"no data folder for {DATA_DIR_PLACEHOLDER}: set ${DATA_DIR_ENV}, or data_dir (--data_dir, or data_dir: in the config) to the folder data/README.md describes")
    return Path(data_dir)


def resolve_data_path(path: str | None, data_dir: str | Path | None = None) -> str | None:
    """``path`` with ``{data_dir}`` expanded (:func:`shared_data_dir`), so configs work wherever the
    data lives; a path without it is returned as is."""
    if not path or DATA_DIR_PLACEHOLDER not in path:
        return path
    return path.replace(DATA_DIR_PLACEHOLDER, str(shared_data_dir(data_dir)))


def resolve_expansion(requested: bool | None, trained_expanded: bool) -> bool:
    """Whether a run on a linker trained with ``expand_abbreviations=trained_expanded`` expands them:
    as ``requested`` when set (warned about when it differs), else as the linker was trained."""
    if requested is None:
        return trained_expanded
    if requested != trained_expanded:
        logger.warning("expand_abbreviations=%s, but the linker was trained with %s: its mentions will not look like its training data", requested, trained_expanded)
    return requested


# The fields of DataArguments that name input files.
FILE_FIELDS = ("kb_path", "kb_supplementary_path", "train_file", "dev_file", "test_file")
# Formats read as a `datasets` source, which may be a folder; the others read one file.
SOURCE_FORMATS = ("hf", "bigbio")
# Fields read only with kb_format mesh (elsewhere they would be ignored).
MESH_FIELDS = ("kb_supplementary_path", "mesh_tree_prefixes")


@dataclass
class DataArguments:
    """The knowledge base and corpus files of a run."""

    kb_path: str = field(metadata={"help": "KB file. `{data_dir}` in this and the other paths expands to $ANGEL_TRL_DATA, else to data_dir."})
    data_dir: str | None = field(
        default=None,
        metadata={"help": "The folder `{data_dir}` stands for when $ANGEL_TRL_DATA is unset (the repo's configs: ../shared/data, "
                  "relative to the repo root they run from)."},
    )
    kb_format: str = field(default="jsonl", metadata={"help": "KB format: jsonl, medic, mesh, obo (an OBO ontology) or hf (a datasets source, one concept a row)."})
    kb_supplementary_path: str | None = field(default=None, metadata={"help": "MeSH supplementary-records TSV (kb_format=mesh)."})
    mesh_tree_prefixes: list[str] | None = field(default=None, metadata={"help": "Keep MeSH descriptors whose tree numbers start so, e.g. D for chemicals."})
    train_file: str | None = field(default=None, metadata={"help": "Training corpus."})
    dev_file: str | None = field(default=None, metadata={"help": "Development corpus (model selection)."})
    test_file: str | None = field(default=None, metadata={"help": "Test corpus."})
    corpus_format: str = field(
        default="jsonl",
        metadata={"help": "Corpus format: jsonl, pubtator or bigbio (a datasets source in the BigBIO kb schema: a save_to_disk or data "
                  "folder, a data file or a Hub id, with :SPLIT when it has several, e.g. bigbio/ncbi_disease:ncbi_disease_bigbio_kb:test)."},
    )
    entity_types: list[str] | None = field(default=None, metadata={"help": "Mention types to keep, e.g. Disease (BC5CDR); all when unset."})
    zero_shot: bool = field(
        default=False,
        metadata={"help": "The zero-shot protocol: drop from train and dev every mention of which a gold concept occurs in test "
                  "(test_file is needed), so that every test concept is new; the dropped mentions are counted."},
    )
    expand_abbreviations: bool | None = field(
        default=None,
        metadata={"help": "Link a mention that is an abbreviation defined in its document ('myocardial infarction (MI)') as its long form "
                  "(Schwartz-Hearst), in every split. Unset: off for stage 1; a run that starts from a saved linker (stage 2, mining, "
                  "evaluation) does what that linker was trained with (its linker_config.json records it)."},
    )

    def __post_init__(self) -> None:
        # At parse time, so that a typo fails before any data is read (not after an hour of it).
        check_choice("kb_format", self.kb_format, KB_FORMATS)
        check_choice("corpus_format", self.corpus_format, CORPUS_FORMATS)
        if self.zero_shot and not self.test_file:
            raise FieldError("zero_shot", "drops the test concepts from train and dev: it needs test_file")
        for name in ("entity_types", "mesh_tree_prefixes"):
            if getattr(self, name) == []:  # read as "unset": every type (descriptor) would be kept
                raise FieldError(name, "an empty list keeps everything, as unset does: name at least one, or leave it unset")

    def check_files(self) -> None:
        """Raise :class:`FieldError` for a file field that is set and names no file, or a folder where
        its format reads one file, and for a MeSH field set with another KB format, which would ignore
        it (the recipes call it before any work; not at construction, where ``{data_dir}`` may not be
        resolvable yet and the CLI, which builds these arguments too, checks its own options)."""
        if self.kb_format != "mesh":
            for name in MESH_FIELDS:
                if getattr(self, name) is not None:
                    raise FieldError(name, f"is read only with kb_format mesh, not {self.kb_format}")
        for name in FILE_FIELDS:
            value = getattr(self, name)
            if not value:
                continue
            try:
                path = self.resolve(value)
            except ValueError as e:
                raise FieldError(name, str(e)) from None
            one_file = self._why_one_file(name)
            if not one_file:  # a datasets source: a folder or file with its ":SPLIT", or a Hub id
                from angel_trl.data.hf_datasets import looks_local, split_source

                source = split_source(path)[0]
                if not Path(source).expanduser().exists() and looks_local(source):
                    raise FieldError(name, f"{source}: no such file or dataset folder")
                continue
            if not Path(path).exists():
                raise FieldError(name, f"{path}: no such file")
            if one_file and Path(path).is_dir():
                raise FieldError(name, f"{path}: a folder, not a file ({one_file})")

    def _why_one_file(self, name: str) -> str | None:
        """Why file field ``name`` must name one file ("kb_format jsonl reads one file"); None when
        its format reads a `datasets` source, which may be a folder."""
        if name == "kb_supplementary_path":
            return "the MeSH supplementary records are one TSV file"
        format_field = "kb_format" if name == "kb_path" else "corpus_format"
        value = getattr(self, format_field)
        return None if value in SOURCE_FORMATS else f"{format_field} {value} reads one file"

    def load_kb(self) -> KnowledgeBase:
        return load_kb(self.resolve(self.kb_path), self.kb_format, self.resolve(self.kb_supplementary_path), self.mesh_tree_prefixes)

    def following_linker(self, trained_expanded: bool) -> DataArguments:
        """These arguments for a run on a saved linker trained with ``expand_abbreviations=trained_expanded``
        (see :func:`resolve_expansion`)."""
        return replace(self, expand_abbreviations=resolve_expansion(self.expand_abbreviations, trained_expanded))

    def resolve(self, path: str | None) -> str | None:
        """``path`` with ``{data_dir}`` expanded (:func:`resolve_data_path`)."""
        return resolve_data_path(path, self.data_dir)

    def load_split(self, split: str, kb: KnowledgeBase | None = None) -> Corpus | None:
        """The split's corpus; under ``zero_shot``, train and dev lose the test concepts' mentions
        (``kb`` canonicalises the ids; read from ``kb_path`` when not given)."""
        path = self.resolve(getattr(self, f"{split}_file"))
        if not path:
            return None
        corpus = load_corpus(path, self.corpus_format, self.entity_types)
        if self.zero_shot and split in ("train", "dev"):
            if not self.test_file:
                raise ValueError("zero_shot drops the test concepts from train and dev: it needs test_file")
            kb = kb or self.load_kb()
            test = load_corpus(self.resolve(self.test_file), self.corpus_format, self.entity_types)
            corpus = without_concepts(corpus, gold_concepts(test, kb), kb)
        return expand_abbreviations(corpus) if self.expand_abbreviations else corpus


_MEDIC = "{data_dir}/kb/medic/medic_06Jul2012.txt"
_BC5CDR = "{data_dir}/bc5cdr/CDR_%s.PubTator.txt"

# The benchmarks of the paper that the data folder ($ANGEL_TRL_DATA, else data_dir) holds, by name.
BENCHMARKS: dict[str, DataArguments] = {
    "ncbi": DataArguments(
        kb_path=_MEDIC, kb_format="medic", corpus_format="pubtator",
        train_file="{data_dir}/ncbi-disease/NCBItrainset_corpus.txt",
        dev_file="{data_dir}/ncbi-disease/NCBIdevelopset_corpus.txt",
        test_file="{data_dir}/ncbi-disease/NCBItestset_corpus.txt",
    ),
    "bc5cdr-disease": DataArguments(
        kb_path=_MEDIC, kb_format="medic", corpus_format="pubtator", entity_types=["Disease"],
        train_file=_BC5CDR % "TrainingSet", dev_file=_BC5CDR % "DevelopmentSet", test_file=_BC5CDR % "TestSet",
    ),
    "bc5cdr-chemical": DataArguments(
        kb_path="{data_dir}/kb/mesh2024/mesh_id_label_mappings.tsv", kb_format="mesh",
        kb_supplementary_path="{data_dir}/kb/mesh2024/mesh_supp_id_label_mappings.tsv", mesh_tree_prefixes=["D"],
        corpus_format="pubtator", entity_types=["Chemical"],
        train_file=_BC5CDR % "TrainingSet", dev_file=_BC5CDR % "DevelopmentSet", test_file=_BC5CDR % "TestSet",
    ),
}


def benchmark_data(name: str, data_dir: str | Path | None = None) -> DataArguments:
    """The data arguments of a named benchmark, its ``{data_dir}`` being ``data_dir`` unless
    ``$ANGEL_TRL_DATA`` is set; a clear error when its files are absent."""
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; choose from {', '.join(sorted(BENCHMARKS))}")
    data = replace(BENCHMARKS[name], data_dir=None if data_dir is None else str(data_dir))
    missing = [p for p in (data.resolve(data.kb_path), data.resolve(data.test_file)) if not Path(p).exists()]
    if missing:
        raise FileNotFoundError(f"benchmark {name!r}: {', '.join(missing)} not found; set ${DATA_DIR_ENV} to the folder described in data/README.md")
    return data
