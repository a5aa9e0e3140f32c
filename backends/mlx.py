"""The MLX engine (mlx-lm), run only inside the engine process.

It checks the model folder in Python before mlx-lm reads it (backends/mlx_check.py: config,
architecture, custom code refused, safetensors headers, tokenizer files, memory against the
GPU wired limit or RAM), renders the chat template with the same sandboxed renderer as the
llama.cpp engine, streams token by token with `stream_generate` into the shared
`AnswerStream` (the same think-tag state machine and exact counts as llama.cpp), and ends
the thinking on request
(Answer now, thinking budget, context nearly full) by closing the think tag and continuing
from the KV cache, which is also reused across turns for the common prefix.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from backends.base import EngineFailure, GenerationControl
from backends.chat_template import ChatTemplate, TemplateError, has_thinking_switch
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
from backends.load_checks import check_context
from backends.mlx_check import MEMORY_MARGIN, check_model_folder, gb_words, memory_budget
from backends.think_tags import prompt_opens_thinking
from backends.util import process_rss


class _PromptCancelled(Exception):
    """Raised from mlx-lm's prompt-progress callback to stop prompt processing."""


class MlxEngine:
    """One loaded MLX model; used from one generation thread at a time (the host's rule)."""

    name = "mlx"

    def __init__(self) -> None:
        self.model: Any = None
        self.tokenizer: Any = None
        self.info: dict[str, Any] = {}
        self.n_ctx = DEFAULT_N_CTX
        self._cache: list[Any] | None = None
        self._cached: list[int] = []  # the tokens the KV cache holds, in order
        self._template: ChatTemplate | None = None

    def load(self, path: str, n_ctx: int | None = None, **opts: Any) -> dict[str, Any]:
        if importlib.util.find_spec("mlx_lm") is None:
            raise EngineFailure("bad_request", "The mlx engine is not installed here (mlx-lm).")
        folder, config, weight_bytes = check_model_folder(path)
        train_ctx = int(config.get("max_position_embeddings") or 0)
        asked = check_context(n_ctx, train_ctx, bool(opts.get("ctx_strict")),
                              str(config.get("_name_or_path") or folder.name))  # fmt: skip
        budget, limit = memory_budget()
        if weight_bytes * MEMORY_MARGIN > budget:
            raise EngineFailure(
                "out_of_memory",
                f"This model needs about {gb_words(weight_bytes * MEMORY_MARGIN)} but {limit} "
                f"allows {gb_words(budget)}: choose a smaller model or quantization.",
            )
        import mlx.core as mx
        import mlx_lm

        self.unload()
        rss_before = process_rss()
        t0 = time.perf_counter()
        try:
            loaded = mlx_lm.load(
                str(folder),
                tokenizer_config={"trust_remote_code": False},
                trust_remote_code=False,
            )
            model, tokenizer = loaded[0], loaded[1]  # (model, tokenizer[, config])
        except Exception as exc:  # noqa: BLE001 - every load failure is reported in words
            raise _load_failure(exc, folder) from exc
        self.model, self.tokenizer = model, tokenizer
        self.n_ctx = int(asked or min(DEFAULT_N_CTX, train_ctx or DEFAULT_N_CTX))
        template = getattr(tokenizer, "chat_template", None)
        self.info = {
            "path": str(folder.resolve()),
            "engine": self.name,
            "engine_version": mlx_lm.__version__,
            "mlx_version": mx.__version__,  # type: ignore[attr-defined]  # not in mlx's stubs
            "architecture": config.get("model_type"),
            "name": config.get("_name_or_path") or folder.name,
            "context_length": train_ctx or None,
            "n_ctx": self.n_ctx,
            "n_layers": config.get("num_hidden_layers"),
            "chat_template": template is not None,
            "thinking_switch": self._thinking_switch(),
            "gpu_offload": bool(mx.metal.is_available()),
            "n_gpu_layers": -1 if mx.metal.is_available() else 0,
            "quantization": config.get("quantization"),
            "size_bytes": sum(p.stat().st_size for p in folder.glob("model*.safetensors")),
            "tensor_bytes": weight_bytes,
            "load_seconds": round(time.perf_counter() - t0, 3),
            "rss_before_bytes": rss_before,
            "rss_bytes": process_rss(),
            "active_memory_bytes": int(mx.get_active_memory()),
        }
        return self.info

    def unload(self) -> None:
        if self.model is not None:
            import mlx.core as mx

            self.model = self.tokenizer = self._cache = None
            self._cached = []
            self.info = {}
            mx.clear_cache()

    # -- generation ----------------------------------------------------------------------
    def generate(
        self, cmd: dict[str, Any], control: GenerationControl, emit: Any, emit_parts: EmitParts
    ) -> dict[str, Any]:
        """Stream one answer: `emit` sends events, `emit_parts` the typed text parts."""
        if self.model is None:
            raise EngineFailure("bad_request", "No model is loaded: load one first.")
        req = parse_request(cmd)
        thinking_off = not req.thinking and self._thinking_switch()
        prompt = self._render(req.messages, lambda: control.cancelled, thinking_off)
        open_tag = prompt_opens_thinking(prompt)
        tokens = list(self.tokenizer.encode(prompt, add_special_tokens=False))
        check_fits(len(tokens), self.n_ctx)
        emit(started_event(req.request_id, len(tokens), open_tag))
        try:
            stats = self._stream(req, tokens, open_tag, control, emit_parts)
            return {**stats, "thinking_off": thinking_off}
        except EngineFailure:
            raise
        except Exception as exc:
            self._cache, self._cached = None, []
            raise _runtime_failure(exc) from exc

    def _template_source(self) -> str | None:
        template = getattr(self.tokenizer, "chat_template", None)
        if isinstance(template, dict):  # named templates: the default one
            template = template.get("default") or next(iter(template.values()), None)
        return template

    def _python_template(self) -> bool:
        """mlx-lm's own Python template for this family (no model code involved)."""
        tok = self.tokenizer
        return self._template_source() is None and bool(getattr(tok, "has_chat_template", False))

    def _thinking_switch(self) -> bool:
        """Whether the model can answer without thinking: a Jinja template that reads
        `enable_thinking`, or mlx-lm's Python template of a model with think tokens (mlx-lm
        passes `enable_thinking` to it)."""
        if self._python_template():
            return bool(getattr(self.tokenizer, "has_thinking", False))
        return has_thinking_switch(self._template_source())

    def _render(
        self,
        messages: list[dict[str, str]],
        should_stop: Callable[[], bool] | None = None,
        thinking_off: bool = False,
    ) -> str:
        tok = self.tokenizer
        template = self._template_source()
        try:
            if self._python_template():
                extra = {"enable_thinking": False} if thinking_off else {}
                return tok.apply_chat_template(messages, tokenize=False,
                                               add_generation_prompt=True, **extra)  # fmt: skip
            if self._template is None or self._template.source != template:
                self._template = ChatTemplate(template)  # compiled once per model
            return self._template.render(
                messages, tok.bos_token or "", tok.eos_token or "", should_stop=should_stop,
                enable_thinking=False if thinking_off else None,
            )  # fmt: skip
        except TemplateError as exc:
            raise EngineFailure("bad_model", str(exc)) from exc

    def _stream(
        self,
        req: ChatRequest,
        prompt_tokens: list[int],
        open_tag: str | None,
        control: GenerationControl,
        emit_parts: EmitParts,
    ) -> dict[str, Any]:
        import mlx.core as mx
        from mlx_lm import stream_generate
        from mlx_lm.sample_utils import make_sampler

        if req.seed is not None:
            mx.random.seed(int(req.seed))
        mx.reset_peak_memory()
        sampler = make_sampler(temp=req.temperature, top_p=req.top_p)
        answer = AnswerStream(open_tag, emit_parts)
        tokens = list(prompt_tokens)
        limit = token_limit(req, len(prompt_tokens), self.n_ctx)
        stop = "eos"
        prompt_tps = None
        cache: list[Any] | None

        def progress(done: int, total: int) -> None:
            if control.cancelled:
                raise _PromptCancelled

        while True:
            room = min(limit - answer.produced, self.n_ctx - len(tokens))
            if room <= 0:
                stop = "length"
                break
            ended_thinking = False
            cache, feed = self._prefix_cache(tokens)
            fed = list(tokens)
            stream = stream_generate(
                self.model, self.tokenizer, feed, max_tokens=room, sampler=sampler,
                prompt_cache=cache, prompt_progress_callback=progress,
            )  # fmt: skip
            try:
                for r in stream:
                    fed.append(int(r.token))
                    counted = r.finish_reason != "stop"  # the end token is not output
                    if counted:
                        tokens.append(int(r.token))
                    if r.text or counted:
                        if prompt_tps is None:
                            prompt_tps = r.prompt_tps
                        answer.add_text(r.text, int(counted))
                    if r.finish_reason:
                        stop = "length" if r.finish_reason == "length" else "eos"
                    if control.cancelled:
                        stop = "cancelled"
                        break
                    reason = end_thinking_reason(answer, req, control, len(tokens), self.n_ctx)
                    if reason is not None:
                        control.answer_now = False
                        closing = answer.close_thinking(reason)
                        # The cache holds everything so far: only the closing tag is fed next.
                        tokens += self.tokenizer.encode(closing, add_special_tokens=False)
                        ended_thinking = True
                        break
            except _PromptCancelled:
                stop, cache, fed = "cancelled", None, []
            finally:
                stream.close()
            self._keep_cache(cache, fed)
            if not ended_thinking:
                break
        answer.finish()
        return answer.done_stats(
            len(prompt_tokens),
            stop,
            prompt_tps=round(prompt_tps, 2) if prompt_tps else None,
            peak_memory_bytes=int(mx.get_peak_memory()),
        )

    def _prefix_cache(self, tokens: list[int]) -> tuple[list[Any], list[int]]:
        """A KV cache holding the longest reusable prefix of `tokens`, and the rest to feed."""
        from mlx_lm.models.cache import can_trim_prompt_cache, make_prompt_cache, trim_prompt_cache

        cache, cached = self._cache, self._cached
        self._cache, self._cached = None, []  # in use; _keep_cache puts it back
        if cache is not None and can_trim_prompt_cache(cache):
            common = 0
            for a, b in zip(cached, tokens, strict=False):
                if a != b:
                    break
                common += 1
            common = min(common, len(tokens) - 1)  # mlx-lm needs at least one token to feed
            extra = len(cached) - common
            if common > 0 and trim_prompt_cache(cache, extra) == extra:
                return cache, tokens[common:]
        return make_prompt_cache(self.model), list(tokens)

    def _keep_cache(self, cache: list[Any] | None, fed: list[int]) -> None:
        """Remember what the cache holds (mlx-lm may have fed one token more or fewer)."""
        offset = getattr(cache[0], "offset", None) if cache else None
        if not cache or not isinstance(offset, int):
            self._cache, self._cached = None, []
            return
        if offset > len(fed):
            from mlx_lm.models.cache import trim_prompt_cache

            trim_prompt_cache(cache, offset - len(fed))
        self._cache, self._cached = cache, fed[: min(offset, len(fed))]


