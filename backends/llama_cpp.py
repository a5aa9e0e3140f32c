"""The llama.cpp engine (llama-cpp-python), run only inside the engine process.

It checks the GGUF header in Python before the native loader sees the file, renders the
chat template itself in a sandbox (so it knows whether the prompt pre-opens `<think>`),
evaluates the prompt in batches (Stop works there too), then decodes with `Llama.generate`
one token at a time: each token's bytes go to the shared `AnswerStream` (incremental UTF-8,
the think-tag state machine, exact counts). `create_completion(stream=True)` is not used:
it re-detokenizes the whole completion on every token, which is quadratic in the answer's
length. The thinking is ended on request (Answer now, budget, context nearly full) by
appending the closing tag to the exact generated tokens and continuing from the cache.
"""

from __future__ import annotations

import ctypes
import os
import random
import sys
import time
from collections.abc import Callable
from typing import Any

from backends.base import EngineFailure, GenerationControl
from backends.chat_template import ChatTemplate, TemplateError
from backends.generation import (
    DEFAULT_N_CTX,
    AnswerStream,
    ChatRequest,
    EmitParts,
    check_fits,
    end_thinking_reason,
    parse_request,
    started_event,
    token_limit,
)
from backends.gguf_check import GGUFError, check_gguf
from backends.load_checks import (
    RAM_SHARE,
    check_context,
    check_room,
    gb,
    is_out_of_memory,
    kv_cache_bytes,
    left_words,
    memory_room,
)
from backends.think_tags import prompt_opens_thinking
from backends.util import process_rss

# KV cache element types the planner may ask for, as ggml type ids (ggml.h).
KV_TYPES = {"f16": 1, "q8_0": 8}
_LOG_CALLBACK: Any = None


def _install_log_callback(llama_cpp: Any) -> None:
    """llama.cpp's log lines to stderr, decoded leniently: a line can cut a multi-byte
    character in two (llama-cpp-python's own callback then raises on every such line)."""
    global _LOG_CALLBACK
    if _LOG_CALLBACK is None:

        @llama_cpp.llama_log_callback
        def log(level: int, text: bytes, user_data: Any) -> None:
            sys.stderr.write(text.decode("utf-8", errors="replace"))

        _LOG_CALLBACK = log
        llama_cpp.llama_log_set(log, ctypes.c_void_p(0))


