"""Annotated corpora: documents with mention offsets and gold concept ids.

Readers: PubTator (NCBI-disease, BC5CDR) and our own JSONL, one document per line::

    {"id": "doc1", "text": "...", "mentions": [{"start": 4, "end": 12, "text": "...",
     "type": "Disease", "ids": ["D003920"], "composite": false}]}

``ids: []`` marks a NIL mention (no KB concept). Every offset is checked against the text; a
mismatch is an :class:`~angel_trl.errors.InputFormatError` naming the file and line.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputFormatError
from .io_utils import read_jsonl_objects, read_lines
from .kb import normalize_concept_id

NIL_IDS = {"-1", "", "NIL", "CUI-less"}
_ID_SPLIT = re.compile(r"[|+]")


@dataclass(frozen=True)
class Mention:
    """A span of a document with its gold concept ids (empty for NIL)."""

    doc_id: str
    start: int
    end: int
    text: str
    ids: tuple[str, ...]
    type: str = ""
    composite: bool = False

    @property
    def mention_id(self) -> str:
        return f"{self.doc_id}:{self.start}-{self.end}"

    @property
    def is_nil(self) -> bool:
        return not self.ids


@dataclass
class Document:
    id: str
    text: str
    mentions: list[Mention] = field(default_factory=list)


@dataclass
class Corpus:
    """Documents plus what the reader counted (nothing is dropped silently)."""

    documents: list[Document]
    source: str = "<memory>"
    counts: Counter = field(default_factory=Counter)

    @property
    def mentions(self) -> list[Mention]:
        return [m for d in self.documents for m in d.mentions]

    def texts(self) -> dict[str, str]:
        return {d.id: d.text for d in self.documents}

    def stats(self) -> dict[str, int]:
        ms = self.mentions
        out = {
            "documents": len(self.documents),
            "mentions": len(ms),
            "nil": sum(m.is_nil for m in ms),
            "composite": sum(m.composite for m in ms),
        }
        out.update(self.counts)
        return out


def parse_ids(raw: str) -> tuple[str, ...]:
    """Split a gold-id field (``|`` or ``+`` joined), normalise each, drop NIL markers."""
    ids = []
    for part in _ID_SPLIT.split(raw):
        cid = normalize_concept_id(part)
        if cid not in NIL_IDS and cid not in ids:
            ids.append(cid)
    return tuple(ids)


def _checked_span(text: str, start: int, end: int, mention: str, path: Path, lineno: int, counts: Counter) -> str:
    if not (0 <= start < end <= len(text)):
        raise InputFormatError(path, lineno, f"offsets {start}-{end} outside the document text (length {len(text)})")
    span = text[start:end]
    if span == mention:
        return span
    # NCBI PMID 10923035 carries trailing spaces in the mention column only: accept a difference in
    # surrounding whitespace, count it, and keep the text's own span.
    if span.strip() == mention.strip() and span == span.strip():
        counts["mention_whitespace_fixed"] += 1
        return span
    raise InputFormatError(path, lineno, f"mention {mention!r} does not match text[{start}:{end}] = {span!r}")


def read_pubtator(path: str | Path, entity_types: Sequence[str] | None = None) -> Corpus:
    """Read a PubTator file; ``entity_types`` (e.g. ``["Disease"]``) keeps only those mention types.

    Offsets index ``title + " " + abstract``. Relation lines (``PMID<TAB>CID<TAB>...``) are skipped
    and counted; a PMID seen twice gets ``#2`` appended so both documents are kept and distinct.
    """
    path = Path(path)
    types = set(entity_types) if entity_types else None
    counts: Counter = Counter()
    docs: list[Document] = []
    seen_ids: Counter = Counter()
    title: dict[str, str] = {}
    current: Document | None = None
    pending: list[tuple[int, list[str]]] = []
    pmid = ""

    def flush() -> None:
        nonlocal current, pending
        if current is None:
            if pending:
                raise InputFormatError(path, pending[0][0], "mention line before any title/abstract line")
            return
        for lineno, cols in pending:
            if len(cols) == 4 or (len(cols) > 1 and cols[1] == "CID"):
                counts["relation_lines"] += 1
                continue
            if len(cols) < 6:
                raise InputFormatError(path, lineno, f"expected >= 6 tab-separated columns, got {len(cols)}")
            try:
                start, end = int(cols[1]), int(cols[2])
            except ValueError:
                raise InputFormatError(path, lineno, f"offsets {cols[1]!r} {cols[2]!r} are not integers") from None
            mtype = cols[4]
            if types is not None and mtype not in types:
                counts["other_type_mentions"] += 1
                continue
            span = _checked_span(current.text, start, end, cols[3], path, lineno, counts)
            ids = parse_ids(cols[5])
            individual = [s for s in cols[6].split("|") if s] if len(cols) > 6 else []
            composite = "composite" in mtype.lower() or len(ids) > 1 or len(individual) > 1
            current.mentions.append(Mention(current.id, start, end, span, ids, mtype, composite))
        docs.append(current)
        current, pending = None, []

    for lineno, line in read_lines(path):
        if not line.strip():
            flush()
            continue
        head = line.split("|", 2)
        if len(head) == 3 and head[1] in ("t", "a") and "\t" not in head[0]:
            if head[1] == "t":
                flush()
                pmid = head[0]
                title[pmid] = head[2]
            else:
                if pmid != head[0] or current is not None:
                    raise InputFormatError(path, lineno, f"abstract of {head[0]} without its title line")
                seen_ids[pmid] += 1
                doc_id = pmid if seen_ids[pmid] == 1 else f"{pmid}#{seen_ids[pmid]}"
                if seen_ids[pmid] > 1:
                    counts["duplicate_doc_ids"] += 1
                current = Document(doc_id, title[pmid] + " " + head[2])
            continue
        cols = line.split("\t")
        if cols[0] != pmid:
            raise InputFormatError(path, lineno, f"line for document {cols[0]!r} inside document {pmid!r}")
        pending.append((lineno, cols))
    flush()
    if not docs:
        raise InputFormatError(path, None, "no documents found (empty file?)")
    return Corpus(docs, str(path), counts)


def read_corpus_jsonl(path: str | Path, entity_types: Sequence[str] | None = None) -> Corpus:
    """Read our JSONL corpus format (see the module docstring)."""
    path = Path(path)
    types = set(entity_types) if entity_types else None
    counts: Counter = Counter()
    docs: list[Document] = []
    for lineno, row in read_jsonl_objects(path):
        if not isinstance(row.get("text"), str) or "id" not in row:
            raise InputFormatError(path, lineno, "each document needs 'id' and a string 'text'")
        doc = Document(str(row["id"]), row["text"])
        for m in row.get("mentions", []):
            try:
                start, end, mtext = int(m["start"]), int(m["end"]), str(m["text"])
                raw_ids = m.get("ids", [])
            except (KeyError, TypeError, ValueError):
                raise InputFormatError(path, lineno, f"mention {m!r} needs integer 'start'/'end' and 'text'") from None
            if types is not None and m.get("type", "") not in types:
                counts["other_type_mentions"] += 1
                continue
            span = _checked_span(doc.text, start, end, mtext, path, lineno, counts)
            ids = parse_ids("|".join(raw_ids)) if isinstance(raw_ids, list) else parse_ids(str(raw_ids))
            composite = bool(m.get("composite", False)) or len(ids) > 1
            doc.mentions.append(Mention(doc.id, start, end, span, ids, m.get("type", ""), composite))
        docs.append(doc)
    if not docs:
        raise InputFormatError(path, None, "no documents found (empty file?)")
    return Corpus(docs, str(path), counts)


CORPUS_FORMATS = ("jsonl", "pubtator")


def load_corpus(path: str | Path, corpus_format: str = "jsonl", entity_types: Sequence[str] | None = None) -> Corpus:
    """Read a corpus in one of :data:`CORPUS_FORMATS`."""
    if corpus_format == "jsonl":
        return read_corpus_jsonl(path, entity_types)
    if corpus_format == "pubtator":
        return read_pubtator(path, entity_types)
    raise ValueError(f"unknown corpus format {corpus_format!r}; expected one of {CORPUS_FORMATS}")
