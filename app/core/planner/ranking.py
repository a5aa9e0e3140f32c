"""The recommendation: every catalog option planned for a machine, ranked, one preselected.

Preference, in order: a reasoning-sized context (16K, never below 8K) and a typical answer
within a few minutes; then the biggest model; then MLX weights on Apple Silicon when MLX is
installed; then Q4_K_M-class quants or better (never a distill below Q3: its reasoning
collapses); then all on the accelerator over a split; then the DeepSeek-R1 family, newer
model first; then the smaller of the good quants (Q4_K_M keeps nearly all the quality and
is the fastest of them).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.core.catalog import Catalog, load_catalog
from app.core.hardware.profile import HardwareProfile
from app.core.planner.budget import budget_for
from app.core.planner.plan import (
    CTX_CHOICES,
    MIN_CTX,
    REASONING_CTX,
    VERDICTS,
    Plan,
    plan_option,
)
from app.core.planner.words import ctx_words, gb_words

GOOD_BITS = 4.5  # Q4_K_M (4.87) and MLX 4-bit (4.5) and up
MIN_DISTILL_BITS = 3.4  # Q3_K_M (3.95) and MLX 3-bit (3.5) are the floor; Q2_K (3.1) is not


def allowed(plan: Plan) -> bool:
    """Whether the planner may recommend this quant at all (no sub-Q3 distills)."""
    return not (plan.distill and plan.bits < MIN_DISTILL_BITS)


def tier(plan: Plan) -> int:
    """0: runs here, reasoning-sized context, usable speed; 1: usable at 8K+; 2: runs but
    slow; 3: does not run here (server/no) or is not a recommendable quant."""
    if not (plan.runs_here and plan.ctx >= MIN_CTX and allowed(plan)):
        return 3
    if plan.usable:
        return 0 if plan.ctx >= REASONING_CTX else 1
    return 2


def _key(plan: Plan, prefer_mlx: bool) -> tuple[Any, ...]:
    good = plan.bits >= GOOD_BITS
    return (
        tier(plan),
        -plan.params_b,
        0 if (plan.format == "mlx") == prefer_mlx else 1,
        0 if good else 1,
        VERDICTS.index(plan.mode),
        plan.kv_type != "f16",
        _neg_date(plan),
        plan.bits if good else -plan.bits,
        -plan.ctx,
    )


def _neg_date(plan: Plan) -> int:
    return 0  # filled in by rank(): the family's catalog position, then newer first


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
         model_ids: list[str] | None = None, speed_scale: float = 1.0) -> Ranking:  # fmt: skip
    """Plan every model × quant of the catalog (or of `model_ids`) and rank them;
    `speed_scale` calibrates speeds with what was measured on this machine."""
    catalog = catalog or load_catalog()
    budget = budget_for(profile, speed_scale)
    prefer_mlx = budget.unified and budget.mlx
    released = {m.id: m.released for m in catalog.models}
    dates = sorted(set(released.values()), reverse=True)
    order = {m.id: m.order for m in catalog.models}
    families: list[str] = []
    for m in catalog.models:
        if m.family not in families:
            families.append(m.family)
    family = {m.id: families.index(m.family) for m in catalog.models}

    def key(p: Plan) -> tuple[Any, ...]:
        k = list(_key(p, prefer_mlx))
        k[6] = (family[p.model], dates.index(released[p.model]))
        return (*k, order[p.model])

    best: list[Plan] = []
    models = [catalog.get(i) for i in model_ids] if model_ids else list(catalog.models)
    for model in models:
        for source in model.sources:
            for q in source.quants:
                ctxs = [c for c in CTX_CHOICES if c <= min(model.recommended_ctx,
                                                          model.arch.max_ctx)]  # fmt: skip
                kvs = ("f16", "q8_0") if source.format == "gguf" else ("f16",)
                variants = [plan_option(profile, model.id, q.name, ctx=c, kv_type=kv,
                                        catalog=catalog, speed_scale=speed_scale)
                            for c in ctxs or [MIN_CTX] for kv in kvs]  # fmt: skip
                best.append(min(variants, key=key))
    options = tuple(sorted(best, key=key))
    top = options[0] if options else None
    if top is None or tier(top) == 3:
        return Ranking(None, options, _nothing_reason(options))
    return Ranking(top, options, _why(top, options))


def _why(top: Plan, options: tuple[Plan, ...]) -> str:
    where = {"gpu": "entirely on the accelerator", "hybrid": "split between GPU and RAM",
             "cpu": "on the CPU"}[top.mode]  # fmt: skip
    fmt = "MLX" if top.format == "mlx" else "GGUF"
    text = (f"{top.model_name} {top.quant} ({fmt}) is the biggest model that runs {where} "
            f"with a {ctx_words(top.ctx)} context and answers a typical question in "
            f"{top.answer_words}.")  # fmt: skip
    bigger = [p for p in options if p.params_b > top.params_b and p.runs_here and allowed(p)]
    if bigger:
        b = min(bigger, key=lambda p: p.answer_seconds or 1e12)
        if not b.usable:
            text += (f" The bigger {b.model_name} would fit ({b.quant}) but take "
                     f"{b.answer_words} per answer.")  # fmt: skip
        elif b.ctx < REASONING_CTX:
            text += (f" The bigger {b.model_name} fits only with a {ctx_words(b.ctx)} "
                     "context, too short for long reasoning.")  # fmt: skip
    if tier(top) == 2:
        text += " Nothing answers within a few minutes on this machine; expect long waits."
    return text


def _nothing_reason(options: tuple[Plan, ...]) -> str:
    smallest = min((p.total_bytes for p in options), default=0)
    return (f"Nothing in the catalog runs on this machine with at least a {ctx_words(MIN_CTX)} "
            f"context; the smallest option needs about {gb_words(smallest)}. Use a serving "
            "engine on another machine.")  # fmt: skip
