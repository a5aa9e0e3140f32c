"""The standard Hugging Face cache layout, and what in it is complete (works offline).

`models--org--name/{blobs/<sha256|sha1>, snapshots/<commit>/<path> -> ../../blobs/…,
refs/<revision>}` exactly as huggingface_hub writes it, so other tools share the files.
Ponder adds one file per downloaded commit, `models--org--name/.ponder/<commit>.json`,
listing the files with their verified hashes; cache scanners ignore it.

Every path built here from a name, commit or hash is checked first (safety.py) and must
stay inside the repo's folder: a hostile mirror cannot make Ponder write elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import safety
from .errors import UnsafeServerDataError

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
SPLIT_RE = re.compile(r"-(\d{5})-of-(\d{5})\.gguf$")
WEIGHT_SUFFIXES = (".gguf", ".safetensors")
MANIFEST_DIR = ".ponder"


def hub_cache(cache_dir: str | Path | None = None) -> Path:
    """The Hub cache: `cache_dir`, else HF_HUB_CACHE / HF_HOME as huggingface_hub reads them."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HUB_CACHE).expanduser()


def repo_folder(cache: Path, repo_id: str) -> Path:
    return cache / ("models--" + repo_id.replace("/", "--"))


def repo_id_from_folder(name: str) -> str | None:
    if not name.startswith("models--"):
        return None
    return name[len("models--") :].replace("--", "/")


def check_blob_name(blob: str) -> str:
    """A blob is named by a sha256 (LFS) or a git sha1 (small files), nothing else."""
    if isinstance(blob, str) and (safety.SHA256_RE.match(blob) or safety.GIT_SHA1_RE.match(blob)):
        return blob
    return safety.check_sha256(blob)  # raises, in words


def blob_path(cache: Path, repo_id: str, blob: str) -> Path:
    """`blobs/<hash>`, the hash checked and the path inside the repo folder."""
    folder = repo_folder(cache, safety.check_repo_id(repo_id))
    path = folder / "blobs" / check_blob_name(blob)
    return safety.check_inside(folder, path, "blob")


def snapshot_path(cache: Path, repo_id: str, commit: str, path: str) -> Path:
    """`snapshots/<commit>/<path>`, commit and name checked, inside the repo folder."""
    folder = repo_folder(cache, safety.check_repo_id(repo_id))
    name = safety.check_file_name(path)
    pointer = folder / "snapshots" / safety.check_commit(commit, repo_id) / Path(*name.split("/"))
    return safety.check_inside(folder, pointer, "file")


def lock_path(cache: Path, repo_id: str, blob: str) -> Path:
    """The lock file huggingface_hub itself takes for this blob, so the two never collide."""
    folder = repo_folder(cache, safety.check_repo_id(repo_id))
    path = cache / ".locks" / folder.name / f"{check_blob_name(blob)}.lock"
    return safety.check_inside(cache / ".locks" / folder.name, path, "lock file")


def link_snapshot(blob: Path, pointer: Path) -> None:
    """Point `snapshots/<commit>/<path>` at the blob: a relative symlink, or a copy."""
    pointer.parent.mkdir(parents=True, exist_ok=True)
    try:
        from huggingface_hub.file_download import _create_symlink

        _create_symlink(str(blob), str(pointer), new_blob=False)
        return
    except ImportError:  # pragma: no cover - private helper renamed upstream
        pass
    try:
        pointer.unlink()
    except FileNotFoundError:
        pass
    try:
        os.symlink(os.path.relpath(blob, pointer.parent), pointer)
    except OSError:  # pragma: no cover - no symlinks (Windows without developer mode)
        shutil.copyfile(blob, pointer)


def write_ref(cache: Path, repo_id: str, revision: str, commit: str) -> None:
    """Record `refs/<revision>` = commit (atomically), as huggingface_hub does."""
    if revision == commit or COMMIT_RE.match(revision):
        return
    safety.check_commit(commit, repo_id)
    ref = _ref_path(cache, repo_id, revision)
    ref.parent.mkdir(parents=True, exist_ok=True)
    if ref.exists() and ref.read_text().strip() == commit:
        return
    tmp = ref.with_name(f"{ref.name}.{os.getpid()}.tmp")
    tmp.write_text(commit)
    os.replace(tmp, ref)


def read_ref(cache: Path, repo_id: str, revision: str) -> str | None:
    if COMMIT_RE.match(revision):
        return revision
    try:
        commit = _ref_path(cache, repo_id, revision).read_text().strip()
    except (OSError, UnsafeServerDataError):
        return None
    return commit if COMMIT_RE.match(commit) else None  # a damaged ref is no ref


def _ref_path(cache: Path, repo_id: str, revision: str) -> Path:
    folder = repo_folder(cache, safety.check_repo_id(repo_id))
    ref = folder / "refs" / Path(*safety.check_revision(revision).split("/"))
    return safety.check_inside(folder, ref, "ref")


def manifest_path(cache: Path, repo_id: str, commit: str) -> Path:
    folder = repo_folder(cache, safety.check_repo_id(repo_id))
    path = folder / MANIFEST_DIR / f"{safety.check_commit(commit, repo_id)}.json"
    return safety.check_inside(folder, path, "manifest")