class LlamaCppEngine:
    """One loaded GGUF model; not thread-safe (the host runs one generation at a time)."""

    name = "llama_cpp"

    def __init__(self) -> None:
        self.llm: Any = None
        self.info: dict[str, Any] = {}
        self._template = ChatTemplate(None)
        self._bos = ""
        self._eos = ""
        self._add_bos = False
        self._vocab: Any = None
        self._pieces: dict[int, bytes] = {}
        self._longest_piece = 0
        self._control: GenerationControl | None = None
        self._abort_cb: Any = None

    def load(
        self, path: str, n_ctx: int | None = None, n_gpu_layers: int = -1, **opts: Any
    ) -> dict[str, Any]:
        try:
            header = check_gguf(path)
        except GGUFError as exc:
            raise EngineFailure("bad_model", f"Cannot load this model: {exc}.") from exc
        train_ctx = int(header.arch_value("context_length") or 0)
        label = str(header.metadata.get("general.name") or os.path.basename(path))
        asked = check_context(n_ctx, train_ctx, bool(opts.get("ctx_strict")), label)
        n_ctx = int(asked or min(DEFAULT_N_CTX, train_ctx or DEFAULT_N_CTX))
        try:
            import llama_cpp
        except (OSError, RuntimeError) as exc:  # its shared library could not be mapped
            if not is_out_of_memory(exc):
                raise
            raise EngineFailure(
                "out_of_memory",
                "The engine ran out of memory before llama.cpp could start: "
                f"{left_words(*memory_room())}. Close other programs, or raise the limit.",
                str(exc),
            ) from exc

        _install_log_callback(llama_cpp)
        self.unload()
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
        cache = kv_cache_bytes(header.arch_value, n_ctx, kv_type)
        room, why = memory_room()
        on_gpu = int(n_gpu_layers) != 0 and bool(llama_cpp.llama_supports_gpu_offload())
        what = f"{label} with a {n_ctx:,}-token context"
        if why.startswith("the free"):
            # the cache is anonymous memory (it would swap); the mapped weights are not
            if not on_gpu:
                check_room(cache, f"the cache of {what}", room, why, RAM_SHARE)
        else:  # a limit on the address space: the mapped file and all buffers count
            vocab = header.metadata.get("tokenizer.ggml.tokens")
            logits = 2 * 4 * min(512, n_ctx) * (vocab if isinstance(vocab, int) else 0)
            check_room(cache + header.file_size + logits, what, room, why, parts=f" ("
                       f"{gb(header.file_size)} of model, {gb(cache)} of cache, {gb(logits)} "
                       "of buffers)")  # fmt: skip
        rss_before = process_rss()
        threads = int(opts.get("n_threads") or 0) or physical_cores()
        t0 = time.perf_counter()
        try:
            self.llm = llama_cpp.Llama(
                model_path=path,
                n_ctx=n_ctx,
                n_gpu_layers=int(n_gpu_layers),
                n_threads=threads,
                n_threads_batch=threads,
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
            raise _load_failure(str(exc), path, n_ctx, header.file_size, cache) from exc
        except MemoryError as exc:  # numpy's buffers in llama-cpp-python (n_batch × vocab)
            raise EngineFailure(
                "out_of_memory",
                f"Not enough memory to run {label} with a {n_ctx:,}-token context: the model "
                f"loaded, but its working buffers did not fit, and {left_words(*memory_room())}.",
                str(exc),
            ) from exc
        load_s = time.perf_counter() - t0
        self._vocab = self.llm._model.vocab
        self._pieces = {}
        self._longest_piece = 0
        self._abort_cb = None
        self._template = ChatTemplate(header.chat_template)
        self._bos = self._token_text(self.llm.token_bos())
        self._eos = self._token_text(self.llm.token_eos())
        self._add_bos = bool(self.llm._model.add_bos_token())
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
            "thinking_switch": self._template.thinking_switch,
            "gpu_offload": bool(llama_cpp.llama_supports_gpu_offload()),
            "n_gpu_layers": int(n_gpu_layers),
            "kv_type": kv_type,
            "flash_attn": flash_attn,
            "n_threads": threads,
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
        return self._piece(token).decode("utf-8", errors="ignore")

    def _piece(self, token: int) -> bytes:
        """The bytes of one token (special tokens rendered), cached per token id."""
        piece = self._pieces.get(token)
        if piece is None:
            import llama_cpp

            vocab = self.llm._model.vocab
            buf = ctypes.create_string_buffer(64)
            n = llama_cpp.llama_token_to_piece(vocab, token, buf, 64, 0, True)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = llama_cpp.llama_token_to_piece(vocab, token, buf, -n, 0, True)
            piece = self._pieces[token] = buf.raw[: max(0, n)]
        return piece

    def generate(
        self,
        cmd: dict[str, Any],
        control: GenerationControl,
        emit: Callable[[dict[str, Any]], None],
        emit_parts: EmitParts,
    ) -> dict[str, Any]:
        """Stream one answer: `emit` sends events, `emit_parts` the typed text parts."""
        if self.llm is None:
            raise EngineFailure("bad_request", "No model is loaded: load one first.")
        req = parse_request(cmd)
        thinking_off = not req.thinking and self._template.thinking_switch
        try:
            prompt = self._template.render(
                req.messages, self._bos, self._eos, should_stop=lambda: control.cancelled,
                enable_thinking=False if thinking_off else None,
            )  # fmt: skip
        except TemplateError as exc:
            raise EngineFailure("bad_model", str(exc)) from exc
        open_tag = prompt_opens_thinking(prompt)
        tokens = self._prompt_tokens(prompt)
        if not tokens:
            raise EngineFailure(
                "bad_model",
                "The model's chat template turned the conversation into an empty prompt: this "
                "file's template is broken; choose another model file.",
            )
        check_fits(len(tokens), self.llm.n_ctx())
        emit(started_event(req.request_id, len(tokens), open_tag))
        stream = AnswerStream(open_tag, emit_parts)
        stop = self._decode(req, tokens, stream, control)
        stream.finish()
        return stream.done_stats(len(tokens), stop, thinking_off=thinking_off)

    def _prompt_tokens(self, prompt: str) -> list[int]:
        """The prompt's tokens, with BOS first when the model asks for it and the template
        did not already put it there (a model without a template needs it to make sense)."""
        data = prompt.encode("utf-8")
        least = self._least_tokens(data)
        if least is not None:  # tokenizing megabytes takes minutes: refuse what cannot fit
            check_fits(least, self.llm.n_ctx())
        tokens = self.llm.tokenize(data, add_bos=False, special=True)
        bos = self.llm.token_bos()
        if bos >= 0 and self._add_bos and (not tokens or tokens[0] != bos):
            tokens.insert(0, bos)
        return tokens

    def _least_tokens(self, data: bytes) -> int | None:
        """For a text far longer than the context: the fewest tokens it can be (its length
        over the longest token's), or None for a text of ordinary size."""
        if len(data) <= 8 * self.llm.n_ctx():
            return None
        if not self._longest_piece:
            import llama_cpp

            buf = ctypes.create_string_buffer(256)
            longest = 1
            for token in range(self.llm.n_vocab()):
                n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 256, 0, True)
                longest = max(longest, abs(n))
            self._longest_piece = longest
        return len(data) // self._longest_piece

    def _decode(
        self,
        req: ChatRequest,
        prompt: list[int],
        stream: AnswerStream,
        control: GenerationControl,
    ) -> str:
        """Generate until end of generation, the limit or cancel; return the stop reason."""
        llm = self.llm
        n_ctx = llm.n_ctx()
        limit = token_limit(req, len(prompt), n_ctx)
        context = list(prompt)
        llm.set_seed(req.seed if req.seed is not None else random.randint(0, 2**31 - 1))
        while True:
            if not self._prefill(context, control):
                return "cancelled"
            tokens = llm.generate(
                context, top_k=40, top_p=req.top_p, min_p=0.05, temp=req.temperature,
                repeat_penalty=1.0,
            )  # fmt: skip
            try:
                for token in tokens:
                    if llama_cpp_is_eog(self._vocab, token) and not req.ignore_eos:
                        return "eos"
                    context.append(token)
                    stream.add_bytes(self._piece(token))
                    if control.cancelled:
                        return "cancelled"
                    if stream.produced >= limit or len(context) >= n_ctx:
                        return "length"
                    reason = end_thinking_reason(stream, req, control, len(context), n_ctx)
                    if reason is not None:
                        control.answer_now = False
                        closing = stream.close_thinking(reason)
                        context += llm.tokenize(closing.encode(), add_bos=False, special=True)
                        break
            finally:
                tokens.close()
            if len(context) >= n_ctx:
                return "length"

    def _prefill(self, tokens: list[int], control: GenerationControl) -> bool:
        """Evaluate all but the last token in batches, reusing the cached prefix.

        Stop is checked between batches, and llama.cpp's abort callback cuts a batch short on
        the CPU, so a long prompt stops within a fraction of a second. The last token is
        left to `Llama.generate`, which evaluates it and samples.
        """
        llm = self.llm
        cached = _common_prefix(llm.input_ids[: llm.n_tokens], tokens, len(tokens) - 1)
        llm.n_tokens = cached  # eval() drops the cache past n_tokens
        todo = tokens[cached : len(tokens) - 1]
        self._control = control
        self._set_abort(True)
        try:
            for i in range(0, len(todo), llm.n_batch):
                if control.cancelled:
                    return False
                try:
                    llm.eval(todo[i : i + llm.n_batch])
                except RuntimeError:
                    if control.cancelled:  # llama_decode aborted by the callback
                        return False
                    raise
        finally:
            self._set_abort(False)
        return not control.cancelled

    def _set_abort(self, on: bool) -> None:
        """Turn llama.cpp's abort callback on for prompt processing only (it costs a Python
        call per graph node, too much for every generated token)."""
        import llama_cpp

        if on and self._abort_cb is None:
            self._abort_cb = llama_cpp.ggml_abort_callback(
                lambda _data: bool(self._control is not None and self._control.cancelled)
            )
        callback = self._abort_cb if on else llama_cpp.ggml_abort_callback()
        llama_cpp.llama_set_abort_callback(self.llm._ctx.ctx, callback, None)


