"""`ponder-cli download MODEL_ID --quant Q` (or `--repo R --file F`): fetch weights into the
Hugging Face cache with a progress bar on stderr.

Ctrl-C pauses cleanly (the partial data stays on disk); running the same command again
resumes. `--list` shows what the model manager lists (the Hugging Face cache, LM Studio,
Ollama, files added in the window; works offline). Without `--quant`, a catalog model is
fetched at the quant recommended for this computer.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

BAR_WIDTH = 28


def add_parser(sub: Any) -> None:
    p = sub.add_parser("download", help="download a model's weights (resumable, verified)")
    p.add_argument("model_id", nargs="?", help="a catalog model id (with --quant)")
    p.add_argument("--quant", help="the quantization to fetch, e.g. Q4_K_M (default: the one "
                   "recommended for this computer)")  # fmt: skip
    p.add_argument("--repo", help="a Hugging Face repo id instead of a catalog model")
    p.add_argument(
        "--file",
        action="append",
        default=[],
        metavar="NAME",
        help="a file of --repo (repeat for every part)",
    )
    p.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="files of --repo matching a pattern (repeatable)",
    )
    p.add_argument("--revision", default="main", help="branch, tag or commit (main)")
    p.add_argument("--endpoint", help="Hub address (default: HF_ENDPOINT or huggingface.co)")
    p.add_argument("--cache-dir", help="cache folder (default: HF_HUB_CACHE)")
    p.add_argument("--list", action="store_true", help="list installed models and exit")
    p.add_argument(
        "--save-token",
        action="store_true",
        help="ask for a Hugging Face token and save it in the OS keyring",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from app.core import downloads as dl

    if args.save_token:
        status = _save_token()
        if status or not (args.repo or args.model_id):
            return status
    if args.list:
        return _list(dl.installed_models(args.cache_dir), args.cache_dir)
    try:
        repo, files, patterns = _what(args)
    except ValueError as exc:
        print(f"ponder-cli: {exc}", file=sys.stderr)
        return 2
    control = dl.DownloadControl()
    bar = _Bar(sys.stderr)
    previous = signal.getsignal(signal.SIGINT)

    def on_sigint(signum: int, frame: Any) -> None:
        if control.stop_requested:
            raise KeyboardInterrupt
        control.pause()
        print("\nPausing… (Ctrl-C again to quit at once)", file=sys.stderr)

    signal.signal(signal.SIGINT, on_sigint)
    try:
        plan = dl.plan_download(
            repo,
            files,
            patterns,
            revision=args.revision,
            endpoint=args.endpoint,
            cache_dir=args.cache_dir,
        )
        if dl.is_installed(plan, args.cache_dir):
            print(
                f"Already installed: {repo} ({dl.human_size(plan.total_bytes)}).", file=sys.stderr
            )
            _print_path(plan, args.cache_dir)
            return 0
        result = dl.download(
            plan,
            on_event=bar.event,
            control=control,
            endpoint=args.endpoint,
            cache_dir=args.cache_dir,
        )
    except dl.DownloadError as exc:
        bar.finish()
        print(f"ponder-cli: {exc.message}", file=sys.stderr)
        if isinstance(exc, dl.TokenRequiredError):
            print(
                "  Save a token with `ponder-cli download --save-token`, or set HF_TOKEN.",
                file=sys.stderr,
            )
        return 1
    finally:
        signal.signal(signal.SIGINT, previous)
    bar.finish()
    if result.status != "complete":
        print(
            f"Paused at {dl.human_size(bar.done)} of {dl.human_size(plan.total_bytes)}: run "
            "the same command again to resume.",
            file=sys.stderr,
        )
        return 130
    print(f"Downloaded and verified {repo} ({dl.human_size(plan.total_bytes)}).", file=sys.stderr)
    print(result.main_path)
    return 0


def _what(args: argparse.Namespace) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(repo, files, patterns) from --repo/--file/--include or the catalog's find_source."""
    if args.repo:
        if not (args.file or args.include):
            raise ValueError("--repo needs --file NAME (repeat for split files) or --include GLOB")
        return args.repo, tuple(args.file), tuple(args.include)
    if not args.model_id:
        raise ValueError("say which model: MODEL_ID --quant Q, or --repo R --file F")
    from app.core.catalog import CatalogError, find_source

    if not args.quant:
        args.quant = _recommended_quant(args.model_id)
    try:
        source = find_source(args.model_id, args.quant)
    except CatalogError as exc:
        raise ValueError(str(exc)) from exc
    return source.repo, source.files, source.patterns


