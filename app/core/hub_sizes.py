"""Real file sizes from the Hub, replacing the catalog's stored ones when online.

GGUF quants: `HfApi.get_paths_info` on the quant's files (all parts of a split). MLX quants:
`HfApi.list_repo_tree` of the repo, summing the files the download would take. Any failure
(offline, a missing repo, a timeout) keeps the stored size and is reported in words.
huggingface_hub is imported only here, when called.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable

from app.core.catalog import Catalog


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def refresh_sizes(catalog: Catalog, model_ids: Iterable[str] | None = None,
                  endpoint: str | None = None,
                  token: str | bool | None = None) -> tuple[Catalog, list[str]]:  # fmt: skip
    """Ask the Hub for the sizes of the catalog's files; returns the updated catalog and
    notes about what could not be refreshed (stored sizes serve for those)."""
    if hub_offline():
        return catalog, ["Offline (HF_HUB_OFFLINE): the catalog's stored sizes are used."]
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token)
    wanted = set(model_ids) if model_ids is not None else None
    sizes: dict[tuple[str, str], int] = {}
    notes: list[str] = []
    failed_repos: set[str] = set()
    for model in catalog.models:
        if wanted is not None and model.id not in wanted:
            continue
        for source in model.sources:
            for q in source.quants:
                repo = source.repo_for(q.name)
                if repo in failed_repos:
                    continue
                try:
                    size = _size_of(api, repo, q.files, source.format)
                except Exception as exc:  # noqa: BLE001 - any failure keeps the stored size
                    failed_repos.add(repo)
                    notes.append(f"{repo}: {type(exc).__name__}; the stored size is used.")
                    continue
                if size:
                    sizes[(model.id, q.name)] = size
    return catalog.with_sizes(sizes), notes


def _size_of(api: object, repo: str, files: tuple[str, ...], fmt: str) -> int:
    from app.core.catalog import MLX_OPTIONAL_PATTERNS, MLX_PATTERNS

    if fmt == "gguf":
        infos = api.get_paths_info(repo, list(files))  # type: ignore[attr-defined]
        found = {i.path: int(getattr(i, "size", 0) or 0) for i in infos}
        missing = [f for f in files if f not in found]
        if missing:
            raise FileNotFoundError(", ".join(missing))
        return sum(found.values())
    entries = api.list_repo_tree(repo, recursive=True)  # type: ignore[attr-defined]
    return sum(
        int(getattr(e, "size", 0) or 0)
        for e in entries
        if any(fnmatch.fnmatch(e.path, p) for p in MLX_PATTERNS + MLX_OPTIONAL_PATTERNS)
    )
