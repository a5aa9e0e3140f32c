"""Render a model's chat template (Jinja, from the GGUF) in a sandbox.

A GGUF's `tokenizer.chat_template` is untrusted input: it is rendered with Jinja's
`ImmutableSandboxedEnvironment`, the same guard llama-cpp-python uses since CVE-2024-34359,
so a template that reaches for Python internals fails instead of running code.
"""

from __future__ import annotations

import datetime
from typing import Any

# Used when a GGUF carries no template (e.g. a base model): plain, readable turns.
FALLBACK_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'user' %}User: {{ m['content'] }}\n"
    "{% elif m['role'] == 'assistant' %}Assistant: {{ m['content'] }}\n"
    "{% else %}{{ m['content'] }}\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}Assistant:{% endif %}"
)


class TemplateError(ValueError):
    """The chat template could not be rendered; the message says why in words."""


def render_chat(
    template: str | None,
    messages: list[dict[str, str]],
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """Render `messages` with the model's template (or the fallback) in a Jinja sandbox."""
    import jinja2
    from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

    def raise_exception(message: str) -> None:
        raise TemplateError(f"the model's chat template refused the conversation: {message}")

    def strftime_now(fmt: str) -> str:
        return datetime.datetime.now().strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals.update(raise_exception=raise_exception, strftime_now=strftime_now)
    try:
        compiled = env.from_string(template or FALLBACK_TEMPLATE)
        context: dict[str, Any] = {
            "messages": messages,
            "bos_token": bos_token,
            "eos_token": eos_token,
            "add_generation_prompt": add_generation_prompt,
        }
        return compiled.render(**context)
    except SecurityError as exc:
        raise TemplateError(
            "the model's chat template tried to run code and was stopped; "
            "this file is unsafe, delete it"
        ) from exc
    except TemplateError:
        raise
    except jinja2.TemplateError as exc:
        raise TemplateError(f"the model's chat template is broken: {exc}") from exc
