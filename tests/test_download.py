"""Downloads through the real huggingface_hub client against a local Hub: cache layout,
split GGUFs, pinning, sharing with other tools, resume after a drop, a stall, a pause or a
SIGKILL, and progress events."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.downloads import (
    DownloadControl,
    FileStarted,
    PlanFinished,
    Progress,
    Retrying,
    RetryPolicy,
    Verifying,
    download,
    installed_models,
    is_installed,
    plan_download,
)
from hub_fixtures import FAST, payload

ROOT = Path(__file__).resolve().parents[1]
REPO = "unsloth/Tiny-R1-GGUF"
GGUF = "Tiny-R1-Q4_K_M.gguf"
MB = 1_000_000


def get(hub, cache, files=(), patterns=(), **kw):
    plan = plan_download(REPO if "repo" not in kw else kw.pop("repo"), files, patterns,
                         endpoint=hub.url, cache_dir=cache, token=False)  # fmt: skip
    events: list = []
    kw.setdefault("policy", FAST)
    result = download(plan, endpoint=hub.url, cache_dir=cache, token=False,
                      on_event=events.append, **kw)  # fmt: skip
    return plan, result, events


def test_single_file_lands_in_the_cache_layout_verified_and_installed(hub, hf_cache):
    data = payload(3 * MB)
    commit = hub.add_repo(REPO, {GGUF: data, "config.json": b'{"x": 1}', "README.md": b"hi"})
    plan, result, events = get(hub, hf_cache, files=(GGUF, "config.json"))

    assert result.status == "complete"
    assert plan.commit == commit and plan.total_bytes == len(data) + 8
    folder = hf_cache / "models--unsloth--Tiny-R1-GGUF"
    pointer = folder / "snapshots" / commit / GGUF
    assert (
        pointer.is_symlink()
        and os.readlink(pointer) == f"../../blobs/{hub.file(REPO, GGUF).sha256}"
    )
    assert pointer.read_bytes() == data
    assert (folder / "refs" / "main").read_text() == commit
    assert not list(folder.glob("blobs/*.incomplete"))
    assert not (folder / "snapshots" / commit / "README.md").exists()
    assert result.main_path == pointer
    assert is_installed(plan, hf_cache)
    [model] = installed_models(hf_cache)
    assert model.repo == REPO and model.verified and model.main_file == pointer
    assert isinstance(events[-1], PlanFinished) and events[-1].done == plan.total_bytes

    # Other tools see a healthy cache and reuse the file without downloading it again.
    from huggingface_hub import hf_hub_download, scan_cache_dir

    assert scan_cache_dir(hf_cache).warnings == []
    sent = hub.bytes_sent
    path = hf_hub_download(REPO, GGUF, endpoint=hub.url, cache_dir=hf_cache, token=False)
    assert Path(path) == pointer and hub.bytes_sent == sent


def test_three_part_split_gguf_lands_in_one_snapshot(hub, hf_cache):
    parts = {f"R1-UD-IQ1_S-0000{i}-of-00003.gguf": payload(MB + i, seed=i) for i in (1, 2, 3)}
    hub.add_repo(REPO, {**parts, "R1-Q8_0.gguf": payload(1000)})
    plan, result, _ = get(hub, hf_cache, patterns=("*IQ1_S*.gguf",))

    assert sorted(f.path for f in plan.files) == sorted(parts)
    assert all(f.sha256 for f in plan.files)
    snap = result.snapshot
    for name, data in parts.items():
        assert (snap / name).read_bytes() == data
    assert not (snap / "R1-Q8_0.gguf").exists()
    assert result.main_path.name == "R1-UD-IQ1_S-00001-of-00003.gguf"
    assert is_installed(plan, hf_cache)
    [model] = installed_models(hf_cache)
    assert model.files == tuple(sorted(parts)) and model.main_file == result.main_path


def test_a_repo_changing_mid_download_cannot_mix_revisions(hub, hf_cache):
    old = payload(MB, seed=1)
    first = hub.add_repo(REPO, {GGUF: old})
    plan = plan_download(REPO, (GGUF,), endpoint=hub.url, cache_dir=hf_cache, token=False)
    hub.add_repo(REPO, {GGUF: payload(MB, seed=2)})  # main moves on before the transfer
    result = download(plan, endpoint=hub.url, cache_dir=hf_cache, token=False, policy=FAST)
    assert plan.commit == first
    assert result.main_path.read_bytes() == old


def test_files_other_tools_downloaded_are_verified_not_fetched_again(hub, hf_cache):
    from huggingface_hub import hf_hub_download

    hub.add_repo(REPO, {GGUF: payload(2 * MB)})
    hf_hub_download(REPO, GGUF, endpoint=hub.url, cache_dir=hf_cache, token=False)
    [found] = installed_models(hf_cache)
    assert not found.verified  # another tool's download: complete but not checked yet
    sent = hub.bytes_sent
    plan, result, events = get(hub, hf_cache, files=(GGUF,))
    assert result.status == "complete" and hub.bytes_sent == sent
    assert any(isinstance(e, Verifying) and e.done == e.total for e in events)
    assert is_installed(plan, hf_cache)


def test_dropped_connection_resumes_and_sends_under_105_percent(hub, hf_cache):
    size = 4 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.cut_next(after=size // 2 + 12345)
    plan, result, events = get(hub, hf_cache, files=(GGUF,))
    assert result.status == "complete" and is_installed(plan, hf_cache)
    assert any(isinstance(e, Retrying) for e in events)
    assert hub.bytes_sent < 1.05 * size
    ranges = [r for (_, path, r) in hub.requests if path.startswith("/cdn/")]
    assert ranges == [None, f"bytes={size // 2 + 12345}-"]


def test_a_stalled_transfer_is_noticed_and_retried(hub, hf_cache):
    size = 2 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.stall_next(seconds=20, after=MB)
    t0 = time.monotonic()
    plan, result, events = get(hub, hf_cache, files=(GGUF,))
    assert result.status == "complete" and is_installed(plan, hf_cache)
    assert time.monotonic() - t0 < 10
    assert any(isinstance(e, Retrying) and "Timeout" in e.reason for e in events)


def test_pause_keeps_partial_data_and_resume_continues_from_it(hub, hf_cache):
    size = 6 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.rate = 6 * MB  # bytes/s: slow enough to pause midway
    control = DownloadControl()

    def pause_at_a_third(event):
        if isinstance(event, Progress) and event.done > size // 3:
            control.pause()

    plan = plan_download(REPO, (GGUF,), endpoint=hub.url, cache_dir=hf_cache, token=False)
    result = download(plan, endpoint=hub.url, cache_dir=hf_cache, token=False, policy=FAST,
                      control=control, on_event=pause_at_a_third)  # fmt: skip
    assert result.status == "paused" and not is_installed(plan, hf_cache)
    [part] = (hf_cache / "models--unsloth--Tiny-R1-GGUF" / "blobs").glob("*.incomplete")
    kept = part.stat().st_size
    assert size // 3 < kept < size

    hub.rate = None
    hub.wait_idle()
    hub.reset_counters()
    control.reset()
    events: list = []
    result = download(plan, endpoint=hub.url, cache_dir=hf_cache, token=False, policy=FAST,
                      control=control, on_event=events.append)  # fmt: skip
    assert result.status == "complete" and is_installed(plan, hf_cache)
    assert [e.resumed_from for e in events if isinstance(e, FileStarted)] == [kept]
    assert hub.bytes_sent == size - kept
    assert any(isinstance(e, Verifying) for e in events)  # the kept prefix was re-hashed


def test_cancel_can_delete_the_partial_data(hub, hf_cache):
    hub.add_repo(REPO, {GGUF: payload(4 * MB)})
    hub.rate = 4 * MB
    control = DownloadControl()

    def cancel_soon(event):
        if isinstance(event, Progress) and event.done > MB:
            control.cancel(delete_partial=True)

    plan = plan_download(REPO, (GGUF,), endpoint=hub.url, cache_dir=hf_cache, token=False)
    result = download(plan, endpoint=hub.url, cache_dir=hf_cache, token=False,
                      control=control, on_event=cancel_soon)  # fmt: skip
    assert result.status == "cancelled"
    assert not list(hf_cache.glob("*/blobs/*"))
    assert installed_models(hf_cache) == []


@pytest.mark.parametrize("how", ["cancel", "pause"])
def test_cancel_while_the_server_stalls_mid_body_is_at_once_and_the_data_resumes(
    hub, hf_cache, how
):
    import threading

    size, stalled_at = 4 * MB, 2 * MB  # past the first 1 MiB chunk: one flushed, one held
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.stall_next(seconds=60, after=stalled_at)  # the server goes silent mid-body
    policy = RetryPolicy(attempts=3, base_delay_s=0.01, stall_timeout_s=30.0)  # as shipped
    control = DownloadControl()
    plan = plan_download(REPO, (GGUF,), endpoint=hub.url, cache_dir=hf_cache, token=False)
    results: list = []
    worker = threading.Thread(target=lambda: results.append(
        download(plan, endpoint=hub.url, cache_dir=hf_cache, token=False, policy=policy,
                 control=control)))  # fmt: skip
    worker.start()
    deadline = time.monotonic() + 20
    while hub.bytes_sent < stalled_at and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)  # the client has read all of it and waits on the silent socket
    assert hub.bytes_sent == stalled_at and worker.is_alive()
    t0 = time.monotonic()
    control.cancel() if how == "cancel" else control.pause()
    worker.join(timeout=10)
    took = time.monotonic() - t0
    assert not worker.is_alive() and took < 2.0, f"{how} took {took:.2f} s"
    [result] = results
    assert result.status == ("cancelled" if how == "cancel" else "paused")
    [part] = (hf_cache / "models--unsloth--Tiny-R1-GGUF" / "blobs").glob("*.incomplete")
    assert part.stat().st_size == stalled_at  # every byte that arrived is on disk
    assert not is_installed(plan, hf_cache)

    hub.reset_counters()  # the stalled answer stays silent: later bytes are the resume's
    control.reset()
    events: list = []
    result = download(plan, endpoint=hub.url, cache_dir=hf_cache, token=False, policy=FAST,
                      control=control, on_event=events.append)  # fmt: skip
    assert result.status == "complete" and is_installed(plan, hf_cache, verify=True)
    assert [e.resumed_from for e in events if isinstance(e, FileStarted)] == [stalled_at]
    assert hub.bytes_sent == size - stalled_at


CHILD = """
import sys
from app.core.downloads import download, plan_download
plan = plan_download(sys.argv[1], (sys.argv[2],), endpoint=sys.argv[3], cache_dir=sys.argv[4],
                     token=False)
