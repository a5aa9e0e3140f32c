"""`ponder-cli chat --model PATH "question"`: one answer, thinking and answer kept apart.

PATH is a .gguf file (llama.cpp) or an MLX model folder (config.json and safetensors: the
MLX engine); `--engine` chooses instead. Output into a pipe that closes early (`| head`)
ends quietly.

The thinking goes to stderr (dimmed on a terminal), the answer to stdout, so
`ponder-cli chat … > answer.txt` keeps just the answer. `--json` prints one JSON object
per event instead. The engine sends typed parts (thinking, answer) with exact token counts;
the answer is read by the same loop as the window's (`AnswerStream.run`, not saved here).
The first Ctrl-C stops the answer and keeps what was written; a second one quits at once
(an engine that ignores Stop is declared hung after a bounded wait).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import sys
import threading
from typing import Any

from app.core.generation_settings import DEFAULT_ANSWER_RESERVE

DIM, RESET = "\033[2m", "\033[0m"


def add_parser(sub: Any) -> None:
    p = sub.add_parser("chat", help="ask a model one question and stream its answer")
    p.add_argument("question", help="what to ask (use quotes; - reads it from stdin)")
    p.add_argument("--model", required=True, metavar="PATH",
                   help="a .gguf model file, or an MLX model folder")  # fmt: skip
    p.add_argument("--engine", choices=("auto", "llama_cpp", "mlx"), default="auto",
                   help="auto: MLX for a model folder, llama.cpp for a .gguf")  # fmt: skip
    p.add_argument("--ctx", type=int, default=None,
                   help="context length in tokens (default: 16384, or the model's own if "
                   "smaller)")  # fmt: skip
    p.add_argument("--gpu-layers", type=int, default=-1, help="layers on the GPU (-1: all)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads (default: auto)")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="answer length limit (default: the rest of the context)")  # fmt: skip
    p.add_argument("--answer-reserve", type=int, default=DEFAULT_ANSWER_RESERVE,
                   metavar="TOKENS", help="context kept for the answer: the thinking is cut "
                   f"short when it fills the rest ({DEFAULT_ANSWER_RESERVE})")  # fmt: skip
    p.add_argument("--temperature", type=float, default=0.6)
    p.add_argument("--top-p", type=float, default=0.95)
    p.add_argument("--thinking-budget", type=int, default=None, metavar="TOKENS",
                   help="stop thinking after this many tokens and answer")  # fmt: skip
    p.add_argument("--no-thinking", action="store_true",
                   help="answer without thinking where the model's chat template can (Qwen3's "
                   "enable_thinking); other models think as usual")  # fmt: skip
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object per event")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.core.answer_stream import AnswerStream
    from app.core.chat_session import ModelRunner
    from app.core.engine import EngineClient, EngineError

    if not os.path.exists(args.model):
        print(f"ponder-cli: there is no model file at {args.model}", file=sys.stderr)
        return 2
    question = read_question(args.question)
    if not question.strip():
        print("ponder-cli: the question is empty: ask something.", file=sys.stderr)
        return 2
    if args.ctx is not None and args.ctx <= 0:
        print(f"ponder-cli: --ctx must be a positive number of tokens, not {args.ctx}.",
              file=sys.stderr)  # fmt: skip
        return 2
    emit = _print_json if args.json else None
    printer = _Printer(sys.stderr.isatty() and not os.environ.get("NO_COLOR"))
    with EngineClient() as client:
        runner = ModelRunner(client)
        try:
            # a context typed by the person is refused above the model's training context
            engine = engine_for(args.model, getattr(args, "engine", "auto"))
            extra = {"engine": engine} if engine != "llama_cpp" else {}
            info = runner.load(args.model, n_ctx=args.ctx, n_gpu_layers=args.gpu_layers,
                               n_threads=args.threads, ctx_strict=args.ctx is not None,
                               **extra)  # fmt: skip
        except EngineError as exc:
            message = exc.message
            if exc.kind == "out_of_memory":  # name what would fit (the planner's figures)
                from app.core.planner.fit_advice import with_smaller_options

                message = with_smaller_options(message, args.model, args.ctx)
            if emit:
                emit({"event": "error", "kind": exc.kind, "message": message})
            else:
                print(f"ponder-cli: {message}", file=sys.stderr)
            return 1
        if emit:
            emit({"event": "loaded", "info": info})
        params = {"temperature": args.temperature, "top_p": args.top_p,
                  "max_tokens": args.max_tokens, "thinking_budget": args.thinking_budget,
                  "answer_reserve": args.answer_reserve, "seed": args.seed}  # fmt: skip
        if getattr(args, "no_thinking", False):
            params["thinking"] = False
        answer = AnswerStream([{"role": "user", "content": question}], params,
                              model=runner.model)  # fmt: skip

        reader_gone = threading.Event()

        def show(event: Any) -> None:
            if reader_gone.is_set():
                return
            try:
                if emit:
                    emit({"event": _event_name(event), **dataclasses.asdict(event)})
                else:
                    printer.event(event)
            except BrokenPipeError:  # `| head` has read enough: stop, quietly
                reader_gone.set()
                _silence_stdout()
                threading.Thread(target=answer.cancel, daemon=True).start()

        stops = _StopOnCtrlC(answer, quiet=bool(emit))
        try:
            with stops:
                result = runner.stream(answer, show)
        except KeyboardInterrupt:
            print("\nponder-cli: quit.", file=sys.stderr)
            return 130
        if reader_gone.is_set():
            return 0
        if result.error is not None:
            return 1
        return 130 if stops.count else 0


def _silence_stdout() -> None:
    """Point stdout at /dev/null so nothing more (not even the flush at exit) hits the
    closed pipe."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def engine_for(path: str, choice: str = "auto") -> str:
    """The engine for `path`: `choice` unless "auto"; a folder holding an MLX model
    (config.json and *.safetensors) -> "mlx", anything else -> "llama_cpp"."""
    if choice != "auto":
        return choice
    folder = os.path.realpath(path)
    if not (os.path.isdir(folder) and os.path.isfile(os.path.join(folder, "config.json"))):
        return "llama_cpp"
    return "mlx" if any(n.endswith(".safetensors") for n in os.listdir(folder)) else "llama_cpp"


