"""Render Ponder's main states to PNG, in light and dark: empty, thinking live, answered
(panel collapsed) and an engine error; and Auto routing (light): a complex question answered
by the big model, a routine one by the small model with Think harder offered; and an R1-style
answer with its LaTeX typeset (math-light, math-dark). Uses the real
window offscreen with the scripted stand-in engine, so no model is needed.

    QT_QPA_PLATFORM=offscreen python bench/screenshots.py OUT_DIR
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from PySide6.QtCore import QCoreApplication, QDeadlineTimer, QEventLoop  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from app.core.chat_store import ChatStore  # noqa: E402
from app.ui.main_window import MainWindow  # noqa: E402
from app.ui.math_render import Typesetter  # noqa: E402
from app.ui.scripted_engine import Script, ScriptedClient  # noqa: E402
from app.ui.theme import apply_theme  # noqa: E402

MODEL = "/models/DeepSeek-R1-Distill-Qwen-14B-Q4_K_M.gguf"
QUESTION = "What is the sum of all positive integers n < 100 such that n² + 1 is divisible by 5?"
THINKING = (
    "Okay, so I need the positive integers n below 100 where n² + 1 ≡ 0 (mod 5), that is "
    "n² ≡ 4 (mod 5).\n\nThe squares mod 5 are 0, 1, 4, 4, 1 for n ≡ 0, 1, 2, 3, 4. So n² ≡ 4 "
    "exactly when n ≡ 2 or n ≡ 3 (mod 5).\n\nNumbers ≡ 2 (mod 5) below 100: 2, 7, …, 97. "
    "That is 20 terms with sum 20·(2 + 97)/2 = 990.\n\nNumbers ≡ 3 (mod 5) below 100: 3, 8, "
    "…, 98. Also 20 terms, sum 20·(3 + 98)/2 = 1010.\n\nTotal 990 + 1010 = 2000. Let me "
    "double-check with a small case: n = 2 gives 5, n = 3 gives 10, n = 7 gives 50. Good."
)
ANSWER = """The condition is n² ≡ 4 (mod 5), which holds exactly when **n ≡ 2 or 3 (mod 5)**.

| residue | terms below 100 | sum |
|---|---|---|
| n ≡ 2 | 2, 7, …, 97 (20 terms) | 990 |
| n ≡ 3 | 3, 8, …, 98 (20 terms) | 1010 |

A quick check in Python:

```python
print(sum(n for n in range(1, 100) if (n * n + 1) % 5 == 0))
```

