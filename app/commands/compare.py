"""`ponder-cli compare --model A --model B --problems FILE`: the same problems, 2-4 models.

Each model is loaded in turn (planned settings for this machine), answers every problem
`--repeats` times and is unloaded before the next. Progress goes to stderr; the per-model
table to stdout, or with `--json` one JSON object: `models` (each with `model` as given on
the command line, `accuracy` from 0 to 1 and the other figures) and `problems` (every
model's answers per problem). Answers are saved in the chat database as they arrive: Ctrl-C
stops, and `--resume RUN` answers only what is missing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from typing import Any

DEFAULT_REPEATS = 2


def add_parser(sub: Any) -> None:
    p = sub.add_parser("compare", help="compare 2-4 models or quants on the same problems")
    p.add_argument("--model", action="append", default=[], metavar="MODEL",
                   help="a model file (or MLX folder), or a saved server model's name; "
                   "give it 2-4 times")  # fmt: skip
    p.add_argument("--problems", default=None, metavar="FILE",
                   help="a JSONL file (prompt, optional expected), or 'builtin' for the "
                   "built-in set of about 40 problems (the default)")  # fmt: skip
    p.add_argument("--prompt", default=None, help="one problem given as text instead")
    p.add_argument("--expected", default=None, help="the expected answer of --prompt")
    p.add_argument("--repeats", type=int, default=DEFAULT_REPEATS,
                   help=f"answers per problem and model ({DEFAULT_REPEATS})")  # fmt: skip
    p.add_argument(
        "--reference",
        type=int,
        default=1,
        metavar="N",
        help="the model (1-4) others are compared with where nothing is expected",
    )
    p.add_argument("--ctx", type=int, default=None, help="context length (default: planned)")
    p.add_argument("--max-tokens", type=int, default=None, help="answer length limit")
    p.add_argument("--thinking-budget", type=int, default=None, metavar="TOKENS")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--seed", type=int, default=None, help="attempt k uses seed + k")
    p.add_argument("--no-boxed-hint", action="store_true",
                   help="do not ask for the final answer in \\boxed{}")  # fmt: skip
    p.add_argument("--resume", type=int, default=None, metavar="RUN",
                   help="answer what a stopped comparison is missing")  # fmt: skip
    p.add_argument("--db", default=None, help="the chat database (default: Ponder's)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.set_defaults(run=run)


def fail(message: str, code: int = 2) -> int:
    print(f"ponder-cli: {message}", file=sys.stderr)
    return code


def resolve_model(given: str) -> Any:
    """A ModelSpec labelled as given: a file or folder, else a saved server model."""
    from app.core.compare.models import local_spec, remote_spec

    if os.path.exists(given):
        return local_spec(given, label=given)
    from app.core.remote import saved_remotes

    for entry in saved_remotes():
        if given in (entry.display_name, entry.label, entry.model):
            return remote_spec(entry, label=given)
    return None


def _problems(args: argparse.Namespace) -> Any:
    from app.core.compare import problems

    if args.prompt is not None:
        return problems.from_text(args.prompt, args.expected)
    return problems.load_problems(args.problems or problems.BUILTIN)


def run(args: argparse.Namespace) -> int:
    from app.core.compare import CompareRunner, CompareSettings, CompareStore, ProblemSetError
    from app.core.compare.summary import load_summary
    from app.core.engine import EngineClient
    from app.core.model_stats import ModelStats

    store = CompareStore(args.db)
    if args.resume is None:
        if not 2 <= len(args.model) <= 4:
            return fail("give --model 2 to 4 times (files, or saved server names).")
        specs = []
        for given in args.model:
            spec = resolve_model(given)
            if spec is None:
                return fail(f"there is no model file or saved server called {given}")
            specs.append(spec)
        try:
            problems = _problems(args)
        except ProblemSetError as exc:
            return fail(str(exc))
        if args.repeats < 1 or not 1 <= args.reference <= len(specs):
            return fail("--repeats must be 1 or more and --reference one of the models.")
        settings = CompareSettings(
            repeats=args.repeats, temperature=args.temperature, top_p=args.top_p,
            max_tokens=args.max_tokens, thinking_budget=args.thinking_budget, n_ctx=args.ctx,
            seed=args.seed, reference=args.reference - 1, boxed_hint=not args.no_boxed_hint,
        )  # fmt: skip
    elif store.run(args.resume) is None:
        return fail(f"there is no comparison {args.resume} to resume.")
    stats = ModelStats(os.path.join(os.path.dirname(store.path), "model_stats.json"))
    with EngineClient() as client:
        runner = CompareRunner(client, store, stats=stats, on_progress=_Progress().show)
        run_id = args.resume if args.resume is not None else runner.create(
            specs, problems, settings)  # fmt: skip
        previous = signal.signal(signal.SIGINT, lambda *_: _stop(runner, previous))
        try:
            status = runner.run(run_id)
        finally:
            signal.signal(signal.SIGINT, previous)
    summary = load_summary(store, run_id)
    store.close()
    if args.json:
        print(json.dumps(summary.to_json(), indent=1, ensure_ascii=False))
    else:
        _print_table(summary)
    if status == "cancelled":
        print(f"Stopped. Resume with: ponder-cli compare --resume {run_id}", file=sys.stderr)
        return 130
    return 0 if status == "complete" else 1


def _stop(runner: Any, previous: Any) -> None:
    """The first Ctrl-C stops the comparison (answers so far are kept); a second quits."""
    print("\nStopping…", file=sys.stderr)
    runner.cancel()
    signal.signal(signal.SIGINT, previous)


class _Progress:
    """One stderr line per answer: where it stands, the answer, the time left."""

    def show(self, p: Any) -> None:
        from app.core.compare.report import time_left

        if p.phase == "loading" or p.phase == "model_failed":
            print(p.message, file=sys.stderr)
        elif p.phase == "answered" and p.result is not None:
            r = p.result
            mark = "" if r.correct is None else " ✓" if r.correct else " ✗"
            said = f"error: {r.error}" if r.error else (r.final or "(no final answer)") + mark
            left = time_left(p.seconds_left)
            print(f"[{p.done}/{p.total}] {p.model} · problem {p.problem_index + 1} · "
                  f"{said} ({r.elapsed_s:.1f} s){' · ' + left if left else ''}",
                  file=sys.stderr)  # fmt: skip


def _print_table(summary: Any) -> None:
    from app.core.compare.report import MODEL_COLUMNS, model_cells

    rows = [list(MODEL_COLUMNS)] + [model_cells(m, summary.reference) for m in summary.models]
    widths = [max(len(r[i]) for r in rows) for i in range(len(MODEL_COLUMNS))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    print(f"\nComparison {summary.run_id}: {summary.done} of {summary.total} answers.")
