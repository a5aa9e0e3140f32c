"""`ponder-cli catalog check`: the catalog against the Hub listings recorded in the repo.

    ponder-cli catalog check                 offline: every catalog repo, file and MLX pattern
                                             against tests/data/hub_listings/, problems listed
    ponder-cli catalog check --online        also read each repo's live listing and say what
                                             changed since it was recorded
    ponder-cli catalog check --online --record   write the live listings over the recorded ones

A recorded listing is one JSON per repo: `repo`, `read` (date), `commit` (or null), `source`
(where the information came from), `files` (each `path`, `size`, `size_kind` — exact, rounded
or estimated — and `sha256` where known). Exit status: 0 when nothing is wrong, 1 when
something is, 2 for bad input. huggingface_hub is imported only for --online.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

LISTINGS_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "hub_listings"
SIZE_TOLERANCE = 0.03  # catalog vs listing: GB with three significant figures


@dataclass(frozen=True)
class ListedFile:
    path: str
    size: int
    size_kind: str  # "exact", "rounded", "estimated"
    sha256: str | None = None


@dataclass(frozen=True)
class Listing:
    """A repo's file list as recorded (or as just read from the Hub)."""

    repo: str
    files: tuple[ListedFile, ...]
    read: str = ""
    commit: str | None = None
    source: str = ""

    def names(self) -> set[str]:
        return {f.path for f in self.files}

    def file(self, path: str) -> ListedFile | None:
        return next((f for f in self.files if f.path == path), None)

    def matching(self, pattern: str) -> list[ListedFile]:
        return [f for f in self.files if fnmatch.fnmatch(f.path, pattern)]

    def to_json(self) -> dict[str, Any]:
        return {"repo": self.repo, "read": self.read, "commit": self.commit,
                "source": self.source, "complete": True, "note": "",
                "files": [{"path": f.path, "size": f.size, "size_kind": f.size_kind,
                           "sha256": f.sha256} for f in self.files]}  # fmt: skip


def listing_file_name(repo: str) -> str:
    return repo.replace("/", "__") + ".json"


def parse_listing(data: dict[str, Any]) -> Listing:
    files = tuple(
        ListedFile(
            str(f["path"]), int(f["size"]), str(f.get("size_kind", "exact")), f.get("sha256")
        )  # fmt: skip
        for f in data["files"]
    )
    return Listing(str(data["repo"]), files, str(data.get("read", "")), data.get("commit"),
                   str(data.get("source", "")))  # fmt: skip


def load_listings(folder: Path = LISTINGS_DIR) -> dict[str, Listing]:
    """Every recorded listing in `folder`, by repo."""
    out = {}
    for path in sorted(folder.glob("*.json")):
        listing = parse_listing(json.loads(path.read_text()))
        out[listing.repo] = listing
    return out


@dataclass(frozen=True)
class Wanted:
    """What one catalog (model, quant) downloads: a repo and its files or patterns."""

    model: str
    quant: str
    repo: str
    files: tuple[str, ...]
    patterns: tuple[str, ...]
    size_bytes: int
    size_estimated: bool


def wanted_downloads(catalog: Any) -> list[Wanted]:
    """Every catalog entry × quant, as `find_source` would download it."""
    from app.core.catalog import find_source

    out = []
    for model in catalog.models:
        for source in model.sources:
            for q in source.quants:
                d = find_source(model.id, q.name, catalog)
                out.append(Wanted(model.id, q.name, d.repo, d.files, d.patterns, d.size_bytes,
                                  q.size_source == "estimated"))  # fmt: skip
    return out


def check_against_listings(catalog: Any, listings: dict[str, Listing]) -> list[str]:
    """Problems, each a sentence: a repo with no listing, a file or pattern the listing does
    not have, a stored size off by more than 3% from a size the listing knows."""
    problems = []
    for w in wanted_downloads(catalog):
        where = f"{w.model} {w.quant}"
        listing = listings.get(w.repo)
        if listing is None:
            problems.append(f"{where}: no recorded listing for {w.repo}.")
            continue
        missing = [f for f in w.files if listing.file(f) is None]
        for name in missing:
            problems.append(f"{where}: {w.repo} has no file {name}.")
        unmatched = [p for p in w.patterns if not listing.matching(p)]
        for pattern in unmatched:
            problems.append(f"{where}: no file in {w.repo} matches {pattern!r}.")
        if missing or unmatched or w.size_estimated:
            continue
        chosen = ([listing.file(f) for f in w.files] if w.files
                  else [f for f in listing.files if any(fnmatch.fnmatch(f.path, p)
                                                        for p in w.patterns)])  # fmt: skip
        if any(f is None or f.size_kind == "estimated" for f in chosen):
            continue
        listed = sum(f.size for f in chosen if f is not None)
        if abs(listed - w.size_bytes) > SIZE_TOLERANCE * listed:
            problems.append(f"{where}: the catalog says {w.size_bytes / 1e9:.2f} GB, the "
                            f"listing {listed / 1e9:.2f} GB.")  # fmt: skip
    return problems


