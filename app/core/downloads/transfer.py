"""The byte transfer of one blob: HTTP Range resume from `blobs/<hash>.incomplete`.

The partial file has a stable name, so a paused, dropped or killed transfer continues from
the bytes on disk (the prefix is re-hashed first). Bytes are hashed while they are written;
the blob is renamed into place only when size and hash match the Hub's metadata.

A hostile or broken server cannot make it loop: one transfer receives at most the file's
size plus a small margin (`byte_budget`), and a short answer counts as a failed attempt
unless it brought a real amount of data (`RESET_PROGRESS`). The Hub's headers (commit,
linked ETag) must agree with the pinned plan before any byte is written. Redirects are
followed by hand, each one checked before it is requested: only to the Hub's own host or
its file storage (safety.redirect_problem), and the token goes to the Hub's origin only.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import safety
from .errors import (
    ChecksumMismatchError,
    DiskFullError,
    ServerError,
    UnsafeServerDataError,
    human_size,
)
from .events import DownloadControl
from .hub import RetryPolicy, is_transient
from .plan import PlannedFile
from .verify import expected_digest, hash_prefix, new_hasher

log = logging.getLogger(__name__)
CHUNK = 1024 * 1024
NO_SPACE = (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC))
RESET_PROGRESS = 32 * 1024 * 1024  # a short answer bringing this much resets the retry streak
REDIRECT_STATUS = (301, 302, 303, 307, 308)
MAX_REDIRECTS = 5


@dataclass
class TransferHooks:
    """Callbacks from a transfer to the runner that turns them into events."""

    on_bytes: Callable[[int], None]
    on_retry: Callable[[int, float, str], None]
    on_verify: Callable[[int], None]
    on_reset: Callable[[int], None] = lambda n: None  # n bytes on disk were thrown away


def byte_budget(size: int) -> int:
    """The most one transfer of a `size`-byte file may receive: the size plus 1% (≥ 1 MiB)."""
    return size + max(CHUNK, size // 100)


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
    commit: str | None = None,
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
                file, out, have, hasher, client, url, headers, policy, control, hooks, commit
            )
        except _Stopped:
            return False
        except UnsafeServerDataError:
            if not have and part.stat().st_size == 0:
                part.unlink(missing_ok=True)  # refused before a byte: leave no trace
            raise
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


@dataclass
class _State:
    """A transfer in progress: bytes on disk, their hash, and what the server sent so far."""

    have: int
    hasher: Any
    received: int = 0
    attempt: int = 0


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
    commit: str | None = None,
) -> tuple[int, Any]:
    """The retry loop around ranged GETs; returns (bytes on disk, hasher)."""
    import httpx2

    timeout = httpx2.Timeout(
        connect=policy.connect_timeout_s, read=policy.stall_timeout_s, write=60.0, pool=60.0
    )
    state = _State(have, hasher)
    while state.have < file.size:
        if control.stop_requested:
            raise _Stopped
        start = state.have
        req_headers = dict(headers)
        if state.have:
            req_headers["Range"] = f"bytes={state.have}-"
        try:
            with _follow(client, url, req_headers, timeout, file) as (resp, hops):
                check_answer(resp, file, commit, url, hops)
                if not _accept(resp, file, out, state, hooks):
                    continue
                with control.interrupting(lambda: shut_socket(resp)):
                    _receive(resp, file, out, state, control, hooks)
            if state.have < file.size:
                raise httpx2.RemoteProtocolError(
                    f"the answer ended at {state.have} of {file.size} bytes"
                )
        except _Stopped:
            raise
        except Exception as exc:
            if isinstance(exc, OSError) and exc.errno in NO_SPACE:
                raise
            if not is_transient(exc):
                raise
            if control.stop_requested:  # Pause or Cancel shut the socket: no retry
                raise _Stopped from None
            _count_failure(file, state, start, policy, control, hooks, exc)
    return state.have, state.hasher


def _accept(resp: Any, file: PlannedFile, out: Any, state: _State, hooks: TransferHooks) -> bool:
    """Check the status; False (after starting over) when the range was refused (416)."""
    from huggingface_hub.utils import hf_raise_for_status

    status = resp.status_code
    if status == 416 or (state.have and status == 200):
        # The server ignored or refused the range: start this file over.
        log.info("%s: server answered %s to a range, restarting", file.path, status)
        out.truncate(0)
        hooks.on_reset(state.have)
        state.have, state.hasher = 0, new_hasher(file)
        return status != 416
    if status == 206:
        _check_range(resp.headers.get("Content-Range", ""), state.have, file)
    elif status != 200:
        resp.read()
        hf_raise_for_status(resp)
        raise ServerError(f"Unexpected answer {status} for {file.path}.")
    return True


def _receive(
    resp: Any,
    file: PlannedFile,
    out: Any,
    state: _State,
    control: DownloadControl,
    hooks: TransferHooks,
) -> None:
    """Write the body to disk; whatever arrives is kept, even when the connection drops."""
    budget = byte_budget(file.size)
    buf = bytearray()
    try:
        for piece in resp.iter_raw():
            state.received += len(piece)
            if state.received > budget:
                raise ServerError(
                    f"The server kept sending {file.path} without ever completing it: "
                    f"{human_size(state.received)} arrived for a {human_size(file.size)} file, "
                    f"so Ponder stopped. The {human_size(state.have + len(buf))} on disk are "
                    "kept; try again later, or use another mirror.",
                    f"received={state.received} size={file.size} budget={budget}",
                )
            buf += piece
            if len(buf) >= CHUNK:
                state.have = _flush(out, buf, state.hasher, state.have, file.size, hooks)
                if control.stop_requested:
                    raise _Stopped
    finally:
        if buf:
            state.have = _flush(out, buf, state.hasher, state.have, file.size, hooks)


def _count_failure(
    file: PlannedFile,
    state: _State,
    start: int,
    policy: RetryPolicy,
    control: DownloadControl,
    hooks: TransferHooks,
    exc: BaseException,
) -> None:
    """A transient failure or a short answer: one more attempt, or ServerError when spent.

    Only an answer that brought RESET_PROGRESS bytes resets the streak, so a server that
    always sends part of the file exhausts the policy like one that sends nothing.
    """
    progress = state.have - start
    state.attempt = 1 if progress >= RESET_PROGRESS else state.attempt + 1
    if state.attempt >= policy.attempts or state.received >= byte_budget(file.size):
        raise ServerError(
            f"Downloading {file.path} kept failing ({type(exc).__name__}) after "
            f"{state.attempt} tries. Try again later: the {human_size(state.have)} so far "
            "are kept.",
            f"{type(exc).__name__}: {exc}; received={state.received}",
        ) from exc
    delay = policy.delay(state.attempt)
    log.warning(
        "%s: %s at %d bytes, retry %d in %.1fs",
        file.path,
        type(exc).__name__,
        state.have,
        state.attempt,
        delay,
    )
    hooks.on_retry(state.attempt, delay, f"{type(exc).__name__}: {exc}"[:200])
    if control.wait(delay):
        raise _Stopped from None


@contextlib.contextmanager
def _follow(
    client: Any, url: str, headers: dict[str, str], timeout: Any, file: PlannedFile
) -> Iterator[tuple[Any, list[Any]]]:
    """GET `url` as a stream, following redirects by hand: each target is checked before it
    is requested (safety.redirect_problem), and the Authorization header is dropped once the
    origin changes. Yields (final response, the redirect responses before it)."""
    hops: list[Any] = []
    target, hop_headers = url, dict(headers)
    home = _origin(url)
    while True:
        request = client.build_request("GET", target, headers=hop_headers, timeout=timeout)
        resp = client.send(request, stream=True, follow_redirects=False)
        location = resp.headers.get("Location") if resp.status_code in REDIRECT_STATUS else None
        if location is None:
            break
        resp.close()
        hops.append(resp)
        target = str(resp.url.join(location))
        problem = safety.redirect_problem(url, target)
        if problem is None and len(hops) > MAX_REDIRECTS:
            problem = f"more than {MAX_REDIRECTS} redirects"
        if problem is not None:
            raise UnsafeServerDataError(
                f"The server redirected {file.path} to {target[:100]!r}, which Ponder will not "
                f"follow ({problem}); {safety.NOTHING_WRITTEN}. Downloads go only to the Hub "
                "and its own file storage.",
                f"redirect={target[:300]} problem={problem}",
            )
        if _origin(target) != home:
            hop_headers = {k: v for k, v in hop_headers.items()
                           if k.lower() not in ("authorization", "cookie")}  # fmt: skip
    try:
        yield resp, hops
    finally:
        resp.close()


def shut_socket(resp: Any) -> None:
    """End the response's connection from another thread: a read blocked on a stalled
    server returns at once (closing the socket would not wake it; shutdown does). The
    read then fails as a dropped connection, and the bytes written so far stay on disk."""
    stream = getattr(resp, "extensions", {}).get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):  # already closed
            socket.socket.shutdown(sock, socket.SHUT_RDWR)  # also for TLS, under its layer


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


def check_answer(
    resp: Any, file: PlannedFile, commit: str | None, url: str, history: list[Any] | None = None
) -> None:
    """The Hub's own answer (before any redirect) must name the pinned commit and, for LFS
    files, the planned sha256; redirects may not leave http(s) or drop from https to http.
    Raises UnsafeServerDataError before a byte is written."""
    hops = [*(getattr(resp, "history", []) if history is None else history), resp]
    first = hops[0].headers
    said = first.get("X-Repo-Commit")
    if said is not None and commit:
        said = safety.check_commit(said.strip())
        if said != commit:
            raise _contradiction(file, f"commit {said}", f"the pinned commit {commit}")
    linked = first.get("X-Linked-Etag")
    if linked is not None and file.sha256:
        etag = safety.check_sha256(_etag(linked), file.path)
        if etag != file.sha256:
            raise _contradiction(file, f"sha256 {etag}", f"the listed {file.sha256}")
    secure = url.startswith("https://")
    for hop in hops:
        scheme = str(hop.url).split(":", 1)[0].lower()
        if scheme not in ("http", "https") or (secure and scheme != "https"):
            raise UnsafeServerDataError(
                f"The server redirected {file.path} to an address Ponder will not follow "
                f"({str(hop.url)[:80]!r}); {safety.NOTHING_WRITTEN}.",
                f"redirect={hop.url}",
            )


def _etag(value: str) -> str:
    """An ETag header as huggingface_hub reads it: weak marker and quotes removed."""
    value = value.strip()
    return value[2:].strip('"') if value.startswith("W/") else value.strip('"')


def _contradiction(file: PlannedFile, said: str, planned: str) -> UnsafeServerDataError:
    return UnsafeServerDataError(
        f"The server's answer for {file.path} names {said}, not {planned} it listed; "
        f"{safety.NOTHING_WRITTEN}. The mirror may be broken or hostile.",
        f"path={file.path} said={said} planned={planned}",
    )


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


def _check_range(content_range: str, start: int, file: PlannedFile) -> None:
    """A 206 must continue at `start` of a file of the planned size ("bytes 100-199/200")."""
    try:
        span, total = content_range.split()[1].split("/")
        first = int(span.split("-")[0])
        whole = int(total) if total != "*" else file.size
    except (IndexError, ValueError):
        first, whole = -1, -1
    if first != start or whole != file.size:
        raise ServerError(
            f"The server resumed {file.path} at the wrong place ({content_range[:60]!r})."
        )


def _free_bytes(folder: Path) -> int:
    return shutil.disk_usage(folder).free
