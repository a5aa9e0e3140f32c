"""`ponder-cli chat --model PATH "question"`: one answer, thinking and answer kept apart.

The thinking goes to stderr (dimmed on a terminal), the answer to stdout, so
`ponder-cli chat … > answer.txt` keeps just the answer. `--json` prints one JSON object
per event instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from typing import Any

DIM, RESET = "\033[2m", "\033[0m"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("chat", help="ask a model one question and stream its answer")
    p.add_argument("question", help="what to ask (use quotes)")
    p.add_argument("--model", required=True, metavar="PATH", help="a .gguf model file")
    p.add_argument("--ctx", type=int, default=8192, help="context length in tokens (8192)")
    p.add_argument("--gpu-layers", type=int, default=-1, help="layers on the GPU (-1: all)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: auto)")
    p.add_argument("--max-tokens", type=int, default=4096, help="answer length limit (4096)")
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--thinking-budget", type=int, default=None, metavar="TOKENS",
                   help="stop thinking after this many tokens and answer")  # fmt: skip
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object per event")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.core.engine import EngineClient, EngineError, StreamDone, StreamError, TextDelta

    if not os.path.exists(args.model):
        print(f"ponder-cli: there is no model file at {args.model}", file=sys.stderr)
        return 2
    emit = _print_json if args.json else None
    printer = _Printer(sys.stderr.isatty() and not os.environ.get("NO_COLOR"))
    with EngineClient() as client:
        try:
            info = client.load(args.model, n_ctx=args.ctx, n_gpu_layers=args.gpu_layers,
                               n_threads=args.threads)  # fmt: skip
        except EngineError as exc:
            if emit:
                emit({"event": "error", "kind": exc.kind, "message": exc.message})
            else:
                print(f"ponder-cli: {exc.message}", file=sys.stderr)
            return 1
        if emit:
            emit({"event": "loaded", "info": info})
        gen = client.chat(
            [{"role": "user", "content": args.question}],
            temperature=args.temperature,
            top_p=args.top_p,
            max_tokens=args.max_tokens,
            thinking_budget=args.thinking_budget,
            seed=args.seed,
        )
        status = 0
        try:
            for event in gen:
                if emit:
                    emit({"event": _event_name(event), **_as_dict(event)})
                elif isinstance(event, TextDelta):
                    printer.delta(event)
                elif isinstance(event, StreamDone):
                    _print_done(event)
                if isinstance(event, StreamError):
                    if not emit:
                        print(f"\nponder-cli: {event.message}", file=sys.stderr)
                    status = 1
        except KeyboardInterrupt:
            gen.cancel()
            for _ in gen:
                pass
            print("\nStopped.", file=sys.stderr)
            return 130
    return status


def _event_name(event: object) -> str:
    return {"StreamStarted": "started", "TextDelta": "delta", "StreamDone": "done",
            "StreamError": "error"}[type(event).__name__]  # fmt: skip


def _as_dict(event: object) -> dict[str, Any]:
    return dataclasses.asdict(event)  # type: ignore[call-overload]


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


class _Printer:
    """Thinking to stderr (dimmed on a terminal), the answer to stdout."""

    def __init__(self, color: bool) -> None:
        self.color = color
        self.thinking_started = False
        self.answer_started = False

    def delta(self, event: Any) -> None:
        if event.thinking:
            if not self.thinking_started:
                self.thinking_started = True
                sys.stderr.write((DIM if self.color else "") + "Thinking: ")
            sys.stderr.write(event.thinking)
            sys.stderr.flush()
        if event.answer:
            if not self.answer_started:
                self.answer_started = True
                if self.thinking_started:
                    sys.stderr.write((RESET if self.color else "") + "\n\n")
                    sys.stderr.flush()
            sys.stdout.write(event.answer)
            sys.stdout.flush()


def _print_done(done: Any) -> None:
    sys.stdout.write("\n")
    tps = f", {done.decode_tps:.1f} tokens/s" if done.decode_tps else ""
    note = " (stopped while still thinking)" if done.ended_in_thinking else ""
    print(f"[{done.completion_tokens} tokens{tps}, {done.stop_reason}{note}]", file=sys.stderr)
