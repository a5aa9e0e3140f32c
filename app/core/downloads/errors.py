"""Typed download failures: each carries a message for the user and detail for the log."""

from __future__ import annotations


class DownloadError(Exception):
    """Base class: `message` is for people, `detail` (never holding a token) for the log."""

    kind = "error"

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class OfflineError(DownloadError):
    """Offline mode is on (HF_HUB_OFFLINE) or the Hub cannot be reached at all."""

    kind = "offline"


class RepoNotFoundError(DownloadError):
    """The repository (or the revision) does not exist, or is private and hidden from us."""

    kind = "repo_not_found"


class RemoteFileNotFoundError(DownloadError):
    """The repository exists but a requested file does not."""

    kind = "file_not_found"


class TokenRequiredError(DownloadError):
    """The repo is gated or private: a Hugging Face token (with access) is needed."""

    kind = "token_required"

    def __init__(self, message: str, detail: str = "", *, gated: bool, had_token: bool) -> None:
        super().__init__(message, detail)
        self.gated = gated
        self.had_token = had_token


class DiskFullError(DownloadError):
    """Not enough free space: refused before starting, or the disk filled while writing."""

    kind = "disk_full"

    def __init__(self, message: str, detail: str = "", *, needed: int = 0, free: int = 0) -> None:
        super().__init__(message, detail)
        self.needed = needed
        self.free = free


class ChecksumMismatchError(DownloadError):
    """A downloaded file's hash differs from the Hub's metadata; the bad data was deleted."""

    kind = "checksum_mismatch"

    def __init__(self, message: str, detail: str = "", *, path: str = "") -> None:
        super().__init__(message, detail)
        self.path = path


class ServerError(DownloadError):
    """The Hub kept failing (5xx, resets, timeouts, stalls) after all retries."""

    kind = "server_error"


class DownloadBusyError(DownloadError):
    """Another process is downloading the same file into the same cache right now."""

    kind = "busy"


class InsecureEndpointError(DownloadError):
    """The Hub address is plain http (not loopback), or a redirect leads away from the Hub's
    own file storage: refused before any request is sent there."""

    kind = "insecure_endpoint"


class UnsafeFileError(DownloadError):
    """A requested file is a Python pickle or code (`.bin`, `.pt`, `.py`, …): never fetched."""

    kind = "unsafe_file"


class UnsafeServerDataError(DownloadError):
    """The server sent a name, commit or hash that could reach outside the cache, or that
    contradicts what it listed: refused before anything touched the disk."""

    kind = "unsafe_server_data"


def human_size(n: float) -> str:
    """Bytes as people read them, in decimal units (GB = 10^9 bytes, as the Hub shows)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover
