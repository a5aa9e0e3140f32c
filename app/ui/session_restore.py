"""A restart comes back to where the user was: the last chat is opened again and the last
model reloaded (a big one is offered rather than loaded: a banner with Load), as LM Studio
and Jan do. What is remembered lives in `app.core.session_state` next to the chat database;
the main window records the open chat and each model that loads. No engine calls here: the
loads go through the window's controller like any other.
"""

from __future__ import annotations

import os
from typing import Any

from app.core.downloads import human_size
from app.core.session_state import SessionState

# a model bigger than this is offered, not loaded at once (it takes a while and much memory)
BIG_MODEL_BYTES = 8 * 10**9


def remember_chat(state: SessionState, conversation_id: int | None) -> None:
    """The chat open now (None: a new, empty one)."""
    state.set_last_conversation(conversation_id)


def remember_model(state: SessionState, controller: Any, remote: Any = None) -> None:
    """The model that just loaded, with its load settings (a server: its saved entry)."""
    path = controller.model_path
    if not path:
        return
    identity = None
    if remote is not None and getattr(remote, "base_url", None) == path:
        identity = {"base_url": remote.base_url, "model": remote.model}
    elif path.startswith(("http://", "https://")):
        return  # a server not saved in the list: nothing to come back to
    state.set_last_model(path, controller.load_label, dict(controller.load_opts),
                         int(controller.n_ctx), identity)  # fmt: skip


def restore(window: Any) -> str:
    """Open the last chat and reload (or offer) the last model; returns what it did, in
    words ("" when there was nothing to restore)."""
    state: SessionState = window.session_state
    done: list[str] = []
    cid = state.last_conversation()
    if cid is not None and any(c.id == cid for c in window.store.conversations()):
        window.controller.open_conversation(cid)
        done.append("chat reopened")
    model = state.last_model()
    if model is None:
        return ", ".join(done)
    label = model.get("label") or os.path.basename(str(model["path"]))
    if model.get("remote"):
        entry = _saved_server(model["remote"])
        if entry is not None:
            window.load_remote(entry)
            done.append(f"connecting to {label}")
        return ", ".join(done)
    path = str(model["path"])
    if not os.path.isfile(path):
        return ", ".join([*done, f"{label} is no longer at {path}"])
    size = os.path.getsize(path)

    def load() -> None:
        window.controller.n_ctx = int(model.get("n_ctx") or window.controller.n_ctx)
        saved = model.get("opts")
        opts: dict[str, Any] = saved if isinstance(saved, dict) else {}
        window.controller.load_model(path, label, **opts)

    if size > BIG_MODEL_BYTES:
        window.chat.show_banner(
            f"Last time you used {label} ({human_size(size)}). Load it again?",
            [("Load it", load)],
        )
        return ", ".join([*done, f"offered {label}"])
    load()
    return ", ".join([*done, f"reloading {label}"])


def _saved_server(identity: dict[str, Any]) -> Any:
    from app.core import remote

    for entry in remote.saved_remotes():
        if (entry.base_url, entry.model) == (identity.get("base_url"), identity.get("model")):
            return entry
    return None
