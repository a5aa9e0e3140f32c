"""A download plan: the exact files of one repo, pinned to a commit, with sizes and hashes.

`plan_download` asks the Hub once (`model_info(..., files_metadata=True)`): the commit sha
and, for every file, its size, its LFS sha256 (None for small git files, which carry a git
blob id instead). Offline, a plan Ponder completed before is read back from the cache.

A plan is checked when it is made (from the Hub or from a stored manifest): the commit, every
file name and every hash must be safe to join to a cache path (see safety.py). A plan never
holds a pickle or code (`.bin`, `.pt`, `.pth`, `.pkl`, `.ckpt`, `.py`, …): asked for by name,
such a file is refused in words (UnsafeFileError); matched by a pattern, it is left out.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import cache as cache_mod
from . import safety
from .errors import (
    OfflineError,
    RemoteFileNotFoundError,
    RepoNotFoundError,
    UnsafeFileError,
    UnsafeServerDataError,
)
from .hub import (
    RetryPolicy,
    is_offline,
    resolve_endpoint,
    resolve_token,
    translate,
    with_retries,
)


@dataclass(frozen=True)
class PlannedFile:
    """One file of the plan; the blob is named by its sha256 (LFS) or git blob id."""

    path: str
    size: int
    sha256: str | None
    blob_id: str | None = None

    def __post_init__(self) -> None:
        safety.check_file_name(self.path)
        if not isinstance(self.size, int) or self.size < 0:
            raise UnsafeServerDataError(
                f"The server sent an impossible size for {self.path}: {self.size!r}; "
                f"{safety.NOTHING_WRITTEN}.",
                f"size={self.size!r}",
            )
        if self.sha256 is not None:
            safety.check_sha256(self.sha256, self.path)
        if self.blob_id is not None:
            safety.check_git_sha1(self.blob_id, self.path)

    @property
    def blob_name(self) -> str:
        name = self.sha256 or self.blob_id
        if not name:
            raise ValueError(f"{self.path}: the Hub gave neither a sha256 nor a blob id")
        return name


@dataclass(frozen=True)
class DownloadPlan:
    """What to download: `repo` at `commit` (resolved from `revision`)."""

    repo: str
    commit: str
    files: tuple[PlannedFile, ...]
    revision: str = "main"

    def __post_init__(self) -> None:
        safety.check_repo_id(self.repo)
        safety.check_commit(self.commit, self.repo)
        safety.check_revision(self.revision)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def main_file(self) -> str | None:
        """The file to give an engine: the first GGUF (part 1 of a split), else None."""
        ggufs = sorted(f.path for f in self.files if f.path.endswith(".gguf"))
        return ggufs[0] if ggufs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "repo": self.repo,
            "commit": self.commit,
            "revision": self.revision,
            "files": {
                f.path: {"size": f.size, "sha256": f.sha256, "blob_id": f.blob_id}
                for f in self.files
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DownloadPlan:
        files = tuple(
            PlannedFile(p, int(m["size"]), m.get("sha256"), m.get("blob_id"))
            for p, m in sorted(data["files"].items())
        )
        return cls(data["repo"], data["commit"], files, data.get("revision", "main"))


def plan_download(
    repo_id: str,
    files: tuple[str, ...] | list[str] = (),
    patterns: tuple[str, ...] | list[str] = (),
    revision: str = "main",
    endpoint: str | None = None,
    token: str | bool | None = None,
    cache_dir: str | Path | None = None,
    policy: RetryPolicy | None = None,
    optional: tuple[str, ...] | list[str] = (),
    sleep: Callable[[float], bool] | None = None,
) -> DownloadPlan:
    """Pin `revision` to a commit and list `files` + whatever matches `patterns` there
    (each pattern must match a file) + whatever matches `optional` (may match nothing).
    `sleep(seconds)` waits between retries and returns True to give up (Cancel).

    Raises OfflineError, RepoNotFoundError, RemoteFileNotFoundError, TokenRequiredError or
    ServerError with a message for the user.
    """
    files, patterns = tuple(files), tuple(patterns)
    if not files and not patterns:
        raise ValueError("plan_download needs files or patterns")
    safety.check_repo_id(repo_id)
    safety.check_revision(revision)
    cache = cache_mod.hub_cache(cache_dir)
    if is_offline():
        cached = cached_plan(repo_id, files, patterns, revision, cache)
        if cached is not None:
            return cached
        raise OfflineError(
            f"Offline mode is on (HF_HUB_OFFLINE) and {repo_id} is not downloaded yet. "
            "Unset HF_HUB_OFFLINE to download it; installed models still work."
        )
    base = resolve_endpoint(endpoint)
    tok = resolve_token(token)
    info = _model_info(repo_id, revision, base, tok, policy or RetryPolicy(), sleep)
    siblings = {s.rfilename: s for s in (info.siblings or [])}
    commit = info.sha
    if not commit:
        raise RepoNotFoundError(f"The Hub did not say which commit {repo_id} is at.")
    safety.check_commit(commit, repo_id)
    chosen: list[str] = []
    for name in files:
        _refuse_unsafe(repo_id, name)
        if name not in siblings:
            raise RemoteFileNotFoundError(_missing_message(repo_id, name, siblings), name)
        chosen.append(name)
    safe = [n for n in siblings if safety.unsafe_file_reason(n) is None]
    for pattern in patterns:
        matched = [n for n in safe if fnmatch.fnmatch(n, pattern)]
        if not matched:
            unsafe = [n for n in siblings if fnmatch.fnmatch(n, pattern)]
            if unsafe:
                _refuse_unsafe(repo_id, unsafe[0])
            raise RemoteFileNotFoundError(
                f"No file in {repo_id} matches {pattern!r}.", f"pattern={pattern}"
            )
        chosen.extend(matched)
    chosen.extend(n for p in optional for n in safe if fnmatch.fnmatch(n, p))
    planned = []
    for name in sorted(set(chosen)):
        planned.append(_planned_file(repo_id, name, siblings[name]))
    return DownloadPlan(repo_id, commit, tuple(planned), revision)


def _refuse_unsafe(repo_id: str, name: str) -> None:
    """UnsafeFileError in words when `name` is a pickle or code file."""
    reason = safety.unsafe_file_reason(name)
    if reason is not None:
        raise UnsafeFileError(
            f"Ponder does not download {name} from {repo_id}: {reason}. Ponder only fetches "
            "weights that cannot run code (GGUF, safetensors) and never runs a model's own "
            "code: choose the GGUF or safetensors version of this model.",
            f"path={name}",
        )


def _planned_file(repo_id: str, name: str, sibling: Any) -> PlannedFile:
    """One listed file as a PlannedFile; its name, size and hashes checked (safety.py)."""
    safety.check_file_name(name)
    lfs = sibling.lfs
    sha256 = lfs.sha256 if lfs else None
    size = lfs.size if lfs else sibling.size
    if size is None:
        raise RepoNotFoundError(f"The Hub gave no size for {name} in {repo_id}.", name)
    if isinstance(size, bool) or not isinstance(size, int):
        size = -1 if not str(size).isdigit() else int(size)
    return PlannedFile(name, size, sha256, sibling.blob_id)


def plan_for_source(source: Any, **kwargs: Any) -> DownloadPlan:
    """A plan for a catalog `WeightSource` (its `repo`, `files` and `patterns`)."""
    return plan_download(
        source.repo,
        tuple(getattr(source, "files", ())),
        tuple(getattr(source, "patterns", ())),
        optional=tuple(getattr(source, "optional_patterns", ())),
        **kwargs,
    )


def cached_plan(
    repo_id: str,
    files: tuple[str, ...],
    patterns: tuple[str, ...],
    revision: str,
    cache: Path,
) -> DownloadPlan | None:
    """The plan Ponder stored when it last downloaded these files at `revision` (no network)."""
    commit = cache_mod.read_ref(cache, repo_id, revision)
    data = cache_mod.read_manifest(cache, repo_id, commit) if commit else None
    if not data:
        return None
    try:
        plan = DownloadPlan.from_json(data)
    except (UnsafeServerDataError, KeyError, TypeError, ValueError, AttributeError):
        return None  # an unsafe or damaged manifest is not a plan
    names = {f.path for f in plan.files}
    if not set(files) <= names:
        return None
    if any(not any(fnmatch.fnmatch(n, p) for n in names) for p in patterns):
        return None
    wanted = set(files) | {n for n in names for p in patterns if fnmatch.fnmatch(n, p)}
    return DownloadPlan(
        plan.repo, plan.commit, tuple(f for f in plan.files if f.path in wanted), revision
    )


def _model_info(repo_id: str, revision: str, endpoint: str, token: str | bool,
                policy: RetryPolicy, sleep: Callable[[float], bool] | None = None):  # fmt: skip
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token, library_name="ponder")

    def call():
        return api.model_info(repo_id, revision=revision, files_metadata=True, timeout=30)

    try:
        return with_retries(call, policy, sleep=sleep)
    except Exception as exc:
        raise translate(exc, repo_id, endpoint, bool(token)) from exc


def _missing_message(repo_id: str, name: str, siblings: dict[str, Any]) -> str:
    similar = sorted(n for n in siblings if n.endswith(Path(name).suffix))[:6]
    hint = f" Files there include: {', '.join(similar)}." if similar else ""
    return f"{repo_id} has no file named {name}.{hint}"
