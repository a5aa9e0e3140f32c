"""Download faults end to end against the local Hub (issue 20): dropped connections, stalls,
a server that sends wrong bytes, a disk that fills up (a real 8 MB tmpfs), the app killed
midway, and two processes (two Ponder windows) downloading the same file at once.

Each fault either resumes from the bytes on disk or fails with words, and a file whose hash
was not checked is never counted as installed.

The disk-full tests mount a size-limited tmpfs (`mount -t tmpfs -o size=8m`, needs root or
CAP_SYS_ADMIN); where mounting is not permitted they are skipped with that reason, and the
injected-ENOSPC variant in tests/test_download_failures.py still runs.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.core.downloads import (
    ChecksumMismatchError,
    DiskFullError,
    DownloadBusyError,
    DownloadControl,
    FileDone,
    FileStarted,
    Progress,
    Retrying,
    ServerError,
    download,
    installed_models,
    is_installed,
    plan_download,
    remaining_bytes,
)
from app.core.downloads import cache as cache_mod
from hub_fixtures import FAST, payload

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[1]
REPO = "unsloth/Tiny-R1-GGUF"
GGUF = "Tiny-R1-Q4_K_M.gguf"
FOLDER = "models--unsloth--Tiny-R1-GGUF"
MB = 1_000_000
PATIENT = dataclasses.replace(FAST, attempts=5)  # room for three drops in a row


def plan_for(hub, cache, files=(GGUF,)):
    return plan_download(REPO, files, endpoint=hub.url, cache_dir=cache, token=False)


def fetch(hub, cache, plan, events=None, **kw):
    kw.setdefault("policy", FAST)
    if events is not None:
        kw["on_event"] = events.append
    return download(plan, endpoint=hub.url, cache_dir=cache, token=False, **kw)


def partials(cache: Path) -> list[Path]:
    return sorted((cache / FOLDER / "blobs").glob("*.incomplete"))


def blobs(cache: Path) -> list[Path]:
    folder = cache / FOLDER / "blobs"
    return sorted(p for p in folder.glob("*") if not p.name.endswith(".incomplete"))


def cdn_ranges(hub) -> list[str | None]:
    return [r for (method, path, r) in hub.requests if path.startswith("/cdn/") and method == "GET"]


def nothing_installed(plan, cache) -> bool:
    return not is_installed(plan, cache) and installed_models(cache) == []


# -- connection drops ---------------------------------------------------------------------


def test_three_drops_at_different_places_each_resume_where_the_disk_ends(hub, hf_cache):
    size = 5 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.cut_next(after=MB + 17, count=1)
    plan = plan_for(hub, hf_cache)
    events: list = []
    # Three drops: after 1 MB, then 0 bytes (closed right after the headers), then 1.5 MB.
    hub.cut_next(after=0, count=1)
    hub.cut_next(after=3 * MB // 2, count=1)
    result = fetch(hub, hf_cache, plan, events, policy=PATIENT)
    assert result.status == "complete" and is_installed(plan, hf_cache)
    assert [e.attempt for e in events if isinstance(e, Retrying)] == [1, 2, 3]
    first = MB + 17
    assert cdn_ranges(hub) == [None, f"bytes={first}-", f"bytes={first}-",
                               f"bytes={first + 3 * MB // 2}-"]  # fmt: skip
    assert hub.bytes_sent == size  # not one byte fetched twice
    assert partials(hf_cache) == []


def test_a_connection_that_always_drops_fails_in_words_and_keeps_the_data(hub, hf_cache):
    size = 4 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.cut_next(after=MB // 4, count=100)
    plan = plan_for(hub, hf_cache)
    t0 = time.monotonic()
    with pytest.raises(ServerError) as err:
        fetch(hub, hf_cache, plan)
    assert time.monotonic() - t0 < 10
    assert "kept failing" in err.value.message and "kept" in err.value.message
    [part] = partials(hf_cache)
    assert part.stat().st_size == FAST.attempts * MB // 4
    assert nothing_installed(plan, hf_cache)

    hub.clear_faults()
    hub.reset_counters()
    assert fetch(hub, hf_cache, plan).status == "complete" and is_installed(plan, hf_cache)
    assert hub.bytes_sent == size - FAST.attempts * MB // 4


# -- stalls ---------------------------------------------------------------------------------


def test_a_stall_mid_body_is_noticed_by_the_read_timeout_and_resumed_by_range(hub, hf_cache):
    size = 3 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.stall_next(seconds=60, after=MB)
    plan = plan_for(hub, hf_cache)
    events: list = []
    t0 = time.monotonic()
    result = fetch(hub, hf_cache, plan, events)
    took = time.monotonic() - t0
    assert result.status == "complete" and is_installed(plan, hf_cache)
    assert took < 5, f"a 0.5 s stall timeout took {took:.1f} s to notice"
    [retry] = [e for e in events if isinstance(e, Retrying)]
    assert "Timeout" in retry.reason
    assert cdn_ranges(hub) == [None, f"bytes={MB}-"]
    assert hub.bytes_sent == size


def test_a_server_that_never_answers_the_request_is_noticed_too(hub, hf_cache):
    size = 2 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.stall_headers_next(seconds=60)
    plan = plan_for(hub, hf_cache)
    events: list = []
    t0 = time.monotonic()
    assert fetch(hub, hf_cache, plan, events).status == "complete"
    assert time.monotonic() - t0 < 5
    assert any(isinstance(e, Retrying) and "Timeout" in e.reason for e in events)
    assert is_installed(plan, hf_cache)


def test_a_stall_on_every_attempt_fails_in_words_in_bounded_time_and_resumes_later(hub, hf_cache):
    size = 3 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.stall_next(seconds=60, after=MB // 2, count=100)
    plan = plan_for(hub, hf_cache)
    t0 = time.monotonic()
    with pytest.raises(ServerError) as err:
        fetch(hub, hf_cache, plan)
    # attempts × (stall timeout + back-off) and a little: never the server's 60 s
    assert time.monotonic() - t0 < FAST.attempts * (FAST.stall_timeout_s + 1) + 3
    assert "ReadTimeout" in err.value.message and "are kept" in err.value.message
    kept = plan.total_bytes - remaining_bytes(plan, hf_cache)
    assert kept == FAST.attempts * (MB // 2)
    assert nothing_installed(plan, hf_cache)

    hub.clear_faults()
    hub.reset_counters()
    events: list = []
    assert fetch(hub, hf_cache, plan, events).status == "complete"
    assert [e.resumed_from for e in events if isinstance(e, FileStarted)] == [kept]
    assert hub.bytes_sent == size - kept and is_installed(plan, hf_cache)


# -- wrong bytes ----------------------------------------------------------------------------


@pytest.mark.parametrize("name, size", [(GGUF, 3 * MB), ("config.json", 5000)])
def test_wrong_bytes_are_caught_by_the_hash_deleted_and_never_installed(hub, hf_cache, name, size):
    """LFS files are checked against their sha256, small files against their git blob id."""
    hub.add_repo(REPO, {name: payload(size)})
    hub.substitute(REPO, name)
    plan = plan_for(hub, hf_cache, files=(name,))
    with pytest.raises(ChecksumMismatchError) as err:
        fetch(hub, hf_cache, plan)
    msg = err.value.message
    assert name in msg and "checksum does not match" in msg and "deleted" in msg
    assert partials(hf_cache) == [] and blobs(hf_cache) == []
    assert nothing_installed(plan, hf_cache)
    assert not (hf_cache / FOLDER / "snapshots" / plan.commit / name).exists()

    hub.clear_faults()
    assert fetch(hub, hf_cache, plan).status == "complete"
    assert is_installed(plan, hf_cache, verify=True)


def test_wrong_bytes_only_in_the_resumed_part_are_caught_too(hub, hf_cache):
    """The first attempt drops halfway; the resumed range carries someone else's bytes."""
    size = 4 * MB
    data = payload(size)
    hub.add_repo(REPO, {GGUF: data})
    plan = plan_for(hub, hf_cache)
    hub.cut_next(after=2 * MB)
    hub.substitute(REPO, GGUF, data[: 2 * MB] + bytes(2 * MB))  # zeros after the drop
    with pytest.raises(ChecksumMismatchError):
        fetch(hub, hf_cache, plan)
    assert partials(hf_cache) == [] and nothing_installed(plan, hf_cache)


