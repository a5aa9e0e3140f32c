"""Talking to the Hub through huggingface_hub: token, endpoint, retries, typed errors.

huggingface_hub is imported inside the functions (it costs ~0.2 s) so it stays off start-up.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .errors import (
    DownloadError,
    OfflineError,
    RemoteFileNotFoundError,
    RepoNotFoundError,
    ServerError,
    TokenRequiredError,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT_STATUS = (408, 429, 500, 502, 503, 504)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts per failure streak, back-off, and the stall timeout."""

    attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 30.0
    stall_timeout_s: float = 30.0
    connect_timeout_s: float = 15.0

    def delay(self, attempt: int) -> float:
        return min(self.max_delay_s, self.base_delay_s * 2 ** max(0, attempt - 1))


def resolve_token(token: str | bool | None) -> str | bool:
    """An explicit token, False for anonymous, or (None) HF_TOKEN / the OS keyring."""
    if token is not None:
        return token
    from app.core.secrets import read_token

    return read_token() or False


def resolve_endpoint(endpoint: str | None) -> str:
    """`endpoint`, else HF_ENDPOINT / huggingface.co; https only (plain http on loopback
    for a local mirror or the tests), else InsecureEndpointError in words."""
    from .safety import check_endpoint

    if endpoint:
        return check_endpoint(endpoint.rstrip("/"))
    from huggingface_hub import constants

    return check_endpoint(constants.ENDPOINT.rstrip("/"))


def is_offline() -> bool:
    from huggingface_hub import constants

    return bool(constants.is_offline_mode())


UNRESOLVED_TEXTS = (
    "Name or service not known",
    "nodename nor servname provided",
    "Temporary failure in name resolution",
    "No address associated with hostname",
    "getaddrinfo failed",
)


def is_name_unresolved(exc: BaseException) -> bool:
    """True when the failure (or one it came from) is a host name that does not resolve:
    no network or no DNS. Retrying that only makes the user wait, so it fails at once."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, socket.gaierror):
            return True
        if any(text in str(cur) for text in UNRESOLVED_TEXTS):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def is_transient(exc: BaseException) -> bool:
    """Timeouts, resets, dropped connections and 5xx/408/429 answers are worth retrying;
    a name that does not resolve (offline) is not."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError

    if is_name_unresolved(exc):
        return False
    if isinstance(exc, httpx2.TimeoutException | httpx2.NetworkError | httpx2.RemoteProtocolError):
        return True
    if isinstance(exc, HfHubHTTPError) and exc.response is not None:
        return exc.response.status_code in TRANSIENT_STATUS
    return isinstance(exc, ConnectionError | TimeoutError)


def translate(
    exc: BaseException, repo_id: str, endpoint: str, had_token: bool, path: str | None = None
) -> DownloadError:
    """A huggingface_hub / httpx failure as a typed error with a message for the user."""
    import httpx2
    from huggingface_hub import errors as hf

    if isinstance(exc, DownloadError):
        return exc
    detail = f"{type(exc).__name__}: {exc}".replace("\n", " ")[:500]
    page = f"{endpoint}/{repo_id}"
    if isinstance(exc, hf.OfflineModeIsEnabled):
        return OfflineError(
            "Offline mode is on (HF_HUB_OFFLINE), so nothing can be downloaded. Unset it to "
            "download; models already downloaded still work.",
            detail,
        )
    if isinstance(exc, hf.GatedRepoError):
        if had_token:
            msg = (
                f"{repo_id} is gated and your token has no access yet: accept the terms on "
                f"{page} with the same account, then try again."
            )
        else:
            msg = (
                f"{repo_id} is gated: accept its terms on {page}, then add a Hugging Face "
                "token (in Settings, or the HF_TOKEN environment variable)."
            )
        return TokenRequiredError(msg, detail, gated=True, had_token=had_token)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if isinstance(exc, hf.RevisionNotFoundError):
        return RepoNotFoundError(f"{repo_id} has no such revision (branch, tag or commit).", detail)
    if isinstance(exc, hf.EntryNotFoundError):
        return RemoteFileNotFoundError(f"{repo_id} has no file named {path or '?'}.", detail)
    if status in (401, 403):
        if had_token:
            msg = (
                f"Your Hugging Face token was refused for {repo_id}: check that it is valid "
                "and has read access to this repository."
            )
        else:
            msg = (
                f"{repo_id} is private or gated, or does not exist: if you have access, "
                "add a Hugging Face token (in Settings, or HF_TOKEN)."
            )
        return TokenRequiredError(msg, detail, gated=False, had_token=had_token)
    if isinstance(exc, hf.RepositoryNotFoundError) or status == 404:
        return RepoNotFoundError(
            f"There is no model repository {repo_id} on {endpoint} (check the name).", detail
        )
    if is_name_unresolved(exc):
        return OfflineError(
            f"Can't reach {endpoint}: its name does not resolve, so this computer seems to be "
            "offline (or DNS is not working). Models already downloaded still work.",
            detail,
        )
    if isinstance(exc, httpx2.ConnectError | ConnectionRefusedError):
        return OfflineError(
            f"Can't reach {endpoint}: check your internet connection (or HF_ENDPOINT).", detail
        )
    if is_transient(exc):
        where = f"{path} from {repo_id}" if path else repo_id
        return ServerError(
            f"The Hub kept failing while getting {where} ({detail[:120]}); try again later. "
            "Data already downloaded is kept.",
            detail,
        )
    return DownloadError(f"Download failed: {detail[:200]}", detail)


def with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    sleep: Callable[[float], bool] | None = None,
) -> T:
    """Run `call`, retrying transient failures with exponential back-off, else re-raise.

    `sleep(seconds)` returns True to give up early (a pause during the back-off).
    """
    attempt = 0
    while True:
        try:
            return call()
        except Exception as exc:
            attempt += 1
            if not is_transient(exc) or attempt >= policy.attempts:
                raise
            delay = policy.delay(attempt)
            log.info("transient failure (attempt %d), retrying in %.1fs: %s", attempt, delay, exc)
            if on_retry:
                on_retry(attempt, delay, exc)
            if sleep is not None:
                if sleep(delay):
                    raise
            else:
                time.sleep(delay)


def session() -> Any:
    """huggingface_hub's shared httpx client (offline guard and request ids included)."""
    from huggingface_hub.utils import get_session

    return get_session()


def request_headers(token: str | bool) -> dict[str, str]:
    from huggingface_hub.utils import build_hf_headers

    headers = build_hf_headers(token=token, library_name="ponder")
    headers["Accept-Encoding"] = "identity"  # byte ranges must address the file itself
    return headers
