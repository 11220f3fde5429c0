"""Abbreviations defined in a document ("myocardial infarction (MI)"), found with the Schwartz-Hearst
algorithm, and mentions that use one replaced by its long form before linking.

Why: an abbreviation such as "MI" or "AKI" is rarely a KB name, and a small model that sees it
without its definition guesses; BioEL systems (BioSyn, SapBERT's evaluation, with Ab3P) expand
abbreviations first. Schwartz & Hearst (PSB 2003), "A simple algorithm for identifying abbreviation
definitions in biomedical text": a short form in parentheses after its long form, whose characters
occur in the long form in order, its first character starting a word.
"""

from __future__ import annotations

import dataclasses
import re

from angel_trl.data.corpus import Corpus, Document

_PAREN = re.compile(r"\(([^()]*)\)")
# Where a long form may start at the earliest: after the end of the previous sentence or clause, or after
# an earlier parenthesis ("ischemic stroke (IS)/transient ischemic attack (TIA)").
_BOUNDARY = re.compile(r"[.;:!?](?:\s|$)|\n|[()]")


def _valid_short_form(short: str) -> bool:
    return 2 <= len(short) <= 10 and len(short.split()) <= 2 and short[0].isalnum() and any(c.isalpha() for c in short)


def best_long_form(short: str, candidate: str) -> str | None:
    """The shortest tail of ``candidate`` (words before the parenthesis) that contains the
    characters of ``short`` in order, right to left, the first one at the start of a word
    (Schwartz-Hearst's ``findBestLongForm``); None when there is none."""
    s, c = len(short) - 1, len(candidate) - 1
    while s >= 0:
        ch = short[s].lower()
        if not ch.isalnum():
            s -= 1
            continue
        while c >= 0 and (candidate[c].lower() != ch or (s == 0 and c > 0 and candidate[c - 1].isalnum())):
            c -= 1
        if c < 0:
            return None
        c -= 1
        s -= 1
    start = candidate.rfind(" ", 0, c + 1) + 1
    return candidate[start:]


def find_abbreviations(text: str) -> dict[str, str]:
    """``{short form: long form}`` for each "long form (short form)" in ``text``; a short form
    defined twice keeps its first definition (what a reader of the text would do)."""
    found: dict[str, str] = {}
    for match in _PAREN.finditer(text):
        short = re.split(r"[;,]\s", match.group(1))[0].strip()
        if not _valid_short_form(short) or short in found:
            continue
        before = text[: match.start()]
        boundaries = list(_BOUNDARY.finditer(before))
        clause = before[boundaries[-1].end() :] if boundaries else before
        # At most min(|SF| + 5, 2 |SF|) words, as in the paper.
        words = clause.split()[-min(len(short) + 5, 2 * len(short)) :]
        if not words:
            continue
        long = best_long_form(short, " ".join(words))
        if long is None or len(long) <= len(short) or short.lower() in long.lower().split():
            continue
        found[short] = re.sub(r"^\W+|[\s,]+$", "", long)  # "/transient ischemic attack" -> "transient ischemic attack"
    return found


def expand_abbreviations(corpus: Corpus) -> Corpus:
    """A copy of ``corpus`` whose mentions equal to an abbreviation defined in their document have
    its long form as their text (offsets unchanged, so the context is the document's own); the
    number expanded is counted under ``abbreviations_expanded``."""
    documents = []
    expanded = 0
    for doc in corpus.documents:
        definitions = find_abbreviations(doc.text)
        mentions = []
        for m in doc.mentions:
            long = definitions.get(m.text.strip())
            if long is not None:
                m = dataclasses.replace(m, text=long)
                expanded += 1
            mentions.append(m)
        documents.append(Document(doc.id, doc.text, mentions))
    counts = corpus.counts.copy()
    counts["abbreviations_expanded"] = expanded
    return Corpus(documents, corpus.source, counts)
