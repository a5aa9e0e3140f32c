"""`ponder-cli chat`: the first real way to use the product, through the engine process."""

from __future__ import annotations

import json
import subprocess
import sys

from scripted import ANSWER_TEXT, THINK_TEXT


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_chat_prints_thinking_to_stderr_and_the_answer_to_stdout(scripted_models):
    out = run_cli("chat", "--model", str(scripted_models.preopen), "What is 2+2?")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ANSWER_TEXT
    assert THINK_TEXT in out.stderr and ANSWER_TEXT not in out.stderr


def test_chat_json_prints_one_object_per_event(scripted_models):
    out = run_cli("chat", "--json", "--model", str(scripted_models.preopen), "What is 2+2?")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[:2] == ["loaded", "started"] and kinds[-1] == "done"
    assert "delta" in kinds
    assert "".join(e["thinking"] for e in events if e["event"] == "delta") == THINK_TEXT
    assert "".join(e["answer"] for e in events if e["event"] == "delta") == ANSWER_TEXT
    done = events[-1]
    assert done["stop_reason"] == "eos" and done["completion_tokens"] > 0
    assert done["decode_tps"] > 0 and done["ttft_s"] >= 0


def test_chat_with_a_missing_model_says_so(tmp_path):
    out = run_cli("chat", "--model", str(tmp_path / "none.gguf"), "hi")
    assert out.returncode == 2 and "no model file" in out.stderr


def test_chat_with_a_corrupt_model_says_why(scripted_models):
    out = run_cli("chat", "--model", str(scripted_models.corrupt["truncated"]), "hi")
    assert out.returncode == 1 and "cut short or corrupt" in out.stderr


def test_cli_without_a_command_prints_help():
    out = run_cli()
    assert out.returncode == 2 and "chat" in out.stdout
