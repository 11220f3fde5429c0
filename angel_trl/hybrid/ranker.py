"""A linear ranker over candidate features, fit on dev, saved as plain JSON.

A weight per standardised feature: small enough to read and to fit in a second on a dev split.
Two objectives:

* ``listwise`` (the default): a conditional logit, the softmax of the scores over one mention's
  candidates, fit to put its mass on the gold ones. It optimises what linking needs (which
  candidate of *this* mention is right), and its probability is a confidence over the mention's
  candidates.
* ``pointwise``: logistic regression on "is this candidate a gold concept?" over all candidates
  of all mentions. The many easy wrong candidates dominate its loss, so it can learn a rule that
  separates easy negatives well and ranks a mention's few close candidates badly (on NCBI it
  ranked below the generative model alone; see docs/hybrid.md).

Either probability gives the "no confident link" threshold (:func:`precision_coverage`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from angel_trl.data.files import atomic_write_text, read_json_object
from angel_trl.errors import InputFormatError

FEATURES = (
    "model", "model_margin", "model_rank", "model_top", "in_beam", "beam_rank", "beam_top",
    "tfidf", "tfidf_margin", "tfidf_rank", "tfidf_top", "dense", "dense_margin", "dense_rank", "dense_top",
    "exact", "train_share", "mention_seen", "name_tokens", "concept_seen", "name_prior",
)
RANKER_FORMAT = "angel-trl-ranker"
# The fields of a saved ranker; ``objective`` may be missing (files written before it: pointwise).
RANKER_FIELDS = ("features", "mean", "scale", "coef", "intercept", "objective")


def check_features(names: Sequence[str], label: str = "ranker features") -> None:
    """Ranker features are :data:`FEATURES` (the hybrid linker's, documented there) or products
    ``a*b`` of two of them (an interaction: e.g. ``mention_seen*tfidf`` weighs the TF-IDF score
    apart for mentions whose text was seen in training); ``label`` starts the error message."""
    unknown = sorted(n for n in names if any(part not in FEATURES for part in n.split("*")) or n.count("*") > 1)
    if unknown or not names:
        raise ValueError(f"{label}: unknown {unknown} (known: {', '.join(FEATURES)}, or a*b of two)" if unknown else f"{label}: name at least one")


@dataclass
class LinearRanker:
    """``sigmoid(coef . (x - mean) / scale + intercept)`` over the named features."""

    features: list[str]
    mean: list[float]
    scale: list[float]
    coef: list[float]
    intercept: float
    objective: str = "pointwise"  # what files written before the listwise objective hold

    @classmethod
    def fit(
        cls, X: np.ndarray, y: np.ndarray, features: Sequence[str], groups: Sequence[int] | None = None, objective: str = "listwise", C: float = 1.0, seed: int = 42
    ) -> LinearRanker:
        """Fit on candidate rows ``X`` (columns ``features``) with labels ``y`` (1: a gold concept);
        ``groups`` gives the number of rows of each mention, in order (needed by ``listwise``)."""
        if objective not in OBJECTIVES:
            raise ValueError(f"objective must be one of {', '.join(OBJECTIVES)}, not {objective!r}")
        if len(set(y.tolist())) < 2:
            raise ValueError("the ranker needs both gold and wrong candidates to fit on (is the dev split empty?)")
        mean = X.mean(axis=0)
        scale = X.std(axis=0)
        scale[scale == 0] = 1.0  # a constant feature carries nothing; keep it harmless
        Z = (X - mean) / scale
        if objective == "pointwise":
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(C=C, max_iter=2000, random_state=seed).fit(Z, y)
            coef, intercept = model.coef_[0], float(model.intercept_[0])
        else:
            if groups is None or sum(groups) != len(y):
                raise ValueError("the listwise objective needs each mention's number of candidate rows (groups)")
            coef, intercept = _fit_listwise(Z, y.astype(float), np.asarray(groups, dtype=np.int64), C), 0.0
        return cls(list(features), mean.tolist(), scale.tolist(), np.asarray(coef).tolist(), intercept, objective)

    def decision(self, X: np.ndarray) -> np.ndarray:
        return ((X - np.asarray(self.mean)) / np.asarray(self.scale)) @ np.asarray(self.coef) + self.intercept

    def probability(self, X: np.ndarray) -> np.ndarray:
        """Confidence of each row of one mention's candidates ``X``: the softmax over them
        (listwise), or each row's own sigmoid (pointwise)."""
        d = self.decision(X)
        if self.objective == "listwise":
            e = np.exp(d - d.max()) if len(d) else d
            return e / e.sum() if len(d) else d
        return 1.0 / (1.0 + np.exp(-d))

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps({"format": RANKER_FORMAT, "version": 1, **asdict(self)}, indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> LinearRanker:
        """Read what :meth:`save` wrote; anything else is an :class:`InputFormatError` naming the file and field."""

        data = read_json_object(path)
        if data.get("format") != RANKER_FORMAT or data.get("version", 1) != 1:
            raise InputFormatError(path, None, f"not an angel-trl ranker file (expected \"format\": \"{RANKER_FORMAT}\", \"version\": 1)")
        return ranker_from_dict({k: v for k, v in data.items() if k not in ("format", "version")}, path)


OBJECTIVES = ("listwise", "pointwise")


def ranker_from_dict(data: object, path: str | Path, key: str = "") -> LinearRanker:
    """The ranker whose fields ``data`` holds, read from ``path`` (at ``key`` of it, e.g. ``ranker``).

    Both loaders (:meth:`LinearRanker.load`, the hybrid linker's) read rankers through here: a
    missing or unknown field, a feature no hybrid computes, a list of another length, a value that is
    no finite number (NaN scores every candidate NaN), a scale that is not positive (it divides) or
    an unknown objective is an :class:`InputFormatError` naming the file and the field.
    """
    where = f"{key}." if key else ""
    if not isinstance(data, dict):
        raise InputFormatError(path, None, f"{key or 'the file'} must be a JSON object of ranker fields ({', '.join(RANKER_FIELDS)})")
    missing = [f for f in RANKER_FIELDS[:-1] if f not in data]
    unknown = [f for f in data if f not in RANKER_FIELDS]
    if missing or unknown:
        raise InputFormatError(path, None, f"{key or 'ranker'}: " + "; ".join(filter(None, [missing and f"missing {', '.join(missing)}", unknown and f"unknown field(s) {', '.join(map(repr, unknown))}"])))
    features = data["features"]
    if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
        raise InputFormatError(path, None, f"{where}features must be a list of feature names")
    try:
        check_features(features, f"{where}features")
    except ValueError as e:
        raise InputFormatError(path, None, str(e)) from None
    for name in ("mean", "scale", "coef"):
        _check_numbers(data[name], len(features), path, where + name)
    for i, v in enumerate(data["scale"]):
        if v <= 0:
            raise InputFormatError(path, None, f"{where}scale[{i}] must be positive (its feature is divided by it), not {json.dumps(v)}")
    if not _finite(data["intercept"]):
        raise InputFormatError(path, None, f"{where}intercept must be a finite number, not {json.dumps(data['intercept'])}")
    objective = data.get("objective", "pointwise")
    if objective not in OBJECTIVES:
        raise InputFormatError(path, None, f"{where}objective {json.dumps(objective)} is not one of {', '.join(OBJECTIVES)}")
    return LinearRanker(features, data["mean"], data["scale"], data["coef"], data["intercept"], objective)


def _check_numbers(values: object, length: int, path: str | Path, name: str) -> None:
    """Raise :class:`InputFormatError` unless ``values`` is a list of ``length`` finite numbers."""
    if not isinstance(values, list):
        raise InputFormatError(path, None, f"{name} must be a list of numbers, not {json.dumps(values)}")
    if len(values) != length:
        raise InputFormatError(path, None, f"features, mean, scale and coef must be lists of one length: {name} has {len(values)} values for {length} features")
    for i, v in enumerate(values):
        if not _finite(v):
            raise InputFormatError(path, None, f"{name}[{i}] must be a finite number, not {json.dumps(v)}")


def _finite(value: object) -> bool:
    """Whether ``value`` is a JSON number (not a boolean) that is finite as a float."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer too large for a float
        return False


def _fit_listwise(Z: np.ndarray, y: np.ndarray, groups: np.ndarray, C: float) -> np.ndarray:
    """Weights minimising ``0.5 |w|^2 + C * sum_m -log(sum_gold e^s / sum_all e^s)`` over the
    mentions ``m`` with a gold candidate (the others carry no ranking signal), by L-BFGS. The
    objective is convex, so the result does not depend on a seed."""
    from scipy.optimize import minimize

    seg = np.repeat(np.arange(len(groups)), groups)
    has_gold = np.bincount(seg, weights=y, minlength=len(groups)) > 0
    keep = has_gold[seg]
    Z, y, seg = Z[keep], y[keep], np.unique(seg[keep], return_inverse=True)[1]
    n = int(seg.max()) + 1 if len(seg) else 0

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = Z @ w
        top = np.full(n, -np.inf)
        np.maximum.at(top, seg, s)
        e = np.exp(s - top[seg])
        all_sum = np.bincount(seg, weights=e, minlength=n)
        # The gold rows' log-sum-exp with their own maximum: a gold far below the best row must
        # not underflow to log(0).
        gold_s = np.where(y > 0, s, -np.inf)
        gold_top = np.full(n, -np.inf)
        np.maximum.at(gold_top, seg, gold_s)
        eg = np.exp(gold_s - gold_top[seg])
        gold_sum = np.bincount(seg, weights=eg, minlength=n)
        value = 0.5 * w @ w + C * float(np.sum(top + np.log(all_sum) - gold_top - np.log(gold_sum)))
        # d/ds of a mention's term: its softmax over all rows minus its softmax over the gold ones
        grad_s = e / all_sum[seg] - eg / gold_sum[seg]
        return value, w + C * (Z.T @ grad_s)

    result = minimize(loss, np.zeros(Z.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return result.x


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
