"""The linking vocabulary: every distinct (normalised) KB name and the concepts it belongs to.

The trie is built over these names and maps each decoded name back to its concept id(s); a name
shared by several concepts (958 in MEDIC, e.g. "ADA") keeps all of them, in KB order unless a
``priority`` (e.g. how often training mentions with that text link to each concept) reorders them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from angel_trl.errors import InputFormatError
from angel_trl.data.files import atomic_write_text, read_jsonl_objects
from angel_trl.data.kb import KnowledgeBase, normalize_name


class NameTable:
    """Sorted distinct names, each with its concept ids."""

    def __init__(self, names: list[str], concept_ids: list[list[str]], lowercase: bool):
        if len(names) != len(concept_ids):
            raise ValueError("names and concept_ids differ in length")
        self.names = names
        self.concept_ids = concept_ids
        self.lowercase = lowercase
        self._index = {n: i for i, n in enumerate(names)}
        self._by_concept: dict[str, list[int]] | None = None

    @classmethod
    def from_kb(cls, kb: KnowledgeBase, lowercase: bool = True, priority: Mapping[str, Mapping[str, int]] | None = None) -> NameTable:
        """All KB names; ``priority[name][concept_id]`` (higher first) orders the concepts of a shared name."""
        table: dict[str, list[str]] = {}
        for concept in kb.concepts.values():
            for name in concept.names:
                ids = table.setdefault(normalize_name(name, lowercase), [])
                if concept.id not in ids:
                    ids.append(concept.id)
        if priority:
            for name, ids in table.items():
                counts = priority.get(name)
                if counts and len(ids) > 1:
                    ids.sort(key=lambda cid: -counts.get(cid, 0))  # stable: KB order among equals
        names = sorted(table)
        return cls(names, [table[n] for n in names], lowercase)

    def __len__(self) -> int:
        return len(self.names)

    def normalize(self, text: str) -> str:
        return normalize_name(text, self.lowercase)

    def index_of(self, name: str) -> int | None:
        return self._index.get(self.normalize(name))

    def names_of_concept(self, concept_id: str) -> list[int]:
        """Indices of the names of one concept (empty if unknown)."""
        if self._by_concept is None:
            by: dict[str, list[int]] = {}
            for i, ids in enumerate(self.concept_ids):
                for cid in ids:
                    by.setdefault(cid, []).append(i)
            self._by_concept = by
        return self._by_concept.get(concept_id, [])

    def save(self, path: str | Path) -> None:
        """JSONL, one ``{"name": ..., "ids": [...]}`` per line, first line the header."""
        header = json.dumps({"format": "angel-trl-names", "version": 1, "lowercase": self.lowercase})
        body = "".join(json.dumps({"name": n, "ids": ids}, ensure_ascii=False) + "\n" for n, ids in zip(self.names, self.concept_ids))
        atomic_write_text(path, header + "\n" + body)

    @classmethod
    def load(cls, path: str | Path) -> NameTable:
        """Read what :meth:`save` wrote; anything else is an input error naming the line."""
        path = Path(path)
        rows = read_jsonl_objects(path)
        lineno, header = next(rows, (1, {}))
        if header.get("format") != "angel-trl-names" or not isinstance(header.get("lowercase"), bool):
            raise InputFormatError(path, lineno, "not an angel-trl name table (no header line)")
        names, ids, line_of = [], [], {}
        for lineno, row in rows:
            name, cids = row.get("name"), row.get("ids")
            if not isinstance(name, str) or not isinstance(cids, list) or not cids or not all(isinstance(c, str) and c for c in cids):
                raise InputFormatError(path, lineno, "expected {\"name\": string, \"ids\": [string, ...]} with at least one non-empty id")
            # One row per name: a second would take the first one's place in the name index.
            if name in line_of:
                raise InputFormatError(path, lineno, f"name {name!r} again (first on line {line_of[name]}): a name table lists each name once, with all its ids")
            line_of[name] = lineno
            names.append(name)
            ids.append(cids)
        if not names:
            raise InputFormatError(path, None, "name table without names")
        return cls(names, ids, header["lowercase"])
