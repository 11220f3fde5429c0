"""A split's candidate unions and features as JSON lines, so rankers can be refit without scoring again.

Scoring every candidate with the model is the hybrid's expensive step (minutes per split on a
CPU); fitting a ranker on the scored features takes a second. Writing the features once lets an
ablation fit many rankers (feature subsets, objectives) on the same scores, and a benchmark rerun
reuse them. The file says which features and candidate settings produced it; it is read back
only when it holds exactly the mentions asked for, in order.

While a split is scored, its rows go batch by batch into ``<file>.partial`` (:class:`PartialCandidates`,
the same format): a run stopped after an hour of scoring resumes after the last batch it saved
instead of starting over, and the finished file replaces the partial one.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from angel_trl.data.files import atomic_open, atomic_write_text, read_jsonl_objects
from angel_trl.errors import InputFormatError
from angel_trl.linking.linker import BeamName, Candidate, LinkingResult

FORMAT = "angel-trl-hybrid-candidates"
PARTIAL_SUFFIX = ".partial"

logger = logging.getLogger(__name__)


def write_candidates(path: str | Path, beams: Sequence[LinkingResult], candidates: Sequence, features: Sequence[str], config: dict) -> None:
    """One header line (format, features, candidate config), then one line per mention."""
    atomic_write_text(path, _header_line(features, config, len(beams)) + _row_lines(beams, candidates))


def _header_line(features: Sequence[str], config: dict, mentions: int) -> str:
    return json.dumps({"format": FORMAT, "version": 1, "features": list(features), "config": config, "mentions": mentions}) + "\n"


def _row_lines(beams: Sequence[LinkingResult], candidates: Sequence) -> str:
    """One newline-terminated JSON line per mention."""
    lines = []
    for beam, cands in zip(beams, candidates, strict=True):
        row = {
            "mention": beam.mention,
            "beam_candidates": [asdict(c) for c in beam.candidates],
            "beam": [asdict(b) for b in beam.beam],
            "concept_ids": cands.concept_ids,
            "names": cands.names,
            "features": cands.features.tolist(),
        }
        lines.append(json.dumps(row, ensure_ascii=False) + "\n")
    return "".join(lines)


class PartialCandidates:
    """The candidates file ``path`` while it is being scored: ``<path>.partial``, whose rows are a
    prefix of the mentions, appended a batch at a time (flushed to disk), so that a stopped run
    resumes where it was (:meth:`resume`) and :meth:`finish` writes ``path`` whole."""

    def __init__(self, path: str | Path, mentions: Sequence[str], features: Sequence[str], config: dict):
        self.path = Path(path)
        self.partial = Path(str(path) + PARTIAL_SUFFIX)
        self.mentions, self.features, self.config = list(mentions), list(features), config

    def resume(self, unit: int) -> tuple[list[LinkingResult], list]:
        """The rows saved before, cut to a multiple of ``unit`` mentions (a point where an
        uninterrupted run's batches start too), and the partial file rewritten to hold just those.
        A partial file of other mentions or settings is started over (logged); a last line cut
        by the stop is dropped; any other damage (an empty file included: its header is written
        first) is an :class:`InputFormatError` naming the line."""
        beams, candidates = self._saved()
        keep = len(beams) // unit * unit
        if keep:
            logger.info("%s: resuming after %d of %d mentions scored before", self.partial, keep, len(self.mentions))
        beams, candidates = beams[:keep], candidates[:keep]
        atomic_write_text(self.partial, _header_line(self.features, self.config, len(self.mentions)) + _row_lines(beams, candidates))
        return beams, candidates

    def append(self, beams: Sequence[LinkingResult], candidates: Sequence) -> None:
        """Add one batch's rows, on disk before this returns."""
        with open(self.partial, "a", encoding="utf-8") as f:
            f.write(_row_lines(beams, candidates))
            f.flush()
            os.fsync(f.fileno())

    def finish(self, beams: Sequence[LinkingResult], candidates: Sequence) -> None:
        """Write the whole file and remove the partial one."""
        write_candidates(self.path, beams, candidates, self.features, self.config)
        self.partial.unlink(missing_ok=True)

    def _saved(self) -> tuple[list[LinkingResult], list]:
        if not self.partial.exists():
            return [], []
        raw = self.partial.read_bytes()
        whole = raw[: raw.rfind(b"\n") + 1]  # a line without its newline was cut mid-write
        if len(whole) < len(raw):
            with atomic_open(self.partial, "wb") as f:  # bytes as they are: bad ones are reported by the reader, with their line
                f.write(whole)
        saved = _read_matching_rows(self.partial, self.mentions, self.features, self.config)
        if saved is None:
            logger.info("%s: written for other mentions or settings: scoring starts over", self.partial)
            return [], []
        return saved


def read_candidates(path: str | Path, mentions: Sequence[str], features: Sequence[str], config: dict):
    """``(beams, candidates)`` from ``path``, or None when it was written for other mentions,
    features or candidate settings (then they must be scored again). A damaged file (not UTF-8 or
    JSON, a bad header, a row whose fields have other types or lengths, a number that is not
    finite, rows missing or in excess) is an :class:`InputFormatError` naming the line. Blank
    lines hold nothing and are skipped, as in every JSONL file the project reads."""
    found = _read_matching_rows(path, mentions, features, config)
    if found is not None and len(found[0]) < len(mentions):
        raise InputFormatError(path, None, f"the header says {len(mentions)} mentions but {len(found[0])} rows follow (a cut file?)")
    return found


def _read_matching_rows(path: str | Path, mentions: Sequence[str], features: Sequence[str], config: dict):
    """``(beams, candidates)`` of the rows of ``path``, which hold the first of ``mentions`` in order
    (all of them, or fewer); None when the file was written for other mentions, features or
    settings. Damage is an :class:`InputFormatError` naming the line."""
    path = Path(path)
    rows = read_jsonl_objects(path)
    lineno, header = next(rows, (None, None))
    if header is None:
        raise InputFormatError(path, None, "an empty file: not an angel-trl hybrid candidates file")
    _check_header(header, path, lineno)
    if header["features"] != list(features) or header["config"] != config or header["mentions"] != len(mentions):
        return None
    beams, out = [], []
    for lineno, row in rows:
        if len(out) == len(mentions):
            raise InputFormatError(path, lineno, f"the header says {len(mentions)} mentions but more rows follow")
        if not isinstance(row.get("mention"), str):
            raise InputFormatError(path, lineno, "not a candidates row: 'mention' must be a string")
        if row["mention"] != mentions[len(out)]:
            return None
        try:
            beam, candidates = _row(row, len(features))
        except ValueError as e:
            raise InputFormatError(path, lineno, f"not a candidates row: {e}") from None
        beams.append(beam)
        out.append(candidates)
    return beams, out


def _check_header(header: dict, path: Path, lineno: int) -> None:
    """Raise :class:`InputFormatError` unless ``header`` (at line ``lineno``) is a candidates file's."""
    if header.get("format") != FORMAT or header.get("version") != 1:
        raise InputFormatError(path, lineno, f"not an angel-trl hybrid candidates file (expected \"format\": \"{FORMAT}\", \"version\": 1)")
    features, mentions = header.get("features"), header.get("mentions")
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InputFormatError(path, lineno, "the header's 'features' must be a list of feature names")
    if not isinstance(header.get("config"), dict):
        raise InputFormatError(path, lineno, "the header's 'config' must be a JSON object")
    if not isinstance(mentions, int) or isinstance(mentions, bool) or mentions < 0:
        raise InputFormatError(path, lineno, "the header's 'mentions' must be a count of mentions")


_ROW_FIELDS = {"mention", "beam_candidates", "beam", "concept_ids", "names", "features"}


def _row(row: dict, num_features: int):
    """One mention's ``(beam result, candidates)``; a field of another type, shape or length, or a
    number that is not finite, is a ``ValueError`` saying which."""
    from angel_trl.hybrid.linker import MentionCandidates  # the linker imports this module

    if row.keys() != _ROW_FIELDS:
        raise ValueError(f"expected the fields {', '.join(sorted(_ROW_FIELDS))}, got {', '.join(sorted(row))}")
    concept_ids, names = _strings(row["concept_ids"], "concept_ids"), _strings(row["names"], "names")
    if len(names) != len(concept_ids):
        raise ValueError(f"{len(concept_ids)} concept_ids but {len(names)} names")
    beam_candidates = [Candidate(**_record(c, _CANDIDATE, "beam_candidates")) for c in _list(row["beam_candidates"], "beam_candidates")]
    beam = [BeamName(**_record(b, _BEAM_NAME, "beam")) for b in _list(row["beam"], "beam")]
    return LinkingResult(row["mention"], beam_candidates, beam), MentionCandidates(concept_ids, names, _features(row["features"], len(concept_ids), num_features))


def _features(value: object, rows: int, columns: int) -> np.ndarray:
    """The ``(rows, columns)`` matrix of finite numbers ``value`` (a list of rows) holds."""
    try:
        X = np.asarray(value)
    except ValueError:  # rows of different lengths
        X = np.asarray(None)
    if X.size == 0 and rows == 0:
        return np.zeros((0, columns))
    if X.shape != (rows, columns) or X.dtype.kind not in "iuf":
        raise ValueError(f"'features' must be {rows} rows (one per concept) of {columns} numbers")
    if not np.isfinite(X).all():
        raise ValueError("'features' holds a number that is not finite (NaN or infinity)")
    return X.astype(float)


# The fields of a Candidate and a BeamName as written, with their JSON types. A candidate's
# ``names`` may be missing (files written before it: no other name found).
_CANDIDATE = {"concept_id": str, "name": str, "score": float, "names": list}
_BEAM_NAME = {"name": str, "score": float, "concept_ids": list}
_OPTIONAL = {"names"}


def _record(value: object, spec: dict[str, type], what: str) -> dict:
    """``value`` checked against ``spec`` (field -> str, float: a finite number, or list: of strings)."""
    if not isinstance(value, dict) or not spec.keys() - _OPTIONAL <= value.keys() <= spec.keys():
        raise ValueError(f"each of '{what}' must be an object with the fields {', '.join(spec)}")
    for key, kind in spec.items():
        if key not in value:
            continue
        v = value[key]
        if kind is list:
            _strings(v, f"{what}.{key}")
        elif kind is float and not (isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < math.inf):
            raise ValueError(f"'{what}.{key}' must be a finite number, not {json.dumps(v)}")
        elif kind is str and not isinstance(v, str):
            raise ValueError(f"'{what}.{key}' must be a string, not {json.dumps(v)}")
    return value


def _list(value: object, what: str) -> list:
    if not isinstance(value, list):
        raise ValueError(f"'{what}' must be a list")
    return value


def _strings(value: object, what: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"'{what}' must be a list of strings")
    return value
