"""Fixtures for download tests: a local Hub, a cache in tmp_path, an in-memory keyring.

tests/conftest.py registers this module as a plugin, so every test can use its fixtures.
Nothing here can reach the real Hub: every call gets the local server's address, and
offline mode / the cache folder are patched for the test's duration.
"""

from __future__ import annotations

from pathlib import Path

import keyring
import keyring.backend
import pytest

from app.core.downloads import RetryPolicy
from hubserver import HubServer

# Quick retries and a short stall timeout keep failure tests fast.
FAST = RetryPolicy(attempts=3, base_delay_s=0.01, max_delay_s=0.05, stall_timeout_s=0.5,
                   connect_timeout_s=2.0)  # fmt: skip


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A keyring that lives in a dict; negative priority so it is never picked on its own."""

    priority = -1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError("no such password")


@pytest.fixture
def memory_keyring():
    """An empty in-memory keyring, set for the test and the previous one restored."""
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def hub():
    """A local Hub on 127.0.0.1 (plus its CDN origin), closed after the test."""
    server = HubServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def hf_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hub cache in tmp_path, online mode, and no token from the environment."""
    from huggingface_hub import constants

    cache = tmp_path / "hub-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "no-token"))
    return cache


def serve_listing(hub: HubServer, listing: dict) -> str:
    """Serve a recorded Hub listing (tests/data/hub_listings/*.json) on the local Hub: every
    file with its recorded size and sha256 (a stand-in hash where none was recorded), no
    content. Enough for `plan_download`, which only reads the listing; returns the commit."""
    import hashlib

    from hubserver import HubFile, HubRepo

    files = {}
    for f in listing["files"]:
        path, size = f["path"], int(f["size"])
        sha256 = f.get("sha256") or hashlib.sha256(f"{path}:{size}".encode()).hexdigest()
        lfs = path.endswith((".gguf", ".safetensors")) or size >= hub.lfs_min_size
        blob = hashlib.sha1(f"blob {path}".encode()).hexdigest()
        files[path] = HubFile(path, b"", size, sha256, blob, lfs)
    commit = listing.get("commit") or hashlib.sha1(listing["repo"].encode()).hexdigest()
    with hub._lock:
        repo = hub.repos.setdefault(listing["repo"], HubRepo(listing["repo"]))
        repo.commits.append((commit, files))
    return commit


def serve_listing_with_content(hub: HubServer, listing: dict, size: int = 2048) -> str:
    """Serve a recorded listing's file NAMES with small generated content (real hashes), so
    a whole download can run against the real file list; returns the commit."""
    return hub.add_repo(
        listing["repo"], {f["path"]: payload(size, seed=i) for i, f in enumerate(listing["files"])}
    )


def payload(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (not compressible, not all alike)."""
    import random

    return random.Random(seed).randbytes(size)


__all__ = [
    "FAST",
    "MemoryKeyring",
    "hf_cache",
    "hub",
    "memory_keyring",
    "payload",
    "serve_listing",
    "serve_listing_with_content",
]
