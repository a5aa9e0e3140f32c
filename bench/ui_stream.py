"""How smoothly the chat view takes a long reasoning stream, and how fast the window appears.

A scripted stream of 30,000 thinking tokens and 3,000 answer tokens goes through the real
pipeline (engine worker thread with its time batching → controller → widgets, offscreen),
one token per event at 2,000 tokens/s (ten times a 7B model on an RTX 4090; `--rate 0`
feeds it unthrottled, and the worker packs it into a handful of huge batches). A 1 ms
QTimer records the gaps between its ticks: the longest gap is the longest event-loop
stall, and the 99th percentile is the frame gap. The GUI
thread's time spent taking in each batch, per token, is compared at the start and the end
of the thinking (no re-rendering of the whole message per token: the ratio stays near 1).
Then `python -m app` is started cold a few times to time the window appearing.

    QT_QPA_PLATFORM=offscreen python bench/ui_stream.py [--thinking 30000] [--answer 3000]

Targets: longest stall < 50 ms, p99 gap < 16 ms, end/start cost per token < 1.5,
window shown < 1 s with no engine library imported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QEventLoop, Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.chat_store import ChatStore  # noqa: E402
from app.core.generation_settings import GenerationSettings  # noqa: E402
from app.ui.assistant_message import AssistantMessageWidget  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.scripted_engine import Script, ScriptedClient  # noqa: E402
from app.ui.theme import apply_theme  # noqa: E402

WORDS = ("so", "the", "residue", "squares", "modulo", "five", "check", "again", "wait",
         "then", "n", "equals", "two", "three", "sum", "terms", "hmm", "therefore")  # fmt: skip


def tokens(count: int, paragraph: int = 80) -> list[str]:
    """Word tokens, a paragraph break every `paragraph` tokens (as R1 writes)."""
    out = []
    for i in range(count):
        word = WORDS[(i * 7 + i // 13) % len(WORDS)]
        out.append(("\n\n" if i and i % paragraph == 0 else " ") + word)
    return out


class Timing:
    """Wraps the widget's delta methods to time the GUI thread's work per batch."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, int, float]] = []  # kind, tokens, seconds

    def install(self) -> None:
        for kind in ("thinking", "answer"):
            name = f"add_{kind}"
            original = getattr(AssistantMessageWidget, name)

            def timed(widget, text, n, _orig=original, _kind=kind):
                t0 = time.perf_counter()
                _orig(widget, text, n)
                self.batches.append((_kind, n, time.perf_counter() - t0))

            setattr(AssistantMessageWidget, name, timed)

    def cost_per_token(self, kind: str, part: slice) -> float:
        rows = [b for b in self.batches if b[0] == kind]
        total = sum(b[1] for b in rows)
        lo, hi = int(total * (part.start or 0)), int(total * (part.stop or 1))
        seen, spent, counted = 0, 0.0, 0
        for _, n, s in rows:
            if lo <= seen < hi:
                spent, counted = spent + s, counted + n
            seen += n
        return spent / max(counted, 1)


