"""Render a model's chat template (Jinja, from the GGUF or tokenizer_config) in a sandbox.

A model's chat template is untrusted input. It is compiled once per model in an
`ImmutableSandboxedEnvironment` set up like transformers' (trim_blocks, lstrip_blocks,
`loopcontrols`, a `tojson` that keeps non-ASCII text, `raise_exception`, `strftime_now`),
so real templates render as they do upstream, while a template that reaches for Python
internals fails (the CVE-2024-34359 guard llama-cpp-python also uses). Rendering has limits
too: `*` and `**` cannot build huge values, the output is capped, and a render that runs
past its deadline or is stopped is interrupted.

Some templates have a thinking switch: Qwen3's reads `enable_thinking` and, when it is false,
ends the generation prompt with an empty think block (`<think>\n\n</think>\n\n`), so the
model answers at once. `ChatTemplate.thinking_switch` says whether a template has one, and
`render(..., enable_thinking=False)` turns it off (the variable is left undefined unless
given, as transformers does).
"""

from __future__ import annotations

import ctypes
import datetime
import json
import threading
from collections.abc import Callable
from typing import Any

# Used when a model carries no template (e.g. a base model): plain, readable turns.
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}Assistant: {{ m['content'] }}\n"
    "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)
MAX_OUTPUT_CHARS = 16_000_000  # far above any context a model takes (~4 characters a token)
MAX_VALUE_ITEMS = 1_000_000  # the largest string or list `*` may build
RENDER_DEADLINE_S = 10.0
THINKING_SWITCH = "enable_thinking"  # the template variable Qwen3's template reads


class TemplateError(ValueError):
    """The chat template could not be rendered; the message says why in words."""


class _RenderStopped(BaseException):
    """Raised inside a render that ran past its deadline or was stopped (internal)."""


def _tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: Any = None, sort_keys: bool = False) -> str:  # fmt: skip
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _raise_exception(message: str) -> None:
    raise TemplateError(f"the model's chat template refused the conversation: {message}")


def _strftime_now(fmt: str) -> str:
    return datetime.datetime.now().strftime(fmt)


def _make_environment() -> Any:
    from jinja2 import BaseLoader
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class LimitedEnvironment(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset(["*", "**"])

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if operator == "**" and isinstance(right, int) and abs(right) > 64:
                raise TemplateError("the model's chat template computes an absurd power")
            if operator == "*":
                for seq, n in ((left, right), (right, left)):
                    sized = isinstance(seq, str | list | tuple) and isinstance(n, int)
                    if sized and len(seq) * n > MAX_VALUE_ITEMS:
                        raise TemplateError(
                            "the model's chat template builds an absurdly large value"
                        )
            return super().call_binop(context, operator, left, right)

        def unsafe_undefined(self, obj: Any, attribute: str) -> Any:
            # Jinja returns an Undefined that fails only when used, and prints as "": a
            # template reading `__globals__` through str.format_map rendered an empty prompt.
            # Reaching for an unsafe attribute is refused on the spot instead.
            from jinja2.sandbox import SecurityError

            raise SecurityError(
                f"access to attribute {attribute!r} of {type(obj).__name__!r} object is unsafe"
            )

    class NoFiles(BaseLoader):
        """`include`, `import` and `extends` read no file: a template that tries is hostile."""

        def get_source(self, environment: Any, template: str) -> Any:
            from jinja2.sandbox import SecurityError

            raise SecurityError(f"the template tried to read {template[:80]!r}")

    env = LimitedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols], loader=NoFiles()
    )
    env.filters["tojson"] = _tojson
    env.globals.update(raise_exception=_raise_exception, strftime_now=_strftime_now)
    return env


def has_thinking_switch(source: str | None) -> bool:
    """Whether a chat template can turn the thinking off: it reads `enable_thinking` (as
    Qwen3's official template does). A plain text check: the template is not run."""
    return source is not None and THINKING_SWITCH in source


