"""The Hugging Face token: read from HF_TOKEN or the OS keyring, saved only to the keyring.

The token never goes to a file or a log. Where no keyring backend exists (headless Linux
without a Secret Service), saving raises KeyringUnavailableError whose message offers the
HF_TOKEN environment variable instead. Plain-text keyring backends are refused.
"""

from __future__ import annotations

import logging
import os
from typing import Any

SERVICE = "ponder"
USERNAME = "huggingface"
ENV_VARS = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")

log = logging.getLogger(__name__)


class TokenStoreError(Exception):
    """The token could not be saved or removed; `message` is for the user."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


class KeyringUnavailableError(TokenStoreError):
    """No usable OS keyring: the token can only come from the environment."""


def _env_token() -> str | None:
    for name in ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


def guarded_keyring() -> Any:
    """The keyring module, after refusing the fail / null / plain-text backends."""
    import keyring
    from keyring.errors import NoKeyringError

    backend = keyring.get_keyring()
    name = f"{type(backend).__module__}.{type(backend).__name__}"
    if name.startswith(("keyring.backends.fail.", "keyring.backends.null.")):
        raise NoKeyringError(f"no usable keyring backend ({name})")
    if "plaintext" in name.lower() or "keyrings.alt.file" in name:
        raise NoKeyringError(f"refusing a plain-text keyring backend ({name})")
    return keyring


def _unavailable(exc: Exception) -> KeyringUnavailableError:
    return KeyringUnavailableError(
        "This system has no password store (keyring) Ponder can use, so the token cannot be "
        "saved. Set the HF_TOKEN environment variable instead (for example in your shell "
        "profile), then restart Ponder.",
        f"{type(exc).__name__}: {exc}",
    )


def keyring_token() -> str | None:
    """The token saved in the OS keyring, or None (also when there is no keyring)."""
    try:
        return guarded_keyring().get_password(SERVICE, USERNAME) or None
    except Exception as exc:  # any backend failure means "no token from the keyring"
        log.info("no token from the keyring: %s", type(exc).__name__)
        return None


def read_token() -> str | None:
    """HF_TOKEN (or HUGGING_FACE_HUB_TOKEN) from the environment, else the keyring's."""
    return _env_token() or keyring_token()


def token_source() -> str | None:
    """Where read_token() finds the token: "environment", "keyring" or None."""
    if _env_token():
        return "environment"
    return "keyring" if keyring_token() else None


def save_token(token: str) -> None:
    """Save the token in the OS keyring (never elsewhere)."""
    token = token.strip()
    if not token or any(c.isspace() for c in token):
        raise TokenStoreError("That does not look like a Hugging Face token (hf_…).")
    from keyring.errors import KeyringError

    try:
        guarded_keyring().set_password(SERVICE, USERNAME, token)
    except KeyringError as exc:
        if _is_no_keyring(exc):
            raise _unavailable(exc) from None
        raise TokenStoreError("The system keyring refused to save the token.", str(exc)) from None
    log.info("Hugging Face token saved to the keyring (%s)", mask_token(token))


def delete_token() -> bool:
    """Remove the saved token; False when none was saved."""
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        guarded_keyring().delete_password(SERVICE, USERNAME)
    except PasswordDeleteError:
        return False
    except KeyringError as exc:
        if _is_no_keyring(exc):
            raise _unavailable(exc) from None
        raise TokenStoreError("The system keyring refused to delete the token.", str(exc)) from None
    return True


def mask_token(token: str | None) -> str:
    """A token as it may appear in the UI: its prefix and last four characters."""
    if not token:
        return "(none)"
    return f"{token[:3]}…{token[-4:]}" if len(token) > 10 else "…"


def _is_no_keyring(exc: Exception) -> bool:
    from keyring.errors import NoKeyringError

    return isinstance(exc, NoKeyringError)
