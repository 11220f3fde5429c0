"""A split's candidate unions and features as JSON lines, so rankers can be refit without scoring again.

Scoring every candidate with the model is the hybrid's expensive step (minutes per split on a
CPU); fitting a ranker on the scored features takes a second. Writing the features once lets an
ablation fit many rankers (feature subsets, objectives) on the same scores, and a benchmark rerun
reuse them. The file says which features and candidate settings produced it; it is read back
only when it holds exactly the mentions asked for, in order.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from angel_trl.data.files import atomic_write_text
from angel_trl.errors import InputFormatError
from angel_trl.linking.linker import BeamName, Candidate, LinkingResult

FORMAT = "angel-trl-hybrid-candidates"


def write_candidates(path: str | Path, beams: Sequence[LinkingResult], candidates: Sequence, features: Sequence[str], config: dict) -> None:
    """One header line (format, features, candidate config), then one line per mention."""
    lines = [json.dumps({"format": FORMAT, "version": 1, "features": list(features), "config": config, "mentions": len(beams)})]
    for beam, cands in zip(beams, candidates, strict=True):
        lines.append(
            json.dumps(
                {
                    "mention": beam.mention,
                    "beam_candidates": [asdict(c) for c in beam.candidates],
                    "beam": [asdict(b) for b in beam.beam],
                    "concept_ids": cands.concept_ids,
                    "names": cands.names,
                    "features": cands.features.tolist(),
                },
                ensure_ascii=False,
            )
        )
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_candidates(path: str | Path, mentions: Sequence[str], features: Sequence[str], config: dict):
    """``(beams, candidates)`` from ``path``, or None when it was written for other mentions,
    features or candidate settings (then they must be scored again). A damaged file is an error."""
    from angel_trl.hybrid.linker import MentionCandidates  # the linker imports this module

    path = Path(path)
    with path.open(encoding="utf-8") as f:
        lines = f.read().splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except json.JSONDecodeError as e:
        raise InputFormatError(path, 1, f"not JSON ({e.msg})") from None
    if header.get("format") != FORMAT:
        raise InputFormatError(path, 1, "not an angel-trl hybrid candidates file")
    if header.get("features") != list(features) or header.get("config") != config or header.get("mentions") != len(mentions):
        return None
    if len(lines) != len(mentions) + 1:
        raise InputFormatError(path, None, f"the header says {header['mentions']} mentions but {len(lines) - 1} lines follow (a cut file?)")
    beams, out = [], []
    for lineno, (line, mention) in enumerate(zip(lines[1:], mentions), start=2):
        try:
            row = json.loads(line)
            if row["mention"] != mention:
                return None
            X = np.asarray(row["features"], dtype=float).reshape(len(row["concept_ids"]), len(features))
            beams.append(LinkingResult(row["mention"], [Candidate(**c) for c in row["beam_candidates"]], [BeamName(**b) for b in row["beam"]]))
            out.append(MentionCandidates(list(row["concept_ids"]), list(row["names"]), X))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
            raise InputFormatError(path, lineno, f"not a candidates row ({type(e).__name__}: {e})") from None
    return beams, out
