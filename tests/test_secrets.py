"""The Hugging Face token: environment first, keyring second, saved only to the keyring,
a clear message when no keyring exists, and never in a log."""

from __future__ import annotations

import logging

import keyring
import keyring.backends.fail
import pytest

from app.core import secrets
from hub_fixtures import MemoryKeyring

TOKEN = "hf_abcdefghijklmnopqrstuvwxyz"


@pytest.fixture(autouse=True)
def no_env_token(monkeypatch):
    for name in secrets.ENV_VARS:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def no_keyring():
    previous = keyring.get_keyring()
    keyring.set_keyring(keyring.backends.fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


def test_a_saved_token_goes_to_the_keyring_and_is_read_back(memory_keyring, tmp_path):
    assert secrets.read_token() is None and secrets.token_source() is None
    secrets.save_token(f"  {TOKEN}\n")
    assert memory_keyring.store == {("ponder", "huggingface"): TOKEN}
    assert secrets.read_token() == TOKEN and secrets.token_source() == "keyring"
    assert secrets.delete_token() is True
    assert secrets.read_token() is None and secrets.delete_token() is False


def test_the_environment_wins_over_the_keyring(memory_keyring, monkeypatch):
    secrets.save_token(TOKEN)
    monkeypatch.setenv("HF_TOKEN", "hf_fromtheenvironment")
    assert secrets.read_token() == "hf_fromtheenvironment"
    assert secrets.token_source() == "environment"


def test_without_a_keyring_saving_says_to_use_hf_token(no_keyring):
    with pytest.raises(secrets.KeyringUnavailableError) as err:
        secrets.save_token(TOKEN)
    assert "HF_TOKEN" in err.value.message
    assert TOKEN not in err.value.message + err.value.detail
    assert secrets.read_token() is None  # reading never raises


def test_without_a_keyring_the_environment_still_works(no_keyring, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    assert secrets.read_token() == TOKEN


def test_a_plain_text_keyring_is_refused():
    class PlaintextKeyring(MemoryKeyring):
        pass

    previous = keyring.get_keyring()
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    try:
        with pytest.raises(secrets.KeyringUnavailableError):
            secrets.save_token(TOKEN)
        assert backend.store == {}
    finally:
        keyring.set_keyring(previous)


def test_nonsense_is_not_saved(memory_keyring):
    for bad in ("", "   ", "hf_with space"):
        with pytest.raises(secrets.TokenStoreError):
            secrets.save_token(bad)
    assert memory_keyring.store == {}


def test_the_token_never_reaches_the_log(memory_keyring, caplog):
    caplog.set_level(logging.DEBUG)
    secrets.save_token(TOKEN)
    secrets.read_token()
    assert TOKEN not in caplog.text
    assert secrets.mask_token(TOKEN) == "hf_…wxyz"
    assert secrets.mask_token(None) == "(none)"