def compare_listings(recorded: Listing, live: Listing) -> list[str]:
    """What changed on the Hub since the listing was recorded, each a sentence."""
    changes = []
    if recorded.commit and live.commit and recorded.commit != live.commit:
        changes.append(f"{live.repo}: now at commit {live.commit[:12]} "
                       f"(recorded {recorded.commit[:12]}).")  # fmt: skip
    for f in recorded.files:
        now = live.file(f.path)
        if now is None:
            changes.append(f"{live.repo}: {f.path} is gone.")
        elif f.size_kind == "estimated" and now.size_kind != "estimated":
            changes.append(f"{live.repo}: {f.path} is {now.size:,} bytes "
                           f"(estimated {f.size:,}).")  # fmt: skip
        elif now.size != f.size and abs(now.size - f.size) > SIZE_TOLERANCE * max(now.size, 1):
            changes.append(f"{live.repo}: {f.path} is {now.size:,} bytes, "
                           f"recorded {f.size:,}.")  # fmt: skip
        elif f.sha256 and now.sha256 and f.sha256 != now.sha256:
            changes.append(f"{live.repo}: {f.path} has new content (sha256 {now.sha256[:12]}).")
    known = recorded.names()
    new = sorted(n for n in live.names() if n not in known)
    if new:
        shown = ", ".join(new[:5]) + (f" and {len(new) - 5} more" if len(new) > 5 else "")
        changes.append(f"{live.repo}: files not recorded: {shown}.")
    return changes


def read_live_listing(repo: str, endpoint: str | None = None,
                      token: str | bool | None = None) -> Listing:  # fmt: skip
    """The repo's listing on the Hub now (network; huggingface_hub imported here)."""
    from huggingface_hub import HfApi

    info = HfApi(endpoint=endpoint, token=token).model_info(repo, files_metadata=True,
                                                            timeout=30)  # fmt: skip
    files = []
    for s in info.siblings or []:
        lfs = getattr(s, "lfs", None)
        size = (lfs.size if lfs else s.size) or 0
        files.append(ListedFile(s.rfilename, int(size), "exact", lfs.sha256 if lfs else None))
    files.sort(key=lambda f: f.path)
    source = f"https://huggingface.co/api/models/{repo} (files_metadata)"
    return Listing(repo, tuple(files), date.today().isoformat(), info.sha, source)


def add_parser(sub: Any) -> None:
    p = sub.add_parser("catalog", help="check the model catalog against the Hub's listings")
    actions = p.add_subparsers(dest="catalog_action", metavar="ACTION")
    c = actions.add_parser("check", help="compare the catalog with the recorded listings")
    c.add_argument("--online", action="store_true", help="also read the live Hub listings")
    c.add_argument(
        "--record",
        action="store_true",
        help="with --online: write the live listings over the recorded ones",
    )
    c.add_argument(
        "--listings", metavar="DIR", default=str(LISTINGS_DIR), help="folder of recorded listings"
    )
    c.add_argument("--endpoint", metavar="URL", help="the Hub's address (default: HF_ENDPOINT)")
    c.set_defaults(run=run)
    p.set_defaults(run=lambda args: (p.print_help(), 2)[1])


def run(args: argparse.Namespace) -> int:
    from app.core.catalog import CatalogError, load_catalog

    folder = Path(args.listings)
    if not folder.is_dir():
        print(f"ponder-cli: there are no recorded listings at {folder}.", file=sys.stderr)
        return 2
    try:
        catalog = load_catalog()
        listings = load_listings(folder)
    except (CatalogError, ValueError, KeyError) as exc:
        print(f"ponder-cli: {exc}", file=sys.stderr)
        return 2
    problems = check_against_listings(catalog, listings)
    for line in problems:
        print(line)
    n = len(wanted_downloads(catalog))
    print(f"{n} catalog downloads checked against {len(listings)} recorded listings: "
          f"{len(problems) or 'no'} problem{'' if len(problems) == 1 else 's'}.")  # fmt: skip
    if not args.online:
        return 1 if problems else 0
    changed = _online(sorted({w.repo for w in wanted_downloads(catalog)}), listings, folder,
                      args.endpoint, args.record)  # fmt: skip
    return 1 if problems or changed else 0


def _online(repos: list[str], listings: dict[str, Listing], folder: Path, endpoint: str | None,
            record: bool) -> int:  # fmt: skip
    changed = 0
    for repo in repos:
        try:
            live = read_live_listing(repo, endpoint)
        except Exception as exc:  # noqa: BLE001 - report any failure and go on
            print(f"{repo}: could not be read ({type(exc).__name__}: {exc}).")
            changed += 1
            continue
        recorded = listings.get(repo)
        lines = compare_listings(recorded, live) if recorded else [f"{repo}: not recorded."]
        for line in lines:
            print(line)
        changed += bool(lines)
        if record and lines:
            (folder / listing_file_name(repo)).write_text(json.dumps(live.to_json(), indent=1))
    print(f"{len(repos)} repos read from the Hub: {changed or 'none'} changed.")
    return changed