# -- the disk fills up ----------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """An 8 MB tmpfs mounted for the test (the Hub cache lives on it), unmounted after."""
    mount = tmp_path / "small-disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=20)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()[:100]}); the injected "
                    "ENOSPC test in test_download_failures.py covers the code path")  # fmt: skip
    from huggingface_hub import constants

    cache = mount / "hub-cache"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    try:
        yield cache
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=20)


def fill_disk(folder: Path) -> Path:
    """Write a filler file until the file system says ENOSPC; returns the filler."""
    filler = folder / "filler.bin"
    block = b"\0" * 65536
    with open(filler, "wb", buffering=0) as f:
        try:
            while True:
                f.write(block)
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def test_a_plan_bigger_than_the_small_disk_is_refused_before_writing(hub, hf_cache, small_disk):
    hub.add_repo(REPO, {GGUF: payload(12 * MB)})
    plan = plan_for(hub, small_disk)
    with pytest.raises(DiskFullError) as err:
        fetch(hub, small_disk, plan, disk_margin=0)
    assert "Not enough disk space" in err.value.message and "12.0 MB" in err.value.message
    assert hub.bytes_sent == 0 and not (small_disk / FOLDER / "blobs").exists()


def test_the_disk_filling_up_midway_stops_in_words_keeps_the_data_and_resumes(
    hub, hf_cache, small_disk
):
    size = 5 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.rate = 10 * MB
    plan = plan_for(hub, small_disk)
    filler: list[Path] = []

    def another_program_fills_the_disk(event):
        if isinstance(event, Progress) and event.done > MB and not filler:
            filler.append(fill_disk(small_disk.parent))

    with pytest.raises(DiskFullError) as err:
        fetch(hub, small_disk, plan, disk_margin=0,
              on_event=another_program_fills_the_disk)  # fmt: skip
    assert "disk is full" in err.value.message and "kept" in err.value.message
    [part] = partials(small_disk)
    kept = part.stat().st_size
    assert MB < kept < size
    assert nothing_installed(plan, small_disk)

    filler[0].unlink()
    hub.rate = None
    hub.wait_idle()
    hub.reset_counters()
    events: list = []
    assert fetch(hub, small_disk, plan, events, disk_margin=0).status == "complete"
    assert [e.resumed_from for e in events if isinstance(e, FileStarted)] == [kept]
    assert hub.bytes_sent == size - kept
    assert is_installed(plan, small_disk, verify=True)


