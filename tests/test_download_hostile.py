"""A hostile or broken Hub mirror, through the real huggingface_hub client and Ponder's
runner against the local Hub: names, commits and hashes that would reach outside the cache,
headers that contradict the listing, a server that always sends half the file, and an
installed file with one byte flipped."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from app.core.downloads import (
    DownloadControl,
    Progress,
    RetryPolicy,
    ServerError,
    UnsafeServerDataError,
    download,
    installed_models,
    is_installed,
    plan_download,
)
from app.core.downloads.transfer import byte_budget
from hub_fixtures import FAST, payload

pytestmark = pytest.mark.faults

REPO = "mirror/Tiny-R1-GGUF"
GGUF = "Tiny-R1-Q4_K_M.gguf"
MB = 1_000_000
VICTIM = b"the user's own file, which no download may touch\n"


def plan(hub, cache, files=(), patterns=()):
    return plan_download(REPO, files, patterns, endpoint=hub.url, cache_dir=cache, token=False,
                         policy=FAST)  # fmt: skip


def fetch(hub, cache, the_plan, **kw):
    return download(the_plan, endpoint=hub.url, cache_dir=cache, token=False, policy=FAST, **kw)


def victim(tmp_path: Path, name: str = "victim.gguf", data: bytes = VICTIM) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def files_under(folder: Path) -> list[Path]:
    """Every file or link written under `folder` (locks and Ponder's folders aside)."""
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if (p.is_file() or p.is_symlink())
                  and ".locks" not in p.parts)  # fmt: skip


def assert_intact(path: Path, data: bytes = VICTIM) -> None:
    assert not path.is_symlink(), f"{path} was replaced by a link"
    assert path.read_bytes() == data


# -- names -----------------------------------------------------------------------------------
# tmp_path/hub-cache/models--mirror--Tiny-R1-GGUF/snapshots/<commit>/<name>: four levels up
# from the commit folder is tmp_path, where the user's file lives.
EVIL_NAMES = [
    "../../../../victim.gguf",
    "sub/../../../../../victim.gguf",
    "/tmp/ponder-absolute-victim.gguf",
    "..\\..\\victim.gguf",
    "dir//victim.gguf",
    "./victim.gguf",
    "bad\nname.gguf",
    "nul\x00name.gguf",
    "x" * 300 + ".gguf",
]


@pytest.mark.parametrize("name", EVIL_NAMES, ids=range(len(EVIL_NAMES)))
def test_a_listed_file_name_that_leaves_the_folder_is_refused_before_anything_is_written(
    name, hub, hf_cache, tmp_path
):
    target = victim(tmp_path)
    hub.add_repo(REPO, {name: payload(MB), "good.gguf": payload(1000, seed=1)})
    for how in ({"patterns": ("*.gguf",)}, {"files": (name,)}):
        with pytest.raises(UnsafeServerDataError) as err:
            fetch(hub, hf_cache, plan(hub, hf_cache, **how))
        assert "file name that is not safe" in err.value.message
        assert "nothing was written" in err.value.message
    assert_intact(target)
    assert files_under(hf_cache) == []
    assert hub.bytes_sent == 0
    # The safe file of the same mirror still downloads.
    good = plan(hub, hf_cache, files=("good.gguf",))
    assert fetch(hub, hf_cache, good).status == "complete"


def test_a_commit_that_is_not_a_commit_cannot_place_a_snapshot_outside_the_cache(
    hub, hf_cache, tmp_path
):
    hub.add_repo(REPO, {GGUF: payload(MB)}, commit="../../../escaped")
    with pytest.raises(UnsafeServerDataError) as err:
        fetch(hub, hf_cache, plan(hub, hf_cache, files=(GGUF,)))
    assert "not a commit hash" in err.value.message and "nothing was written" in err.value.message
    assert not (tmp_path / "escaped").exists()
    assert files_under(hf_cache) == [] and hub.bytes_sent == 0


def test_a_fake_sha256_cannot_delete_a_user_file_of_the_same_size(hub, hf_cache, tmp_path):
    # blobs/<sha256>: three levels up from blobs/ is tmp_path. Same size as the repo file, so
    # the old code took the user's file for a cached blob, hashed it and deleted it.
    target = victim(tmp_path)
    hub.add_repo(REPO, {GGUF: payload(len(VICTIM))})
    hub.claim(REPO, GGUF, sha256="../../../victim.gguf")
    with pytest.raises(UnsafeServerDataError) as err:
        fetch(hub, hf_cache, plan(hub, hf_cache, files=(GGUF,)))
    assert "not a sha256" in err.value.message
    assert_intact(target)
    assert files_under(hf_cache) == []


