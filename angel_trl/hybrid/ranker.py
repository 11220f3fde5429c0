"""A linear ranker over candidate features, fit on dev, saved as plain JSON.

Pointwise logistic regression (is this candidate a gold concept?) on standardised features: small
enough to read, to fit in a second on a dev split, and its probability is a calibrated confidence,
which gives the "no confident link" threshold (:func:`precision_coverage`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from angel_trl.data.files import atomic_write_text


@dataclass
class LinearRanker:
    """``sigmoid(coef . (x - mean) / scale + intercept)`` over the named features."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float

    @classmethod
    def fit(cls, X: np.ndarray, y: np.ndarray, features: Sequence[str], C: float = 1.0, seed: int = 42) -> LinearRanker:
        """Fit on candidate rows ``X`` (columns ``features``) with labels ``y`` (1: a gold concept)."""
        from sklearn.linear_model import LogisticRegression

        if len(set(y.tolist())) < 2:
            raise ValueError("the ranker needs both gold and wrong candidates to fit on (is the dev split empty?)")
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale == 0] = 1.0  # a constant feature carries nothing; keep it harmless
        model = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit((X - mean) / scale, y)
        return cls(list(features), mean.tolist(), scale.tolist(), model.coef_[0].tolist(), float(model.intercept_[0]))

    def decision(self, X: np.ndarray) -> np.ndarray:
        return ((X - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept

    def probability(self, X: np.ndarray) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.decision(X)))

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps({"format": "angel-trl-ranker", "version": 1, **asdict(self)}, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LinearRanker:
        data = json.loads(Path(path).read_text())
        if data.pop("format", None) != "angel-trl-ranker":
            raise ValueError(f"{path}: not an angel-trl ranker file")
        data.pop("version", None)
        ranker = cls(**data)
        sizes = {len(ranker.features), len(ranker.mean), len(ranker.scale), len(ranker.coef)}
        if len(sizes) != 1 or not all(math.isfinite(v) for v in [*ranker.mean, *ranker.scale, *ranker.coef, ranker.intercept]):
            raise ValueError(f"{path}: features, mean, scale and coef must be finite lists of one length")
        return ranker


def precision_coverage(confidences: Sequence[float], correct: Sequence[bool], points: int = 10) -> list[dict]:
    """Accuracy of the links kept when only the most confident share of mentions is linked.

    Rows for coverage 1/points .. 1: the threshold (lowest confidence kept) and the precision (acc@1
    among the kept mentions). A threshold below which the linker answers "no confident link"
    trades coverage for precision along this curve.
    """
    if len(confidences) != len(correct):
        raise ValueError("one confidence per mention")
    if not confidences:
        return []
    order = np.argsort(-np.asarray(confidences, dtype=float), kind="stable")
    hits = np.cumsum(np.asarray(correct, dtype=float)[order])
    rows = []
    for p in range(1, points + 1):
        n = max(1, round(len(order) * p / points))
        rows.append({"coverage": n / len(order), "threshold": float(np.asarray(confidences)[order[n - 1]]), "precision": 100.0 * hits[n - 1] / n})
    return rows
