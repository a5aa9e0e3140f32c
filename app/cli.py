"""`ponder-cli`: the command line over the same core as the GUI (chat, doctor, plan, download,
serve)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys

# Each name is a module in app/commands with add_parser(subparsers) and run(args) -> int.
COMMANDS = ("chat", "doctor", "plan", "download", "catalog_check", "serve", "compare")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ponder-cli", description="Run reasoning models on your own machine."
    )
    parser.add_argument("--version", action="version", version=f"ponder-cli {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"app.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"app.commands.{name}":
                raise
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("\nStopped.", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_went_away()


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("ponder")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def _reader_went_away() -> int:
    """`ponder-cli … | head`: the reader closed the pipe. Stop quietly (no traceback, and
    none at exit when Python flushes stdout into the closed pipe)."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
