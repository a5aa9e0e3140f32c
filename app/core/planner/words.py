"""Numbers in words a person reads at a glance: durations, sizes, context lengths."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GB = 10**9
SCORE_NAME = "AIME 2024"  # the benchmark the ranking compares (app/core/planner/quality.py)


def duration_words(seconds: float | None) -> str:
    """'about 40 seconds', 'about 2 minutes', 'about 1.5 hours'; 'unknown' for None."""
    if seconds is None or seconds != seconds:  # None or NaN
        return "unknown"
    s = max(0.0, float(seconds))
    if s < 10:
        return "under 10 seconds"
    if s < 55:
        return f"about {int(round(s / 5.0) * 5)} seconds"
    minutes = s / 60
    if minutes < 1.5:
        return "about a minute"
    if minutes < 59.5:
        return f"about {int(round(minutes))} minutes"
    hours = minutes / 60
    if hours < 1.25:
        return "about an hour"
    if hours < 10:
        return f"about {round(hours * 2) / 2:g} hours"
    return f"about {int(round(hours))} hours"


def gb_words(n_bytes: float) -> str:
    """Bytes as GB (10^9), with one decimal below 100 GB: '4.7 GB', '404 GB'."""
    gb = n_bytes / GB
    if gb < 0.1:
        return f"{n_bytes / 1e6:.0f} MB"
    return f"{gb:.1f} GB" if gb < 100 else f"{gb:.0f} GB"


def ctx_words(ctx: int) -> str:
    """A context length as people write it: 8192 → '8K', 131072 → '128K'."""
    return f"{ctx // 1024}K" if ctx % 1024 == 0 else f"{ctx:,}"


def tps_words(tps: float | None) -> str:
    if tps is None:
        return "unknown speed"
    return f"about {tps:.0f} tokens/s" if tps >= 3 else f"about {tps:.1f} tokens/s"


WHERE = {"gpu": "entirely on your GPU", "hybrid": "split between your GPU and RAM",
         "cpu": "on your CPU"}  # fmt: skip


def _score(scores: dict[str, float | None], model: str) -> str:
    s = scores.get(model)
    return f"{s:g}" if s is not None else "no published score"


def why(top: Any, options: tuple[Any, ...], tier: Callable[[Any], int],
        scores: dict[str, float | None]) -> str:  # fmt: skip
    """The recommendation in words, naming the trade it makes against the alternatives."""
    where = WHERE[top.mode]
    if top.format == "mlx" or (top.mode == "gpu" and top.engine == "mlx"):
        where = "entirely in the GPU's share of your memory" if top.mode == "gpu" else where
    fmt = "MLX" if top.format == "mlx" else "GGUF"
    times = f"a typical answer takes {top.answer_words}"
    if top.thinking_measured:
        times += " (its thinking length from your answers)"
    if top.hard_answer_seconds is not None:
        times += f", a hard math problem up to {top.hard_answer_words.removeprefix('about ')}"
    t = tier(top)
    name = f"{top.model_name} {top.quant} ({fmt})"
    if t == 2:
        return (f"Nothing answers a typical question within ten minutes on this machine, so "
                f"this is the fastest useful option: {name} runs {where} with a "
                f"{ctx_words(top.ctx)} context; {times}.")  # fmt: skip
    speed = "at a comfortable speed" if t == 0 else "and answer a typical question in ten minutes"
    text = (f"{name} has the best {SCORE_NAME} score ({_score(scores, top.model)}) of the "
            f"options that run {where} {speed}, with a {ctx_words(top.ctx)} "
            f"context; {times}.")  # fmt: skip
    top_score = scores.get(top.model)
    runs = [p for p in options if p.runs_here and tier(p) < 3 and p.model != top.model]
    bigger = [p for p in runs if p.params_b > top.params_b]
    if bigger and top_score is not None:
        b = max(bigger, key=lambda p: (p.params_b, -(p.answer_seconds or 1e12)))
        b_score = scores.get(b.model)
        if b_score is not None and b_score <= top_score:
            text += (f" It scores higher than the bigger {b.model_name} ({_score(scores, b.model)})"
                     f" and runs {where}.")  # fmt: skip
    better = [p for p in runs if (scores.get(p.model) or -1) > (top_score or -1)]
    if better:
        b = min(better, key=lambda p: (p.bits < 4.5, tier(p), p.answer_seconds or 1e12))
        if b.bits < 4.5 and top.bits >= 4.5:
            text += (f" The higher-scoring {b.model_name} fits only at {b.quant}, "
                     "below 4 bits.")  # fmt: skip
        else:
            text += (f" The higher-scoring {b.model_name} ({_score(scores, b.model)}) would run "
                     f"{WHERE[b.mode]} at {b.answer_words} per typical answer.")  # fmt: skip
    return text


def nothing_reason(options: tuple[Any, ...]) -> str:
    smallest = min((p.total_bytes for p in options), default=0)
    return (f"Nothing in the catalog runs on this machine with at least an 8K context; the "
            f"smallest option needs about {gb_words(smallest)}. Use a serving engine on "
            "another machine.")  # fmt: skip