def test_the_disk_full_while_recording_a_finished_file_is_said_and_nothing_refetched(
    hub, hf_cache, small_disk
):
    """The blob was verified and renamed, then the disk filled before Ponder's manifest was
    written: a DiskFullError in words (not a raw OSError), and after freeing space the file
    is re-hashed, not downloaded again."""
    size = 3 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    plan = plan_for(hub, small_disk)
    filler: list[Path] = []

    def fill_on_done(event):
        if isinstance(event, FileDone) and not filler:
            filler.append(fill_disk(small_disk.parent))

    with pytest.raises(DiskFullError) as err:
        fetch(hub, small_disk, plan, disk_margin=0, on_event=fill_on_done)
    assert "disk is full" in err.value.message and "Free up space" in err.value.message
    assert not is_installed(plan, small_disk)

    filler[0].unlink()
    hub.reset_counters()
    result = fetch(hub, small_disk, plan, disk_margin=0)
    assert result.status == "complete" and result.downloaded_bytes == 0
    assert hub.bytes_sent == 0 and is_installed(plan, small_disk)


# -- the app killed midway ------------------------------------------------------------------

CHILD = """
import os, signal, sys
from app.core.downloads import DownloadBusyError, FileDone, download, plan_download
repo, name, endpoint, cache, mode = sys.argv[1:6]
plan = plan_download(repo, (name,), endpoint=endpoint, cache_dir=cache, token=False)
print("planned", flush=True)
def on_event(event):
    if mode == "die_when_done" and isinstance(event, FileDone):
        os.kill(os.getpid(), signal.SIGKILL)   # after the rename, before the manifest
try:
    result = download(plan, endpoint=endpoint, cache_dir=cache, token=False, on_event=on_event)
except DownloadBusyError as exc:
    print("busy:", exc.message, flush=True)
else:
    print("finished", result.downloaded_bytes, flush=True)
"""


def start_child(hub, cache, mode="normal") -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, REPO, GGUF, hub.url, str(cache), mode], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def wait_for_partial(child: subprocess.Popen, cache: Path, at_least: int, timeout: float = 30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.poll() is not None:
            raise AssertionError(f"the child ended early: {child.communicate(timeout=5)}")
        parts = partials(cache) if (cache / FOLDER / "blobs").exists() else []
        if parts and parts[0].stat().st_size >= at_least:
            return parts[0].stat().st_size
        time.sleep(0.02)
    raise AssertionError("the child never wrote enough")


def kill(child: subprocess.Popen) -> None:
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)
    for stream in (child.stdout, child.stderr):
        if stream:
            stream.close()


def test_killed_midway_the_bytes_on_disk_are_reused_and_its_lock_does_not_block(hub, hf_cache):
    size = 8 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.rate = 4 * MB
    child = start_child(hub, hf_cache)
    try:
        wait_for_partial(child, hf_cache, 2 * MB)
    finally:
        kill(child)
    assert child.returncode == -signal.SIGKILL
    plan = plan_for(hub, hf_cache)
    assert cache_mod.lock_path(hf_cache, REPO, plan.files[0].blob_name).exists()  # left behind
    kept = partials(hf_cache)[0].stat().st_size

    hub.rate = None
    hub.wait_idle()
    hub.reset_counters()
    events: list = []
    t0 = time.monotonic()
    assert fetch(hub, hf_cache, plan, events).status == "complete"
    assert time.monotonic() - t0 < 5  # the dead process's lock went with it
    [started] = [e for e in events if isinstance(e, FileStarted)]
    assert started.resumed_from == kept
    assert hub.bytes_sent == size - kept
    assert is_installed(plan, hf_cache, verify=True)


