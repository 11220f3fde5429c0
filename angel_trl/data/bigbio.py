"""Corpora in the BigBIO knowledge-base schema (``corpus_format: bigbio``), from ``datasets``.

Each example has ``id``, ``document_id``, ``passages`` (``{id, type, text: [str], offsets:
[[start, end]]}``) and ``entities`` (``{id, type, text: [str], offsets: [[start, end], ...],
normalized: [{db_name, db_id}]}``); ``events``, ``coreferences`` and ``relations`` are skipped and
counted. The source is a ``save_to_disk`` folder, a parquet / JSONL file or folder, or a Hub id,
with ``:SPLIT`` where there are several (:mod:`angel_trl.data.hf_datasets`).

A :class:`~angel_trl.data.corpus.Document` is built per example:

* id: ``document_id`` (the PMID, as the PubTator reader), else ``id``; a repeat gets ``#2``;
* text: the passages placed at their offsets, gaps filled with spaces (a PubTator title and
  abstract at ``[0, len(title)]`` and ``[len(title) + 1, ...]`` give ``title + " " + abstract``,
  the PubTator reader's text); each passage must equal its slice of that text;
* mentions: one per entity of a kept type, checked against the text as the PubTator reader checks
  its lines. Ids: every ``db_id`` through :func:`~angel_trl.data.corpus.parse_ids` (``MESH:D1`` ->
  ``D1``, ``D1|D2`` split, ``-1`` dropped); ``db_name`` is not part of the id, as a PubTator id
  column has none. No id left: NIL. Composite: several ids, several offset pieces, or a type
  containing "composite" (the PubTator rule). A discontinuous entity (several pieces) becomes the
  span from its first start to its last end, each piece checked; counted as ``discontinuous_mentions``.

Errors are :class:`~angel_trl.errors.InputFormatError` naming the source and the example: its line
in a local JSON-lines file, else its row (0-based, as ``dataset[i]``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from angel_trl.data.corpus import Corpus, Document, Mention, _checked_span, _finish, _unique_doc_id, parse_ids
from angel_trl.data.hf_datasets import dataset_rows, row_error
from angel_trl.errors import InputFormatError

_SKIPPED = ("relations", "events", "coreferences")


class _Example:
    """One example being read: where errors point (source, index, document) and the counts."""

    def __init__(self, source: str, index: int, row: dict, counts: Counter):
        self.source, self.index, self.row, self.counts = source, index, row, counts
        raw_id = row.get("document_id") or row.get("id")
        self.doc_id = str(raw_id) if isinstance(raw_id, (str, int)) and not isinstance(raw_id, bool) else ""

    def error(self, problem: str) -> InputFormatError:
        return row_error(self.source, self.index, problem, f"document {self.doc_id!r}" if self.doc_id else "", kind="example")

    def field(self, obj: dict, key: str, kind: type, what: str):
        """``obj[key]``, which must be there and a ``kind`` (a missing or null field is an error)."""
        value = obj.get(key) if isinstance(obj, dict) else None
        if value is None or not isinstance(value, kind) or isinstance(value, bool):
            raise self.error(f"{what}: missing or not a {kind.__name__}: {key!r}")
        return value

    def pieces(self, obj: dict, what: str) -> list[tuple[int, int, str]]:
        """``(start, end, text)`` of an item's ``offsets`` and ``text`` lists, zipped and checked."""
        offsets, texts = self.field(obj, "offsets", list, what), self.field(obj, "text", list, what)
        if len(offsets) != len(texts):
            raise self.error(f"{what}: {len(offsets)} offsets but {len(texts)} text pieces")
        out = []
        for pair, piece in zip(offsets, texts):
            if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)):
                raise self.error(f"{what}: offsets {pair!r} are not [start, end] integers")
            if not isinstance(piece, str):
                raise self.error(f"{what}: text piece {piece!r} is not a string")
            out.append((pair[0], pair[1], piece))
        return out


def _document_text(ex: _Example) -> str:
    """The passages joined at their offsets (gaps: spaces); each passage checked against its slice."""
    pieces = []
    for p in ex.field(ex.row, "passages", list, "the example"):
        what = f"passage {p.get('id') if isinstance(p, dict) else p!r}"
        for start, end, piece in ex.pieces(p, what):
            if start < 0 or end - start != len(piece):
                raise ex.error(f"{what}: offsets {start}-{end} do not fit its text of length {len(piece)}")
            pieces.append((start, end, piece, what))
    text = ""
    for start, end, piece, _ in sorted(pieces, key=lambda t: t[:2]):
        # Overlapping passages are allowed if they agree; the check below catches those that do not.
        if start >= len(text):
            text += " " * (start - len(text)) + piece
        elif end > len(text):
            text += piece[len(text) - start :]
    for start, end, piece, what in pieces:
        if text[start:end] != piece:
            raise ex.error(f"{what}: text {piece!r} differs from the document text at {start}-{end} ({text[start:end]!r}): overlapping passages")
    return text


def _mention(ex: _Example, doc: Document, entity: dict) -> Mention:
    """The mention of one entity of ``doc``, every offset piece checked against the text."""
    what = f"entity {entity.get('id') if isinstance(entity, dict) else entity!r}"
    mtype = ex.field(entity, "type", str, what)
    pieces = ex.pieces(entity, what)
    if not pieces:
        raise ex.error(f"{what}: no offsets")
    normalized = ex.field(entity, "normalized", list, what)
    db_ids = [ex.field(n, "db_id", str, f"{what}, normalized entry {n!r}") for n in normalized]
    for start, end, piece in pieces:
        try:
            span = _checked_span(doc.text, start, end, piece, ex.source, ex.index, ex.counts)
        except InputFormatError as e:
            raise ex.error(f"{what}: {e.problem}") from None
    if len(pieces) > 1:
        # A Mention is one span: the discontinuous entity is linked as the text covering its pieces.
        ex.counts["discontinuous_mentions"] += 1
        start, end = min(p[0] for p in pieces), max(p[1] for p in pieces)
        span = doc.text[start:end]
    if empty := sum(not db_id.strip() for db_id in db_ids):
        ex.counts["empty_db_ids_skipped"] += empty  # none left makes the mention NIL, as an empty PubTator id column
    ids = parse_ids("|".join(db_ids))
    composite = "composite" in mtype.lower() or len(ids) > 1 or len(pieces) > 1
    return Mention(doc.id, start, end, span, ids, mtype, composite)


def read_bigbio(source: str, entity_types: Sequence[str] | None = None) -> Corpus:
    """Read a BigBIO-kb corpus (see the module docstring); ``entity_types`` keeps only those types."""
    types = set(entity_types) if entity_types else None
    counts: Counter = Counter()
    other_types: Counter = Counter()
    seen: Counter = Counter()
    docs: list[Document] = []
    for index, row in enumerate(dataset_rows(str(source))):
        ex = _Example(str(source), index, row, counts)
        if not ex.doc_id:
            raise ex.error("needs a non-empty 'document_id' (or 'id')")
        doc = Document(_unique_doc_id(ex.doc_id, seen, counts), _document_text(ex))
        for entity in ex.field(row, "entities", list, "the example"):
            mtype = ex.field(entity, "type", str, f"entity {entity.get('id') if isinstance(entity, dict) else entity!r}")
            if types is not None and mtype not in types:
                counts["other_type_mentions"] += 1
                other_types[mtype] += 1
                continue
            doc.mentions.append(_mention(ex, doc, entity))
        for key in _SKIPPED:
            if row.get(key):
                counts[f"{key}_skipped"] += len(row[key])
        docs.append(doc)
    return _finish(docs, str(source), counts, types, other_types)
