"""Annotated corpora: documents with mention offsets and gold concept ids.

Readers: PubTator (NCBI-disease, BC5CDR), BigBIO-schema ``datasets`` (:mod:`angel_trl.data.bigbio`)
and our own JSONL, one document per line::

    {"id": "doc1", "text": "...", "mentions": [{"start": 4, "end": 12, "text": "...",
     "type": "Disease", "ids": ["D003920"], "composite": false}]}

``ids: []`` marks a NIL mention (no KB concept). Every offset is checked against the text; a
mismatch is an :class:`~angel_trl.errors.InputFormatError` naming the file and line, as is any
malformed line. A file without documents, or without a single mention (after the entity-type
filter), is an error too: there is nothing to train or evaluate on. What a reader skips or repairs
is counted in :attr:`Corpus.counts` (relation lines, other entity types, duplicated document ids,
duplicated mentions, whitespace around a mention, a PubTator mention with an empty id column, read
as NIL, JSONL keys the format has no place for). A JSONL key that is a known one misspelt
(``"id"`` for a mention's ``"ids"``) is an error: its value would be lost.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from angel_trl.defaults import END_MARKER, START_MARKER
from angel_trl.errors import InputFormatError
from angel_trl.data.files import extra_keys_problem, read_jsonl_objects, read_lines, write_jsonl
from angel_trl.data.kb import normalize_concept_id

NIL_IDS = {"-1", "", "NIL", "CUI-less"}
_ID_SPLIT = re.compile(r"[|+]")
_INT = re.compile(r"-?[0-9]+")
_OFFSETS_RUN_TOGETHER = re.compile(r"\s*-?[0-9]+(\s+-?[0-9]+)+\s*")


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

    def to_jsonl(self, path: str | Path) -> None:
        """Write the corpus in our JSONL format (atomically); :func:`read_corpus_jsonl` reads it back."""
        write_jsonl(
            path,
            (
                {"id": d.id, "text": d.text, "mentions": [{"start": m.start, "end": m.end, "text": m.text, "ids": list(m.ids), "type": m.type, "composite": m.composite} for m in d.mentions]}
                for d in self.documents
            ),
        )

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
    if start >= end:
        raise InputFormatError(path, lineno, f"offsets {start}-{end}: start must be before end")
    if start < 0 or end > len(text):
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


def _unique_doc_id(doc_id: str, seen: Counter, counts: Counter) -> str:
    """``doc_id``, or ``doc_id#N`` for its N-th occurrence: both documents are kept and distinct."""
    seen[doc_id] += 1
    if seen[doc_id] == 1:
        return doc_id
    counts["duplicate_doc_ids"] += 1
    return f"{doc_id}#{seen[doc_id]}"


def _finish(docs: list[Document], path: Path, counts: Counter, types: set[str] | None, other_types: Counter) -> Corpus:
    if not docs:
        raise InputFormatError(path, None, "no documents found (empty file?)")
    # The same span with the same ids and type twice: kept (a corpus may mean it), but counted, since
    # each copy weighs in training and in every score.
    duplicates = sum(len(d.mentions) - len({(m.start, m.end, m.ids, m.type) for m in d.mentions}) for d in docs)
    if duplicates:
        counts["duplicate_mentions"] += duplicates
    # Read as plain text, written "(ST)" / "(ET)" in model inputs (angel_trl.text.examples.plain_text).
    with_markers = sum(START_MARKER in d.text or END_MARKER in d.text for d in docs)
    if with_markers:
        counts["texts_with_marker_strings"] += with_markers
    if not any(d.mentions for d in docs):
        if types is not None and other_types:
            found = ", ".join(f"{t} ({n})" for t, n in other_types.most_common())
            raise InputFormatError(path, None, f"no mentions of type {', '.join(sorted(types))}; types found: {found}")
        raise InputFormatError(path, None, f"no mentions in {len(docs)} document(s): nothing to train or evaluate on")
    return Corpus(docs, str(path), counts)


def read_pubtator(path: str | Path, entity_types: Sequence[str] | None = None) -> Corpus:
    """Read a PubTator file; ``entity_types`` (e.g. ``["Disease"]``) keeps only those mention types.

    Offsets index ``title + " " + abstract``. Relation lines (``PMID<TAB>CID<TAB>...``: 4 or 5
    columns, no start offset) are skipped and counted; a PMID seen twice gets ``#2`` appended so both
    documents are kept and distinct. An empty id column is read as NIL and counted.
    """
    return _PubtatorReader(Path(path), set(entity_types) if entity_types else None).read()


