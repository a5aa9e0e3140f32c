"""Render Model → Compare… to PNG (the README's screenshots): three stand-in "quants" answer
the first ten built-in problems twice, through the real dialog, runner and database.

The stand-in engine is scripted (no model is loaded): each quant answers right with a fixed
probability, thinks for a drawn number of tokens and is timed at a set speed, so the figures
show the layout, not a measurement. For measured figures run `ponder-cli compare` or
bench/compare_gemma.py.

    QT_QPA_PLATFORM=offscreen python bench/compare_screenshot.py [OUT_DIR]
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QEventLoop, Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.compare import CompareStore, builtin_problems, local_spec  # noqa: E402
from app.core.engine.events import StreamDone, StreamStarted, TextDelta  # noqa: E402
from app.ui.compare_dialog import CompareDialog  # noqa: E402
from app.ui.theme import apply_theme  # noqa: E402

# label: (probability of a right answer, mean thinking tokens, tokens/s, peak memory)
QUANTS = {
    "stand-in Q8_0": (0.95, 520, 16.0, 8.9e9),
    "stand-in Q4_K_M": (0.9, 560, 27.0, 5.4e9),
    "stand-in Q3_K_M": (0.7, 700, 31.0, 4.3e9),
}
EXPECTED = {p.prompt: p.expected or "" for p in builtin_problems()}


class _Generation:
    def __init__(self, events: list[Any]) -> None:
        self.events, self.finished = events, False

    def next_event(self, timeout_s: float | None = None) -> Any:
        if not self.events:
            return None
        event = self.events.pop(0)
        self.finished = not self.events
        return event

    def cancel(self) -> None:
        pass


class StandIn:
    """The engine client's interface, answering from QUANTS (seeded, so shots repeat)."""

    def __init__(self) -> None:
        self.model_info: dict[str, Any] | None = None
        self.quant = ""
        self.rng = random.Random(17)

    def load(self, path: str, **_opts: Any) -> dict[str, Any]:
        self.quant = Path(path).name
        self.model_info = {"name": self.quant, "n_ctx": 8192}
        return self.model_info

    def unload(self) -> int:
        self.model_info = None
        return 0

    def chat(self, messages: list[dict[str, str]], **_params: Any) -> _Generation:
        right, think, tps, peak = QUANTS[self.quant]
        prompt = messages[-1]["content"].split("\n\nPlease reason")[0]
        expected = EXPECTED.get(prompt, "")
        answer = expected if self.rng.random() < right else _wrong(expected)
        tokens = max(40, int(self.rng.gauss(think, think / 3)))
        thinking = (f"Let me work through this step by step. {prompt} … "
                    f"({tokens} tokens of reasoning) … so the result is {answer}.")  # fmt: skip
        text = f"The final answer is $\\boxed{{{answer}}}$."
        elapsed = (tokens + 20) / tps
        return _Generation([
            StreamStarted("r", 60, True),
            TextDelta("r", thinking, text, tokens, 20),
            StreamDone("r", "eos", tokens + 20, 60, 0.4, tps, elapsed, tokens, False, 20,
                       extra={"peak_rss_bytes": int(peak)}),
        ])  # fmt: skip


def _wrong(expected: str) -> str:
    try:
        return str(int(expected) + 1)
    except ValueError:
        return "unsure"


def settle(ms: int = 200) -> None:
    deadline = QDeadlineTimer(ms)
    while not deadline.hasExpired():
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "docs/screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    apply_theme(app, False)
    with tempfile.TemporaryDirectory() as tmp:
        store = CompareStore(Path(tmp) / "chats.sqlite3")
        specs = [local_spec(Path(tmp) / label, label) for label in QUANTS]
        dialog = CompareDialog(StandIn(), store, specs, planner=None)
        dialog.resize(1100, 760)
        dialog.show()
        for i in range(dialog.model_list.count()):
            dialog.model_list.item(i).setCheckState(Qt.CheckState.Checked)
        problems = builtin_problems()[:10]
        runner = dialog._runner()
        dialog.run_id = runner.create(specs, problems)
        dialog._launch(runner)
        deadline = QDeadlineTimer(60_000)
        while dialog.running and not deadline.hasExpired():
            settle(50)
        settle()
        for index, name in ((0, "compare-models"), (1, "compare-problems")):
            dialog.results.setCurrentIndex(index)
            if index == 1:
                tree = dialog.results.tree
                tree.expandItem(tree.topLevelItem(2))
                tree.expandItem(tree.topLevelItem(2).child(0))
                dialog.results._show_cell(tree.topLevelItem(2).child(0).child(0), 2)
            settle()
            path = out / f"{name}.png"
            dialog.grab().save(str(path))
            print(path)
        dialog.close()
        store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