def write_manifest(cache: Path, repo_id: str, commit: str, data: dict) -> None:
    path = manifest_path(cache, repo_id, commit)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def read_manifest(cache: Path, repo_id: str, commit: str) -> dict | None:
    try:
        data = json.loads(manifest_path(cache, repo_id, commit).read_text())
    except (OSError, ValueError, UnsafeServerDataError):
        return None
    return data if isinstance(data, dict) else None


def file_stamp(path: Path) -> list[int]:
    """What a file looked like when its hash was checked: size, mtime, ctime, inode (the
    snapshot link followed). Any write changes it, so an unchanged stamp needs no re-hash."""
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def stamp_matches(manifest: dict, snapshot: Path, name: str) -> bool:
    """True when `name` was verified (per the manifest) and is unchanged since."""
    recorded = (manifest.get("stamps") or {}).get(name)
    if not recorded or name in (manifest.get("corrupt") or []):
        return False
    try:
        return file_stamp(snapshot / name) == list(recorded)
    except (OSError, ValueError):
        return False


@dataclass(frozen=True)
class InstalledModel:
    """A complete set of weights in the cache; `verified` when Ponder checked every hash."""

    repo: str
    commit: str
    files: tuple[str, ...]
    size_bytes: int
    snapshot: Path
    verified: bool

    @property
    def main_file(self) -> Path:
        """The file to hand an engine: the (first part of the) GGUF, else the snapshot folder."""
        ggufs = sorted(f for f in self.files if f.endswith(".gguf"))
        return self.snapshot / ggufs[0] if ggufs else self.snapshot


def _snapshot_files(snapshot: Path) -> dict[str, int]:
    """Files whose blobs exist, relative path -> size (broken links left out)."""
    out: dict[str, int] = {}
    for path in snapshot.rglob("*"):
        try:
            if path.is_file():
                out[path.relative_to(snapshot).as_posix()] = path.stat().st_size
        except OSError:
            continue
    return out


def _complete_groups(snapshot: Path, files: dict[str, int]) -> list[tuple[str, ...]]:
    """Weight sets found in a snapshot another tool wrote: whole GGUFs, all split parts, MLX."""
    groups: list[tuple[str, ...]] = []
    splits: dict[tuple[str, int], set[int]] = {}
    for name in files:
        m = SPLIT_RE.search(name)
        if m:
            splits.setdefault((name[: m.start()], int(m.group(2))), set()).add(int(m.group(1)))
        elif name.endswith(".gguf") and not Path(name).name.startswith("mmproj"):
            groups.append((name,))
    for (stem, count), parts in splits.items():
        if parts == set(range(1, count + 1)):
            groups.append(tuple(f"{stem}-{i:05d}-of-{count:05d}.gguf" for i in range(1, count + 1)))
    safetensors = [n for n in files if n.endswith(".safetensors")]
    if safetensors and "config.json" in files:
        index = next((n for n in files if n.endswith(".safetensors.index.json")), None)
        needed: set[str] = set(safetensors)
        if index:
            needed = _index_shards(snapshot / index)
        if needed and needed <= set(files):
            extra = [n for n in files if not n.endswith(WEIGHT_SUFFIXES)]
            groups.append(tuple(sorted(needed | set(extra))))
    return groups


def _index_shards(index: Path) -> set[str]:
    """The shard names a `*.safetensors.index.json` needs (empty when unreadable)."""
    try:
        weight_map = json.loads(index.read_text()).get("weight_map", {})
    except (OSError, ValueError, AttributeError):
        return set()
    return {str(v) for v in weight_map.values()}


def installed_models(cache_dir: str | Path | None = None) -> list[InstalledModel]:
    """Every complete model in the cache (Ponder's downloads and other tools'); no network."""
    cache = hub_cache(cache_dir)
    found: list[InstalledModel] = []
    if not cache.is_dir():
        return found
    for folder in sorted(cache.iterdir()):
        repo_id = repo_id_from_folder(folder.name)
        snapshots = folder / "snapshots"
        if repo_id is None or not snapshots.is_dir():
            continue
        for snap in sorted(p for p in snapshots.iterdir() if p.is_dir()):
            found.extend(_snapshot_models(cache, repo_id, snap))
    return found


def _snapshot_models(cache: Path, repo_id: str, snap: Path) -> list[InstalledModel]:
    """The models of one snapshot: Ponder's verified download (every file unchanged since
    its hash was checked), else the complete weight sets found, minus known-corrupt files."""
    files = _snapshot_files(snap)
    manifest = read_manifest(cache, repo_id, snap.name) or {}
    wanted = manifest.get("files") or {}
    if manifest.get("complete") and wanted:
        sizes_ok = all(files.get(n) == meta.get("size") for n, meta in wanted.items())
        if sizes_ok and all(stamp_matches(manifest, snap, n) for n in wanted):
            size = sum(meta["size"] for meta in wanted.values())
            return [InstalledModel(repo_id, snap.name, tuple(sorted(wanted)), size, snap, True)]
    corrupt = set(manifest.get("corrupt") or [])
    out = []
    for group in _complete_groups(snap, files):
        if corrupt.intersection(group):
            continue  # a file Ponder found damaged is never counted as installed
        size = sum(files.get(n, 0) for n in group)
        out.append(InstalledModel(repo_id, snap.name, group, size, snap, False))
    return out
