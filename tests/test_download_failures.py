"""Download failures say what happened in words: corrupt data, tokens, missing repos and
files, server errors, a full disk, offline mode. Real client, local Hub."""

from __future__ import annotations

import errno
import socket
import time

import pytest

from app.core import secrets
from app.core.downloads import (
    ChecksumMismatchError,
    DiskFullError,
    OfflineError,
    RemoteFileNotFoundError,
    RepoNotFoundError,
    ServerError,
    TokenRequiredError,
    download,
    installed_models,
    is_installed,
    plan_download,
    remaining_bytes,
)
from hub_fixtures import FAST, payload

REPO = "deepseek-ai/Tiny-R1-GGUF"
GGUF = "tiny-Q4_K_M.gguf"
MB = 1_000_000


def plan_for(hub, cache, files=(GGUF,), token=False, repo=REPO):
    return plan_download(repo, files, endpoint=hub.url, cache_dir=cache, token=token, policy=FAST)


def fetch(hub, cache, plan, **kw):
    kw.setdefault("token", False)
    return download(plan, endpoint=hub.url, cache_dir=cache, policy=FAST, **kw)


def test_a_file_that_does_not_match_its_sha256_is_deleted_and_not_installed(hub, hf_cache):
    hub.add_repo(REPO, {GGUF: payload(2 * MB), "config.json": b"{}"})
    hub.corrupt(REPO, GGUF)
    plan = plan_for(hub, hf_cache, files=(GGUF, "config.json"))
    with pytest.raises(ChecksumMismatchError) as err:
        fetch(hub, hf_cache, plan)
    assert GGUF in err.value.message and "deleted" in err.value.message
    blob = hf_cache / "models--deepseek-ai--Tiny-R1-GGUF" / "blobs" / hub.file(REPO, GGUF).sha256
    assert not blob.exists() and not blob.with_name(blob.name + ".incomplete").exists()
    assert not is_installed(plan, hf_cache)
    assert all(GGUF not in m.files for m in installed_models(hf_cache))

    hub.clear_faults()  # a good mirror again: the next run succeeds
    assert fetch(hub, hf_cache, plan).status == "complete" and is_installed(plan, hf_cache)


def test_a_gated_repo_asks_for_a_token_and_works_with_one_from_the_keyring(
    hub, hf_cache, memory_keyring
):
    hub.add_repo(REPO, {GGUF: payload(MB)}, gated=True)
    with pytest.raises(TokenRequiredError) as err:
        plan_for(hub, hf_cache, token=None)  # nothing in HF_TOKEN or the keyring
    assert err.value.gated and not err.value.had_token
    assert "token" in err.value.message and "HF_TOKEN" in err.value.message

    secrets.save_token("hf_wrongwrongwrong")
    with pytest.raises(TokenRequiredError) as err:
        plan_for(hub, hf_cache, token=None)
    assert err.value.had_token and "accept the terms" in err.value.message
    assert "hf_wrong" not in err.value.message + err.value.detail

    hub.tokens.add("hf_goodgoodgood")
    secrets.save_token("hf_goodgoodgood")
    plan = plan_for(hub, hf_cache, token=None)
    assert fetch(hub, hf_cache, plan, token=None).status == "complete"


def test_a_private_repo_without_a_token_asks_for_one(hub, hf_cache):
    hub.add_repo(REPO, {GGUF: b"x" * 100}, private=True)
    with pytest.raises(TokenRequiredError) as err:
        plan_for(hub, hf_cache)
    assert not err.value.gated and "token" in err.value.message


def test_a_missing_repo_or_file_is_named(hub, hf_cache):
    hub.add_repo(REPO, {GGUF: b"x" * 100, "other-Q8_0.gguf": b"y"})
    with pytest.raises(RepoNotFoundError) as err:
        plan_for(hub, hf_cache, repo="nobody/no-such-model")
    assert "nobody/no-such-model" in err.value.message
    with pytest.raises(RemoteFileNotFoundError) as err:
        plan_for(hub, hf_cache, files=("tiny-Q2_K.gguf",))
    assert "tiny-Q2_K.gguf" in err.value.message and "other-Q8_0.gguf" in err.value.message
    with pytest.raises(RemoteFileNotFoundError):
        plan_download(REPO, patterns=("*.safetensors",), endpoint=hub.url, cache_dir=hf_cache,
                      token=False)  # fmt: skip


def test_a_server_error_is_retried(hub, hf_cache):
    hub.add_repo(REPO, {GGUF: payload(MB)})
    hub.fail_next(500, count=1, where="api")
    hub.fail_next(503, count=1, where="cdn")
    plan = plan_for(hub, hf_cache)
    events: list = []
    assert fetch(hub, hf_cache, plan, on_event=events.append).status == "complete"
    assert any(type(e).__name__ == "Retrying" for e in events)


