"""Checks on everything the Hub sends that could end up in a path: names, commits, hashes.

A mirror is untrusted: a file name with `../`, a commit that is not a commit, or a "hash"
that names a file elsewhere would make Ponder write, link or delete outside the cache.
Every such value is checked here before it is joined to a path, and every final path is
checked to stay inside the repo's cache folder. Failures raise UnsafeServerDataError, whose
message says in words what was refused and that nothing was written.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

from .errors import InsecureEndpointError, UnsafeServerDataError

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
GIT_SHA1_RE = re.compile(r"^[0-9a-f]{40}$")
REPO_PART_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_NAME = 1000  # bytes of a whole relative path; the Hub's own paths stay far below
MAX_COMPONENT = 255  # bytes of one path component (most file systems' limit)
MAX_REVISION = 200
NOTHING_WRITTEN = "nothing was written"
# Where the Hub keeps file contents: its LFS CDN (cdn-lfs*.hf.co, cdn-lfs*.huggingface.co,
# us.aws.cdn.hf.co …) and the Xet bridge (cas-bridge.xethub.hf.co), per the Hub's firewall
# documentation (huggingface/hub-docs#2628). A download may be redirected there, or to the
# endpoint's own host (or a subdomain of it), and nowhere else.
HUB_STORAGE_DOMAINS = ("hf.co", "huggingface.co")
UNSAFE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt", ".joblib", ".py", ".pyc")


def _shown(value: object) -> str:
    """The value for a message: repr (control characters escaped), cut short."""
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "…"


def check_commit(value: object, repo_id: str = "") -> str:
    """A commit sha from the server: exactly 40 lower-case hex digits."""
    if isinstance(value, str) and COMMIT_RE.match(value):
        return value
    where = f" for {repo_id}" if repo_id else ""
    raise UnsafeServerDataError(
        f"The server sent a commit{where} that is not a commit hash: {_shown(value)}; "
        f"{NOTHING_WRITTEN}. The mirror may be broken or hostile.",
        f"commit={value!r}",
    )


def check_sha256(value: object, path: str = "") -> str:
    """An LFS sha256 from the server: exactly 64 lower-case hex digits."""
    if isinstance(value, str) and SHA256_RE.match(value):
        return value
    raise UnsafeServerDataError(
        f"The server sent a checksum for {path or 'a file'} that is not a sha256: "
        f"{_shown(value)}; {NOTHING_WRITTEN}. The mirror may be broken or hostile.",
        f"sha256={value!r} path={path!r}",
    )


def check_git_sha1(value: object, path: str = "") -> str:
    """A git blob id from the server: exactly 40 lower-case hex digits."""
    if isinstance(value, str) and GIT_SHA1_RE.match(value):
        return value
    raise UnsafeServerDataError(
        f"The server sent a blob id for {path or 'a file'} that is not a git hash: "
        f"{_shown(value)}; {NOTHING_WRITTEN}. The mirror may be broken or hostile.",
        f"blob_id={value!r} path={path!r}",
    )


def name_problem(name: object, limit: int = MAX_NAME) -> str | None:
    """Why `name` is not a safe relative path inside a folder, or None when it is."""
    if not isinstance(name, str) or not name:
        return "it is empty"
    if len(name.encode("utf-8", "surrogatepass")) > limit:
        return "it is too long"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains control characters"
    if "\\" in name:
        return "it contains a backslash"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "it is an absolute path"
    for part in name.split("/"):
        if part in ("", ".", ".."):
            return "it has an empty, '.' or '..' part"
        if len(part.encode("utf-8", "surrogatepass")) > MAX_COMPONENT:
            return "a part of it is too long"
    return None


def check_file_name(name: object) -> str:
    """A file name from the server's listing: a plain relative path, no way out of a folder."""
    problem = name_problem(name)
    if problem is None:
        return str(name)
    raise UnsafeServerDataError(
        f"The server sent a file name that is not safe: {_shown(name)} ({problem}); "
        f"{NOTHING_WRITTEN}. The mirror may be broken or hostile.",
        f"name={name!r}",
    )