def read_question(arg: str) -> str:
    """The question as valid text: `-` reads stdin. Bytes that are not UTF-8 (Python keeps
    them in argv as lone surrogates, which no engine can encode) become U+FFFD, and the
    person is told so in words instead of "surrogates not allowed"."""
    if arg == "-":
        data = sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read()
        raw = data if isinstance(data, bytes) else os.fsencode(data)
    else:
        raw = os.fsencode(arg)  # the bytes as given (surrogateescape undone)
    text = raw.decode("utf-8", errors="replace")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        print("ponder-cli: the question is not valid UTF-8 text; the bytes that are not were "
              "replaced with \ufffd.", file=sys.stderr)  # fmt: skip
    return text


class _StopOnCtrlC:
    """While streaming: the first Ctrl-C stops the answer (its partial text is kept), the
    second raises KeyboardInterrupt."""

    def __init__(self, answer: Any, quiet: bool) -> None:
        self.answer, self.quiet, self.count = answer, quiet, 0
        self._old: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        self.count += 1
        if self.count > 1:
            raise KeyboardInterrupt
        if not self.quiet:
            print("\nStopping… (Ctrl-C again to quit)", file=sys.stderr, flush=True)
        # not from the handler itself: cancel() writes to the engine's pipe under a lock
        threading.Thread(target=self.answer.cancel, daemon=True).start()

    def __enter__(self) -> _StopOnCtrlC:
        if threading.current_thread() is threading.main_thread():
            self._old = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _event_name(event: object) -> str:
    return {"StreamStarted": "started", "TextDelta": "delta", "StreamDone": "done",
            "StreamError": "error"}[type(event).__name__]  # fmt: skip


def _print_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, ensure_ascii=False), flush=True)


class _Printer:
    """Thinking to stderr (dimmed on a terminal), the answer to stdout, then the stats."""

    def __init__(self, color: bool) -> None:
        self.color = color
        self.thinking_started = False
        self.answer_started = False

    def event(self, event: Any) -> None:
        from app.core.engine.events import StreamDone, StreamError, TextDelta

        if isinstance(event, TextDelta):
            self.delta(event)
        elif isinstance(event, StreamDone):
            self.done(event)
        elif isinstance(event, StreamError):
            print(f"\nponder-cli: {event.message}", file=sys.stderr)

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

    def done(self, done: Any) -> None:
        from app.core.generation_settings import ending_note

        if self.thinking_started and not self.answer_started:
            sys.stderr.write((RESET if self.color else "") + "\n")
        sys.stdout.write("\n")
        sys.stdout.flush()
        tps = f", {done.decode_tps:.1f} tokens/s" if done.decode_tps else ""
        tokens = f"{done.completion_tokens} tokens ({done.thinking_tokens} thinking)"
        note = " (stopped while still thinking)" if done.ended_in_thinking else ""
        print(f"[{tokens}{tps}, {done.stop_reason}{note}]", file=sys.stderr)
        if cut := ending_note({"thinking_ended_by": done.thinking_ended_by}):
            print(cut, file=sys.stderr)
