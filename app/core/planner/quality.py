"""What the catalog says about a model's quality and how long it thinks on a hard question.

Read from the catalog file's own entries (`scores = {aime_2024 = …, source = …}` and
`hard_thinking_tokens`, with the `[defaults]` value), so a catalog without them (a test's)
still plans: no score ranks last, and the hard length falls back to 12,000 tokens (DeepSeek's
figure for R1 on AIME problems).
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass

from app.core.catalog import Catalog

HARD_THINKING_TOKENS = 12000  # R1 on an AIME problem (DeepSeek)
SCORE_NAME = "AIME 2024"


@dataclass(frozen=True)
class Quality:
    score: float | None  # AIME 2024 pass@1, the ranking's measure of quality
    source: str
    hard_thinking_tokens: int


@functools.lru_cache(maxsize=8)
def _read(path: str) -> dict[str, Quality]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return {}
    default_hard = int((data.get("defaults") or {}).get("hard_thinking_tokens",
                                                          HARD_THINKING_TOKENS))  # fmt: skip
    out = {}
    for key, e in (data.get("models") or {}).items():
        scores = e.get("scores") or {}
        score = scores.get("aime_2024")
        out[str(e.get("id", key))] = Quality(
            float(score) if isinstance(score, (int, float)) else None,
            str(scores.get("source", "")),
            int(e.get("hard_thinking_tokens", default_hard)),
        )
    return out


def quality(catalog: Catalog, model_id: str) -> Quality:
    """The model's score and hard-question thinking length (defaults when not given)."""
    found = _read(catalog.path).get(model_id) if catalog.path else None
    return found or Quality(None, "", HARD_THINKING_TOKENS)