def _common_prefix(cached: Any, tokens: list[int], limit: int) -> int:
    """How many leading tokens of `tokens` (at most `limit`) the cache already holds."""
    n = min(len(cached), limit)
    if n <= 0:
        return 0
    import numpy as np

    same = np.asarray(cached[:n]) == np.asarray(tokens[:n], dtype=np.asarray(cached).dtype)
    return n if same.all() else int(np.argmin(same))


def llama_cpp_is_eog(vocab: Any, token: int) -> bool:
    import llama_cpp

    return bool(llama_cpp.llama_vocab_is_eog(vocab, token))


def _load_failure(message: str, path: str, n_ctx: int, file_bytes: int,
                  cache_bytes: int) -> EngineFailure:  # fmt: skip
    """llama.cpp's ValueError in words. Its header passed the check, so a file that does not
    load under a memory limit most likely ran out of memory (issue 20)."""
    room, why = memory_room()
    name = os.path.basename(path)
    if "context" in message:
        return EngineFailure(
            "out_of_memory",
            f"{name} loaded, but memory ran out making its {n_ctx:,}-token context: its cache "
            f"needs about {gb(cache_bytes)} plus working buffers, and {left_words(room, why)}.",
            message,
        )
    if room is not None and not why.startswith("the free") and room < file_bytes:
        return EngineFailure(
            "out_of_memory",
            f"Memory ran out loading {name}: the model takes about {gb(file_bytes)}, and "
            f"{left_words(room, why)}. Choose a smaller quant or model.",
            message,
        )
    return EngineFailure(
        "bad_model",
        f"llama.cpp could not load {name}. Its header is sound, so memory may have run out "
        f"({left_words(room, why)}); otherwise the file is damaged, or its architecture is "
        "not supported by this version of llama.cpp.",
        message,
    )


def physical_cores() -> int:
    """Threads by default: one per physical core, as llama.cpp recommends (hyper-threads
    and a busy machine's other work make more threads slower, not faster)."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
    except ImportError:
        cores = None
    return max(1, int(cores or os.cpu_count() or 1))