So the answer is \\boxed{2000}.
"""
OLDER = ["Prove that √2 is irrational", "Plan a 3-day trip to Kyoto", "Explain MLA attention",
         "Fix my recursive Fibonacci", "Integrate x·e^x dx"]  # fmt: skip


def words(text: str) -> list[str]:
    return re.findall(r"\s*\S+|\s+", text)


def settle(ms: int = 150) -> None:
    app = QCoreApplication.instance()
    deadline = QDeadlineTimer(ms)
    while not deadline.hasExpired():
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)


def wait_for(condition, ms: int = 5000) -> None:
    deadline = QDeadlineTimer(ms)
    while not condition() and not deadline.hasExpired():
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
    if not condition():
        raise RuntimeError("the window did not reach the state to capture")


def seeded_store(folder: Path) -> ChatStore:
    store = ChatStore(folder / "chats.sqlite3")
    for title in OLDER:
        conv = store.create_conversation()
        store.add_message(conv.id, "user", title)
        store.add_message(conv.id, "assistant", "…")
    return store


def window(folder: Path, *scripts: Script) -> tuple[MainWindow, ScriptedClient]:
    client = ScriptedClient(*scripts, name="DeepSeek-R1-Distill-Qwen-14B")
    w = MainWindow(seeded_store(folder), client)
    w.resize(1280, 820)
    w.show()
    w.controller.load_model(MODEL)
    wait_for(lambda: w.controller.model_info is not None)
    w.controller.new_conversation()
    settle()
    return w, client


def shoot(w: MainWindow, out: Path, name: str) -> None:
    settle()
    path = out / f"{name}.png"
    w.grab().save(str(path))
    print(path)


def capture(out: Path, dark: bool) -> None:
    app = QApplication.instance()
    apply_theme(app, dark)
    suffix = "dark" if dark else "light"
    with tempfile.TemporaryDirectory() as tmp:
        w, _ = window(Path(tmp))
        shoot(w, out, f"empty-{suffix}")
        w.close()
    script = Script(thinking=words(THINKING), answer=words(ANSWER), pause_at=70, rate=40)
    with tempfile.TemporaryDirectory() as tmp:
        w, client = window(Path(tmp), script)
        w.composer.input.setPlainText(QUESTION)
        w.send(QUESTION)
        wait_for(lambda: client.generations and client.generations[0].paused.is_set())
        wait_for(lambda: w.chat.last_assistant().thinking.tokens >= 70)
        shoot(w, out, f"thinking-{suffix}")
        client.generations[0].resume()
        wait_for(lambda: not w.controller.busy)
        shoot(w, out, f"answered-{suffix}")
        w.close()
    crash = Script(thinking=words(THINKING), answer=words(ANSWER), crash_at=40)
    with tempfile.TemporaryDirectory() as tmp:
        w, client = window(Path(tmp), crash)
        w.send(QUESTION)
        wait_for(lambda: not w.controller.busy)
        shoot(w, out, f"error-{suffix}")
        w.close()


ROUTINE = ("Rewrite this more politely: \"Send me the report by Friday or don't bother "
           "coming in Monday.\"")  # fmt: skip
POLITE = ("Could you please send me the report by Friday? That way we can go through it "
          "together on Monday. Thank you!")  # fmt: skip


def capture_auto(out: Path) -> None:
    """Auto routing with two models (the router's real classifier and notes)."""
    from app.core.routing import AutoPair, ModelSide

    apply_theme(QApplication.instance(), False)
    big = Script(thinking=words(THINKING), answer=words(ANSWER), rate=400)
    small = Script(thinking=words("The user wants a politer version. Keep it short and warm."),
                   answer=words(POLITE), rate=200)  # fmt: skip
    pair = AutoPair(
        ModelSide("/models/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf",
                  "DeepSeek-R1-Distill-Qwen-1.5B", 1.78),
        ModelSide(MODEL, "DeepSeek-R1-Distill-Qwen-14B", 14.77),
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        w, client = window(Path(tmp), big, small)
        load = client.load

        def named_load(path: str, **opts: object) -> dict:
            client.name = pair.small.name if path == pair.small.path else pair.big.name
            return load(path, **opts)

        client.load = named_load  # type: ignore[method-assign]  # the stand-in has one name
        w.controller.set_auto_pair(pair)
        w.composer.set_auto_available(pair.describe())
        w.composer.model_choice.setCurrentIndex(1)
        for text in (QUESTION, ROUTINE):
            w.send(text)
            wait_for(lambda: not w.controller.busy)
        shoot(w, out, "auto-light")
        w.close()


MATH_QUESTION = "Solve x² − 5x + 6 = 0 and find the sum of the first n odd numbers."
MATH_THINKING = (
    "The quadratic factors: $x^2 - 5x + 6 = (x-2)(x-3)$, so $x = 2$ or $x = 3$. For the odd "
    "numbers, $\\sum_{k=1}^{n} (2k-1) = 2\\cdot\\frac{n(n+1)}{2} - n = n^2$. Check $n=3$: "
    "$1+3+5 = 9$. Good."
)
MATH_ANSWER = r"""**1. The quadratic.** By the quadratic formula with $a = 1$, $b = -5$, $c = 6$:

$$x = \frac{-b \pm \sqrt{b^2 - 4ac}}{2a} = \frac{5 \pm \sqrt{25 - 24}}{2} = \frac{5 \pm 1}{2}$$

so $x_1 = 3$ and $x_2 = 2$ (indeed $x_1 + x_2 = 5$ and $x_1 x_2 = 6$).

**2. The odd numbers.** Since $\sum_{k=1}^{n} k = \frac{n(n+1)}{2}$,

\[
\sum_{k=1}^{n} (2k - 1) = 2 \cdot \frac{n(n+1)}{2} - n = n^2 .
\]

For a piecewise check, $f(n) = \begin{cases} n^2 & n \ge 1 \\ 0 & n = 0 \end{cases}$ and
$\lim_{n \to \infty} \frac{n^2}{n^2 + 1} = 1$.

**Answer:** $x \in \{2, 3\}$ and the sum is $\boxed{n^2}$.
"""


def capture_math(out: Path, dark: bool) -> None:
    """An R1-style answer with inline and display math, its thinking open (typeset too)."""
    apply_theme(QApplication.instance(), dark)
    script = Script(thinking=words(MATH_THINKING), answer=words(MATH_ANSWER), rate=400)
    with tempfile.TemporaryDirectory() as tmp:
        w, _ = window(Path(tmp), script)
        w.send(MATH_QUESTION)
        wait_for(lambda: not w.controller.busy)
        msg = w.chat.last_assistant()
        msg.thinking.toggle()
        views = [msg.answer, msg.thinking.view()]
        for setter in (s for v in views for s in v.document().findChildren(Typesetter)):
            setter.finish()
        shoot(w, out, f"math-{'dark' if dark else 'light'}")
        w.close()


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else "screenshots")
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication.instance() or QApplication([])
    app.setApplicationName("Ponder")
    for dark in (False, True):
        capture(out, dark)
    capture_auto(out)
    for dark in (False, True):
        capture_math(out, dark)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
