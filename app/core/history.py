"""The conversation as the model must see it: thinking stripped, roles strictly alternating.

Strict chat templates (Gemma, Mistral) raise "Conversation roles must alternate" on two user
turns in a row, which a stopped or failed answer used to leave behind. So: an assistant turn
with no answer (failed, stopped while thinking, empty) is not sent; user turns left next to
each other are merged into one (a repeated text once), and assistant turns likewise; a
conversation never starts with an assistant turn (a system turn may come first); a second
answer to the same turn (Think harder) replaces the first. Earlier turns' thinking is never
sent: only `content`, the answer. No Qt.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

Turn = dict[str, str]  # {"role": ..., "content": ...}


class SavedMessage(Protocol):
    """What the history needs of a stored message (app.core.chat_store.Message, frozen)."""

    @property
    def position(self) -> int: ...
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def status(self) -> str: ...


def sendable(message: SavedMessage) -> bool:
    """Whether a stored message belongs in the history sent to the model."""
    if message.status == "streaming":
        return False  # the answer being written (here or in another window)
    if message.role == "assistant":
        return message.status != "error" and bool(message.content.strip())
    return message.role in ("user", "system")


def model_history(messages: Iterable[SavedMessage], start_position: int = 0) -> list[Turn]:
    """The turns to send, from stored messages: from `start_position` on (older turns dropped
    to fit the context), only sendable ones, roles alternating. A second answer to the same
    turn (Auto routing's Think harder: `settings["route"]["again"]`) replaces the one before
    it instead of being merged with it."""
    turns: list[Turn] = []
    for m in messages:
        if m.position < start_position or not sendable(m):
            continue
        if answers_again(m) and turns and turns[-1]["role"] == "assistant":
            turns[-1] = {"role": "assistant", "content": m.content}
            continue
        turns.append({"role": m.role, "content": m.content})
    return alternate(turns)


def answers_again(message: object) -> bool:
    """Whether a stored message is a second answer to the turn before it (Think harder)."""
    settings = getattr(message, "settings", None)
    route = settings.get("route") if isinstance(settings, dict) else None
    return isinstance(route, dict) and bool(route.get("again"))


def alternate(turns: Iterable[Turn]) -> list[Turn]:
    """Make roles alternate: merge neighbours of the same role, drop leading assistant turns
    and system turns after the first turn."""
    out: list[Turn] = []
    for turn in turns:
        role, content = turn["role"], turn["content"]
        if role == "system":
            if not out:
                out.append({"role": "system", "content": content})
            continue
        last = out[-1] if out else None
        if last is None or last["role"] == "system":
            if role == "user":
                out.append({"role": "user", "content": content})
            continue  # a conversation starts with the user
        if last["role"] == role:
            if content.strip() and content.strip() != last["content"].strip():
                last["content"] = f"{last['content'].rstrip()}\n\n{content.lstrip()}"
            continue
        out.append({"role": role, "content": content})
    return out


def roles_alternate(turns: Iterable[Turn]) -> bool:
    """Whether `turns` is what a strict template accepts: an optional system turn, then
    user, assistant, user, … ."""
    roles = [t["role"] for t in turns]
    if roles and roles[0] == "system":
        roles = roles[1:]
    return all(role == ("user" if i % 2 == 0 else "assistant") for i, role in enumerate(roles))