class _PubtatorReader:
    """The state of reading one PubTator file: the document being read and its annotation lines.

    Annotation lines are kept until the document ends (a blank line, the next title or the end of
    the file), then checked against its text and turned into mentions.
    """

    def __init__(self, path: Path, types: set[str] | None):
        self.path = path
        self.types = types
        self.counts: Counter = Counter()
        self.other_types: Counter = Counter()
        self.docs: list[Document] = []
        self.seen_ids: Counter = Counter()
        self.title: dict[str, str] = {}
        self.title_line: int | None = None  # line of a title still waiting for its abstract
        self.current: Document | None = None
        self.pending: list[tuple[int, list[str]]] = []
        self.pmid = ""
        # Entity types of the file's annotation lines so far, and the ones asked for: a short line
        # with one of them in its third column is an annotation that lost its offsets, not a relation.
        self.known_types: set[str] = set(types or ())

    def read(self) -> Corpus:
        for lineno, line in read_lines(self.path):
            if not line.strip():
                self._end_document()
                continue
            head = line.split("|", 2)
            if len(head) == 3 and head[1] in ("t", "a") and "\t" not in head[0]:
                self._title_or_abstract(head, lineno)
            else:
                self._annotation(line, lineno)
        self._end_document()
        return _finish(self.docs, self.path, self.counts, self.types, self.other_types)

    def _title_or_abstract(self, head: list[str], lineno: int) -> None:
        """A ``PMID|t|title`` line starts a document, the ``PMID|a|abstract`` line after it gives its text."""
        if head[1] == "t":
            self._end_document()
            self.pmid, self.title_line = head[0], lineno
            self.title[self.pmid] = head[2]
            return
        if self.title_line is None or self.pmid != head[0]:
            raise InputFormatError(self.path, lineno, f"abstract of {head[0]!r} without its title line")
        self.title_line = None
        self.current = Document(_unique_doc_id(self.pmid, self.seen_ids, self.counts), self.title[self.pmid] + " " + head[2])

    def _annotation(self, line: str, lineno: int) -> None:
        """A tab-separated line of the current document, kept until the document ends."""
        cols = line.split("\t")
        if len(cols) < 2:
            raise InputFormatError(self.path, lineno, "expected 'PMID|t|title', 'PMID|a|abstract' or a tab-separated annotation line")
        if self.current is None and self.title_line is None:
            raise InputFormatError(self.path, lineno, "annotation line outside a document (before its title line, or after the blank line that ends it)")
        if cols[0] != self.pmid:
            raise InputFormatError(self.path, lineno, f"line for document {cols[0]!r} inside document {self.pmid!r}")
        if len(cols) >= 6:
            self.known_types.add(cols[4])
        self.pending.append((lineno, cols))

    def _end_document(self) -> None:
        """Turn the current document's annotation lines into mentions and keep the document."""
        if self.title_line is not None:
            raise InputFormatError(self.path, self.title_line, f"title of {self.pmid} without its abstract line ('{self.pmid}|a|...')")
        if self.current is None:
            return
        for lineno, cols in self.pending:
            mention = self._mention(self.current, cols, lineno)
            if mention is not None:
                self.current.mentions.append(mention)
        self.docs.append(self.current)
        self.current, self.pending = None, []

    def _relation_line(self, cols: list[str], lineno: int) -> bool:
        """Whether an annotation line is a relation (``PMID<TAB>CID<TAB>id<TAB>id``: 4 or 5 columns,
        a relation name where a mention has its start offset), skipped and counted. An annotation
        whose offsets ran together (``43 54``) or went missing (an entity type of this file in the
        third column) has 4 or 5 columns too: it is an error, so that no mention is dropped as a relation."""
        if cols[1] == "CID":
            return True
        if len(cols) not in (4, 5) or _INT.fullmatch(cols[1].strip()):
            return False
        if _OFFSETS_RUN_TOGETHER.fullmatch(cols[1]) or cols[2] in self.known_types:
            raise InputFormatError(self.path, lineno, f"annotation line without its start and end offsets as columns 2 and 3 (PMID, start, end, mention, type, ids), got {cols[1:]!r}")
        return True

    def _mention(self, doc: Document, cols: list[str], lineno: int) -> Mention | None:
        """The mention of one annotation line of ``doc``; None (counted) for a relation line or a
        mention of another entity type."""
        if self._relation_line(cols, lineno):
            self.counts["relation_lines"] += 1
            return None
        if len(cols) < 6:
            raise InputFormatError(self.path, lineno, f"expected >= 6 tab-separated columns (PMID, start, end, mention, type, ids), got {len(cols)}")
        if not (_INT.fullmatch(cols[1].strip()) and _INT.fullmatch(cols[2].strip())):
            raise InputFormatError(self.path, lineno, f"offsets {cols[1]!r} {cols[2]!r} are not integers")
        start, end = int(cols[1]), int(cols[2])
        mtype = cols[4]
        if self.types is not None and mtype not in self.types:
            self.counts["other_type_mentions"] += 1
            self.other_types[mtype] += 1
            return None
        span = _checked_span(doc.text, start, end, cols[3], self.path, lineno, self.counts)
        if not cols[5].strip():
            self.counts["empty_ids_as_nil"] += 1
        ids = parse_ids(cols[5])
        individual = [s for s in cols[6].split("|") if s] if len(cols) > 6 else []
        if len(cols) > 7 and any(c.strip() for c in cols[7:]):
            self.counts["extra_columns_ignored"] += 1  # a column this format has no place for (lines counted)
        composite = "composite" in mtype.lower() or len(ids) > 1 or len(individual) > 1
        return Mention(doc.id, start, end, span, ids, mtype, composite)