def test_server_errors_that_persist_fail_clearly_and_keep_partial_data(hub, hf_cache):
    hub.add_repo(REPO, {GGUF: payload(2 * MB)})
    hub.fail_next(500, count=100, where="api")
    with pytest.raises(ServerError) as err:
        plan_for(hub, hf_cache)
    assert REPO in err.value.message and "try again later" in err.value.message
    hub.clear_faults()

    plan = plan_for(hub, hf_cache)
    hub.cut_next(after=MB)

    def fail_from_now_on(event):  # the connection dropped at 1 MB; now the CDN is down
        if type(event).__name__ == "Retrying" and event.attempt == 1:
            hub.fail_next(500, count=100, where="cdn")

    with pytest.raises(ServerError) as err:
        fetch(hub, hf_cache, plan, on_event=fail_from_now_on)
    assert GGUF in err.value.message and "kept" in err.value.message
    assert remaining_bytes(plan, hf_cache) == plan.total_bytes - MB


def test_the_disk_space_precheck_refuses_a_plan_that_cannot_fit(hub, hf_cache):
    hub.add_repo(REPO, {GGUF: payload(2 * MB)})
    plan = plan_for(hub, hf_cache)
    hub.reset_counters()
    with pytest.raises(DiskFullError) as err:
        fetch(hub, hf_cache, plan, disk_free=lambda path: 3 * MB, disk_margin=2 * MB)
    assert "Not enough disk space" in err.value.message and "2.0 MB" in err.value.message
    assert err.value.free == 3 * MB and hub.bytes_sent == 0
    assert fetch(hub, hf_cache, plan, disk_free=lambda p: 5 * MB, disk_margin=2 * MB).status == (
        "complete"
    )


def test_a_disk_filling_up_stops_clearly_and_keeps_the_data_for_resume(hub, hf_cache, monkeypatch):
    from app.core.downloads import transfer

    size = 3 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    plan = plan_for(hub, hf_cache)
    real_flush = transfer._flush

    def full_after_one_mb(out, buf, hasher, have, total, hooks):
        if have >= MB:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_flush(out, buf, hasher, have, total, hooks)

    monkeypatch.setattr(transfer, "_flush", full_after_one_mb)
    with pytest.raises(DiskFullError) as err:
        fetch(hub, hf_cache, plan)
    assert "disk is full" in err.value.message and "kept" in err.value.message
    kept = plan.total_bytes - remaining_bytes(plan, hf_cache)
    assert MB <= kept < size

    monkeypatch.setattr(transfer, "_flush", real_flush)
    assert fetch(hub, hf_cache, plan).status == "complete" and is_installed(plan, hf_cache)


def test_offline_mode_says_so_and_still_lists_installed_models(hub, hf_cache, monkeypatch):
    from huggingface_hub import constants

    hub.add_repo(REPO, {GGUF: payload(MB)})
    hub.add_repo("org/not-yet", {"n.gguf": b"n" * 10})
    plan = plan_for(hub, hf_cache)
    fetch(hub, hf_cache, plan)
    partial = plan_for(hub, hf_cache, repo="org/not-yet", files=("n.gguf",))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    hub.reset_counters()

    with pytest.raises(OfflineError) as err:
        plan_for(hub, hf_cache, repo="org/not-yet", files=("n.gguf",))
    assert "HF_HUB_OFFLINE" in err.value.message and "org/not-yet" in err.value.message
    with pytest.raises(OfflineError):
        fetch(hub, hf_cache, partial)
    assert plan_for(hub, hf_cache) == plan  # read back from the cache
    assert fetch(hub, hf_cache, plan).status == "complete"
    assert [m.repo for m in installed_models(hf_cache)] == [REPO]
    assert hub.requests == []


def test_an_unreachable_hub_is_reported_as_offline():
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(OfflineError) as err:
        plan_download(REPO, (GGUF,), endpoint=f"http://127.0.0.1:{port}", token=False,
                      policy=FAST)  # fmt: skip
    assert "Can't reach" in err.value.message


def test_a_name_that_does_not_resolve_is_offline_at_once_without_retries():
    """No network: the Hub's name does not resolve (`.invalid` never does, RFC 6761). That is
    said at once, with the default policy's five retries skipped (it took 31 s)."""
    from app.core.downloads import RetryPolicy

    start = time.monotonic()
    with pytest.raises(OfflineError) as err:
        plan_download(REPO, (GGUF,), endpoint="https://huggingface.invalid", token=False,
                      policy=RetryPolicy())  # fmt: skip
    took = time.monotonic() - start
    assert took < 2.0, f"offline took {took:.1f} s"
    assert "does not resolve" in err.value.message and "offline" in err.value.message
