"""Security checks (issue 20), each through the real code paths:

(a) chat templates that try server-side template injection run nothing (real engine process);
(b) the Hugging Face token and API keys appear in no file Ponder writes, no log record, no
    exception text and not in the engine process's environment;
(c) no pickles and no model code: refused in MLX folders, never planned for download;
(d) downloads only over HTTPS to the configured endpoint, pinned to a commit, redirects only
    to the Hub's own file storage, the token only to the Hub's origin;
(e) the window opens no listening socket (nor does its engine process).
"""

from __future__ import annotations

import json
import logging
import os
import time
import traceback
from pathlib import Path

import pytest

from app.core.downloads import (
    InsecureEndpointError,
    UnsafeFileError,
    UnsafeServerDataError,
    download,
    is_installed,
    plan_download,
    safety,
)
from hub_fixtures import FAST, payload

pytestmark = pytest.mark.faults

QUESTION = [{"role": "user", "content": "What is 2+2?"}]
TOKEN = "hf_PONDERTESTTOKENdo5not4leak3me2anywhere1"
API_KEY = "sk-PONDERTESTAPIKEYnever9in8a7file6"
OTHER_SECRETS = {
    "GITHUB_TOKEN": "ghp_PONDERTESTGITHUBTOKEN0000",
    "AWS_SECRET_ACCESS_KEY": "PONDERTESTAWSSECRET0000",
    "ANTHROPIC_API_KEY": "sk-ant-PONDERTESTANTHROPIC0000",
    "OPENAI_API_KEY": API_KEY,
}


# -- (a) template injection ------------------------------------------------------------------


def ssti_templates(marker: Path) -> dict[str, str]:
    """Templates that try to run `touch marker`: CVE-2024-34359 and variants."""
    cmd = f"touch {marker}"
    run = f".popen('{cmd}').read()"
    return {
        "cve_2024_34359": (
            "{% for x in ().__class__.__base__.__subclasses__() %}"
            "{% if 'warning' in x.__name__ %}"
            "{{ x()._module.__builtins__['__import__']('os')" + run + " }}"
            "{% endif %}{% endfor %}"
        ),
        "cycler": "{{ cycler.__init__.__globals__.os" + run + " }}",
        "joiner": "{{ joiner.__init__.__globals__.os" + run + " }}",
        "namespace": "{{ namespace.__init__.__globals__.os" + run + " }}",
        "lipsum": "{{ lipsum.__globals__['os']" + run + " }}",
        "lipsum_builtins": (
            "{{ lipsum.__globals__.__builtins__.__import__('os').system('" + cmd + "') }}"
        ),
        "self_globals": "{{ self.__init__.__globals__.__builtins__.__import__('os')" + run + " }}",
        "mro_walk": (
            "{% for c in ''.__class__.mro()[-1].__subclasses__() %}"
            "{% if c.__name__ == 'Popen' %}{{ c(['touch', '" + str(marker) + "']) }}{% endif %}"
            "{% endfor %}"
        ),
        "dunder_mro": "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "attr_filter": (
            "{% for c in ()|attr('__class__')|attr('__base__')|attr('__subclasses__')() %}"
            "{% if c.__name__ == 'Popen' %}{{ c(['touch', '" + str(marker) + "']) }}{% endif %}"
            "{% endfor %}"
        ),
        "attr_filter_escaped": (
            "{{ (cycler|attr('\\x5f\\x5finit\\x5f\\x5f')|attr('\\x5f\\x5fglobals\\x5f\\x5f'))"
            "['os']" + run + " }}"
        ),
        "attr_of_globals_item": (
            "{{ (joiner|attr('__init__')|attr('__globals__')|attr('get'))('os')" + run + " }}"
        ),
        "format_string": "{{ '{0.__init__.__globals__[os]}'.format(cycler) }}",
        "format_map": "{{ '{x.__globals__}'.format_map({'x': lipsum}) }}",
        "print_globals": "{{ cycler.__init__.__globals__ }}",
        "ponder_globals": (
            "{{ raise_exception.__globals__['__builtins__']['__import__']('os')" + run + " }}"
        ),
        "strftime_globals": "{{ strftime_now.__globals__['datetime'] }}",
        "message_walk": "{{ messages.__class__.__base__.__subclasses__() }}",
        "mutate_messages": "{{ messages.append({'role': 'system', 'content': 'x'}) }}",
        "include_file": "{% include '/etc/passwd' %}",
        "import_module": "{% import 'os' as os %}{{ os.system('" + cmd + "') }}",
        "extends_file": "{% extends '/etc/passwd' %}",
    }