DOCUMENT_KEYS = ("id", "text", "mentions")
MENTION_KEYS = ("start", "end", "text", "ids", "type", "composite")


def _jsonl_mention(m, path: Path, lineno: int, counts: Counter) -> tuple[int, int, str, tuple[str, ...], str, bool]:
    """``(start, end, text, ids, type, composite)`` of one JSONL mention, each field type-checked."""
    if not isinstance(m, dict):
        raise InputFormatError(path, lineno, f"mention {m!r} is not a JSON object")
    if problem := extra_keys_problem(m, MENTION_KEYS, "mention", counts):
        raise InputFormatError(path, lineno, problem)
    start, end, mtext = m.get("start"), m.get("end"), m.get("text")
    # bool is an int subclass, and int(4.7) would silently move a span: only true integers pass.
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)) or not isinstance(mtext, str):
        raise InputFormatError(path, lineno, f"mention {m!r} needs integer 'start'/'end' and a string 'text'")
    raw_ids = m.get("ids", [])
    raw_ids = [raw_ids] if isinstance(raw_ids, str) else raw_ids
    if not isinstance(raw_ids, list) or not all(isinstance(i, str) for i in raw_ids):
        raise InputFormatError(path, lineno, f"mention {mtext!r}: 'ids' must be a list of strings ([] for NIL)")
    if not all(i.strip() for i in raw_ids):
        raise InputFormatError(path, lineno, f"mention {mtext!r}: empty id in 'ids' (use [] for a NIL mention)")
    mtype, composite = m.get("type", ""), m.get("composite", False)
    if not isinstance(mtype, str) or not isinstance(composite, bool):
        raise InputFormatError(path, lineno, f"mention {mtext!r}: 'type' must be a string and 'composite' true or false")
    ids = parse_ids("|".join(raw_ids))
    return start, end, mtext, ids, mtype, composite or len(ids) > 1


def read_corpus_jsonl(path: str | Path, entity_types: Sequence[str] | None = None) -> Corpus:
    """Read our JSONL corpus format (see the module docstring); a repeated document id gets ``#2``."""
    path = Path(path)
    types = set(entity_types) if entity_types else None
    counts: Counter = Counter()
    other_types: Counter = Counter()
    docs: list[Document] = []
    seen_ids: Counter = Counter()
    for lineno, row in read_jsonl_objects(path):
        raw_id, text, mentions = row.get("id"), row.get("text"), row.get("mentions", [])
        if not isinstance(raw_id, (str, int)) or isinstance(raw_id, bool) or not str(raw_id).strip() or not isinstance(text, str):
            raise InputFormatError(path, lineno, "each document needs a non-empty 'id' and a string 'text'")
        if not isinstance(mentions, list):
            raise InputFormatError(path, lineno, "'mentions' must be a list")
        if problem := extra_keys_problem(row, DOCUMENT_KEYS, "document", counts):
            raise InputFormatError(path, lineno, problem)
        doc = Document(_unique_doc_id(str(raw_id), seen_ids, counts), text)
        for m in mentions:
            start, end, mtext, ids, mtype, composite = _jsonl_mention(m, path, lineno, counts)
            if types is not None and mtype not in types:
                counts["other_type_mentions"] += 1
                other_types[mtype] += 1
                continue
            span = _checked_span(doc.text, start, end, mtext, path, lineno, counts)
            doc.mentions.append(Mention(doc.id, start, end, span, ids, mtype, composite))
        docs.append(doc)
    return _finish(docs, path, counts, types, other_types)


def mentions_shared_with(corpus: Corpus, other: Corpus) -> int:
    """How many mentions of ``corpus`` ``other`` holds too: the same span of a document with the same
    text (whatever its id). A test split sharing them with training scores what was trained on."""
    spans = {(d.text, m.start, m.end) for d in other.documents for m in d.mentions}
    return sum((d.text, m.start, m.end) in spans for d in corpus.documents for m in d.mentions)


CORPUS_FORMATS = ("jsonl", "pubtator", "bigbio")


def load_corpus(path: str | Path, corpus_format: str = "jsonl", entity_types: Sequence[str] | None = None) -> Corpus:
    """Read a corpus in one of :data:`CORPUS_FORMATS`; for ``bigbio``, ``path`` is a ``datasets``
    source (a folder, a data file or a Hub id, ``:SPLIT`` after it: :mod:`angel_trl.data.bigbio`)."""
    if corpus_format == "jsonl":
        return read_corpus_jsonl(path, entity_types)
    if corpus_format == "pubtator":
        return read_pubtator(path, entity_types)
    if corpus_format == "bigbio":
        from angel_trl.data.bigbio import read_bigbio  # it imports this module

        return read_bigbio(str(path), entity_types)
    raise ValueError(f"unknown corpus format {corpus_format!r}; expected one of {CORPUS_FORMATS}")
