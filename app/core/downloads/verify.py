"""Hashes that prove a file is the one the Hub lists: sha256 for LFS files, the git blob
sha1 for small files, computed while writing or over a file already on disk."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .plan import PlannedFile

READ_CHUNK = 8 * 1024 * 1024


def new_hasher(file: PlannedFile) -> Any:
    """A hashlib object that, fed the file's bytes, ends at `file.blob_name`."""
    if file.sha256:
        return hashlib.sha256()
    h = hashlib.sha1()
    h.update(b"blob %d\0" % file.size)  # git's blob id covers this header
    return h


def expected_digest(file: PlannedFile) -> str:
    return file.blob_name.lower()


def hash_prefix(
    path: Path,
    hasher: Any,
    length: int,
    on_progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> bool:
    """Feed the first `length` bytes of `path` to `hasher`; False when stopped midway."""
    done = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(READ_CHUNK)
        view = memoryview(buf)
        while done < length:
            n = f.readinto(view[: min(READ_CHUNK, length - done)])
            if not n:
                raise OSError(f"{path} is shorter than expected ({done} of {length} bytes)")
            hasher.update(view[:n])
            done += n
            if on_progress:
                on_progress(done)
            if should_stop and should_stop():
                return False
    return True


def file_matches(
    path: Path,
    file: PlannedFile,
    on_progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> bool | None:
    """True if `path` hashes to the planned digest, False if not, None when stopped."""
    if path.stat().st_size != file.size:
        return False
    hasher = new_hasher(file)
    if not hash_prefix(path, hasher, file.size, on_progress, should_stop):
        return None
    return hasher.hexdigest() == expected_digest(file)


def snapshot_target_ok(pointer: Path, blob: Path) -> bool:
    """A snapshot entry that is a link must lead to exactly its planned blob (a copy, made
    where links are not allowed, is judged by its hash alone)."""
    if not pointer.is_symlink():
        return pointer.is_file()
    return os.path.realpath(pointer) == os.path.realpath(blob)
