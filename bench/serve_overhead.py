"""Decode speed and time to first token through `ponder-cli serve` vs the engine client directly.

Same model, same load settings (the planner's, as the server uses them), same prompt, runs
interleaved in one run (direct, served, direct, served, …). Direct: Ponder's EngineClient in
this process, tokens/s from the first delta to `done`, TTFT from `chat()` to the first delta.
Served: `python -m app.cli serve` as a subprocess and a streaming HTTP client here (http.client
reading the SSE stream, each chunk's JSON decoded), tokens/s from the first chunk with text to
`[DONE]` using the server's exact usage, TTFT from sending the request to that chunk.
Default model: a scripted GGUF that thinks forever at thousands of tokens/s (the hardest case
for per-token overhead); `--gguf PATH` for a real one. Targets: ratio served/direct ≥ 0.97,
TTFT overhead < 20 ms.
Run: `.venv/bin/python bench/serve_overhead.py [--rounds 5] [--tokens 2000] [--gguf PATH]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app.core.engine import EngineClient, StreamDone, TextDelta  # noqa: E402
from app.serve.catalog import from_path  # noqa: E402
from app.serve.runner import planned_load  # noqa: E402

QUESTION = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def direct_run(client: EngineClient, max_tokens: int) -> tuple[float, float, int]:
    """(tokens/s, TTFT s, tokens) through the engine client."""
    t0 = time.perf_counter()
    first = None
    gen = client.chat(QUESTION, max_tokens=max_tokens, seed=1)
    while not gen.finished:
        event = gen.next_event(30.0)
        if isinstance(event, TextDelta) and event.tokens and first is None:
            first = time.perf_counter()
        if isinstance(event, StreamDone):
            end = time.perf_counter()
            n = event.completion_tokens
            assert first is not None
            return (n - 1) / (end - first), first - t0, n
        if event is None:
            raise RuntimeError("the engine sent nothing for 30 s")
    raise RuntimeError(f"the answer failed: {event}")


def served_run(netloc: str, model: str, max_tokens: int) -> tuple[float, float, int]:
    """(tokens/s, TTFT s, tokens) through the server and a streaming client."""
    conn = http.client.HTTPConnection(netloc, timeout=60)
    body = {"model": model, "messages": QUESTION, "stream": True, "max_tokens": max_tokens,
            "seed": 1, "stream_options": {"include_usage": True}}  # fmt: skip
    t0 = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(body).encode(),
                 {"Content-Type": "application/json"})  # fmt: skip
    resp = conn.getresponse()
    first, n = None, 0
    for line in iter(resp.readline, b""):
        if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
            continue
        obj = json.loads(line[6:])
        if obj.get("usage"):
            n = obj["usage"]["completion_tokens"]
        for choice in obj["choices"]:
            delta = choice["delta"]
            if first is None and (delta.get("content") or delta.get("reasoning_content")):
                first = time.perf_counter()
    end = time.perf_counter()
    conn.close()
    assert first is not None and n, "the server sent no text"
    return (n - 1) / (end - first), first - t0, n


def start_server(model: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "serve", "--port", "0", "--only", "--model",
         str(model)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    for line in proc.stdout:  # type: ignore[union-attr]
        if line.startswith("Base URL: "):
            return proc, urlsplit(line.split(": ", 1)[1].strip()).netloc
    raise RuntimeError("ponder-cli serve did not start")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--gguf", type=Path, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.gguf
        if path is None:
            from scripted import TEMPLATE_PREOPEN, write_scripted_gguf

            path = write_scripted_gguf(Path(tmp) / "r1-never-closes.gguf", "never_closes",
                                       TEMPLATE_PREOPEN)  # fmt: skip
        served_model = from_path(path)
        settings = planned_load(served_model).settings
        proc, netloc = start_server(path)
        try:
            with EngineClient(load_timeout_s=300) as client:
                client.load(str(path), **settings)
                direct_run(client, 50)  # warm both (the server loads on its first request)
                served_run(netloc, served_model.id, 50)
                direct, served = [], []
                for _ in range(args.rounds):
                    direct.append(direct_run(client, args.tokens))
                    served.append(served_run(netloc, served_model.id, args.tokens))
        finally:
            proc.terminate()
            proc.wait(10)
    d_tps = statistics.median(r[0] for r in direct)
    s_tps = statistics.median(r[0] for r in served)
    d_ttft = statistics.median(r[1] for r in direct)
    s_ttft = statistics.median(r[1] for r in served)
    print(f"model: {Path(path).name} ({settings}), {args.tokens} tokens, {args.rounds} rounds")
    print(f"engine client directly : {d_tps:9.1f} tokens/s, TTFT {d_ttft * 1000:6.1f} ms (median)")
    print(f"ponder-cli serve + SSE : {s_tps:9.1f} tokens/s, TTFT {s_ttft * 1000:6.1f} ms (median)")
    print(f"ratio served/direct    : {s_tps / d_tps:.3f} (target >= 0.97)")
    print(f"TTFT overhead          : {(s_ttft - d_ttft) * 1000:+.1f} ms (target < 20 ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
