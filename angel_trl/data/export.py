"""Linked predictions written back as a corpus: PubTator with the predicted ids, or BigBIO-kb JSONL.

The inputs are a :class:`~angel_trl.data.corpus.Corpus` and, for each of ``corpus.mentions`` in
order, the predicted ids best first (``[]``: NIL, written ``-1`` in PubTator and ``normalized: []``
in BigBIO). ``top_k`` ids are written per mention: 1 (the linker's answer) by default, ``None`` for
all of them (exporting gold ids, where a composite mention has several).

Both files read back with our readers (``read_pubtator``, ``corpus_format: bigbio``) to the same
document texts and mention offsets. Our documents have one text, PubTator wants a title and an
abstract: the title is cut at the first sentence end (``". "``), else at the last space, so that
``title + " " + abstract`` is the text again. Tabs and line breaks in a text or a mention type
would break the lines: each is written as a space (offsets unchanged), counted in the returned
counts. A document id or a predicted id that PubTator cannot hold is an error.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

from angel_trl.data.corpus import Corpus, Document
from angel_trl.data.files import atomic_open, write_jsonl

_SENTENCE_END = re.compile(r"[.?!] ")
_LINE_BREAKING = re.compile(r"[\t\r\n]")


def _per_document(corpus: Corpus, predictions: Sequence[Sequence[str]], top_k: int | None) -> Iterator[tuple[Document, list[list[str]]]]:
    """Each document with the written ids of its mentions (checked: one prediction list a mention)."""
    if len(predictions) != len(corpus.mentions):
        raise ValueError(f"{len(predictions)} predictions for {len(corpus.mentions)} mentions: give one id list per mention, in corpus.mentions order")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be at least 1 (None: all ids), got {top_k}")
    rows = iter(predictions)
    for doc in corpus.documents:
        ids = []
        for m in doc.mentions:
            pred = next(rows)
            if isinstance(pred, str) or not all(isinstance(i, str) and i.strip() for i in pred):
                raise ValueError(f"predictions for {m.mention_id}: expected a list of non-empty id strings, got {pred!r}")
            ids.append(list(pred)[:top_k])
        yield doc, ids


def _title_end(text: str) -> int | None:
    """Where the PubTator title ends (a space that is dropped), None if the text has no space."""
    m = _SENTENCE_END.search(text)
    if m is not None:
        return m.end() - 1
    last = text.rfind(" ")
    return last if last >= 0 else None


def check_pubtator_writable(corpus: Corpus) -> None:
    """Raise ValueError for the first document id that cannot be a PubTator PMID (empty, or holding
    ``|``, a tab or a line break). Callers check before linking, so such a corpus fails before the work."""
    for doc in corpus.documents:
        if not doc.id or "|" in doc.id or _LINE_BREAKING.search(doc.id):
            raise ValueError(f"document id {doc.id!r} cannot be written as a PubTator PMID (empty, or holds '|', a tab or a line break)")


def _one_line(text: str, counts: Counter) -> str:
    """``text`` with tabs and line breaks written as spaces (same length: offsets hold), counted."""
    if not _LINE_BREAKING.search(text):
        return text
    counts["line_breaking_characters_written_as_spaces"] += len(_LINE_BREAKING.findall(text))
    return _LINE_BREAKING.sub(" ", text)


def _pubtator_block(doc: Document, ids: list[list[str]], counts: Counter) -> str:
    """The title, abstract and annotation lines of one document."""
    check_pubtator_writable(Corpus([doc]))
    text = _one_line(doc.text, counts)
    cut = _title_end(text)
    if cut is None:
        # No space to cut at: the empty abstract adds one space at the end of the text read back.
        counts["texts_without_title_break"] += 1
        title, abstract = text, ""
    else:
        title, abstract = text[:cut], text[cut + 1 :]
    lines = [f"{doc.id}|t|{title}", f"{doc.id}|a|{abstract}"]
    for m, mention_ids in zip(doc.mentions, ids):
        unwritable = [cid for cid in mention_ids if "|" in cid or "+" in cid or _LINE_BREAKING.search(cid)]
        if unwritable:  # the id column joins ids with '|' (or '+'): such an id would read back as several
            raise ValueError(f"{m.mention_id}: id {unwritable[0]!r} cannot be written in a PubTator id column (holds '|', '+', a tab or a line break)")
        lines.append("\t".join([doc.id, str(m.start), str(m.end), text[m.start : m.end], _one_line(m.type, counts), "|".join(mention_ids) or "-1"]))
    return "\n".join(lines) + "\n"


def write_pubtator_predictions(path: str | Path, corpus: Corpus, predictions: Sequence[Sequence[str]], top_k: int | None = 1) -> Counter:
    """Write ``corpus`` as PubTator, each mention with its predicted ids (``|``-joined when
    ``top_k`` > 1 or None); returns what was changed to fit the format (see the module docstring)."""
    counts: Counter = Counter()
    with atomic_open(path) as f:
        for i, (doc, ids) in enumerate(_per_document(corpus, predictions, top_k)):
            f.write(("\n" if i else "") + _pubtator_block(doc, ids, counts))
    return counts


def _bigbio_document(n: int, doc: Document, ids: list[list[str]], db_name: str) -> dict:
    """One BigBIO-kb example: the text as one passage (or title and abstract, as PubTator), the mentions as entities."""
    cut = _title_end(doc.text)
    if cut is None:
        passages = [{"id": f"{doc.id}_text", "type": "text", "text": [doc.text], "offsets": [[0, len(doc.text)]]}]
    else:
        passages = [
            {"id": f"{doc.id}_title", "type": "title", "text": [doc.text[:cut]], "offsets": [[0, cut]]},
            {"id": f"{doc.id}_abstract", "type": "abstract", "text": [doc.text[cut + 1 :]], "offsets": [[cut + 1, len(doc.text)]]},
        ]
    entities = [
        {"id": f"{doc.id}_e{i}", "type": m.type, "text": [m.text], "offsets": [[m.start, m.end]], "normalized": [{"db_name": db_name, "db_id": cid} for cid in mention_ids]}
        for i, (m, mention_ids) in enumerate(zip(doc.mentions, ids))
    ]
    return {"id": str(n), "document_id": doc.id, "passages": passages, "entities": entities, "events": [], "coreferences": [], "relations": []}


def write_bigbio_predictions(path: str | Path, corpus: Corpus, predictions: Sequence[Sequence[str]], top_k: int | None = 1, db_name: str = "") -> None:
    """Write ``corpus`` as BigBIO-kb JSONL (one document a line), each entity's ``normalized`` the
    predicted ids (``db_name`` for all: our ids carry no database name)."""
    write_jsonl(path, (_bigbio_document(n, doc, ids, db_name) for n, (doc, ids) in enumerate(_per_document(corpus, predictions, top_k))))
