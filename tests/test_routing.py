"""Auto routing without Qt: the labelled prompts, the fitted classifier measured on the held-back
check split, the small/big pair, the router, and the history after Think harder."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.core.answer_stream import ModelRef
from app.core.chat_session import ChatSession
from app.core.chat_store import ChatStore
from app.core.history import roles_alternate
from app.core.routing import AutoPair, ModelSide, Router, classify, pick_pair
from app.core.routing.classifier import default_classifier, evaluate, fit, load_prompts
from app.core.routing.pair import params_from_name

ROWS = load_prompts()


def split(name: str) -> list:
    return [r for r in ROWS if r.split == name]


def test_the_labelled_set_is_about_200_prompts_split_by_a_hash_of_the_text():
    fit_check = split("fit") + split("check")
    assert 190 <= len(fit_check) <= 220
    assert len({r.prompt for r in ROWS}) == len(ROWS), "a prompt appears twice"
    counts = Counter((r.split, r.label) for r in fit_check)
    assert min(counts.values()) >= 25, counts  # both labels in both splits
    for r in fit_check:  # the split was drawn from the text before any fitting
        bucket = int(hashlib.sha256(r.prompt.encode()).hexdigest()[:8], 16) % 5
        assert r.split == ("check" if bucket < 2 else "fit")
    assert {r.category for r in ROWS if not r.complex} >= {
        "rewriting",
        "short_fact",
        "greeting",
        "small_talk",
        "formatting",
        "translation",
    }
    assert {r.category for r in ROWS if r.complex} >= {
        "math",
        "proof",
        "planning",
        "debugging",
        "algorithm",
        "logic",
    }


def test_the_shipped_classifier_is_the_fit_of_the_fit_split_alone():
    refit = fit(split("fit"))
    assert refit.to_dict() == default_classifier().to_dict()
    # the check split has no say: fitting with it changes the result
    assert fit(split("fit") + split("check")).to_dict() != refit.to_dict()


def test_recall_and_precision_of_complex_on_the_check_split():
    scores = evaluate(default_classifier(), split("check"))
    assert scores.n >= 70
    assert scores.recall >= 0.9, scores  # a hard problem seldom goes to the small model
    assert scores.precision >= 0.8, scores


def test_prompts_written_after_the_fit_are_mostly_routed_right():
    # 20 prompts written once the classifier was frozen (no refit after): a rougher figure
    scores = evaluate(default_classifier(), split("fresh"))
    assert scores.n == 20 and scores.accuracy >= 0.8, scores


def test_decisions_say_why_in_a_few_words():
    routine = classify("Translate 'see you tomorrow' into German.")
    hard = classify("Prove that there are infinitely many primes of the form 4k+3.")
    assert routine.route == "small" and hard.route == "big"
    assert 0 < len(routine.reason.split()) <= 10 and 0 < len(hard.reason.split()) <= 10


@dataclass(frozen=True)
class Found:
    name: str
    path: Path
    problem: str | None = None


def test_pick_pair_needs_a_small_and_a_much_bigger_model():
    small = Found(
        "DeepSeek-R1-Distill-Qwen-1.5B", Path("/m/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf")
    )
    mid = Found("Qwen3-8B", Path("/m/Qwen3-8B-Q4_K_M.gguf"))
    big = Found("DeepSeek-R1-Distill-Qwen-32B", Path("/m/DeepSeek-R1-Distill-Qwen-32B-Q4_K_M.gguf"))
    broken = Found("Huge-70B", Path("/m/Huge-70B.gguf"), problem="truncated")
    pair = pick_pair([mid, big, small, broken])
    assert pair is not None and pair.small.params_b < 2 and "32B" in pair.big.name
    assert pair.big.params_b == pytest.approx(32.8, abs=1)  # the catalog's count
    assert pick_pair([small]) is None and pick_pair([mid, big]) is None
    assert params_from_name("Scripted-R1-14b") == 14.0 and params_from_name("no size") is None


def test_router_switches_only_when_the_other_model_is_needed():
    pair = AutoPair(ModelSide("/m/small.gguf", "Small 1.5B", 1.5),
                    ModelSide("/m/big.gguf", "Big 14B", 14.0))  # fmt: skip
    router = Router(pair)
    routine = router.choose("hi there!", "/m/small.gguf")
    assert routine.route == "small" and not routine.switch
    assert routine.note.startswith("Answered by Small 1.5B (small model)")
    hard = router.choose("Solve x^2 - 5x + 6 = 0 and prove both roots are integers.", None)
    assert hard.route == "big" and hard.switch and "complex" in hard.note
    again = router.think_harder("/m/small.gguf")
    assert again.route == "big" and again.switch and "Think harder" in again.note


def test_think_harder_keeps_both_answers_and_the_history_still_alternates(tmp_path):
    store = ChatStore(tmp_path / "chats.sqlite3")
    session = ChatSession(store)
    small, big = ModelRef("/m/s.gguf", "Small", 4096), ModelRef("/m/b.gguf", "Big", 4096)
    first = session.send("What is 17 * 23?", small, route={"route": "small", "note": "n"})
    store.finish_message(first.message_id, "complete", "It is 381.", "", "")
    again = session.answer_again(big, {"route": "big", "note": "think harder"})
    assert again is not None
    assert again.messages[-1] == {"role": "user", "content": "What is 17 * 23?"}
    store.finish_message(again.message_id, "complete", "It is 391.", "", "")
    cid = session.conversation_id
    assert [m.role for m in store.messages(cid)] == ["user", "assistant", "assistant"]
    assert [m.content for m in store.messages(cid)][1:] == ["It is 381.", "It is 391."]
    assert store.messages(cid)[2].settings["route"]["again"] is True
    nxt = session.send("And 17 * 24?", small)
    assert roles_alternate(nxt.messages)
    assert [t["content"] for t in nxt.messages if t["role"] == "assistant"] == ["It is 391."]
    store.close()


def test_pick_pair_takes_mlx_folders_sized_by_the_catalog_or_their_name():
    from app.core.model_discovery import FoundModel
    from app.core.routing.pair import params_from_catalog

    def mlx(repo: str, name: str) -> FoundModel:
        snap = Path(f"/hub/models--{repo.replace('/', '--')}/snapshots/{'c' * 40}")
        return FoundModel(name, snap, 1, "hf-cache", format="mlx", quant="4bit", origin=repo)

    small = mlx("mlx-community/DeepSeek-R1-Distill-Qwen-1.5B-4bit", "DeepSeek-R1-Distill-Qwen-1.5B")
    big = mlx("mlx-community/DeepSeek-R1-Distill-Qwen-32B-MLX-8Bit", "Renamed by hand")
    pair = pick_pair([small, big])
    assert pair is not None and (pair.small.format, pair.big.format) == ("mlx", "mlx")
    assert pair.small.path == str(small.path) and pair.big.name == "Renamed by hand"
    assert pair.big.params_b == pytest.approx(32.8, abs=1)  # the catalog's, by its repo
    # a quant the catalog does not list, by the source's repo pattern; else from the name
    assert params_from_catalog("/x", "mlx-community/DeepSeek-R1-Distill-Qwen-7B-5bit") == 7.62
    assert params_from_catalog("/x", "mlx-community/DeepSeek-R1-Distill-Qwen-7B-Foo") is None
    assert params_from_catalog("/x", "mlx-community/DeepSeek-R1-Distill-Qwen-1.5B-4bit") < 2
    other = mlx("someone/Tiny-Reasoner-0.5B-mlx", "Tiny-Reasoner-0.5B")
    assert pick_pair([other, big]).small.params_b == 0.5  # type: ignore[union-attr]
    # a GGUF small model with an MLX big one: each side keeps its format (and engine)
    gguf = Found("DeepSeek-R1-Distill-Qwen-1.5B",
                 Path("/m/DeepSeek-R1-Distill-Qwen-1.5B-Q4_K_M.gguf"))  # fmt: skip
    mixed = pick_pair([gguf, big])
    assert mixed is not None and (mixed.small.format, mixed.big.format) == ("gguf", "mlx")
    broken = FoundModel("Huge-70B", Path("/hub/x"), 1, "hf-cache", format="mlx",
                        problem="model-00002-of-00008.safetensors is missing")  # fmt: skip
    assert pick_pair([small, broken]) is None
