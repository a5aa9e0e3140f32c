"""Compare models and quants on the same reasoning problems (issue 17). No Qt.

store = CompareStore(chat_db_path)
runner = CompareRunner(EngineClient(), store, on_progress=print)
run_id = runner.create([local_spec(a), local_spec(b)], builtin_problems())
runner.run(run_id)                     # resumable: run(run_id) again after a cancel
summary = load_summary(store, run_id)  # per model and per problem
"""

from app.core.compare.answers import final_answer, is_correct, normalise, same_answer
from app.core.compare.models import ModelSpec, local_spec, remote_spec
from app.core.compare.problems import (
    Problem,
    ProblemSetError,
    builtin_problems,
    from_text,
    load_problems,
)
from app.core.compare.runner import CompareRunner, CompareSettings, Progress
from app.core.compare.store import AttemptResult, CompareStore, RunRecord
from app.core.compare.summary import ModelSummary, Summary, load_summary, summarise

__all__ = [
    "AttemptResult",
    "CompareRunner",
    "CompareSettings",
    "CompareStore",
    "ModelSpec",
    "ModelSummary",
    "Problem",
    "ProblemSetError",
    "Progress",
    "RunRecord",
    "Summary",
    "builtin_problems",
    "final_answer",
    "from_text",
    "is_correct",
    "load_problems",
    "load_summary",
    "local_spec",
    "normalise",
    "remote_spec",
    "same_answer",
    "summarise",
]