class ChatTemplate:
    """One model's template, compiled once; `render` turns messages into the prompt text."""

    def __init__(self, source: str | None) -> None:
        self.source = source
        self.thinking_switch = has_thinking_switch(source)
        self._compiled: Any = None
        self._error: TemplateError | None = None
        import jinja2  # outside the try: a failed import (e.g. out of memory) is its own error

        try:
            self._compiled = _make_environment().from_string(source or FALLBACK_TEMPLATE)
        except jinja2.TemplateError as exc:
            self._error = TemplateError(f"the model's chat template is broken: {exc}")

    def render(
        self,
        messages: list[dict[str, str]],
        bos_token: str = "",
        eos_token: str = "",
        add_generation_prompt: bool = True,
        should_stop: Callable[[], bool] | None = None,
        deadline_s: float = RENDER_DEADLINE_S,
        enable_thinking: bool | None = None,
    ) -> str:
        """The prompt for `messages`; TemplateError in words when the template fails.
        `enable_thinking` (True/False) is passed to the template only when given."""
        import jinja2
        from jinja2.sandbox import SecurityError

        if self._error is not None:
            raise self._error
        context = {
            "messages": messages,
            "bos_token": bos_token,
            "eos_token": eos_token,
            "add_generation_prompt": add_generation_prompt,
        }
        if enable_thinking is not None:
            context["enable_thinking"] = bool(enable_thinking)
        try:
            return _with_deadline(lambda: self._collect(context), deadline_s, should_stop)
        except SecurityError as exc:
            raise TemplateError(
                "the model's chat template tried to run code and was stopped; "
                "this file is unsafe, delete it"
            ) from exc
        except TemplateError:
            raise
        except _RenderStopped:
            raise TemplateError(
                f"the model's chat template did not finish within {deadline_s:.0f} s "
                "(or was stopped); this file is broken or hostile"
            ) from None
        except jinja2.TemplateError as exc:
            raise TemplateError(f"the model's chat template is broken: {exc}") from exc
        except (MemoryError, OverflowError, RecursionError) as exc:
            raise TemplateError(f"the model's chat template ran out of bounds ({exc})") from exc

    def _collect(self, context: dict[str, Any]) -> str:
        parts: list[str] = []
        size = 0
        for piece in self._compiled.generate(**context):
            size += len(piece)
            if size > MAX_OUTPUT_CHARS:
                raise TemplateError("the model's chat template produced an absurdly long prompt")
            parts.append(piece)
        return "".join(parts)


def render_chat(
    template: str | None,
    messages: list[dict[str, str]],
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """Render `messages` with a template once (compiles it each call: prefer ChatTemplate)."""
    return ChatTemplate(template).render(messages, bos_token, eos_token, add_generation_prompt)


def _with_deadline(
    work: Callable[[], str], deadline_s: float, should_stop: Callable[[], bool] | None
) -> str:
    """Run `work` on this thread; interrupt it (an async exception) past the deadline or stop.

    A Jinja template is compiled Python, so the interruption lands between two bytecodes of
    a runaway loop. The watcher can only fire while `work` runs, and a pending interruption
    is cleared once it has returned.
    """
    tid = threading.get_ident()
    lock = threading.Lock()
    finished = threading.Event()
    state = {"done": False}

    def watch() -> None:
        waited = 0.0
        while not finished.wait(0.05):
            waited += 0.05
            if waited >= deadline_s or (should_stop is not None and should_stop()):
                with lock:
                    if not state["done"]:
                        ctypes.pythonapi.PyThreadState_SetAsyncExc(
                            ctypes.c_ulong(tid), ctypes.py_object(_RenderStopped)
                        )
                return

    watcher = threading.Thread(target=watch, name="template-watch", daemon=True)
    watcher.start()
    try:
        return work()
    finally:
        with lock:
            state["done"] = True
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(tid), None)
        finished.set()
