"""`ponder-cli chat`: the first real way to use the product, through the engine process."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

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


def test_chat_says_when_the_thinking_was_cut_short_for_the_answer(scripted_models):
    out = run_cli("chat", "--ctx", "2048", "--model", str(scripted_models.never_closes), "Go")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == ANSWER_TEXT  # a thinking that fills the context gets an answer
    assert "Thinking was cut short to leave room for the answer (context full)." in out.stderr


class _Args:
    def __init__(self, model: str) -> None:
        self.question, self.model, self.ctx, self.gpu_layers, self.threads = "q", model, 8192, 0, 1
        self.max_tokens, self.answer_reserve, self.temperature, self.top_p = None, 1024, 0.6, 0.95
        self.thinking_budget, self.seed, self.json = None, None, False


def _cli_with(monkeypatch, tmp_path, client):
    import app.core.engine as engine_module

    monkeypatch.setattr(engine_module, "EngineClient", lambda: client)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    return _Args(str(model))


def _ctrl_c_when(predicate, times: int = 1, after_s: float = 0.0) -> None:
    import os
    import signal
    import threading
    import time

    def press() -> None:
        deadline = time.monotonic() + 10
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(after_s)
        for _ in range(times):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)

    threading.Thread(target=press, daemon=True).start()


def test_first_ctrl_c_stops_the_answer_and_keeps_it(monkeypatch, tmp_path, capsys):
    from app.commands.chat import run
    from app.ui.scripted_engine import Script, ScriptedClient

    client = ScriptedClient(Script(thinking=[" step"] * 2000, rate=200))
    args = _cli_with(monkeypatch, tmp_path, client)
    _ctrl_c_when(lambda: bool(client.generations), after_s=0.3)  # about 60 tokens in
    assert run(args) == 130
    err = capsys.readouterr().err
    assert "Stopping… (Ctrl-C again to quit)" in err
    assert "Thinking: step step step" in err  # the partial thinking was printed, and kept
    assert "cancelled (stopped while still thinking)]" in err
    assert client.generations[0].cancelled


def test_a_second_ctrl_c_quits_even_if_the_engine_hangs(monkeypatch, tmp_path, capsys):
    from app.commands.chat import run
    from app.ui.scripted_engine import Script, ScriptedClient

    client = ScriptedClient(Script(pause_at=2))  # waits at token 2: ignores Stop
    client.chat = _ignoring_cancel(client.chat)
    args = _cli_with(monkeypatch, tmp_path, client)
    _ctrl_c_when(lambda: bool(client.generations) and client.generations[0].paused.is_set(), 2)
    assert run(args) == 130
    assert "quit" in capsys.readouterr().err


def _ignoring_cancel(chat):
    def wrapped(*a, **k):
        gen = chat(*a, **k)
        gen.cancel = lambda: None  # a hung engine: Stop does nothing
        return gen

    return wrapped


def test_chat_on_an_mlx_folder_answers_with_the_mlx_engine(tmp_path):
    """A model folder (config.json + safetensors) is MLX's: chosen without `--engine` (it
    said "is a folder, not a model file"); `--engine llama_cpp` still forces llama.cpp."""
    pytest.importorskip("mlx_lm")
    from app.commands.chat import engine_for
    from scripted import TEMPLATE_PREOPEN
    from scripted_mlx import write_scripted_mlx

    folder = write_scripted_mlx(tmp_path / "r1-mlx", "answer", TEMPLATE_PREOPEN)
    assert engine_for(str(folder)) == "mlx" and engine_for(str(tmp_path / "x.gguf")) == "llama_cpp"
    out = run_cli("chat", "--json", "--model", str(folder), "What is 2+2?")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[0]["event"] == "loaded" and events[0]["info"]["engine"] == "mlx"
    answer = "".join(e.get("answer", "") for e in events if e["event"] == "delta")
    assert answer.strip() == ANSWER_TEXT
    forced = run_cli("chat", "--engine", "llama_cpp", "--model", str(folder), "What is 2+2?")
    assert forced.returncode == 1 and "folder" in forced.stderr


def test_cli_version_and_a_closed_pipe_end_quietly(scripted_models):
    out = run_cli("--version")
    assert out.returncode == 0 and out.stdout.startswith("ponder-cli ")
    # `ponder-cli chat … | head -c 1`: the reader goes away after one byte
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "chat", "--model", str(scripted_models.preopen),
         "What is 2+2?"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdout.read(1)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert b"Traceback" not in err and b"BrokenPipeError" not in err, err.decode()
    assert proc.returncode == 0


def test_chat_no_thinking_answers_at_once_on_a_model_with_the_switch(tmp_path):
    from scripted import QWEN3_TEMPLATE, write_scripted_gguf

    model = write_scripted_gguf(tmp_path / "qwen3.gguf", "qwen3", QWEN3_TEMPLATE)
    out = run_cli("chat", "--json", "--no-thinking", "--model", str(model), "What is 2+2?")
    assert out.returncode == 0, out.stderr
    events = [json.loads(line) for line in out.stdout.splitlines()]
    assert events[0]["info"]["thinking_switch"] is True
    assert "".join(e["thinking"] for e in events if e["event"] == "delta") == ""
    assert "".join(e["answer"] for e in events if e["event"] == "delta") == ANSWER_TEXT
    assert events[-1]["thinking_tokens"] == 0
    thinks = run_cli("chat", "--model", str(model), "What is 2+2?")
    assert thinks.stdout.strip() == ANSWER_TEXT and THINK_TEXT in thinks.stderr
