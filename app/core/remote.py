"""Saved remote models: a server's base URL and model name, its API key in the OS keyring.

A `RemoteModel` is the remote counterpart of a local model file: the model manager lists it,
and `load_remote` loads it through the engine client (engine "openai"). The list lives in
`remote_models.json` in Ponder's config folder without any key; keys go to the keyring
(service "ponder", user "remote:<base URL>") through the same guarded keyring as the
Hugging Face token, never to a file or a log. `check_connection` and `server_models` talk
to the network: call them from a worker thread.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from urllib.request import getproxies

from app.core.model_discovery import config_dir
from app.core.secrets import SERVICE, guarded_keyring, mask_token
from backends.base import EngineFailure
from backends.remote_http import ConnectionReport, check_address, list_models, safe_url, with_scheme
from backends.remote_http import test_connection as _test_connection

REMOTE_FILE = "remote_models.json"
API_LABELS = {
    "openai": "OpenAI-compatible (vLLM, SGLang, llama-server, Ollama /v1)",
    "ollama": "Ollama native API (/api/chat)",
}

# How the server sends the model's reasoning (the engine's `reasoning_format`).
REASONING_FORMATS = {
    "auto": "Auto (a reasoning field, or <think> tags in the text)",
    "field": "Reasoning field (vLLM/SGLang --reasoning-parser, llama-server, Ollama)",
    "tags": "<think> tags in the text (no reasoning parser on the server)",
    "none": "None: show everything as the answer",
}
PROXY_NAMES = ("http", "https", "no")

log = logging.getLogger(__name__)

__all__ = [
    "API_LABELS",
    "REASONING_FORMATS",
    "ConnectionReport",
    "address_problem",
    "RemoteModel",
    "api_key_for",
    "keep_key_for_session",
    "check_connection",
    "forget_remote",
    "load_remote",
    "remote_list_path",
    "save_remote",
    "saved_remotes",
    "server_models",
]


@dataclass(frozen=True)
class RemoteModel:
    """A model on a server, as saved (never with its key)."""

    base_url: str
    model: str
    label: str = ""
    api: str = "openai"
    verify_tls: bool = True
    thinking_open: bool | None = None  # None: guessed from the model name
    reasoning_format: str = "auto"  # a key of REASONING_FORMATS

    @property
    def key_user(self) -> str:
        """The keyring user name under which this server's key is kept."""
        return f"remote:{normalize_url(self.base_url)}"

    @property
    def display_name(self) -> str:
        return self.label or f"{self.model} on {safe_url(self.base_url)}"

    def load_options(self, api_key: str | None) -> dict[str, Any]:
        """The keyword arguments for EngineClient.load(base_url, **options)."""
        return {"engine": "openai", "model": self.model, "api_key": api_key or None,
                "api": self.api, "verify_tls": self.verify_tls,
                "thinking_open": self.thinking_open,
                "reasoning_format": self.reasoning_format,
                "proxies": proxy_settings()}  # fmt: skip


def proxy_settings() -> dict[str, str]:
    """HTTP(S)_PROXY / NO_PROXY of this process, for the engine (which does not inherit them)."""
    return {k: v for k, v in getproxies().items() if k in PROXY_NAMES}


def normalize_url(url: str) -> str:
    """A base URL without surrounding spaces or a trailing slash; "gpu-box:8000" is HTTP."""
    return with_scheme(url).rstrip("/")


def address_problem(url: str) -> str | None:
    """Why this is not an address Ponder saves (not a URL, or a user:password in it), or None."""
    try:
        check_address(normalize_url(url))
    except EngineFailure as exc:
        return exc.message
    return None


def remote_list_path() -> Path:
    return config_dir() / REMOTE_FILE


def saved_remotes(list_path: Path | None = None) -> list[RemoteModel]:
    """The saved remote models (an unreadable file counts as none)."""
    try:
        data = json.loads((list_path or remote_list_path()).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    out = []
    had_login = False
    for item in data if isinstance(data, list) else []:
        try:
            entry = RemoteModel(**{k: item[k] for k in item if k in RemoteModel.__annotations__})
        except (TypeError, KeyError):
            continue
        if entry.base_url != (clean := _without_login(entry.base_url)):
            entry, had_login = replace(entry, base_url=clean), True
        out.append(entry)
    if had_login:  # an older Ponder kept a user:password here: take it out of the file
        try:
            _write(out, list_path or remote_list_path())
        except OSError as exc:
            log.info("could not rewrite the server list: %s", type(exc).__name__)
    return out


def _without_login(url: str) -> str:
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


def _write(entries: list[RemoteModel], list_path: Path) -> None:
    list_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = list_path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(e) for e in entries], indent=2), encoding="utf-8")
    os.replace(tmp, list_path)


