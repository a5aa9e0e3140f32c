"""Run a DownloadPlan into the Hugging Face cache: precheck, transfer, verify, link, report.

`download(plan, on_event=…, control=…)` runs in the caller's thread and returns a
DownloadResult (complete, paused or cancelled); failures raise a typed DownloadError.
Files already in the cache (from Ponder or another tool) are verified, not downloaded.
A file counts as verified only while it is unchanged since its hash was checked (the stamp
in Ponder's manifest); `verify_installed` hashes everything again on request.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from . import cache as cache_mod
from .errors import DiskFullError, DownloadBusyError, OfflineError, human_size
from .events import (
    DownloadControl,
    DownloadEvent,
    FileDone,
    FileStarted,
    PlanFinished,
    PlanStarted,
    Progress,
    Retrying,
    SpeedMeter,
    Verifying,
)
from .hub import (
    RetryPolicy,
    is_offline,
    request_headers,
    resolve_endpoint,
    resolve_token,
    session,
    translate,
)
from .plan import DownloadPlan, PlannedFile
from .transfer import NO_SPACE, TransferHooks, fetch_blob, incomplete_path
from .verify import file_matches, snapshot_target_ok

log = logging.getLogger(__name__)
DISK_MARGIN = 256 * 1024 * 1024
EVENT_INTERVAL_S = 0.1
LOCK_WAIT_S = 2.0  # how long to wait for another window's lock on a blob before saying so
BUSY_MESSAGE = (
    "Another Ponder window is downloading this file ({path}) right now (or another program "
    "sharing the Hugging Face cache is). Ponder does not download it twice: wait for that "
    "download to finish, then try again."
)


@dataclass(frozen=True)
class DownloadResult:
    """How a run ended, and where the model is (the snapshot folder and main file)."""

    status: Literal["complete", "paused", "cancelled"]
    plan: DownloadPlan
    snapshot: Path
    downloaded_bytes: int

    @property
    def main_path(self) -> Path:
        main = self.plan.main_file
        return self.snapshot / main if main else self.snapshot


def _disk_free(folder: Path) -> int:
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    return shutil.disk_usage(folder).free


def remaining_bytes(plan: DownloadPlan, cache_dir: str | Path | None = None) -> int:
    """Bytes still to fetch: files not yet in the cache minus their partial data."""
    cache = cache_mod.hub_cache(cache_dir)
    left = 0
    for f in plan.files:
        blob = cache_mod.blob_path(cache, plan.repo, f.blob_name)
        if blob.exists() and blob.stat().st_size == f.size:
            continue
        part = incomplete_path(blob)
        left += f.size - (min(part.stat().st_size, f.size) if part.exists() else 0)
    return left


def is_installed(
    plan: DownloadPlan, cache_dir: str | Path | None = None, *, verify: bool = False
) -> bool:
    """True when every file of the plan is in the snapshot, Ponder verified its hash, and it
    is unchanged since (size, times, inode); `verify=True` hashes every byte again."""
    cache = cache_mod.hub_cache(cache_dir)
    manifest = cache_mod.read_manifest(cache, plan.repo, plan.commit) or {}
    verified = dict(manifest.get("verified") or {})
    snapshot = cache_mod.repo_folder(cache, plan.repo) / "snapshots" / plan.commit
    for f in plan.files:
        pointer = cache_mod.snapshot_path(cache, plan.repo, plan.commit, f.path)
        blob = cache_mod.blob_path(cache, plan.repo, f.blob_name)
        try:
            if pointer.stat().st_size != f.size or verified.get(f.path) != f.blob_name:
                return False
        except OSError:
            return False
        if not snapshot_target_ok(pointer, blob):
            return False
        if not cache_mod.stamp_matches(manifest, snapshot, f.path):
            return False
    return not verify or not verify_installed(plan, cache_dir)


def verify_installed(
    plan: DownloadPlan,
    cache_dir: str | Path | None = None,
    on_event: Callable[[DownloadEvent], None] | None = None,
    control: DownloadControl | None = None,
) -> list[str]:
    """Hash every file of the plan in its snapshot; the paths that are missing or damaged.

    Damaged files lose their verified mark (and are never counted as installed again until
    downloaded anew); good ones get a fresh stamp. Emits Verifying events as it reads.
    """
    cache = cache_mod.hub_cache(cache_dir)
    emit = on_event or (lambda e: None)
    control = control or DownloadControl()
    bad: list[str] = []
    good: dict[str, str] = {}
    stamps: dict[str, list[int]] = {}
    for f in plan.files:
        pointer = cache_mod.snapshot_path(cache, plan.repo, plan.commit, f.path)
        blob = cache_mod.blob_path(cache, plan.repo, f.blob_name)

        def progress(n: int, f: PlannedFile = f) -> None:
            emit(Verifying(f.path, n, f.size))

        try:
            ok = snapshot_target_ok(pointer, blob) and file_matches(
                pointer, f, progress, lambda: control.stop_requested
            )
        except OSError:
            ok = False
        if ok is None:
            break  # stopped: nothing decided about the rest
        if ok:
            good[f.path], stamps[f.path] = f.blob_name, cache_mod.file_stamp(pointer)
        else:
            bad.append(f.path)
    _save_manifest(cache, plan, good, done=False, stamps=stamps, corrupt=bad)
    return bad


def _verified(cache: Path, plan: DownloadPlan) -> dict:
    """Ponder's manifest for the plan's commit (empty when there is none)."""
    return cache_mod.read_manifest(cache, plan.repo, plan.commit) or {}


def _unchanged_since_verified(manifest: dict, f: PlannedFile, blob: Path) -> bool:
    """The blob was hashed by Ponder for this path and nobody has written to it since."""
    if (manifest.get("verified") or {}).get(f.path) != f.blob_name:
        return False
    if f.path in (manifest.get("corrupt") or []):
        return False
    recorded = (manifest.get("stamps") or {}).get(f.path)
    if not recorded:
        return False
    try:
        return cache_mod.file_stamp(blob) == list(recorded)
    except OSError:
        return False


def _save_manifest(
    cache: Path,
    plan: DownloadPlan,
    verified: dict[str, str],
    done: bool,
    stamps: dict[str, list[int]] | None = None,
    corrupt: list[str] | tuple[str, ...] = (),
) -> None:
    """Merge what was just verified (or found damaged) into the commit's manifest."""
    old = cache_mod.read_manifest(cache, plan.repo, plan.commit) or {}
    data = plan.to_json()
    data["files"] = {**old.get("files", {}), **data["files"]}
    data["verified"] = {**old.get("verified", {}), **verified}
    data["stamps"] = {**old.get("stamps", {}), **(stamps or {})}
    bad = (set(old.get("corrupt") or []) - set(verified)) | set(corrupt)
    for name in bad:
        data["verified"].pop(name, None)
        data["stamps"].pop(name, None)
    data["corrupt"] = sorted(bad)
    data["complete"] = (done or bool(old.get("complete"))) and not bad
    cache_mod.write_manifest(cache, plan.repo, plan.commit, data)


