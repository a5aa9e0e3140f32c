"""Routine or complex: a logistic score over the cheap features, with a fitted threshold.

The weights and the threshold are fitted on the `fit` split of the labelled prompts
(resources/routing/prompts.jsonl) by `fit()` — logistic regression by Newton's method with a
small L2 penalty on standardised features, then the highest threshold whose recall of
"complex" on the fit split is at least `FIT_RECALL` — and shipped in
resources/routing/classifier.json (`python -m app.core.routing.fit` writes it again). The
`check` split is never used to fit; tests/test_routing.py and bench/routing.py measure on
it. No Qt, no engine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from app.core.routing.features import FEATURES, REASONS, features

RESOURCES = Path(__file__).resolve().parents[3] / "resources" / "routing"
PROMPTS_PATH = RESOURCES / "prompts.jsonl"
CLASSIFIER_PATH = RESOURCES / "classifier.json"
FIT_RECALL = 0.97  # recall of "complex" required on the fit split (target 0.9 on check)
L2 = 0.3


@dataclass(frozen=True)
class Labelled:
    """One prompt of the labelled set."""

    id: int
    split: str  # "fit" or "check"
    label: str  # "routine" or "complex"
    category: str
    prompt: str

    @property
    def complex(self) -> bool:
        return self.label == "complex"


def load_prompts(path: Path = PROMPTS_PATH) -> list[Labelled]:
    """The labelled prompts shipped in resources/routing/prompts.jsonl."""
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            d = json.loads(line)
            rows.append(Labelled(int(d["id"]), d["split"], d["label"], d["category"],
                                 d["prompt"]))  # fmt: skip
    return rows


@dataclass(frozen=True)
class Decision:
    """Where a prompt goes and why, in a few words."""

    complex: bool
    probability: float  # of "complex"
    reason: str

    @property
    def route(self) -> str:
        return "big" if self.complex else "small"


@dataclass(frozen=True)
class Classifier:
    """Logistic score over standardised features; complex when probability >= threshold."""

    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float

    def _z(self, text: str) -> np.ndarray:
        x = np.asarray(features(text))
        return (x - np.asarray(self.mean)) / np.asarray(self.scale)

    def probability(self, text: str) -> float:
        """The fitted probability that `text` is a complex request."""
        score = float(self._z(text) @ np.asarray(self.weights)) + self.bias
        return 1.0 / (1.0 + math.exp(-max(-40.0, min(40.0, score))))

    def classify(self, text: str) -> Decision:
        """Routine or complex, with the feature that weighed most in words."""
        p = self.probability(text)
        is_complex = p >= self.threshold
        contrib = self._z(text) * np.asarray(self.weights)
        order = np.argsort(-contrib if is_complex else contrib)
        name = FEATURES[int(order[0])]
        reason = REASONS[name][0 if is_complex else 1]
        return Decision(is_complex, p, reason)

    def to_dict(self) -> dict[str, object]:
        return {"features": list(FEATURES), "weights": list(self.weights), "bias": self.bias,
                "mean": list(self.mean), "scale": list(self.scale),
                "threshold": self.threshold}  # fmt: skip

    @classmethod
    def from_dict(cls, d: dict) -> Classifier:
        if list(d.get("features", [])) != list(FEATURES):
            raise ValueError("the routing classifier was fitted on other features; refit it")
        return cls(tuple(d["weights"]), float(d["bias"]), tuple(d["mean"]), tuple(d["scale"]),
                   float(d["threshold"]))  # fmt: skip


def _logistic(x: np.ndarray, y: np.ndarray, l2: float, steps: int = 50) -> np.ndarray:
    """Weights (bias last) by Newton's method; deterministic."""
    xb = np.hstack([x, np.ones((len(x), 1))])
    w = np.zeros(xb.shape[1])
    penalty = np.eye(xb.shape[1]) * l2
    penalty[-1, -1] = 0.0  # the bias is not penalised
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -40, 40)))
        grad = xb.T @ (p - y) + penalty @ w
        hess = xb.T @ (xb * (p * (1 - p))[:, None]) + penalty
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


def fit(rows: Iterable[Labelled], recall: float = FIT_RECALL, l2: float = L2) -> Classifier:
    """Fit the weights and the threshold on `rows` (the caller passes the fit split only)."""
    rows = list(rows)
    x = np.asarray([features(r.prompt) for r in rows])
    y = np.asarray([1.0 if r.complex else 0.0 for r in rows])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    w = _logistic((x - mean) / scale, y, l2)
    model = Classifier(tuple(float(v) for v in w[:-1]), float(w[-1]),
                       tuple(float(v) for v in mean), tuple(float(v) for v in scale),
                       0.5)  # fmt: skip
    probs = sorted((model.probability(r.prompt) for r in rows if r.complex), reverse=True)
    # the highest threshold that keeps `recall` of the complex prompts (midway to the next)
    keep = max(1, math.ceil(recall * len(probs)))
    low = probs[keep - 1]
    below = [p for p in (model.probability(r.prompt) for r in rows) if p < low]
    threshold = (low + max(below)) / 2 if below else low
    return Classifier(model.weights, model.bias, model.mean, model.scale, round(threshold, 6))


@dataclass(frozen=True)
class Scores:
    precision: float
    recall: float
    accuracy: float
    n: int


def evaluate(model: Classifier, rows: Sequence[Labelled]) -> Scores:
    """Precision and recall of "complex", and accuracy, on `rows`."""
    tp = fp = fn = tn = 0
    for r in rows:
        said = model.classify(r.prompt).complex
        tp += said and r.complex
        fp += said and not r.complex
        fn += (not said) and r.complex
        tn += (not said) and not r.complex
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return Scores(precision, recall, (tp + tn) / max(1, len(rows)), len(rows))


@lru_cache(maxsize=2)
def default_classifier(path: Path = CLASSIFIER_PATH) -> Classifier:
    """The shipped classifier (resources/routing/classifier.json)."""
    return Classifier.from_dict(json.loads(path.read_text(encoding="utf-8")))


def classify(text: str) -> Decision:
    """Route `text` with the shipped classifier."""
    return default_classifier().classify(text)
