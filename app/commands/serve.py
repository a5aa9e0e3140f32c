"""`ponder-cli serve`: the installed models behind an OpenAI-compatible server on this computer.

Listens on 127.0.0.1 unless `--host` names another address; then an API key is required,
and one is generated and printed when none is given. `--model` adds model files or MLX
folders beside the installed ones (`--only`: serve just those). Point clients at the base
URL it prints (http://127.0.0.1:PORT/v1). Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

KEY_ENV = "PONDER_SERVE_API_KEY"


def add_parser(sub: Any) -> None:
    from app.serve import DEFAULT_HOST, DEFAULT_PORT

    p = sub.add_parser("serve", help="serve the installed models over the OpenAI API")
    p.add_argument("--host", default=DEFAULT_HOST,
                   help=f"address to listen on ({DEFAULT_HOST}: this computer only)")  # fmt: skip
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port ({DEFAULT_PORT})")
    p.add_argument("--api-key", default=os.environ.get(KEY_ENV) or None, metavar="KEY",
                   help=f"key clients must send (also from ${KEY_ENV}); required, and "
                   "generated if missing, on an address other than 127.0.0.1")  # fmt: skip
    p.add_argument("--model", action="append", default=[], metavar="PATH",
                   help="also serve this .gguf file or MLX folder (repeatable)")  # fmt: skip
    p.add_argument("--only", action="store_true",
                   help="serve only the --model paths, not the installed models")  # fmt: skip
    p.add_argument("--cors", action="append", default=[], metavar="ORIGIN",
                   help="let web pages from ORIGIN call the server ('*': any; off by "
                   "default)")  # fmt: skip
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.core.engine import EngineClient
    from app.serve.catalog import ModelCatalog, installed_models
    from app.serve.http import LocalServer, ServeConfig, is_loopback, new_api_key
    from app.serve.runner import ServeRunner

    key = args.api_key
    generated = False
    if not is_loopback(args.host) and not key:
        key, generated = new_api_key(), True
    config = ServeConfig(args.host, args.port, key, list(args.cors))
    try:
        catalog = ModelCatalog(args.model, discover=None if args.only else installed_models)
    except ValueError as exc:
        print(f"ponder-cli: {exc}", file=sys.stderr)
        return 2
    with EngineClient() as client:
        runner = ServeRunner(client, catalog)
        try:
            server = LocalServer(runner, config)
        except ValueError as exc:
            print(f"ponder-cli: {exc}", file=sys.stderr)
            return 2
        models = catalog.models()
        print(f"Ponder serves {len(models)} model{'s' if len(models) != 1 else ''} "
              f"(OpenAI-compatible). Ctrl-C stops.", flush=True)  # fmt: skip
        for m in models[:20]:
            print(f"  {m.id}", flush=True)
        try:
            server.start()
        except OSError as exc:
            print(f"ponder-cli: {exc}", file=sys.stderr)
            return 1
        if generated:
            print(f"API key (clients send it as the key): {key}", flush=True)
        print(f"Base URL: {server.base_url}", flush=True)
        _wait_for_signal(server)
    return 0


def _wait_for_signal(server: Any) -> None:
    """Serve until Ctrl-C or SIGTERM, then stop (a streaming answer is cancelled)."""
    import signal
    import time

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        while server.running:
            time.sleep(0.2)
    except KeyboardInterrupt:
        print("\nStopping.", file=sys.stderr)
    finally:
        server.stop()