def download(
    plan: DownloadPlan,
    *,
    on_event: Callable[[DownloadEvent], None] | None = None,
    control: DownloadControl | None = None,
    endpoint: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    policy: RetryPolicy | None = None,
    disk_free: Callable[[Path], int] | None = None,
    disk_margin: int = DISK_MARGIN,
) -> DownloadResult:
    """Download, verify and link every file of `plan`; resumable after pause, drop or kill."""
    run = _Run(
        plan,
        on_event or (lambda e: None),
        control or DownloadControl(),
        cache_mod.hub_cache(cache_dir),
        policy or RetryPolicy(),
        disk_free or _disk_free,
    )
    return run.start(endpoint, token, disk_margin)


class _Run:
    """One pass over a plan; keeps the byte counters the events report."""

    def __init__(self, plan, emit, control, cache, policy, disk_free) -> None:
        self.plan: DownloadPlan = plan
        self.emit: Callable[[DownloadEvent], None] = emit
        self.control: DownloadControl = control
        self.cache: Path = cache
        self.policy: RetryPolicy = policy
        self.disk_free: Callable[[Path], int] = disk_free
        self.done = 0
        self.fetched = 0
        self.file_done = 0
        self.meter = SpeedMeter()
        self.last_emit = 0.0
        self.snapshot = cache_mod.repo_folder(cache, plan.repo) / "snapshots" / plan.commit

    def start(self, endpoint: str | None, token: str | bool | None, margin: int) -> DownloadResult:
        plan, cache = self.plan, self.cache
        manifest = _verified(cache, plan)
        left = remaining_bytes(plan, cache)
        self.done = plan.total_bytes - left
        if left and is_offline():
            raise OfflineError(
                f"Offline mode is on (HF_HUB_OFFLINE): {human_size(left)} of {plan.repo} are "
                "still missing. Unset HF_HUB_OFFLINE to finish the download."
            )
        blobs = cache_mod.repo_folder(cache, plan.repo) / "blobs"
        if left:
            free = self.disk_free(blobs)
            if free < left + margin:
                raise DiskFullError(
                    f"Not enough disk space: {plan.repo} needs {human_size(left)} more (plus "
                    f"{human_size(margin)} to spare) but only {human_size(free)} is free "
                    f"in {cache}.",
                    f"free={free} left={left} margin={margin}",
                    needed=left + margin,
                    free=free,
                )
        base = resolve_endpoint(endpoint)
        tok = resolve_token(token) if left else False
        self.emit(PlanStarted(plan.repo, plan.commit, plan.total_bytes, self.done, len(plan.files)))
        self.snapshot.mkdir(parents=True, exist_ok=True)
        for f in plan.files:
            if self.control.stop_requested:
                break
            try:
                ok = self._one(f, manifest, base, tok)
                if ok:
                    blob = cache_mod.blob_path(cache, plan.repo, f.blob_name)
                    stamp = {f.path: cache_mod.file_stamp(blob)}
                    _save_manifest(cache, plan, {f.path: f.blob_name}, done=False, stamps=stamp)
            except Exception as exc:
                if isinstance(exc, OSError) and exc.errno in NO_SPACE:
                    raise self._disk_full(exc, f.path) from exc
                raise translate(exc, plan.repo, base, bool(tok), f.path) from exc
            if not ok:
                break
        else:
            try:
                cache_mod.write_ref(cache, plan.repo, plan.revision, plan.commit)
                _save_manifest(cache, plan, {}, done=True)
            except OSError as exc:
                if exc.errno in NO_SPACE:
                    raise self._disk_full(exc, plan.repo) from exc
                raise
            self.emit(PlanFinished("complete", self.done, plan.total_bytes))
            return DownloadResult("complete", plan, self.snapshot, self.fetched)
        status: Literal["paused", "cancelled"] = "paused"
        if self.control.cancelled:
            status = "cancelled"
            if self.control.delete_partial:
                self._delete_partials()
        self.emit(PlanFinished(status, self.done, plan.total_bytes))
        return DownloadResult(status, plan, self.snapshot, self.fetched)

    def _disk_full(self, exc: OSError, what: str) -> DiskFullError:
        """The disk filled while recording (manifest, link, ref) rather than writing bytes."""
        free = self.disk_free(self.cache)
        return DiskFullError(
            f"The disk is full ({human_size(free)} free in {self.cache}): Ponder could not "
            f"finish recording {what}. Free up space, then resume: the data downloaded so far "
            "is kept and is not counted as installed until it is recorded and verified.",
            str(exc),
            free=free,
        )

    def _delete_partials(self) -> None:
        """Cancel with delete: remove this plan's partial files, except one another window
        is writing right now (its lock is held): that one is theirs to finish."""
        from filelock import FileLock, Timeout

        for f in self.plan.files:
            blob = cache_mod.blob_path(self.cache, self.plan.repo, f.blob_name)
            lock = cache_mod.lock_path(self.cache, self.plan.repo, f.blob_name)
            try:
                lock.parent.mkdir(parents=True, exist_ok=True)
                with FileLock(lock, timeout=0):
                    incomplete_path(blob).unlink(missing_ok=True)
            except Timeout:
                log.info("%s: partial data left to the window downloading it", f.path)
            except OSError as exc:
                log.warning("%s: partial data not deleted: %s", f.path, exc)

    def _one(self, f: PlannedFile, manifest: dict, endpoint: str, token) -> bool:
        """One file: verified cached blob, or a (resumed) transfer; then the snapshot link."""
        from filelock import FileLock, Timeout

        cache, plan = self.cache, self.plan
        blob = cache_mod.blob_path(cache, plan.repo, f.blob_name)
        pointer = cache_mod.snapshot_path(cache, plan.repo, plan.commit, f.path)
        lock = cache_mod.lock_path(cache, plan.repo, f.blob_name)
        lock.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(lock, timeout=LOCK_WAIT_S):
                downloaded = self._blob(f, blob, manifest, endpoint, token)
        except Timeout as exc:
            raise DownloadBusyError(BUSY_MESSAGE.format(path=f.path), str(lock)) from exc
        if downloaded is None:
            return False
        cache_mod.link_snapshot(blob, pointer)
        self.emit(FileDone(f.path, str(pointer), downloaded))
        return True

    def _blob(self, f: PlannedFile, blob: Path, manifest: dict, endpoint, token) -> bool | None:
        """True: downloaded; False: already there (and verified); None: stopped."""
        if blob.exists() and blob.stat().st_size == f.size:
            if _unchanged_since_verified(manifest, f, blob):
                return False
            ok = file_matches(
                blob, f, lambda n: self._verifying(f, n), lambda: self.control.stop_requested
            )
            if ok is None:
                return None
            if ok:
                return False
            log.warning("%s: cached blob does not match its hash, downloading again", f.path)
            blob.unlink()
            self.done -= f.size
        part = incomplete_path(blob)
        resumed = min(part.stat().st_size, f.size) if part.exists() else 0
        self.file_done = resumed
        self.emit(FileStarted(f.path, f.size, resumed))
        from huggingface_hub import hf_hub_url

        url = hf_hub_url(
            plan_repo := self.plan.repo, f.path, revision=self.plan.commit, endpoint=endpoint
        )
        log.info("downloading %s/%s (%d bytes, %d on disk)", plan_repo, f.path, f.size, resumed)
        hooks = TransferHooks(
            on_bytes=lambda n: self._bytes(f, n),
            on_retry=lambda a, d, r: self.emit(Retrying(f.path, a, d, r)),
            on_verify=lambda n: self._verifying(f, n),
            on_reset=lambda n: self._reset(n),
        )
        ok = fetch_blob(
            f,
            blob,
            client=session(),
            url=url,
            headers=request_headers(token),
            policy=self.policy,
            control=self.control,
            hooks=hooks,
            disk_free=self.disk_free,
            commit=self.plan.commit,
        )
        self._progress(f, force=True)
        return True if ok else None

    def _bytes(self, f: PlannedFile, n: int) -> None:
        if self.file_done + n > f.size:  # a restarted range: the counters start over
            n = f.size - self.file_done
        self.file_done += n
        self.done += n
        self.fetched += n
        self.meter.add(n)
        self._progress(f)

    def _reset(self, n: int) -> None:
        """`n` bytes on disk were thrown away (the server restarted the file): uncount them."""
        n = min(n, self.file_done)
        self.file_done -= n
        self.done -= n

    def _progress(self, f: PlannedFile, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_emit < EVENT_INTERVAL_S:
            return
        self.last_emit = now
        total = self.plan.total_bytes
        self.emit(
            Progress(
                f.path,
                self.file_done,
                f.size,
                self.done,
                total,
                self.meter.speed,
                self.meter.eta(total - self.done),
            )
        )

    def _verifying(self, f: PlannedFile, n: int) -> None:
        now = time.monotonic()
        if n >= f.size or now - self.last_emit >= EVENT_INTERVAL_S:
            self.last_emit = now
            self.emit(Verifying(f.path, n, f.size))
