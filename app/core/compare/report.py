"""A comparison as words and figures: table cells, Markdown and CSV exports. No Qt."""

from __future__ import annotations

import csv
import io

from app.core.compare.summary import ModelSummary, Summary


def percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.0f}%"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value < 1:
        return f"{value:.2f} s"
    if value < 10:
        return f"{value:.1f} s"
    if value < 120:
        return f"{value:.0f} s"
    return f"{value / 60:.1f} min"


def tokens(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def speed(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}" if value < 10 else f"{value:.0f}"


def memory(value: int | None) -> str:
    if not value:
        return "—"
    return f"{value / 1e9:.1f} GB" if value >= 1e9 else f"{value / 1e6:.0f} MB"


def time_left(value: float | None) -> str:
    """'about 3 min left' for the progress line; '' before anything was timed."""
    if value is None:
        return ""
    if value < 60:
        return f"about {max(1, round(value))} s left"
    if value < 3600:
        return f"about {round(value / 60)} min left"
    return f"about {value / 3600:.1f} h left"


MODEL_COLUMNS = ("Model", "Accuracy", "Agreement", "Median thinking tokens",
                 "Median time per answer", "Tokens/s", "Peak memory", "Answers")  # fmt: skip


def model_cells(m: ModelSummary, reference: str) -> list[str]:
    """One row of the per-model table, in MODEL_COLUMNS order."""
    if m.accuracy is None:
        accuracy = "no expected answers"
    else:
        accuracy = f"{percent(m.accuracy)} ({m.correct}/{m.expected_answers})"
    agreement = "reference" if m.is_reference else percent(m.agreement)
    if m.agreement is None and not m.is_reference:
        agreement = "—"
    answers = f"{m.answers}" + (f" ({m.errors} failed)" if m.errors else "")
    return [m.model, accuracy, agreement, tokens(m.median_thinking_tokens),
            seconds(m.median_seconds), speed(m.tokens_per_s), memory(m.peak_memory_bytes),
            answers]  # fmt: skip


def _md(text: object) -> str:
    """A table cell: one line, pipes escaped."""
    return " ".join(str(text).split()).replace("|", "\\|") or " "


def to_markdown(summary: Summary) -> str:
    """The comparison as a Markdown report: the models table, then each problem."""
    out = [f"# {_md(summary.title)}", ""]
    out.append(f"{summary.done} of {summary.total} answers ({summary.status}); agreement is "
               f"measured against {_md(summary.reference)} on problems without an expected "
               "answer.")  # fmt: skip
    out += ["", "| " + " | ".join(MODEL_COLUMNS) + " |",
            "|" + "---|" * len(MODEL_COLUMNS)]  # fmt: skip
    for m in summary.models:
        out.append("| " + " | ".join(_md(c) for c in model_cells(m, summary.reference)) + " |")
    labels = [m.model for m in summary.models]
    out += ["", "## Answers", "", "| # | Problem | Expected | " + " | ".join(_md(x) for x in labels)
            + " |", "|" + "---|" * (3 + len(labels))]  # fmt: skip
    for row in summary.problems:
        cells = [str(row.index + 1), _md(row.prompt[:120]), _md(row.expected or "—")]
        for label in labels:
            finals = []
            for r in row.attempts.get(label, []):
                mark = "" if r.correct is None else " ✓" if r.correct else " ✗"
                finals.append(("error" if r.error else (r.final or "(none)")) + mark)
            cells.append(_md("; ".join(finals) or "—"))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out) + "\n"


CSV_COLUMNS = ("model", "problem", "id", "level", "attempt", "expected", "final", "correct",
               "thinking_tokens", "answer_tokens", "seconds", "tokens_per_s",
               "peak_memory_bytes", "stop_reason", "error", "prompt", "answer")  # fmt: skip


def to_csv(summary: Summary) -> str:
    """Every answer as one CSV row (thinking left out: it is in the app)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    for row in summary.problems:
        for label, attempts in row.attempts.items():
            for r in attempts:
                writer.writerow([
                    label, row.index + 1, row.id, row.level or "", r.attempt + 1,
                    row.expected or "", r.final, "" if r.correct is None else int(r.correct),
                    r.thinking_tokens, r.answer_tokens, f"{r.elapsed_s:.3f}",
                    "" if r.decode_tps is None else f"{r.decode_tps:.2f}",
                    r.peak_memory_bytes or "", r.stop_reason, r.error, row.prompt, r.answer,
                ])  # fmt: skip
    return buf.getvalue()
