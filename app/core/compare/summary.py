"""What a comparison found: per model and per problem, from the saved answers.

Per model: accuracy against the expected answers, agreement with the reference model on the
problems without an expected answer (each answer against the reference's most common one),
median thinking tokens, median seconds per answer, median tokens/s, peak memory. Per
problem: each model's final answers side by side. No Qt.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

from app.core.compare.answers import normalise
from app.core.compare.store import AttemptResult, RunRecord


@dataclass(frozen=True)
class ModelSummary:
    """One model's figures (None where nothing could be measured)."""

    model: str
    answers: int = 0  # answers saved (errors included)
    expected_answers: int = 0  # of them, on problems with an expected answer
    correct: int = 0
    accuracy: float | None = None  # correct / expected_answers
    agreement: float | None = None  # with the reference, where nothing is expected
    compared_answers: int = 0  # answers that agreement counts
    is_reference: bool = False
    median_thinking_tokens: float | None = None
    median_seconds: float | None = None  # per answer
    tokens_per_s: float | None = None  # median decode speed
    peak_memory_bytes: int | None = None
    errors: int = 0
    complete: bool = False  # every problem answered every time


@dataclass(frozen=True)
class ProblemRow:
    """One problem with every model's answers (a list of attempts per model)."""

    index: int
    prompt: str
    expected: str | None
    id: str = ""
    level: int | None = None
    attempts: dict[str, list[AttemptResult]] = field(default_factory=dict)

    def majority(self, model: str) -> str:
        """The model's most common final answer (normalised), '' when none."""
        return _majority(self.attempts.get(model, []))


@dataclass(frozen=True)
class Summary:
    run_id: int
    title: str
    status: str
    done: int
    total: int
    reference: str
    models: list[ModelSummary]
    problems: list[ProblemRow]

    def to_json(self) -> dict[str, Any]:
        """The shape `ponder-cli compare --json` prints (no thinking text)."""
        rows = []
        for row in self.problems:
            answers = {}
            for model, attempts in row.attempts.items():
                answers[model] = [
                    {"attempt": r.attempt, "final": r.final, "correct": r.correct,
                     "answer": r.answer, "thinking_tokens": r.thinking_tokens,
                     "seconds": round(r.elapsed_s, 3), "stop_reason": r.stop_reason,
                     "error": r.error or None}
                    for r in attempts
                ]  # fmt: skip
            rows.append({"problem": row.index, "id": row.id, "level": row.level,
                         "prompt": row.prompt, "expected": row.expected,
                         "answers": answers})  # fmt: skip
        return {
            "run_id": self.run_id, "title": self.title, "status": self.status,
            "done": self.done, "total": self.total, "reference": self.reference,
            "models": [asdict(m) for m in self.models], "problems": rows,
        }  # fmt: skip


def _majority(attempts: list[AttemptResult]) -> str:
    finals = [normalise(r.final) for r in attempts if not r.error and r.final]
    if not finals:
        return ""
    return Counter(finals).most_common(1)[0][0]


def _median(values: list[float]) -> float | None:
    return float(statistics.median(values)) if values else None


def summarise(record: RunRecord, results: list[AttemptResult]) -> Summary:
    """The summary of a run from its saved answers (unfinished runs too)."""
    labels = [str(m["label"]) for m in record.models]
    reference = int(record.settings.get("reference", 0) or 0)
    reference = reference if 0 <= reference < len(labels) else 0
    rows = [ProblemRow(i, p.prompt, p.expected, p.id, p.level, {label: [] for label in labels})
            for i, p in enumerate(record.problems)]  # fmt: skip
    for r in results:
        if 0 <= r.model_index < len(labels) and 0 <= r.problem_index < len(rows):
            rows[r.problem_index].attempts[labels[r.model_index]].append(r)
    per_model = record.repeats * len(record.problems)
    models = []
    for mi, label in enumerate(labels):
        mine = [r for r in results if r.model_index == mi]
        ok = [r for r in mine if not r.error]
        graded = [r for r in mine if record.problems[r.problem_index].expected is not None]
        correct = sum(1 for r in graded if r.correct)
        agree, compared = 0, 0
        if mi != reference:
            for row in rows:
                if row.expected is not None:
                    continue
                ref = row.majority(labels[reference])
                if not ref:
                    continue
                for r in row.attempts[label]:
                    compared += 1
                    agree += int(not r.error and normalise(r.final) == ref)
        peaks = [r.peak_memory_bytes for r in ok if r.peak_memory_bytes]
        models.append(ModelSummary(
            model=label, answers=len(mine), expected_answers=len(graded), correct=correct,
            accuracy=correct / len(graded) if graded else None,
            agreement=agree / compared if compared else None, compared_answers=compared,
            is_reference=mi == reference,
            median_thinking_tokens=_median([float(r.thinking_tokens) for r in ok]),
            median_seconds=_median([r.elapsed_s for r in ok]),
            tokens_per_s=_median([r.decode_tps for r in ok if r.decode_tps]),
            peak_memory_bytes=max(peaks) if peaks else None,
            errors=len(mine) - len(ok), complete=len(mine) >= per_model,
        ))  # fmt: skip
    return Summary(record.id, record.title, record.status, len(results), record.total,
                   labels[reference] if labels else "", models, rows)  # fmt: skip


def load_summary(store: Any, run_id: int) -> Summary:
    """The summary of a saved run (ValueError when there is none)."""
    record = store.run(run_id)
    if record is None:
        raise ValueError(f"There is no comparison {run_id}.")
    return summarise(record, store.results(run_id))