download(plan, endpoint=sys.argv[3], cache_dir=sys.argv[4], token=False)
print("finished")
"""


def test_a_killed_process_resumes_where_it_stopped(hub, hf_cache):
    size = 8 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.rate = 4 * MB
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, REPO, GGUF, hub.url, str(hf_cache)], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    blobs = hf_cache / "models--unsloth--Tiny-R1-GGUF" / "blobs"
    deadline = time.monotonic() + 20
    kept = 0
    try:
        while time.monotonic() < deadline and kept < 2 * MB:
            assert child.poll() is None, child.stderr.read() if child.stderr else ""
            parts = list(blobs.glob("*.incomplete")) if blobs.exists() else []
            kept = parts[0].stat().st_size if parts else 0
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL and 2 * MB <= kept < size

    hub.rate = None
    hub.wait_idle()
    hub.reset_counters()
    plan, result, events = get(hub, hf_cache, files=(GGUF,))
    assert result.status == "complete" and is_installed(plan, hf_cache)
    [started] = [e for e in events if isinstance(e, FileStarted)]
    assert started.resumed_from >= kept
    assert hub.bytes_sent == size - started.resumed_from
    assert not list(blobs.glob("*.incomplete"))


def test_progress_reports_bytes_speed_and_time_left(hub, hf_cache):
    size = 3 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.rate = 5 * MB
    _, _, events = get(hub, hf_cache, files=(GGUF,))
    progress = [e for e in events if isinstance(e, Progress)]
    assert len(progress) >= 3
    assert [p.done for p in progress] == sorted(p.done for p in progress)
    assert progress[-1].done == progress[-1].total == size == progress[-1].file_done
    moving = [p for p in progress if p.speed > 0]
    assert moving and all(1 * MB < p.speed < 20 * MB for p in moving)
    assert any(p.eta_s is not None and 0 < p.eta_s < 5 for p in moving)


@pytest.mark.parametrize("name", ["a.gguf"])
def test_a_plan_needs_files_or_patterns(name, hub, hf_cache):
    hub.add_repo(REPO, {name: b"x"})
    with pytest.raises(ValueError):
        plan_download(REPO, endpoint=hub.url, cache_dir=hf_cache, token=False)