def save_remote(
    entry: RemoteModel, api_key: str | None = None, list_path: Path | None = None
) -> str | None:
    """Save (or replace) the entry; the key goes to the keyring. Returns a warning in words
    when the key could not be kept (no usable keyring), else None. An address with a user
    name and password is refused (ValueError, in words): it would be kept in plain text."""
    problem = address_problem(entry.base_url)
    if problem:
        raise ValueError(problem)
    entry = replace(entry, base_url=normalize_url(entry.base_url), model=entry.model.strip())
    list_path = list_path or remote_list_path()
    entries = [
        e
        for e in saved_remotes(list_path)
        if (e.base_url, e.model) != (entry.base_url, entry.model)
    ]
    _write([*entries, entry], list_path)
    if not api_key:
        return None
    try:
        guarded_keyring().set_password(SERVICE, entry.key_user, api_key.strip())
    except Exception as exc:  # noqa: BLE001 - any keyring failure: say so, keep no copy
        log.info("remote key not saved for %s: %s", safe_url(entry.base_url), type(exc).__name__)
        return ("The model was saved, but this system has no password store (keyring) for the "
                "API key: enter the key again each time you connect.")  # fmt: skip
    log.info("remote key saved for %s (%s)", safe_url(entry.base_url), mask_token(api_key))
    return None


# Keys the user chose to keep for this session only (no keyring): in memory, never on disk.
_SESSION_KEYS: dict[str, str] = {}


def keep_key_for_session(entry: RemoteModel, api_key: str) -> None:
    """Keep `api_key` in memory until Ponder quits (no keyring could hold it)."""
    _SESSION_KEYS[entry.key_user] = api_key.strip()


def api_key_for(entry: RemoteModel) -> str | None:
    """The saved API key for the entry's server (the keyring, else one kept for this
    session), or None."""
    try:
        key = guarded_keyring().get_password(SERVICE, entry.key_user) or None
    except Exception as exc:  # noqa: BLE001 - no keyring means no saved key
        log.info("no remote key from the keyring: %s", type(exc).__name__)
        key = None
    return key or _SESSION_KEYS.get(entry.key_user)


def forget_remote(entry: RemoteModel, list_path: Path | None = None) -> bool:
    """Remove the entry; its key goes too when no other entry uses the same server."""
    list_path = list_path or remote_list_path()
    before = saved_remotes(list_path)
    keep = [
        e for e in before if (e.base_url, e.model) != (normalize_url(entry.base_url), entry.model)
    ]
    if len(keep) == len(before):
        return False
    _write(keep, list_path)
    if not any(e.key_user == entry.key_user for e in keep):
        _SESSION_KEYS.pop(entry.key_user, None)
        try:
            guarded_keyring().delete_password(SERVICE, entry.key_user)
        except Exception:  # noqa: BLE001 - nothing saved, or no keyring: nothing to remove
            pass
    return True


def check_connection(
    base_url: str,
    api_key: str | None = None,
    api: str = "openai",
    verify_tls: bool = True,
    timeout_s: float = 10.0,
) -> ConnectionReport:
    """Test connection: reach the server, check the key, list models (never raises)."""
    return _test_connection(normalize_url(base_url), api_key or None, api, verify_tls, timeout_s)


def server_models(base_url: str, api_key: str | None = None, api: str = "openai",
                  verify_tls: bool = True) -> list[str]:  # fmt: skip
    """The server's model names; raises backends.base.EngineFailure in words."""
    return list_models(normalize_url(base_url), api_key or None, api, verify_tls)


def load_remote(client: Any, entry: RemoteModel, api_key: str | None = None) -> dict[str, Any]:
    """Load a saved remote model in the engine client (the key from the keyring if not given)."""
    key = api_key if api_key is not None else api_key_for(entry)
    return client.load(entry.base_url, **entry.load_options(key))