def test_a_fake_git_blob_id_cannot_reach_outside_the_cache(hub, hf_cache, tmp_path):
    target = victim(tmp_path, "victim.json", b"{}")
    hub.add_repo(REPO, {"config.json": b"{}"})
    hub.claim(REPO, "config.json", blob_id="../../../victim.json")
    with pytest.raises(UnsafeServerDataError) as err:
        fetch(hub, hf_cache, plan(hub, hf_cache, files=("config.json",)))
    assert "not a git hash" in err.value.message
    assert_intact(target, b"{}")
    assert files_under(hf_cache) == []


@pytest.mark.parametrize(
    ("header", "value", "words"),
    [
        ("X-Repo-Commit", "../../../escaped", "not a commit hash"),
        ("X-Repo-Commit", "f" * 40, "not the pinned commit"),
        ("X-Linked-Etag", '"../../../victim.gguf"', "not a sha256"),
        ("X-Linked-Etag", '"' + "e" * 64 + '"', "not the listed"),
    ],
)
def test_resolve_headers_that_contradict_the_listing_are_refused(
    header, value, words, hub, hf_cache, tmp_path
):
    target = victim(tmp_path)
    hub.add_repo(REPO, {GGUF: payload(MB)})
    the_plan = plan(hub, hf_cache, files=(GGUF,))
    hub.header_lies[header] = value
    with pytest.raises(UnsafeServerDataError) as err:
        fetch(hub, hf_cache, the_plan)
    assert words in err.value.message and "nothing was written" in err.value.message
    assert_intact(target)
    assert not (tmp_path / "escaped").exists()
    written = [p for p in files_under(hf_cache) if ".ponder" not in p.parts]
    assert written == []
    assert not is_installed(the_plan, hf_cache)


def test_a_stored_manifest_with_an_unsafe_name_is_not_trusted_offline(hub, hf_cache, monkeypatch):
    from huggingface_hub import constants

    hub.add_repo(REPO, {GGUF: payload(MB)})
    the_plan = plan(hub, hf_cache, files=(GGUF,))
    fetch(hub, hf_cache, the_plan)
    manifest = hf_cache / "models--mirror--Tiny-R1-GGUF" / ".ponder" / f"{the_plan.commit}.json"
    data = json.loads(manifest.read_text())
    data["files"]["../../../../victim.gguf"] = data["files"][GGUF]
    manifest.write_text(json.dumps(data))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    from app.core.downloads import OfflineError

    with pytest.raises(OfflineError):
        plan_download(REPO, (), ("*.gguf",), cache_dir=hf_cache, token=False)


# -- a server that always sends half ---------------------------------------------------------
@pytest.mark.parametrize("mode", ["ignore_range", "range"])
def test_a_server_that_always_sends_half_fails_within_the_file_size_and_the_retry_policy(
    mode, hub, hf_cache
):
    size = 20 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    the_plan = plan(hub, hf_cache, files=(GGUF,))
    hub.half = mode
    hub.rate = 40 * MB  # bytes/s, so that progress events are seen along the way
    events: list = []
    t0 = time.monotonic()
    with pytest.raises(ServerError) as err:
        fetch(hub, hf_cache, the_plan, on_event=events.append)
    elapsed = time.monotonic() - t0
    hub.wait_idle()
    cdn_requests = [p for (_, p, _) in hub.requests if p.startswith("/cdn/")]
    print(f"\nhalf={mode}: {hub.bytes_sent} bytes sent for a {size}-byte file, "
          f"{len(cdn_requests)} requests, {elapsed:.2f}s: {err.value.message}")  # fmt: skip
    assert GGUF in err.value.message and "kept" in err.value.message
    # Never more than the file (plus the margin and what sat in the socket when we hung up).
    assert hub.bytes_sent <= byte_budget(size) + 2 * MB
    assert len(cdn_requests) <= FAST.attempts
    assert elapsed < 10
    # The bar never claimed bytes that are not on disk, and never reached 100%.
    progress = [e for e in events if isinstance(e, Progress)]
    assert progress and all(e.file_done < e.file_total and e.done < e.total for e in progress)
    [part] = (hf_cache / "models--mirror--Tiny-R1-GGUF" / "blobs").glob("*.incomplete")
    assert progress[-1].file_done <= part.stat().st_size < size
    assert not is_installed(the_plan, hf_cache) and installed_models(hf_cache) == []

    hub.clear_faults()  # an honest mirror again: the download completes from what is kept
    assert fetch(hub, hf_cache, the_plan).status == "complete"
    assert is_installed(the_plan, hf_cache, verify=True)


