"""The planner: what fits on a machine, how fast it thinks, and which option to recommend.

    plan = plan_option(profile, "deepseek-r1-distill-qwen-14b", "Q4_K_M", ctx=16384)
    ranking = rank(profile)           # ranking.recommended, ranking.options

Everything is computed from the catalog and a `HardwareProfile`; nothing is loaded.
"""

from app.core.planner.budget import Budget, budget_for
from app.core.planner.plan import (
    MIN_CTX,
    REASONING_CTX,
    USABLE_ANSWER_SECONDS,
    VERDICTS,
    Plan,
    PlanError,
    plan_option,
)
from app.core.planner.ranking import Ranking, rank
from app.core.planner.words import duration_words, gb_words

__all__ = [
    "MIN_CTX",
    "REASONING_CTX",
    "USABLE_ANSWER_SECONDS",
    "VERDICTS",
    "Budget",
    "Plan",
    "PlanError",
    "Ranking",
    "budget_for",
    "duration_words",
    "gb_words",
    "plan_option",
    "rank",
]
