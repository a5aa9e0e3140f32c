"""The recommendation: every catalog option planned for a machine, ranked, one preselected.

Quality first, within what runs well (scores from the catalog: AIME 2024 pass@1, with their
source). Tiers, in order:

0. runs entirely on the accelerator (GPU memory, or the GPU's share of unified memory) with a
   reasoning-sized context (16K) and answers a typical question within a few minutes;
1. runs here with at least 8K of context and answers a typical question within ten minutes
   (a CPU-only machine, or a split between GPU and RAM);
2. runs, but slower: ranked by speed, fastest first — when nothing answers in reasonable
   time the recommendation is the fastest useful option, and the reason says so;
3. does not run here, or is not a recommendable quant (no distill below 3 bits).

Within tiers 0 and 1: 4-bit or better before 3-bit (a bigger model at 3 bits is not worth
its loss), then the higher score, then MLX weights on Apple Silicon with MLX, then all on the
accelerator, then the smaller of the good quants (Q4_K_M keeps nearly all the quality and is
the fastest of them), then the newer release.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.core.catalog import Catalog, load_catalog
from app.core.hardware.profile import HardwareProfile
from app.core.planner.budget import budget_for
from app.core.planner.plan import CTX_CHOICES, MIN_CTX, REASONING_CTX, VERDICTS, Plan, plan_option
from app.core.planner.quality import quality
from app.core.planner.words import nothing_reason, why

GOOD_BITS = 4.5  # Q4_K_M (4.87) and MLX 4-bit (4.5) and up
MIN_DISTILL_BITS = 3.4  # Q3_K_M (3.95) and MLX 3-bit (3.5) are the floor; Q2_K (3.1) is not
COMFORTABLE_SECONDS = 300.0  # a typical answer within five minutes
PATIENT_SECONDS = 600.0  # … or ten, when nothing fits the accelerator


def allowed(plan: Plan) -> bool:
    """Whether the planner may recommend this quant at all (no sub-Q3 distills)."""
    return not (plan.distill and plan.bits < MIN_DISTILL_BITS)


def tier(plan: Plan) -> int:
    """0: on the accelerator, 16K, comfortable; 1: runs here within ten minutes at 8K+;
    2: runs but slow; 3: does not run here or is not a recommendable quant."""
    if not (plan.runs_here and plan.ctx >= MIN_CTX and allowed(plan)):
        return 3
    seconds = plan.answer_seconds if plan.answer_seconds is not None else float("inf")
    if plan.mode == "gpu" and plan.ctx >= REASONING_CTX and seconds <= COMFORTABLE_SECONDS:
        return 0
    if seconds <= PATIENT_SECONDS:
        return 1
    return 2


@dataclass(frozen=True)
class Ranking:
    """All options, best first; `recommended` is the first one if it runs here."""

    recommended: Plan | None
    options: tuple[Plan, ...]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        rec = self.recommended
        return {
            "recommended": (rec.to_dict() | {"recommended": True}) if rec else None,
            "reason": self.reason,
            "options": [p.to_dict() | {"recommended": p is rec} for p in self.options],
        }


def rank(profile: HardwareProfile, catalog: Catalog | None = None,
         model_ids: list[str] | None = None, speed_scale: float = 1.0,
         thinking: Mapping[str, int] | None = None) -> Ranking:  # fmt: skip
    """Plan every model × quant of the catalog (or of `model_ids`) and rank them;
    `speed_scale` calibrates speeds with what was measured on this machine, `thinking`
    (model id -> tokens) replaces the catalog's thinking length with the measured one."""
    catalog = catalog or load_catalog()
    budget = budget_for(profile, speed_scale)
    prefer_mlx = budget.unified and budget.mlx
    released = {m.id: m.released for m in catalog.models}
    order = {m.id: m.order for m in catalog.models}

    def score(p: Plan) -> float:
        s = quality(catalog, p.model).score
        return s if s is not None else -1.0

    def key(p: Plan) -> tuple[Any, ...]:
        t = tier(p)
        if t == 2:  # nothing runs well: the fastest first
            return (t, p.answer_seconds or float("inf"), -score(p), order[p.model])
        good = p.bits >= GOOD_BITS
        return (
            t,
            0 if good else 1,
            p.ctx < REASONING_CTX,  # room for a long reasoning chain before a higher score
            -score(p),
            0 if (p.format == "mlx") == prefer_mlx else 1,
            VERDICTS.index(p.mode),
            p.kv_type != "f16",
            p.bits if good else -p.bits,
            -p.ctx,
            _neg_date(released[p.model]),
            order[p.model],
        )

    best: list[Plan] = []
    models = [catalog.get(i) for i in model_ids] if model_ids else list(catalog.models)
    for model in models:
        for source in model.sources:
            for q in source.quants:
                ctxs = [c for c in CTX_CHOICES if c <= min(model.recommended_ctx,
                                                          model.arch.max_ctx)]  # fmt: skip
                kvs = ("f16", "q8_0") if source.format == "gguf" else ("f16",)
                variants = [plan_option(profile, model.id, q.name, ctx=c, kv_type=kv,
                                        catalog=catalog, speed_scale=speed_scale,
                                        thinking=thinking)
                            for c in ctxs or [MIN_CTX] for kv in kvs]  # fmt: skip
                best.append(min(variants, key=key))
    options = tuple(sorted(best, key=key))
    top = options[0] if options else None
    if top is None or tier(top) == 3:
        return Ranking(None, options, nothing_reason(options))
    scores = {p.model: quality(catalog, p.model).score for p in options}
    return Ranking(top, options, why(top, options, tier, scores))


def _neg_date(released: str) -> tuple[int, ...]:
    """Newer first: '2025-05-28' sorts before '2025-01-20'."""
    parts = [int(x) for x in released.split("-") if x.isdigit()]
    return tuple(-x for x in parts)
