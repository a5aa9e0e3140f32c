"""Auto routing with Qwen3's no-thinking mode (#17), without Qt: a model whose chat template
has a thinking switch answers routine prompts itself without thinking (no reload) and complex
ones with thinking; Think harder asks it again with thinking. Checked on the router alone and
through the chat session and the real engine process on a scripted model that carries
Qwen3's real template."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.answer_stream import ModelRef
from app.core.chat_session import ChatSession, ModelRunner
from app.core.chat_store import ChatStore
from app.core.model_discovery import read_model
from app.core.routing import AutoPair, ModelSide, Router, pick_pair
from app.ui.scripted_engine import Script, ScriptedClient
from scripted import ANSWER_TEXT, QWEN3_TEMPLATE, THINK_TEXT, write_scripted_gguf

ROUTINE = "Translate 'good morning' into French."
COMPLEX = "Prove that the square root of 3 is irrational, step by step."
QWEN3 = ModelSide("/m/Qwen3-8B-Q4_K_M.gguf", "Qwen3-8B", 8.2, thinking_switch=True)
SMALL = ModelSide("/m/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf", "R1 1.5B", 1.5)
BIG = ModelSide("/m/DeepSeek-R1-Distill-Qwen-14B-Q4_K_M.gguf", "R1 14B", 14.8)


@dataclass(frozen=True)
class Found:
    name: str
    path: Path
    thinking_switch: bool = False
    problem: str | None = None


def test_one_model_with_a_switch_answers_routine_prompts_without_thinking():
    router = Router(AutoPair(QWEN3, QWEN3))
    routine = router.choose(ROUTINE, QWEN3.path)
    assert routine.side == QWEN3 and not routine.switch and routine.thinking is False
    assert routine.note.startswith("Answered by Qwen3-8B without thinking. Auto: routine")
    assert routine.can_think_harder
    hard = router.choose(COMPLEX, QWEN3.path)
    assert hard.side == QWEN3 and not hard.switch and hard.thinking is True
    assert hard.note.startswith("Answered by Qwen3-8B with thinking. Auto: complex")
    assert not hard.can_think_harder
    again = router.think_harder(QWEN3.path)
    assert again.side == QWEN3 and not again.switch and again.thinking is True
    assert "Think harder" in again.note


def test_a_big_model_with_a_switch_takes_the_routine_prompts_too_no_reload():
    router = Router(AutoPair(SMALL, QWEN3))
    routine = router.choose(ROUTINE, QWEN3.path)
    assert routine.side == QWEN3 and routine.route == "big" and not routine.switch
    assert routine.thinking is False
    # loaded elsewhere (the small one), the big one is loaded once, then kept
    assert router.choose(ROUTINE, SMALL.path).switch
    # the engine's word on the loaded model wins: no switch there, the small model answers
    plain = router.choose(ROUTINE, QWEN3.path, loaded_switch=False)
    assert plain.side == SMALL and plain.thinking is True and plain.switch
    assert plain.note.startswith("Answered by R1 1.5B (small model)")


def test_without_a_switch_the_small_model_answers_routine_prompts_as_before():
    router = Router(AutoPair(SMALL, BIG))
    routine = router.choose(ROUTINE, BIG.path)
    assert routine.side == SMALL and routine.thinking is True and routine.switch
    assert routine.note.startswith("Answered by R1 1.5B (small model). Auto: routine")
    hard = router.choose(COMPLEX, SMALL.path)
    assert hard.side == BIG and hard.thinking is True
    assert hard.note.startswith("Answered by R1 14B (big model). Auto: complex")


def test_pick_pair_offers_a_lone_model_with_a_switch():
    qwen = Found("Qwen3-8B", Path("/m/Qwen3-8B-Q4_K_M.gguf"), thinking_switch=True)
    r1 = Found("DeepSeek-R1-Distill-Qwen-7B", Path("/m/DeepSeek-R1-Distill-Qwen-7B-Q4_K_M.gguf"))
    small = Found("DeepSeek-R1-Distill-Qwen-1.5B",
                  Path("/m/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"))  # fmt: skip
    solo = pick_pair([qwen, r1])
    assert solo is not None and solo.single and solo.big.name == "Qwen3-8B"
    assert solo.big.thinking_switch
    assert solo.describe() == (
        "Qwen3-8B without thinking for routine prompts, with thinking for complex ones"
    )
    pair = pick_pair([qwen, small])
    assert pair is not None and not pair.single and pair.big.thinking_switch
    assert "without thinking" in pair.describe()
    assert pick_pair([r1]) is None  # no switch, no small model: no Auto


def test_discovery_reads_the_switch_from_the_gguf_template(tmp_path):
    qwen = write_scripted_gguf(tmp_path / "Scripted-Qwen3-8B.gguf", "qwen3", QWEN3_TEMPLATE)
    r1 = write_scripted_gguf(tmp_path / "Scripted-R1-14B.gguf", "answer")
    assert read_model(qwen, "added").thinking_switch is True
    assert read_model(r1, "added").thinking_switch is False


@pytest.fixture
def qwen3_model(tmp_path):
    pytest.importorskip("llama_cpp")
    return write_scripted_gguf(tmp_path / "Scripted-Qwen3-8B.gguf", "qwen3", QWEN3_TEMPLATE)


def test_through_the_engine_routine_stays_on_the_model_without_thinking_complex_thinks(
    engine, qwen3_model, tmp_path
):
    store = ChatStore(tmp_path / "chats.sqlite3")
    runner = ModelRunner(engine)
    info = runner.load(str(qwen3_model), "Scripted-Qwen3-8B", n_ctx=2048, n_gpu_layers=0)
    found = read_model(qwen3_model, "added")
    pair = pick_pair([found])
    assert pair is not None and pair.single
    router = Router(pair)
    session = ChatSession(store)
    loads = 0

    def answer(text, choice):
        nonlocal loads
        loads += choice.switch
        route = {"route": choice.route, "note": choice.note}
        stream = session.send(text, runner.model, route=route, thinking=choice.thinking)
        return runner.stream(stream)

    routine = router.choose(ROUTINE, str(qwen3_model), info["thinking_switch"])
    assert routine.thinking is False and "without thinking" in routine.note
    quick = answer(ROUTINE, routine)
    assert quick.status == "complete" and quick.thinking == "" and quick.answer == ANSWER_TEXT
    assert quick.stats["thinking_tokens"] == 0 and quick.done.extra["thinking_off"] is True

    hard = router.choose(COMPLEX, str(qwen3_model), info["thinking_switch"])
    assert hard.thinking is True and "with thinking" in hard.note
    slow = answer(COMPLEX, hard)
    assert slow.status == "complete" and slow.thinking.strip() == THINK_TEXT
    assert slow.answer == ANSWER_TEXT and slow.stats["thinking_tokens"] >= 5
    assert loads == 0  # one model, loaded once: no switch for either prompt

    saved = [m for m in store.messages(session.conversation_id) if m.role == "assistant"]
    assert [m.settings.get("thinking") for m in saved] == [False, None]
    assert [m.thinking for m in saved] == ["", THINK_TEXT]
    store.close()


def test_regenerate_keeps_the_route_and_no_thinking_only_for_the_model_that_answered(tmp_path):
    """The stand-in engine (no Qt): a Qwen3 answer without thinking is regenerated without
    thinking under the same route; regenerated by another model, it is a plain answer."""
    client = ScriptedClient(Script(thinking=[" Hm."], answer=["Bonjour."]))
    runner = ModelRunner(client)
    runner.load(QWEN3.path, QWEN3.name)
    choice = Router(AutoPair(QWEN3, QWEN3)).choose(ROUTINE, QWEN3.path)
    route = {"model": QWEN3.name, "route": choice.route, "reason": "a rewrite",
             "note": choice.note, "thinking": False}  # fmt: skip
    store = ChatStore(tmp_path / "chats.sqlite3")
    session = ChatSession(store)
    assert runner.model is not None
    quick = runner.stream(session.send(ROUTINE, runner.model, route=route, thinking=False))
    assert (quick.status, quick.thinking, quick.answer) == ("complete", "", "Bonjour.")
    assert quick.stats["thinking_tokens"] == 0 and quick.done.extra["thinking_off"] is True

    again = session.regenerate(runner.model)
    assert again is not None and again.params["thinking"] is False
    result = runner.stream(again)
    assert client.params[-1]["thinking"] is False and result.thinking == ""
    user, answer = store.messages(session.conversation_id)
    assert answer.settings["route"] == route and answer.settings["thinking"] is False
    assert (user.content, answer.content, answer.model) == (ROUTINE, "Bonjour.", QWEN3.name)

    runner.load(BIG.path, BIG.name)  # another model, chosen by hand
    plain = session.regenerate(runner.model)
    assert plain is not None and "thinking" not in plain.params
    result = runner.stream(plain)
    assert "thinking" not in client.params[-1] and result.thinking.strip() == "Hm."
    assert result.done.extra["thinking_off"] is False
    user, answer = store.messages(session.conversation_id)
    assert "route" not in answer.settings and "thinking" not in answer.settings
    assert answer.model == BIG.name
    store.close()


def test_edit_takes_a_route_and_no_thinking_like_send(tmp_path):
    store = ChatStore(tmp_path / "chats.sqlite3")
    session = ChatSession(store)
    model = ModelRef(QWEN3.path, QWEN3.name, 4096)
    first = session.send(COMPLEX, model, route={"model": QWEN3.name, "route": "big"})
    assert "thinking" not in first.params
    user = store.messages(session.conversation_id)[0]
    route = {"model": QWEN3.name, "route": "big", "note": "quick", "thinking": False}
    edited = session.edit(user.id, ROUTINE, model, route=route, thinking=False)
    assert edited is not None and edited.params["thinking"] is False
    assert edited.messages == [{"role": "user", "content": ROUTINE}]
    (_, answer) = store.messages(session.conversation_id)
    assert answer.settings["route"] == route and answer.settings["thinking"] is False
    store.close()