def _load_failure(exc: Exception, folder: Path) -> EngineFailure:
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if isinstance(exc, MemoryError) or "malloc" in low or "out of memory" in low:
        return EngineFailure(
            "out_of_memory",
            "There is not enough memory to load this model: choose a smaller model or "
            "quantization, or close other programs.",
            text,
        )
    if "not supported" in low:
        return EngineFailure(
            "bad_model", f"mlx-lm cannot run this model's architecture: {exc}.", text
        )
    if "tokenizer" in low:
        return EngineFailure(
            "bad_model",
            f"The tokenizer of {folder.name} could not be loaded: the download may be "
            "incomplete or damaged, download the model again.",
            text,
        )
    return EngineFailure(
        "bad_model",
        f"mlx-lm could not load {folder.name}: the files may be damaged or incomplete, or this "
        "mlx-lm version does not support the model.",
        text,
    )


def _runtime_failure(exc: Exception) -> EngineFailure:
    text = f"{type(exc).__name__}: {exc}"
    low = text.lower()
    if isinstance(exc, MemoryError) or "malloc" in low or "out of memory" in low:
        return EngineFailure(
            "out_of_memory",
            "Memory ran out while answering: use a shorter conversation, a smaller context, or "
            "a smaller model.",
            text,
        )
    return EngineFailure("internal", f"MLX failed while answering: {exc}", text)
