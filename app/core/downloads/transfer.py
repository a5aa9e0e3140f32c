"""The byte transfer of one blob: HTTP Range resume from `blobs/<hash>.incomplete`.

The partial file has a stable name, so a paused, dropped or killed transfer continues from
the bytes on disk (the prefix is re-hashed first). Bytes are hashed while they are written;
the blob is renamed into place only when size and hash match the Hub's metadata.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ChecksumMismatchError, DiskFullError, ServerError, human_size
from .events import DownloadControl
from .hub import RetryPolicy, is_transient
from .plan import PlannedFile
from .verify import expected_digest, hash_prefix, new_hasher

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))


@dataclass
class TransferHooks:
    """Callbacks from a transfer to the runner that turns them into events."""

    on_bytes: Callable[[int], None]
    on_retry: Callable[[int, float, str], None]
    on_verify: Callable[[int], None]


class _Stopped(Exception):
    """Pause or cancel requested (internal)."""


def incomplete_path(blob: Path) -> Path:
    return blob.with_name(blob.name + ".incomplete")


def fetch_blob(
    file: PlannedFile,
    blob: Path,
    *,
    client: Any,
    url: str,
    headers: dict[str, str],
    policy: RetryPolicy,
    control: DownloadControl,
    hooks: TransferHooks,
    disk_free: Callable[[Path], int] | None = None,
) -> bool:
    """Download `file` into `blob`; True when complete and verified, False when stopped.

    Raises DiskFullError (partial data kept), ChecksumMismatchError (partial data deleted),
    ServerError after the retries, or the client's own error for a non-transient answer.
    """
    part = incomplete_path(blob)
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if have > file.size:
        log.warning("%s: partial file larger than expected, starting over", file.path)
        os.truncate(part, 0)
        have = 0
    hasher = new_hasher(file)
    stopped = lambda: control.stop_requested  # noqa: E731
    if have and not hash_prefix(part, hasher, have, hooks.on_verify, stopped):
        return False
    with open(part, "ab", buffering=0) as out:
        try:
            have, hasher = _transfer(
                file, out, have, hasher, client, url, headers, policy, control, hooks
            )
        except _Stopped:
            return False
        except OSError as exc:
            if exc.errno in NO_SPACE:
                free = (disk_free or _free_bytes)(part.parent)
                raise DiskFullError(
                    f"The disk is full ({human_size(free)} free) after {human_size(have)} of "
                    f"{file.path}. Free up space, then resume: the data so far is kept.",
                    str(exc),
                    needed=file.size - have,
                    free=free,
                ) from exc
            raise
    if hasher.hexdigest() != expected_digest(file) or have != file.size:
        part.unlink(missing_ok=True)
        raise ChecksumMismatchError(
            f"{file.path} arrived corrupted (its checksum does not match the Hub's), so it "
            "was deleted. Download it again; if this repeats, the mirror may be bad.",
            f"expected {expected_digest(file)}, got {hasher.hexdigest()}, {have} bytes",
            path=file.path,
        )
    os.replace(part, blob)
    return True


def _transfer(
    file: PlannedFile,
    out: Any,
    have: int,
    hasher: Any,
    client: Any,
    url: str,
    headers: dict[str, str],
    policy: RetryPolicy,
    control: DownloadControl,
    hooks: TransferHooks,
) -> tuple[int, Any]:
    """The retry loop around ranged GETs; returns (bytes on disk, hasher)."""
    import httpx2
    from huggingface_hub.utils import hf_raise_for_status

    timeout = httpx2.Timeout(
        connect=policy.connect_timeout_s, read=policy.stall_timeout_s, write=60.0, pool=60.0
    )
    attempt = 0
    while have < file.size:
        if control.stop_requested:
            raise _Stopped
        start = have
        req_headers = dict(headers)
        if have:
            req_headers["Range"] = f"bytes={have}-"
        try:
            with client.stream(
                "GET", url, headers=req_headers, timeout=timeout, follow_redirects=True
            ) as resp:
                if resp.status_code == 416 or (have and resp.status_code == 200):
                    # The server ignored or refused the range: start this file over.
                    log.info(
                        "%s: server answered %s to a range, restarting", file.path, resp.status_code
                    )
                    out.truncate(0)
                    have, hasher = 0, new_hasher(file)
                    if resp.status_code == 416:
                        continue
                elif resp.status_code == 206:
                    _check_range(resp.headers.get("Content-Range", ""), have, file.path)
                elif resp.status_code != 200:
                    resp.read()
                    hf_raise_for_status(resp)
                    raise ServerError(f"Unexpected answer {resp.status_code} for {file.path}.")
                buf = bytearray()
                try:
                    # Whatever arrives is kept, even when the connection drops mid-chunk.
                    for piece in resp.iter_raw():
                        buf += piece
                        if len(buf) >= CHUNK:
                            have = _flush(out, buf, hasher, have, file.size, hooks)
                            if control.stop_requested:
                                raise _Stopped
                finally:
                    if buf:
                        have = _flush(out, buf, hasher, have, file.size, hooks)
            if have < file.size:
                raise httpx2.RemoteProtocolError(f"connection closed at {have} of {file.size}")
        except _Stopped:
            raise
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno in NO_SPACE:
                raise
            if not is_transient(exc):
                raise
            attempt = 1 if have > start else attempt + 1  # progress resets the streak
            if attempt >= policy.attempts:
                raise ServerError(
                    f"Downloading {file.path} kept failing ({type(exc).__name__}) after "
                    f"{attempt} tries. Try again later: the {human_size(have)} so far are kept.",
                    f"{type(exc).__name__}: {exc}",
                ) from exc
            delay = policy.delay(attempt)
            log.warning(
                "%s: %s at %d bytes, retry %d in %.1fs",
                file.path,
                type(exc).__name__,
                have,
                attempt,
                delay,
            )
            hooks.on_retry(attempt, delay, f"{type(exc).__name__}: {exc}"[:200])
            if control.wait(delay):
                raise _Stopped from None
    return have, hasher


def _flush(out: Any, buf: bytearray, hasher: Any, have: int, size: int, hooks) -> int:
    """Write all of `buf` (then empty it), hashing exactly what reached the file."""
    if have + len(buf) > size:
        del buf[:]
        raise ServerError(f"The server sent more than the expected {size} bytes.")
    start = have
    try:
        with memoryview(buf) as view:
            while have - start < len(buf):
                n = out.write(view[have - start :])
                if not n:
                    raise OSError(errno.ENOSPC, "short write")
                hasher.update(view[have - start : have - start + n])
                have += n
    finally:
        del buf[:]
        if have > start:
            hooks.on_bytes(have - start)
    return have


def _check_range(content_range: str, start: int, path: str) -> None:
    # "bytes 100-199/200"
    try:
        first = int(content_range.split()[1].split("-")[0])
    except (IndexError, ValueError):
        first = -1
    if first != start:
        raise ServerError(f"The server resumed {path} at the wrong place ({content_range!r}).")


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free
