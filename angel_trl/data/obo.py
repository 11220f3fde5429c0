"""OBO ontologies (HPO, MONDO, DOID, ChEBI, ...) as a :class:`~angel_trl.data.kb.KnowledgeBase`
(``kb_format: obo``); ``read_obo(path).to_jsonl(out)`` converts one to our JSONL KB.

Of each ``[Term]`` stanza: ``id``, ``name`` (the preferred name), ``synonym: "text" SCOPE [...]``
(and the OBO 1.0 ``exact_synonym`` / ``related_synonym`` / ``narrow_synonym`` / ``broad_synonym``
tags), ``alt_id`` and ``def``. Skipped and counted: obsolete terms (``is_obsolete: true``; their id
becomes an alternative id of their ``replaced_by`` term, so a corpus annotated with the old id still
finds its concept), terms without any name, synonyms of a scope not kept, and other stanzas
(``[Typedef]``, ``[Instance]``).

Synonym scopes kept by default: EXACT and RELATED. EXACT synonyms are the term itself; RELATED ones
are, in the biomedical ontologies, mostly the forms texts use (abbreviations, lay terms, former
names: HPO "Seizures" / "Epilepsy", MONDO "CF"). NARROW and BROAD synonyms name a narrower or a
broader concept: as names of this one the linker would learn to answer it for mentions of its
children or its parents, and BROAD ones ("cancer") are shared by many terms, which makes names
ambiguous. Pass ``synonym_scopes`` to keep others.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from angel_trl.data.files import read_lines
from angel_trl.data.kb import Concept, KnowledgeBase, _clean_names, _finish, normalize_concept_id
from angel_trl.errors import InputFormatError

SYNONYM_SCOPES = ("EXACT", "RELATED", "NARROW", "BROAD")
DEFAULT_SYNONYM_SCOPES = ("EXACT", "RELATED")
# OBO 1.0 tags that carry their scope in the tag name.
_LEGACY_SYNONYM_TAGS = {f"{s.lower()}_synonym": s for s in SYNONYM_SCOPES}
_QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"\s*(.*)')
_ESCAPE = re.compile(r"\\(.)")
_ESCAPED = {"n": "\n", "t": "\t", "W": " "}
# An unescaped "!" after a space starts a trailing comment ("id: HP:0001250 ! Seizure").
_COMMENT = re.compile(r"(?<!\\)\s+!.*$")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: _ESCAPED.get(m.group(1), m.group(1)), text)


def _quoted(value: str, path: Path, lineno: int, tag: str) -> tuple[str, str]:
    """``(text, rest)`` of a ``"quoted text" rest`` value (synonym, def)."""
    m = _QUOTED.match(value)
    if m is None:
        raise InputFormatError(path, lineno, f"{tag}: expected a quoted string, got {value!r}")
    return _unescape(m.group(1)), m.group(2)


class _Term:
    """The tags of one ``[Term]`` stanza that make a concept."""

    def __init__(self, lineno: int, counts: Counter):
        self.lineno = lineno
        self.counts = counts  # the file's: what its lines needed mending
        self.id = ""
        self.names: list[str] = []
        self.synonyms: list[tuple[str, str]] = []  # (text, scope)
        self.alt_ids: list[str] = []
        self.replaced_by: list[str] = []
        self.definition: str | None = None
        self.obsolete = False

    def add(self, tag: str, value: str, path: Path, lineno: int) -> None:
        """Record one ``tag: value`` line; tags that do not make a concept are ignored."""
        if tag == "id":
            if self.id:
                raise InputFormatError(path, lineno, f"a second id in the term {self.id}")
            self.id = normalize_concept_id(_COMMENT.sub("", value))
        elif tag == "name":
            self.names.append(_unescape(_COMMENT.sub("", value)))
        elif tag == "synonym" or tag in _LEGACY_SYNONYM_TAGS:
            text, rest = _quoted(value, path, lineno, tag)
            written = rest.split()[0] if rest.split() else ""
            scope = written.upper()
            if scope in SYNONYM_SCOPES and scope != written:  # the spec writes scopes in capitals; "broad" means BROAD, not a missing scope
                self.counts["synonym_scopes_not_in_capitals"] += 1
            # OBO 1.2: a synonym without a scope is RELATED.
            self.synonyms.append((text, _LEGACY_SYNONYM_TAGS.get(tag) or (scope if scope in SYNONYM_SCOPES else "RELATED")))
        elif tag == "alt_id":
            self.alt_ids.append(normalize_concept_id(_COMMENT.sub("", value)))
        elif tag == "replaced_by":
            self.replaced_by.append(normalize_concept_id(_COMMENT.sub("", value)))
        elif tag == "def":
            self.definition = _quoted(value, path, lineno, tag)[0]
        elif tag == "is_obsolete":
            self.obsolete = _COMMENT.sub("", value).strip().lower() == "true"


def _stanzas(path: Path, counts: Counter) -> list[_Term]:
    """The ``[Term]`` stanzas of an OBO file; the header and other stanzas are skipped (counted)."""
    terms: list[_Term] = []
    current: _Term | None = None
    in_header = True
    for lineno, line in read_lines(path):
        line = line.strip()
        if not line or line.startswith("!"):
            continue
        if line.startswith("[") and line.endswith("]"):
            in_header = False
            kind = line[1:-1].strip()
            current = _Term(lineno, counts) if kind == "Term" else None
            if current is not None:
                terms.append(current)
            else:
                counts[f"obo_{kind.lower()}_stanzas_skipped"] += 1
            continue
        if in_header or current is None:
            continue
        tag, sep, value = line.partition(":")
        if not sep:
            raise InputFormatError(path, lineno, f"expected 'tag: value', got {line!r}")
        current.add(tag.strip(), value.strip(), path, lineno)
    return terms


def read_obo(path: str | Path, synonym_scopes: Iterable[str] = DEFAULT_SYNONYM_SCOPES) -> KnowledgeBase:
    """The terms of an OBO file as concepts (see the module docstring for what is kept and why)."""
    path = Path(path)
    scopes = {s.upper() for s in synonym_scopes}
    if not scopes <= set(SYNONYM_SCOPES):
        raise ValueError(f"synonym scopes must be among {', '.join(SYNONYM_SCOPES)}, got {', '.join(sorted(scopes))}")
    counts: Counter = Counter()
    concepts: list[Concept] = []
    replaced: list[tuple[str, str]] = []  # (obsolete id, replacing id)
    for term in _stanzas(path, counts):
        if not term.id:
            raise InputFormatError(path, term.lineno, "a [Term] without an id")
        if term.obsolete:
            counts["obsolete_terms_skipped"] += 1
            replaced.extend((term.id, new) for new in term.replaced_by[:1])
            continue
        kept = [text for text, scope in term.synonyms if scope in scopes]
        counts["synonyms_skipped_by_scope"] += len(term.synonyms) - len(kept)
        names = _clean_names([*term.names, *kept], counts)
        if not names:
            counts["terms_without_name_skipped"] += 1
            continue
        concepts.append(Concept(term.id, names, [a for a in dict.fromkeys(term.alt_ids) if a and a != term.id], term.definition or None))
    by_id = {c.id: c for c in concepts}
    for old, new in replaced:
        if new not in by_id:  # the old id cannot lead anywhere: a corpus annotated with it finds no concept
            counts["obsolete_ids_replaced_by_a_term_not_kept"] += 1
        elif old not in by_id[new].alt_ids:
            by_id[new].alt_ids.append(old)
            counts["obsolete_ids_as_alt_ids"] += 1
    return _finish(concepts, path, counts)