def _print_path(plan: Any, cache_dir: str | None) -> None:
    from app.core.downloads import cache

    snap = cache.repo_folder(cache.hub_cache(cache_dir), plan.repo) / "snapshots" / plan.commit
    print(snap / plan.main_file if plan.main_file else snap)


def _recommended_quant(model_id: str) -> str | None:
    """The quant the planner ranks first for `model_id` on this computer (None: none fits,
    and the catalog's error then names the quants)."""
    from app.core import model_choice

    try:
        options = model_choice.recommend(model_choice.detect()).options
    except Exception:  # noqa: BLE001 - no plan: ask for --quant in words instead
        return None
    quant = next((o.quant for o in options if o.model_id == model_id), None)
    if quant:
        print(f"Using {quant}, the quant recommended for this computer (--quant to choose).",
              file=sys.stderr)  # fmt: skip
    return quant


def _list(installed: list[Any], cache_dir: str | None = None) -> int:
    """What the model manager lists, one model a line; then anything else downloaded into
    the Hugging Face cache (an MLX folder) that the manager does not show."""
    from pathlib import Path

    from app.core.downloads import human_size
    from app.core.model_discovery import discover_models

    found = discover_models(hf_cache=Path(cache_dir) if cache_dir else None)
    verified = {str(m.main_file) for m in installed if m.verified}
    listed = {str(f.path) for f in found}
    for f in found:
        mark = "verified" if str(f.path) in verified else "found"
        print(f"{f.name}  {f.quant or '-'}  {human_size(f.size_bytes):>9}  {mark:8}  "
              f"{f.source_label}: {f.origin or f.path.parent}  {f.path}")  # fmt: skip
    for m in installed:
        if str(m.main_file) not in listed:
            mark = "verified" if m.verified else "found"
            print(f"{m.repo}  {human_size(m.size_bytes):>9}  {mark:8}  {m.main_file}")
    if not found and not installed:
        print("No models installed.", file=sys.stderr)
    return 0


def _save_token() -> int:
    import getpass

    from app.core.secrets import TokenStoreError, save_token

    try:
        save_token(getpass.getpass("Hugging Face token (input hidden): "))
    except TokenStoreError as exc:
        print(f"ponder-cli: {exc.message}", file=sys.stderr)
        return 1
    print("Token saved in the system keyring.", file=sys.stderr)
    return 0


class _Bar:
    """One progress line on stderr (redrawn with \\r on a terminal, sparse lines otherwise)."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.done = 0
        self.last = 0.0
        self.open = False

    def event(self, e: Any) -> None:
        from app.core import downloads as dl

        if isinstance(e, dl.Progress):
            self.done = e.done
            self._line(e.path, e.done, e.total, e.speed, e.eta_s, "")
        elif isinstance(e, dl.Verifying):
            self._line(e.path, e.done, e.total, 0.0, None, "checking ")
        elif isinstance(e, dl.Retrying):
            self.finish()
            print(f"  retrying {e.path} in {e.delay_s:.0f}s ({e.reason[:60]})", file=self.stream)
        elif isinstance(e, dl.FileStarted) and e.resumed_from:
            self.finish()
            print(f"  resuming {e.path} at {dl.human_size(e.resumed_from)}", file=self.stream)
        elif isinstance(e, dl.PlanStarted):
            self.done = e.done

    def _line(
        self, path: str, done: int, total: int, speed: float, eta: float | None, what: str
    ) -> None:
        from app.core.downloads import human_size

        now = time.monotonic()
        if not self.tty and now - self.last < 5 and done < total:
            return
        self.last = now
        frac = done / total if total else 1.0
        filled = int(frac * BAR_WIDTH)
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        rate = f"{human_size(speed)}/s" if speed else ""
        left = _eta(eta) if eta is not None else ""
        text = (
            f"{what}{path[-36:]} {bar} {frac * 100:5.1f}% {human_size(done)}/"
            f"{human_size(total)} {rate} {left}"
        )
        if self.tty:
            self.stream.write("\r\033[K" + text)
            self.open = True
        else:
            self.stream.write(text + "\n")
        self.stream.flush()

    def finish(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _eta(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m left"
    return f"{seconds // 60}m{seconds % 60:02d}s left" if seconds >= 60 else f"{seconds}s left"
