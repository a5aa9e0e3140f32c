"""What the window had open, so a restart comes back to it: the last chat, the last model
(a local file with its load settings, or a saved server by address and model name, never
its key) and the engine's thread count. One JSON file next to the chat database (a test's
temporary database keeps its own); written atomically; unreadable means empty. No Qt.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

FILE_NAME = "session.json"
# load settings worth keeping; anything else (an API key above all) is never written
KEPT_OPTS = ("n_gpu_layers", "n_threads", "type_k", "type_v", "flash_attn", "use_mmap")


class SessionState:
    """Read and write `session.json` in `folder`."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.path = Path(folder) / FILE_NAME

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def update(self, **changes: Any) -> None:
        data = {**self.load(), **changes}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError:
            pass  # a read-only folder: the next start simply opens nothing

    # -- the last chat -------------------------------------------------------------------
    def last_conversation(self) -> int | None:
        value = self.load().get("conversation")
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def set_last_conversation(self, conversation_id: int | None) -> None:
        self.update(conversation=conversation_id)

    # -- the last model ------------------------------------------------------------------
    def last_model(self) -> dict[str, Any] | None:
        value = self.load().get("model")
        return value if isinstance(value, dict) and value.get("path") else None

    def set_last_model(self, path: str, label: str | None, opts: dict[str, Any], n_ctx: int,
                       remote: dict[str, str] | None = None) -> None:  # fmt: skip
        """Remember a loaded model: a file and its settings, or a server entry's identity."""
        kept = {k: v for k, v in opts.items() if k in KEPT_OPTS}
        model: dict[str, Any] = {"path": path, "label": label, "opts": kept, "n_ctx": n_ctx}
        if remote is not None:
            model = {"path": path, "label": label, "remote": dict(remote)}
        self.update(model=model)

    # -- the engine's threads ------------------------------------------------------------
    def threads(self) -> int:
        """Threads for the engine; 0 means one per physical core."""
        value = self.load().get("threads", 0)
        return value if isinstance(value, int) and value > 0 else 0

    def set_threads(self, threads: int) -> None:
        self.update(threads=max(0, int(threads)))


def physical_cores() -> int:
    """One thread per physical core is llama.cpp's advice (and the engine's default)."""
    try:
        import psutil

        cores = psutil.cpu_count(logical=False)
    except ImportError:
        cores = None
    return max(1, int(cores or os.cpu_count() or 1))
