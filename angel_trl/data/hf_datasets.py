"""Rows of a Hugging Face ``datasets`` dataset named by one string: the shared opening step of the
BigBIO corpus reader (:mod:`angel_trl.data.bigbio`) and the ``hf`` KB reader (:func:`read_kb_dataset`).

A source is ``SOURCE[:SPLIT]``, or ``HUB_ID:CONFIG:SPLIT`` for a Hub dataset with several configs
(BigBIO's ``bigbio/ncbi_disease:ncbi_disease_bigbio_kb:test``). ``SOURCE`` is, in this order:

* a ``save_to_disk`` folder (``state.json`` or ``dataset_dict.json`` in it): ``load_from_disk``;
* a local data file (``.parquet``, ``.jsonl`` / ``.json``, ``.csv``) or a folder of them (split
  names from the file names, as on the Hub: ``data/test-00000-of-00001.parquet``, ``test.jsonl``):
  read with ``load_dataset(..., streaming=True)``, so nothing is copied into the ``datasets`` cache;
* otherwise a Hub dataset id: ``load_dataset`` (cached; ``HF_DATASETS_OFFLINE=1`` reads the cache).

A dataset with several splits needs ``:SPLIT``; one with a single split is read whole. ``datasets``
is imported only when a source is opened (the CLI's ``--help`` stays free of it).
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from angel_trl.data.files import SAVED_DATASET, SAVED_DATASET_DICT, read_jsonl_objects, read_lines
from angel_trl.errors import InputFormatError

_BUILDERS = {".parquet": "parquet", ".jsonl": "json", ".json": "json", ".csv": "csv"}
_NAME = re.compile(r"[A-Za-z0-9_.\-]+")


def split_source(spec: str) -> tuple[str, str | None, str | None]:
    """``(source, config, split)`` of ``SOURCE[:SPLIT]`` / ``HUB_ID:CONFIG:SPLIT``.

    An existing path is taken whole (a colon in a file name is not a split); a suffix counts as a
    split or config only if it is a plain name (no ``/``).
    """
    if Path(spec).exists():
        return spec, None, None
    parts = spec.split(":")
    if len(parts) >= 3 and all(_NAME.fullmatch(p) for p in parts[-2:]) and not Path(":".join(parts[:-1])).exists():
        return ":".join(parts[:-2]), parts[-2], parts[-1]
    if len(parts) >= 2 and _NAME.fullmatch(parts[-1]):
        return ":".join(parts[:-1]), None, parts[-1]
    return spec, None, None


def looks_local(source: str) -> bool:
    """A path the user meant as a file or folder (never a Hub id): absolute, ``./``, ``~`` or a file suffix."""
    return source.startswith(("/", ".", "~")) or Path(source).suffix.lower() in _BUILDERS


def _open(source: str, config: str | None):
    """The dataset (or dict of splits) ``source`` names; see the module docstring."""
    import datasets

    path = Path(source).expanduser()
    if path.is_dir() and any((path / m).exists() for m in (SAVED_DATASET, SAVED_DATASET_DICT)):
        return datasets.load_from_disk(str(path))
    if path.is_file():
        builder = _BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise InputFormatError(source, None, f"unknown data file type {path.suffix!r}; expected one of {', '.join(sorted(_BUILDERS))} or a folder")
        _check_text_file(path, source)
        return datasets.load_dataset(builder, data_files=str(path), streaming=True)
    if path.is_dir():
        return datasets.load_dataset(str(path), streaming=True)
    if looks_local(source):
        raise FileNotFoundError(f"{source}: no such file or dataset folder")
    return datasets.load_dataset(source, config)


def _check_text_file(path: Path, source: str) -> None:
    """Read a local text data file with our own readers first: ``datasets`` reports bad UTF-8, bad
    JSON, a line that is not an object or an empty file by an Arrow error without a line; ours name
    the line and the problem."""
    if path.suffix.lower() == ".parquet":
        return
    if path.suffix.lower() == ".jsonl":
        rows = sum(1 for _ in read_jsonl_objects(path))
    else:
        rows = sum(1 for _, line in read_lines(path) if line.strip())
    if not rows:
        raise InputFormatError(source, None, "no rows (empty file?)")


def row_error(spec: str, index: int, problem: str, label: str = "", kind: str = "row") -> InputFormatError:
    """An error at row ``index`` (0-based, as ``dataset[index]``) of the dataset ``spec`` names: at its
    line where the source is a local JSON-lines file (whose non-blank lines are the rows, in order)
    or CSV file (rows after the header; a quoted cell may span lines), else at the row index, said
    as such so that it is not read as a line number. ``label`` names the row (its id), ``kind``
    what a row is called (a BigBIO "example")."""
    row = f"{kind} {index} ({label})" if label else f"{kind} {index}"
    source, _, _ = split_source(spec)
    path = Path(source).expanduser()
    lineno = None
    if path.is_file() and path.suffix.lower() == ".jsonl":
        lines = (lineno for lineno, line in read_lines(path) if line.strip())
        lineno = next(itertools.islice(lines, index, None), None)
    elif path.is_file() and path.suffix.lower() == ".csv":
        lineno = _csv_row_line(path, index)
    if lineno is not None:
        return InputFormatError(spec, lineno, f"{row}: {problem}")
    return InputFormatError(spec, None, f"{row}, counting from 0 as dataset[{index}]: {problem}")


def _csv_row_line(path: Path, index: int) -> int | None:
    """The line where data row ``index`` of the CSV file ``path`` starts (the header is not a data
    row; blank lines are none)."""
    import csv

    with open(path, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        start, rows = 1, -1  # -1: the header comes first
        for cells in reader:
            if cells:
                if rows == index:
                    return start
                rows += 1
            start = reader.line_num + 1
    return None


def _pick_split(dataset, split: str | None, spec: str):
    """The one split to read: ``split`` if given, else the only one there is."""
    if not isinstance(dataset, dict):  # a Dataset / IterableDataset; (Iterable)DatasetDict is a dict of splits
        if split is not None:
            raise InputFormatError(spec, None, f"a dataset without splits; drop ':{split}'")
        return dataset
    splits = list(dataset.keys())
    if split is None:
        if len(splits) == 1:
            return dataset[splits[0]]
        raise InputFormatError(spec, None, f"the dataset has splits {', '.join(splits)}: name one as SOURCE:SPLIT")
    if split not in splits:
        raise InputFormatError(spec, None, f"no split {split!r}; the dataset has {', '.join(splits)}")
    return dataset[split]


def dataset_rows(spec: str) -> Iterator[dict]:
    """The rows (dicts) of the dataset ``spec`` names, in order.

    A file ``datasets`` cannot parse (bad JSON, unreadable parquet) is an :class:`InputFormatError`
    naming ``spec``; our own checks of the rows are the caller's.
    """
    source, config, split = split_source(spec)
    local = Path(source).expanduser().exists()
    try:
        rows = iter(_pick_split(_open(source, config), split, spec))
    except InputFormatError:
        raise
    except FileNotFoundError as e:  # datasets' DatasetNotFoundError is one
        if local or looks_local(source):
            raise
        raise FileNotFoundError(f"{spec}: no such local file or folder, nor a Hub dataset: {e}") from e
    except Exception as e:  # noqa: BLE001 - datasets / pyarrow raise many types for one cause: unreadable data
        where = "" if local else "no such local file or folder; as a Hub dataset id: "
        raise InputFormatError(spec, None, f"{where}cannot read as a dataset ({type(e).__name__}: {e})") from e
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as e:  # noqa: BLE001 - a streamed file fails while it is read
            raise InputFormatError(spec, None, f"cannot read as a dataset ({type(e).__name__}: {e})") from e
        yield row


def _concept(row: dict, spec: str, index: int, counts: Counter):
    """The :class:`Concept` of one KB row (:func:`~angel_trl.data.kb.concept_from_row`); a table's
    integer id column is read as text."""
    from angel_trl.data.kb import ConceptRowError, concept_from_row

    raw_id = row.get("id")
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):
        row = {**row, "id": str(raw_id)}
    try:
        return concept_from_row(row, counts, "column")
    except ConceptRowError as e:
        raise row_error(spec, index, str(e), e.cid) from None


def read_kb_dataset(spec: str):
    """A :class:`~angel_trl.data.kb.KnowledgeBase` from a ``datasets`` dataset (``kb_format: hf``),
    one concept a row: ``id``, ``names`` (preferred first) or ``name`` + ``synonyms``, optional
    ``alt_ids`` and ``definition``. A CSV cell holds text only: there, ``names``, ``synonyms`` and
    ``alt_ids`` are ``|``-separated (as in MEDIC). Errors name the row (0-based, as ``dataset[i]``)."""
    from angel_trl.data.kb import _finish

    counts: Counter = Counter()
    rows = dataset_rows(spec)
    if split_source(spec)[0].lower().endswith(".csv"):
        rows = map(_split_list_cells, rows)
    concepts = [_concept(row, spec, i, counts) for i, row in enumerate(rows)]
    return _finish(concepts, spec, counts)


def _split_list_cells(row: dict) -> dict:
    """A CSV row's list columns, ``|``-separated text, as lists (an empty cell: none)."""
    return {k: [part for part in v.split("|") if part.strip()] if k in ("names", "synonyms", "alt_ids") and isinstance(v, str) else v for k, v in row.items()}
