"""Numbers in words a person reads at a glance: durations, sizes, context lengths."""

from __future__ import annotations

GB = 10**9


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