def test_killed_between_the_rename_and_the_manifest_nothing_is_fetched_again(hub, hf_cache):
    size = 2 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    child = start_child(hub, hf_cache, "die_when_done")
    child.wait(timeout=60)
    child.communicate(timeout=5)
    assert child.returncode == -signal.SIGKILL
    plan = plan_for(hub, hf_cache)
    assert not is_installed(plan, hf_cache)  # nobody recorded its hash yet

    hub.reset_counters()
    result = fetch(hub, hf_cache, plan)
    assert result.status == "complete" and result.downloaded_bytes == 0
    assert hub.bytes_sent == 0 and is_installed(plan, hf_cache)


def test_a_kept_partial_damaged_after_a_kill_is_caught_and_never_installed(hub, hf_cache):
    size = 6 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.rate = 4 * MB
    child = start_child(hub, hf_cache)
    try:
        wait_for_partial(child, hf_cache, 2 * MB)
    finally:
        kill(child)
    [part] = partials(hf_cache)
    with open(part, "r+b") as f:  # one byte of the kept prefix rots on disk
        f.seek(MB)
        byte = f.read(1)
        f.seek(MB)
        f.write(bytes([byte[0] ^ 0xFF]))
    hub.rate = None
    hub.wait_idle()
    plan = plan_for(hub, hf_cache)
    with pytest.raises(ChecksumMismatchError) as err:
        fetch(hub, hf_cache, plan)
    assert "deleted" in err.value.message
    assert partials(hf_cache) == [] and nothing_installed(plan, hf_cache)
    assert fetch(hub, hf_cache, plan).status == "complete"
    assert is_installed(plan, hf_cache, verify=True)


# -- two processes, one file ----------------------------------------------------------------


def test_a_second_window_is_told_and_the_first_download_is_left_alone(hub, hf_cache):
    size = 4 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.rate = MB  # 4 s: longer than the second window waits for the lock
    child = start_child(hub, hf_cache)
    try:
        wait_for_partial(child, hf_cache, MB // 4)
        plan = plan_for(hub, hf_cache)
        t0 = time.monotonic()
        with pytest.raises(DownloadBusyError) as err:
            fetch(hub, hf_cache, plan)
        assert time.monotonic() - t0 < 10
        assert err.value.message.startswith("Another Ponder window is downloading this file")
        assert GGUF in err.value.message

        # Cancelling with "delete partial data" in the second window spares the first's file.
        control = DownloadControl()
        control.cancel(delete_partial=True)
        before = partials(hf_cache)[0].stat().st_size
        assert fetch(hub, hf_cache, plan, control=control).status == "cancelled"
        assert partials(hf_cache) and partials(hf_cache)[0].stat().st_size >= before

        out, errs = child.communicate(timeout=30)
    finally:
        if child.poll() is None:
            kill(child)
    assert "finished" in out, errs
    hub.reset_counters()
    result = fetch(hub, hf_cache, plan)
    assert result.status == "complete" and result.downloaded_bytes == 0 and hub.bytes_sent == 0
    assert is_installed(plan, hf_cache, verify=True)


def test_two_processes_started_together_download_the_file_once(hub, hf_cache):
    size = 4 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    hub.rate = 8 * MB
    children = [start_child(hub, hf_cache) for _ in range(2)]
    outputs = []
    try:
        for child in children:
            out, errs = child.communicate(timeout=60)
            outputs.append(out)
            assert child.returncode == 0, errs
    finally:
        for child in children:
            if child.poll() is None:
                kill(child)
    finished = [o for o in outputs if "finished" in o]
    busy = [o for o in outputs if "busy: Another Ponder window is downloading this file" in o]
    assert finished and len(finished) + len(busy) == 2
    # One transfer of the file in all: the other process waited and found it, or was told.
    assert len([r for r in cdn_ranges(hub) if r is None]) == 1
    assert hub.bytes_sent == size
    plan = plan_for(hub, hf_cache)
    assert is_installed(plan, hf_cache, verify=True) and partials(hf_cache) == []


def test_no_partial_file_survives_a_finished_download(hub, hf_cache):
    hub.add_repo(REPO, {GGUF: payload(MB)})
    plan = plan_for(hub, hf_cache)
    fetch(hub, hf_cache, plan)
    assert partials(hf_cache) == []
    assert os.path.realpath(hf_cache / FOLDER / "snapshots" / plan.commit / GGUF) == str(
        blobs(hf_cache)[0]
    )
