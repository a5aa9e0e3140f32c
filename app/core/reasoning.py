"""Thinking/answer splitting for the app side: the engines' one state machine, re-exported.

The engine process splits its own output (backends/think_tags.py) and sends typed parts, so
the app never parses tags while streaming; this name stays for code that splits a whole
saved text (e.g. an imported transcript) and for the tests of the splitter itself.
"""

from __future__ import annotations

from backends.think_tags import (
    TAG_STYLES,
    Split,
    ThinkSplitter,
    close_tag_for,
    prompt_opens_thinking,
    split_text,
)

ReasoningSplitter = ThinkSplitter

__all__ = [
    "TAG_STYLES",
    "ReasoningSplitter",
    "Split",
    "ThinkSplitter",
    "close_tag_for",
    "prompt_opens_thinking",
    "split_text",
]