def test_the_default_policy_also_stops_a_half_sending_server_quickly(hub, hf_cache):
    size = 20 * MB
    hub.add_repo(REPO, {GGUF: payload(size)})
    the_plan = plan(hub, hf_cache, files=(GGUF,))
    hub.half = "ignore_range"
    quick = RetryPolicy(base_delay_s=0.01, max_delay_s=0.05)  # default attempts (6)
    t0 = time.monotonic()
    with pytest.raises(ServerError):
        download(the_plan, endpoint=hub.url, cache_dir=hf_cache, token=False, policy=quick)
    hub.wait_idle()
    print(f"\ndefault attempts: {hub.bytes_sent} bytes for {size}, "
          f"{time.monotonic() - t0:.2f}s")  # fmt: skip
    # Unthrottled, the kernel's socket buffers hold a few MB the client never read.
    assert hub.bytes_sent <= byte_budget(size) + 5 * MB


# -- an installed file changed on disk -------------------------------------------------------
def installed(hub, cache):
    data = payload(3 * MB)
    hub.add_repo(REPO, {GGUF: data, "config.json": b'{"x": 1}'})
    the_plan = plan(hub, cache, files=(GGUF, "config.json"))
    assert fetch(hub, cache, the_plan).status == "complete"
    assert is_installed(the_plan, cache)
    blob = cache / "models--mirror--Tiny-R1-GGUF" / "blobs" / hub.file(REPO, GGUF).sha256
    return the_plan, data, blob


def flip_byte(path: Path, at: int) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        byte = f.read(1)
        f.seek(at)
        f.write(bytes([byte[0] ^ 0x01]))


def test_one_flipped_byte_is_not_installed_nor_verified_and_is_downloaded_again(hub, hf_cache):
    the_plan, data, blob = installed(hub, hf_cache)
    stat = blob.stat()
    flip_byte(blob, len(data) // 3)
    os.utime(blob, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # even with its mtime put back

    assert not is_installed(the_plan, hf_cache)
    assert all(not m.verified for m in installed_models(hf_cache))
    hub.reset_counters()
    result = fetch(hub, hf_cache, the_plan)
    assert result.status == "complete" and result.main_path.read_bytes() == data
    assert hub.bytes_sent == len(data)  # found by its hash, fetched once more
    assert is_installed(the_plan, hf_cache, verify=True)
    [model] = installed_models(hf_cache)
    assert model.verified


def test_the_cli_does_not_call_a_damaged_file_already_installed(hub, hf_cache, capsys):
    from app.cli import main

    _, data, blob = installed(hub, hf_cache)
    flip_byte(blob, 10)
    args = ["download", "--repo", REPO, "--file", GGUF, "--file", "config.json",
            "--endpoint", hub.url, "--cache-dir", str(hf_cache)]  # fmt: skip
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert "Already installed" not in err and "Downloaded and verified" in err
    assert Path(out.strip()).read_bytes() == data


def test_an_explicit_verify_finds_damage_that_left_no_trace_in_the_file_times(hub, hf_cache):
    from app.core.downloads import cache as cache_mod
    from app.core.downloads import verify_installed

    the_plan, data, blob = installed(hub, hf_cache)
    flip_byte(blob, len(data) - 1)
    # Bit rot does not touch size, times or inode: make the recorded stamp agree with the
    # damaged file, as if the disk had changed it underneath.
    manifest = cache_mod.manifest_path(hf_cache, REPO, the_plan.commit)
    stored = json.loads(manifest.read_text())
    stored["stamps"][GGUF] = cache_mod.file_stamp(blob)
    manifest.write_text(json.dumps(stored))
    assert is_installed(the_plan, hf_cache)  # the cheap check cannot know
    assert not is_installed(the_plan, hf_cache, verify=True)

    assert verify_installed(the_plan, hf_cache) == [GGUF]
    assert not is_installed(the_plan, hf_cache)
    assert all(GGUF not in m.files for m in installed_models(hf_cache))
    result = fetch(hub, hf_cache, the_plan, control=DownloadControl())
    assert result.main_path.read_bytes() == data and is_installed(the_plan, hf_cache, verify=True)