def run_stream(n_thinking: int, n_answer: int, rate: float) -> dict[str, float]:
    app = QApplication.instance() or QApplication([])
    apply_theme(app, dark=False)
    timing = Timing()
    timing.install()
    with tempfile.TemporaryDirectory() as tmp:
        client = ScriptedClient(
            Script(thinking=tokens(n_thinking), answer=tokens(n_answer), rate=rate)
        )
        w = MainWindow(ChatStore(Path(tmp) / "bench.sqlite3"), client, n_ctx=65536)
        w.resize(1280, 820)
        w.show()
        w.controller.load_model("/models/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf")
        wait(lambda: w.controller.model_info is not None)
        w.controller.set_settings(GenerationSettings(max_tokens=n_thinking + n_answer + 64))
        ticks: list[float] = []
        timer = QTimer()
        timer.setTimerType(Qt.TimerType.PreciseTimer)
        timer.setInterval(1)
        timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
        finish: list[float] = []
        original_finish = AssistantMessageWidget.finish

        def timed_finish(widget, *args):
            t0 = time.perf_counter()
            original_finish(widget, *args)
            finish.append(time.perf_counter() - t0)

        AssistantMessageWidget.finish = timed_finish  # type: ignore[method-assign]
        timer.start()
        t0 = time.perf_counter()
        w.send("Stream a very long answer")
        wait(lambda: not w.controller.busy, 600_000)
        elapsed = time.perf_counter() - t0
        timer.stop()
        AssistantMessageWidget.finish = original_finish  # type: ignore[method-assign]
        msg = w.chat.last_assistant()
        assert msg.thinking.tokens >= n_thinking and msg.answer_text()
        # the gaps while streaming: exclude the final Markdown render, reported apart
        gaps = sorted((b - a) * 1000 for a, b in zip(ticks, ticks[1:], strict=False))
        render_ms = finish[0] * 1000 if finish else 0.0
        streaming_gaps = list(gaps)
        if render_ms and streaming_gaps and streaming_gaps[-1] >= render_ms:
            streaming_gaps.pop()
        thinking_batches = sum(1 for b in timing.batches if b[0] == "thinking")
        result = {
            "tokens": n_thinking + n_answer,
            "seconds": elapsed,
            "batches": len(timing.batches),
            "thinking_batches": thinking_batches,
            "max_stall_ms": max(streaming_gaps),
            "p99_gap_ms": streaming_gaps[int(0.99 * (len(streaming_gaps) - 1))],
            "median_gap_ms": statistics.median(streaming_gaps),
            "render_ms": render_ms,
            "start_us": timing.cost_per_token("thinking", slice(0.0, 0.1)) * 1e6,
            "end_us": timing.cost_per_token("thinking", slice(0.9, 1.0)) * 1e6,
            "answer_start_us": timing.cost_per_token("answer", slice(0.0, 0.2)) * 1e6,
            "answer_end_us": timing.cost_per_token("answer", slice(0.8, 1.0)) * 1e6,
        }
        w.close()
        w.store.close()
    return result


def wait(condition, ms: int = 10_000) -> None:
    deadline = QDeadlineTimer(ms)
    while not condition() and not deadline.hasExpired():
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 5)
    if not condition():
        raise RuntimeError("timed out")


def cold_start(runs: int = 3) -> tuple[list[float], str]:
    """Seconds from process start to the window shown, for `python -m app`."""
    times, heavy = [], ""
    env = {**os.environ, "PONDER_STARTUP_PROBE": "1", "QT_QPA_PLATFORM": "offscreen"}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(runs):
            out = subprocess.run(
                [sys.executable, "-m", "app", "--db", f"{tmp}/s{i}.sqlite3"],
                capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
            )  # fmt: skip
            for line in out.stdout.splitlines():
                if line.startswith("window shown after"):
                    times.append(float(line.split()[3]))
                elif line.startswith("heavy modules:"):
                    heavy = line.split(":", 1)[1].strip()
    return times, heavy


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--thinking", type=int, default=30_000)
    parser.add_argument("--answer", type=int, default=3_000)
    parser.add_argument(
        "--rate",
        type=float,
        default=2_000,
        help="tokens/s the scripted engine produces (0: unthrottled)",
    )
    args = parser.parse_args()
    r = run_stream(args.thinking, args.answer, args.rate)
    ratio = r["end_us"] / max(r["start_us"], 1e-9)
    print(
        f"stream: {r['tokens']:,} tokens in {r['seconds']:.2f} s "
        f"({r['tokens'] / r['seconds']:,.0f} tokens/s), {r['batches']} batches to the GUI"
    )
    print(f"longest event-loop stall while streaming: {r['max_stall_ms']:.1f} ms (target < 50)")
    print(
        f"frame gap p99: {r['p99_gap_ms']:.1f} ms, median {r['median_gap_ms']:.2f} ms "
        "(target p99 < 16)"
    )
    print(
        f"GUI cost per thinking token: start {r['start_us']:.2f} µs, end {r['end_us']:.2f} µs,"
        f" end/start {ratio:.2f}x (target < 1.5x)"
    )
    print(
        f"GUI cost per answer token: start {r['answer_start_us']:.2f} µs, "
        f"end {r['answer_end_us']:.2f} µs"
    )
    print(f"final Markdown render of the answer: {r['render_ms']:.1f} ms (once per message)")
    times, heavy = cold_start()
    if times:
        print(
            f"cold start to window shown: best {min(times):.3f} s, "
            f"median {statistics.median(times):.3f} s (target < 1 s); "
            f"engine modules imported: {heavy or 'none'}"
        )
    else:
        print("cold start: the app did not report a shown window")
    return 0


if __name__ == "__main__":
    sys.exit(main())