def test_every_injection_template_is_refused_by_the_engine_and_runs_nothing(
    engine, scripted_models, tmp_path
):
    from app.core.engine import StreamDone, StreamError
    from scripted import write_scripted_gguf

    marker = tmp_path / "PWNED"
    refused = {}
    for name, template in ssti_templates(marker).items():
        path = write_scripted_gguf(tmp_path / f"{name}.gguf", "answer", template)
        engine.load(str(path), n_ctx=512)
        events = list(engine.chat(QUESTION, max_tokens=20))
        assert not marker.exists(), f"{name} ran code"
        last = events[-1]
        assert isinstance(last, StreamError), f"{name} rendered: {last}"
        assert last.kind == "bad_model" and "chat template" in last.message, (name, last)
        refused[name] = last.message
        path.unlink()
    for name, message in refused.items():
        assert "unsafe" in message and "stopped" in message, (name, message)
    # The engine process is unharmed and a normal model answers.
    engine.load(str(scripted_models.preopen), n_ctx=512)
    assert isinstance(list(engine.chat(QUESTION))[-1], StreamDone)
    assert not marker.exists()


# -- (b) secrets never written ---------------------------------------------------------------


class _Collect(logging.Handler):
    """Every record from every logger, formatted with its arguments."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(record.getMessage())
        except Exception:  # noqa: BLE001 - a bad record is still searched by its parts
            self.lines.append(f"{record.msg!r} {record.args!r}")
        if record.exc_info:
            self.lines.append("".join(traceback.format_exception(*record.exc_info)))


def _secret_hits(text: str | bytes) -> list[str]:
    data = text.encode("utf-8", "replace") if isinstance(text, str) else text
    secrets_ = [TOKEN, *OTHER_SECRETS.values()]
    return [s[:12] for s in secrets_ if s.encode() in data]


def test_the_token_and_keys_appear_in_no_file_log_error_or_engine_environment(
    hub, hf_cache, memory_keyring, tmp_path, monkeypatch
):
    """Main flows under a temp HOME/XDG: save the token, a gated download with the token from
    the keyring, failing downloads (refused token, missing repo/file, wrong bytes, a failing
    server), a chat through the engine with the downloaded model saved to SQLite, a saved
    remote server with a key and its failing connection test and load. Then every file under
    the temp root, every log record, every error text and crash report, and the engine's
    /proc environ and command line are searched for the secrets."""
    import tempfile

    from huggingface_hub import constants

    from app.core import logs, secrets
    from app.core.chat_store import ChatStore
    from app.core.downloads import DownloadError
    from app.core.engine import EngineClient, EngineError, StreamDone, StreamError, TextDelta
    from app.core.remote import RemoteModel, check_connection, load_remote, save_remote
    from scripted import write_scripted_gguf

    root = tmp_path / "root"
    for name, sub in {"HOME": "home", "XDG_CONFIG_HOME": "config", "XDG_DATA_HOME": "data",
                      "XDG_CACHE_HOME": "cache", "XDG_STATE_HOME": "state",
                      "TMPDIR": "tmp", "HF_HOME": "hf"}.items():  # fmt: skip
        (root / sub).mkdir(parents=True)
        monkeypatch.setenv(name, str(root / sub))
    monkeypatch.delenv("PONDER_LOG_DIR", raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(root / "tmp"))
    cache = root / "hf" / "hub"
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    collect = _Collect()
    logging.getLogger().addHandler(collect)
    old_level = logging.getLogger().level
    errors: list[str] = []

    def record(exc: BaseException) -> None:
        errors.append(f"{exc}\n{exc!r}\n{getattr(exc, 'detail', '')}")
        errors.append("".join(traceback.format_exception(exc)))
        logs.write_crash_report(type(exc), exc, exc.__traceback__)

    (tmp_path / "src").mkdir()
    model = write_scripted_gguf(tmp_path / "src" / "model.gguf", "answer")
    client = None
    try:
        log_file = logs.setup_logging(logging.DEBUG)
        assert str(log_file).startswith(str(root))
        secrets.save_token(TOKEN)
        hub.tokens.add(TOKEN)
        repo = "ponder-test/Gated-R1-GGUF"
        hub.add_repo(repo, {"model.gguf": model, "config.json": b"{}"}, gated=True)
        plan = plan_download(repo, ("model.gguf", "config.json"), endpoint=hub.url)
        result = download(plan, endpoint=hub.url, policy=FAST)
        assert result.status == "complete" and is_installed(plan)
        assert any(path.startswith("/api/") for path, _ in hub.authorized)
        assert all(not path.startswith("/cdn/") for path, _ in hub.authorized)

        hub.add_repo("ponder-test/Bad-GGUF", {"bad.gguf": payload(300_000)})
        hub.substitute("ponder-test/Bad-GGUF", "bad.gguf")
        failing = [
            lambda: plan_download("ponder-test/Nope", ("x.gguf",), endpoint=hub.url),
            lambda: plan_download(repo, ("missing.gguf",), endpoint=hub.url),
            lambda: download(plan_download("ponder-test/Bad-GGUF", ("bad.gguf",),
                                           endpoint=hub.url), endpoint=hub.url, policy=FAST),
        ]  # fmt: skip
        for call in failing:
            with pytest.raises(DownloadError) as err:
                call()
            record(err.value)
        hub.fail_next(503, count=50, where="api")
        with pytest.raises(DownloadError) as err:
            plan_download(repo, ("model.gguf",), endpoint=hub.url, policy=FAST)
        record(err.value)
        hub.clear_faults()
        hub.tokens.clear()  # the token is refused now
        with pytest.raises(DownloadError) as err:
            plan_download(repo, ("model.gguf",), endpoint=hub.url, policy=FAST)
        record(err.value)

        # A chat through the engine process, saved to SQLite; secrets in the environment.
        for name, value in {"HF_TOKEN": TOKEN, **OTHER_SECRETS}.items():
            monkeypatch.setenv(name, value)
        store = ChatStore(root / "data" / "chats.sqlite3")
        client = EngineClient(load_timeout_s=120)
        client.load(str(result.main_path), n_ctx=512)
        pid = client.pid
        assert pid
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        events = list(client.chat(QUESTION))
        assert isinstance(events[-1], StreamDone)
        answer = "".join(e.answer for e in events if isinstance(e, TextDelta))
        assert answer.strip()
        conv = store.create_conversation(model=str(result.main_path))
        store.add_message(conv.id, "user", QUESTION[0]["content"])
        store.add_message(conv.id, "assistant", answer, raw=events[-1].raw)

        # A saved server with a key; its failing connection test and load.
        entry = RemoteModel(base_url=f"{hub.url}/v1", model="r1")
        assert save_remote(entry, api_key=API_KEY) is None
        report = check_connection(entry.base_url, api_key=API_KEY, timeout_s=5)
        assert not report.ok
        errors.append(f"{report.message}\n{report.detail}")
        try:
            load_remote(client, entry)  # the key goes to the engine through its pipe
        except EngineError as exc:
            record(exc)
        else:
            failed = [e for e in client.chat(QUESTION) if isinstance(e, StreamError)]
            assert failed, "a chat against a server without /v1 cannot succeed"
            errors.extend(f"{e.message}\n{e.detail}" for e in failed)
        environ_after = Path(f"/proc/{client.pid}/environ").read_bytes() if client.pid else b""
        store.close()
    finally:
        if client is not None:
            client.close()
        logging.getLogger().removeHandler(collect)
        for h in [h for h in logging.getLogger().handlers if getattr(h, "_ponder", False)]:
            logging.getLogger().removeHandler(h)
            h.close()
        logging.getLogger().setLevel(old_level)

    assert _secret_hits(environ) == [] and _secret_hits(environ_after) == []
    assert _secret_hits(cmdline) == []
    assert b"PONDERTEST" not in environ
    written = [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    names = {p.name for p in written}
    assert "chats.sqlite3" in names and "remote_models.json" in names and "ponder.log" in names
    assert any(n.startswith("crash-") for n in names)
    leaks = {str(p.relative_to(root)): _secret_hits(p.read_bytes()) for p in written}
    assert {k: v for k, v in leaks.items() if v} == {}
    assert [e for e in errors if _secret_hits(e)] == []
    assert [line[:200] for line in collect.lines if _secret_hits(line)] == []
    assert len(collect.lines) > 20  # DEBUG records from Ponder, httpx and the hub client


# -- (c) no pickles, no model code ---------------------------------------------------------


@pytest.fixture
def mlx_folder(tmp_path):
    pytest.importorskip("mlx_lm")
    from scripted_mlx import write_scripted_mlx

    return write_scripted_mlx(tmp_path / "model", "answer")


@pytest.mark.parametrize("name", ["pytorch_model.bin", "training_args.pt", "extra/weights.pkl",
                                  "optimizer.pth"])  # fmt: skip
def test_an_mlx_folder_holding_a_pickle_is_refused_in_words(mlx_folder, name):
    from backends.base import EngineFailure
    from backends.mlx_check import check_model_folder

    check_model_folder(str(mlx_folder))  # the clean folder passes
    pickle_file = mlx_folder / name
    pickle_file.parent.mkdir(parents=True, exist_ok=True)
    pickle_file.write_bytes(b"\x80\x04K\x01.")
    with pytest.raises(EngineFailure) as err:
        check_model_folder(str(mlx_folder))
    assert err.value.kind == "bad_model"
    assert "pickle" in err.value.message and Path(name).name in err.value.message


@pytest.mark.parametrize("where", ["config.json", "tokenizer_config.json"])
@pytest.mark.parametrize("key", ["auto_map", "model_file"])
def test_an_mlx_folder_asking_for_its_own_code_is_refused_and_the_code_never_runs(
    engine, mlx_folder, where, key
):
    from app.core.engine import EngineError

    config = json.loads((mlx_folder / where).read_text()) if (mlx_folder / where).exists() else {}
    config[key] = {"AutoTokenizer": ["evil.Tok", None]} if key == "auto_map" else "evil.py"
    (mlx_folder / where).write_text(json.dumps(config))
    (mlx_folder / "evil.py").write_text(
        "import pathlib\npathlib.Path(__file__).with_name('PWNED').touch()\n"
    )
    with pytest.raises(EngineError) as err:
        engine.load(str(mlx_folder), engine="mlx")
    assert err.value.kind == "bad_model" and "trust_remote_code" in err.value.message
    assert key in err.value.message
    assert not (mlx_folder / "PWNED").exists()


REPO = "ponder-test/Mixed-Formats"
MIXED = {
    "config.json": b"{}",
    "model.safetensors": b"x" * 1000,
    "pytorch_model.bin": b"\x80\x04K\x01.",
    "training_args.bin": b"\x80\x04K\x01.",
    "optimizer.pt": b"\x80\x04K\x01.",
    "rng_state.pth": b"\x80\x04K\x01.",
    "scaler.pkl": b"\x80\x04K\x01.",
    "modeling_evil.py": b"import os\n",
    "tokenizer.json": b"{}",
}


def test_downloads_never_plan_a_pickle_or_code(hub, hf_cache):
    hub.add_repo(REPO, MIXED)
    plan = plan_download(REPO, patterns=("*",), endpoint=hub.url, token=False)
    assert sorted(f.path for f in plan.files) == [
        "config.json", "model.safetensors", "tokenizer.json"
    ]  # fmt: skip
    plan = plan_download(REPO, ("config.json",), optional=("*.bin", "*.py"), endpoint=hub.url,
                         token=False)  # fmt: skip
    assert [f.path for f in plan.files] == ["config.json"]
    for files, patterns in ((("pytorch_model.bin",), ()), ((), ("*.pt",)),
                            (("modeling_evil.py",), ())):  # fmt: skip
        with pytest.raises(UnsafeFileError) as err:
            plan_download(REPO, files, patterns, endpoint=hub.url, token=False)
        assert "does not download" in err.value.message
        assert "pickle" in err.value.message or "code" in err.value.message
    assert not any(path.startswith(("/cdn", f"/{REPO}/resolve")) for _, path, _ in hub.requests)


def test_no_catalog_pattern_can_pick_a_pickle():
    from app.core import catalog
    from app.core.downloads.safety import UNSAFE_SUFFIXES

    cat = catalog.load_catalog()
    sources = [catalog.find_source(m.id, q, cat) for m in cat.models for q in m.quant_names]
    assert len(sources) > 10
    for source in sources:
        for pattern in (*source.files, *source.patterns, *source.optional_patterns):
            assert not pattern.lower().endswith(UNSAFE_SUFFIXES), (source.repo, pattern)
            assert pattern not in ("*", "**", "*.*"), (source.repo, pattern)


# -- (d) https, pinned, redirects ----------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["http://hub.example.com", "http://10.0.0.5:8080",
                                      "ftp://huggingface.co", "huggingface.co",
                                      "http://127.0.0.1.evil.example"])  # fmt: skip
def test_a_plain_http_endpoint_other_than_loopback_is_refused_in_words(endpoint, hf_cache):
    with pytest.raises(InsecureEndpointError) as err:
        plan_download("org/model", ("m.gguf",), endpoint=endpoint, token=False)
    assert "only over HTTPS" in err.value.message and "https://" in err.value.message


def test_hf_endpoint_from_the_environment_is_checked_too(hf_cache, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "ENDPOINT", "http://mirror.example.org")
    with pytest.raises(InsecureEndpointError):
        plan_download("org/model", ("m.gguf",), token=False)


@pytest.mark.parametrize(
    "url",
    [
        "https://huggingface.co",
        "https://hf-mirror.com/",
        "http://127.0.0.1:8080",
        "http://localhost:1",
        "http://[::1]:9",
    ],
)
def test_https_and_loopback_endpoints_are_accepted(url):  # fmt: skip
    assert safety.check_endpoint(url) == url


@pytest.mark.parametrize(
    "target, ok",
    [
        ("https://cdn-lfs.hf.co/repos/x", True),
        ("https://cdn-lfs-us-1.hf.co/repos/x", True),
        ("https://cdn-lfs.huggingface.co/repos/x", True),
        ("https://cas-bridge.xethub.hf.co/xet-bridge-us/x", True),
        ("https://us.aws.cdn.hf.co/x", True),
        ("https://huggingface.co/api/resolve-cache/x", True),
        ("http://cdn-lfs.hf.co/repos/x", False),  # not https
        ("https://evil.example/x", False),
        ("https://cdn-lfs.hf.co.evil.example/x", False),
        ("https://evilhf.co/x", False),
        ("https://user:pw@cdn-lfs.hf.co/x", False),
        ("http://127.0.0.1:9/x", False),  # a loopback target from a real endpoint
        ("file:///etc/passwd", False),
    ],
)
def test_redirects_go_only_to_the_hub_and_its_file_storage(target, ok):
    assert (safety.redirect_problem("https://huggingface.co", target) is None) is ok


def test_a_mirror_may_redirect_to_its_own_subdomain_only():
    assert safety.redirect_problem("https://hf-mirror.com", "https://cdn.hf-mirror.com/x") is None
    assert safety.redirect_problem("https://hf-mirror.com", "https://other.com/x") is not None


@pytest.mark.parametrize("location", ["https://evil.example/cdn/{sha256}",
                                      "https://cdn-lfs.hf.co.evil.example/{sha256}",
                                      "file:///etc/passwd"])  # fmt: skip
def test_a_redirect_away_from_the_hub_is_refused_before_it_is_requested(hub, hf_cache, location):
    hub.add_repo("org/Tiny-GGUF", {"m.gguf": payload(200_000)})
    plan = plan_download("org/Tiny-GGUF", ("m.gguf",), endpoint=hub.url, token=False)
    hub.cdn_location = location
    t0 = time.monotonic()
    with pytest.raises(UnsafeServerDataError) as err:
        download(plan, endpoint=hub.url, token=False, policy=FAST)
    assert time.monotonic() - t0 < 5
    assert "will not follow" in err.value.message and "nothing was written" in err.value.message
    assert not list(hf_cache.rglob("*.incomplete")) and not is_installed(plan)
    assert not [p for _, p, _ in hub.requests if p.startswith("/cdn/")]


def test_downloads_are_pinned_to_the_commit_and_the_token_stays_with_the_hub(hub, hf_cache):
    hub.tokens.add(TOKEN)
    repo = "org/Gated-GGUF"
    commit = hub.add_repo(repo, {"m.gguf": payload(300_000), "config.json": b"{}"}, gated=True)
    plan = plan_download(repo, patterns=("*",), endpoint=hub.url, token=TOKEN)
    assert plan.commit == commit
    hub.add_repo(repo, {"m.gguf": payload(300_000, seed=9)}, gated=True)  # main moves on
    download(plan, endpoint=hub.url, token=TOKEN, policy=FAST)
    resolves = [p for _, p, _ in hub.requests if "/resolve/" in p]
    assert resolves and all(f"/resolve/{commit}/" in p for p in resolves)
    assert is_installed(plan, verify=True)
    cdn = [p for _, p, _ in hub.requests if p.startswith("/cdn/")]
    assert cdn and not [p for p, _ in hub.authorized if p.startswith("/cdn/")]
    assert [a for _, a in hub.authorized] and {a for _, a in hub.authorized} == {f"Bearer {TOKEN}"}


# -- (e) no listening socket ----------------------------------------------------------------


def _listening(pid: int) -> list:
    import psutil

    return [c for c in psutil.Process(pid).net_connections(kind="inet") if c.status == "LISTEN"]


def test_the_window_and_its_engine_open_no_listening_socket(qtbot, tmp_path, scripted_models):
    pytest.importorskip("llama_cpp")
    from PySide6.QtCore import Qt

    from app.core.chat_store import ChatStore
    from app.core.engine import EngineClient
    from app.ui.main_window import MainWindow

    client = EngineClient(load_timeout_s=120)
    w = MainWindow(ChatStore(tmp_path / "chats.sqlite3"), client, n_ctx=2048)
    qtbot.addWidget(w)
    w.show()
    try:
        with qtbot.waitSignal(w.controller.sig_model, timeout=60_000) as blocker:
            w.controller.load_model(str(scripted_models.preopen))
        assert blocker.args[0]
        qtbot.keyClicks(w.composer.input, "What is 2+2?")
        qtbot.keyClick(w.composer.input, Qt.Key.Key_Return)
        qtbot.waitUntil(lambda: not w.controller.busy, timeout=30_000)
        engine_pid = client.pid
        assert engine_pid and engine_pid != os.getpid()
        assert _listening(os.getpid()) == []
        assert _listening(engine_pid) == []
    finally:
        w.close()
        w.store.close()