def check_revision(revision: object) -> str:
    """A branch, tag or commit name used for `refs/<revision>`: relative, no `..`."""
    problem = name_problem(revision, MAX_REVISION)
    if problem is None:
        return str(revision)
    raise UnsafeServerDataError(
        f"The revision {_shown(revision)} cannot be used as a name in the cache ({problem}); "
        f"{NOTHING_WRITTEN}.",
        f"revision={revision!r}",
    )


def check_repo_id(repo_id: object) -> str:
    """`org/name` (or `name`) as the Hub spells them: no `..`, no `--`, no odd characters."""
    parts = repo_id.split("/") if isinstance(repo_id, str) else []
    ok = 1 <= len(parts) <= 2 and all(
        REPO_PART_RE.match(p) and ".." not in p and "--" not in p and len(p) <= 96 for p in parts
    )
    if ok:
        return str(repo_id)
    raise UnsafeServerDataError(
        f"{_shown(repo_id)} is not a valid Hugging Face repository id (org/name); "
        f"{NOTHING_WRITTEN}.",
        f"repo_id={repo_id!r}",
    )


def check_inside(root: Path, path: Path, what: str = "file") -> Path:
    """`path` itself, after checking that it resolves (its folder's links followed) inside
    `root`; the last component is not followed, so a snapshot symlink may point at a blob."""
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(path.parent)
    if path.name in ("", ".", "..") or not _within(real_parent, real_root):
        raise UnsafeServerDataError(
            f"The {what} {path} would land outside the model's cache folder {root}; "
            f"{NOTHING_WRITTEN}.",
            f"path={path} root={real_root} parent={real_parent}",
        )
    return path


def _within(child: str, root: str) -> bool:
    try:
        return os.path.commonpath([child, root]) == root
    except ValueError:  # different drives on Windows
        return False


def is_loopback(host: str | None) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1): this machine only."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_endpoint(url: str) -> str:
    """The Hub address to download from: https, or plain http on this machine only (tests, a
    local mirror). Raises InsecureEndpointError in words otherwise."""
    parts = urlsplit(url)
    scheme, host = parts.scheme.lower(), parts.hostname
    if host and (scheme == "https" or (scheme == "http" and is_loopback(host))):
        return url
    raise InsecureEndpointError(
        f"Ponder downloads models only over HTTPS, but the Hub address is {_shown(url)} "
        "(HF_ENDPOINT). Plain http can be read and changed by anyone on the network: use an "
        "https:// address.",
        f"endpoint={url!r}",
    )


def redirect_problem(endpoint: str, target: str) -> str | None:
    """Why a download may not follow a redirect from `endpoint`'s files to `target`, or None.

    Allowed: https to the endpoint's host, a subdomain of it, or the Hub's file storage
    (`*.hf.co`, `*.huggingface.co`); plain http only from a loopback endpoint to a
    loopback host (the tests' local Hub)."""
    ours, theirs = urlsplit(endpoint), urlsplit(target)
    host, home = (theirs.hostname or "").lower(), (ours.hostname or "").lower()
    scheme = theirs.scheme.lower()
    if not host:
        return "it has no host"
    if theirs.username or theirs.password:
        return "it carries a user name or password"
    local = is_loopback(home) and is_loopback(host)
    if scheme != "https" and not (scheme == "http" and local):
        return "it is not https"
    storage = any(host == d or host.endswith("." + d) for d in HUB_STORAGE_DOMAINS)
    if local or host == home or host.endswith("." + home) or storage:
        return None
    return f"{host} is not the Hub ({home}) nor its file storage"


def unsafe_file_reason(name: str) -> str | None:
    """Why Ponder never downloads `name` (a pickle or code), or None."""
    lower = name.lower()
    if lower.endswith(".py") or lower.endswith(".pyc"):
        return "it is Python code"
    if lower.endswith(UNSAFE_SUFFIXES):
        return "it is a Python pickle, which can run code when opened"
    return None
