"""The llama.cpp engine (llama-cpp-python), run only inside the engine process.

It checks the GGUF header in Python before the native loader sees the file, renders the
chat template itself in a sandbox (so it knows whether the prompt pre-opens `<think>`),
streams raw text token by token, and ends the thinking on request (Answer now, thinking
budget) by closing the think tag in the prompt and continuing from the cached prefix.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

from backends.base import EngineFailure, GenerationControl
from backends.chat_template import TemplateError, render_chat
from backends.generation import (
    DEFAULT_N_CTX,
    ChatRequest,
    ThinkState,
    check_fits,
    done_stats,
    parse_request,
    should_end_thinking,
    started_event,
)
from backends.gguf_check import GGUFError, check_gguf
from backends.think_tags import close_tag_for, prompt_opens_thinking
from backends.util import process_rss

# KV cache element types the planner may ask for, as ggml type ids (ggml.h).
KV_TYPES = {"f16": 1, "q8_0": 8}


class LlamaCppEngine:
    """One loaded GGUF model; not thread-safe (the host runs one generation at a time)."""

    name = "llama_cpp"

    def __init__(self) -> None:
        self.llm: Any = None
        self.info: dict[str, Any] = {}
        self._template: str | None = None
        self._bos = ""
        self._eos = ""

    def load(
        self, path: str, n_ctx: int | None = None, n_gpu_layers: int = -1, **opts: Any
    ) -> dict[str, Any]:
        try:
            header = check_gguf(path)
        except GGUFError as exc:
            raise EngineFailure("bad_model", f"Cannot load this model: {exc}.") from exc
        import llama_cpp

        self.unload()
        train_ctx = int(header.arch_value("context_length") or 0)
        n_ctx = int(n_ctx or min(DEFAULT_N_CTX, train_ctx or DEFAULT_N_CTX))
        kv_type = str(opts.get("type_k") or "f16").lower()
        if kv_type not in KV_TYPES:
            raise EngineFailure(
                "bad_request",
                f"Unknown KV cache type {kv_type!r}: use one of {', '.join(KV_TYPES)}.",
            )
        # llama.cpp quantizes the V cache only with flash attention.
        flash_attn = bool(opts.get("flash_attn", False)) or kv_type != "f16"
        if opts.get("override_tensors"):
            # llama-cpp-python has no tensor overrides (llama.cpp's -ot) yet: say so in the log.
            print("ponder: override_tensors is not supported by llama-cpp-python; ignored",
                  file=sys.stderr)  # fmt: skip
        rss_before = process_rss()
        t0 = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(
                model_path=path,
                n_ctx=n_ctx,
                n_gpu_layers=int(n_gpu_layers),
                n_threads=opts.get("n_threads") or None,
                n_batch=min(512, n_ctx),
                flash_attn=flash_attn,
                type_k=KV_TYPES[kv_type],
                type_v=KV_TYPES[kv_type],
                use_mmap=bool(opts.get("use_mmap", True)),
                verbose=True,  # logs go to stderr, which the client keeps for crash reports
            )
        except ValueError as exc:
            if kv_type != "f16" and "context" in str(exc):
                raise EngineFailure(
                    "out_of_memory",
                    f"llama.cpp could not make a {kv_type} KV cache for this model (its head "
                    "size may not fit the quantized blocks, or memory ran out): load it with "
                    "the f16 KV cache or a smaller context.",
                    str(exc),
                ) from exc
            raise _load_failure(str(exc), path, n_ctx) from exc
        load_s = time.perf_counter() - t0
        self._template = header.chat_template
        self._bos = self._token_text(self.llm.token_bos())
        self._eos = self._token_text(self.llm.token_eos())
        self.info = {
            "path": os.path.abspath(path),
            "engine": self.name,
            "engine_version": llama_cpp.__version__,
            "architecture": header.architecture,
            "name": header.metadata.get("general.name"),
            "context_length": train_ctx or None,
            "n_ctx": self.llm.n_ctx(),
            "n_layers": header.arch_value("block_count"),
            "chat_template": header.chat_template is not None,
            "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
            "n_gpu_layers": int(n_gpu_layers),
            "kv_type": kv_type,
            "flash_attn": flash_attn,
            "size_bytes": header.file_size,
            "tensor_bytes": header.tensor_bytes,
            "load_seconds": round(load_s, 3),
            "rss_before_bytes": rss_before,
            "rss_bytes": process_rss(),
        }
        return self.info

    def unload(self) -> None:
        if self.llm is not None:
            self.llm.close()
            self.llm = None
            self.info = {}

    def _token_text(self, token: int) -> str:
        if token < 0:
            return ""
        return self.llm.detokenize([token], special=True).decode("utf-8", errors="ignore")

    def generate(
        self,
        cmd: dict[str, Any],
        control: GenerationControl,
        emit: Callable[[dict[str, Any]], None],
        emit_text: Callable[[str, int], None],
    ) -> dict[str, Any]:
        """Stream one answer; `emit` sends events, `emit_text(text, tokens)` sends raw text."""
        if self.llm is None:
            raise EngineFailure("bad_request", "No model is loaded: load one first.")
        req = parse_request(cmd)
        try:
            prompt = render_chat(self._template, req.messages, self._bos, self._eos)
        except TemplateError as exc:
            raise EngineFailure("bad_model", str(exc)) from exc
        open_tag = prompt_opens_thinking(prompt)
        tokens = self.llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        check_fits(len(tokens), self.llm.n_ctx())
        emit(started_event(req.request_id, len(tokens), open_tag))
        return self._stream(req, tokens, open_tag, control, emit_text)

    def _stream(
        self,
        req: ChatRequest,
        prompt_tokens: list[int],
        open_tag: str | None,
        control: GenerationControl,
        emit_text: Callable[[str, int], None],
    ) -> dict[str, Any]:
        n_ctx = self.llm.n_ctx()
        close_tag = close_tag_for(open_tag or "<think>")
        state = ThinkState(open_tag is not None, close_tag)
        tokens = list(prompt_tokens)
        produced = 0
        t0 = time.perf_counter()
        first: float | None = None
        stop = "eos"
        while True:
            budget_left = req.max_tokens - produced
            room = n_ctx - len(tokens)
            if budget_left <= 0 or room <= 0:
                stop = "length"
                break
            ended_thinking = False
            stream = self.llm.create_completion(
                prompt=tokens,
                max_tokens=min(budget_left, room),
                temperature=req.temperature,
                top_p=req.top_p,
                seed=req.seed,
                stream=True,
            )
            try:
                for chunk in stream:
                    choice = chunk["choices"][0]
                    text = choice.get("text") or ""
                    if text:
                        if first is None:
                            first = time.perf_counter()
                        produced += 1
                        state.feed(text)
                        emit_text(text, 1)
                    finish = choice.get("finish_reason")
                    if finish:
                        stop = "length" if finish == "length" else "eos"
                    if control.cancelled:
                        stop = "cancelled"
                        break
                    if should_end_thinking(state, req, control):
                        ended_thinking = True
                        break
            finally:
                stream.close()
            if not ended_thinking:
                break
            # Close the think block in the prompt and let the model answer from there.
            control.answer_now = False
            tokens = list(prompt_tokens) + self._generated_tokens(state)
            closing = "\n" + close_tag + "\n\n"
            tokens += self.llm.tokenize(closing.encode(), add_bos=False, special=True)
            state.feed(closing, 0)
            emit_text(closing, 0)
        return done_stats(produced, len(prompt_tokens), t0, first, stop, state)

    def _generated_tokens(self, state: ThinkState) -> list[int]:
        return self.llm.tokenize(state.text.encode("utf-8"), add_bos=False, special=True)


def _load_failure(message: str, path: str, n_ctx: int) -> EngineFailure:
    if "context" in message:
        return EngineFailure(
            "out_of_memory",
            f"The model file loaded but there is not enough memory for a {n_ctx:,}-token "
            "context: choose a smaller context or a smaller model.",
            message,
        )
    return EngineFailure(
        "bad_model",
        f"llama.cpp could not load {os.path.basename(path)}: the file may be damaged, or its "
        "architecture is not supported by this version of llama.cpp.",
        message,
    )
