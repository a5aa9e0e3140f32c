"""Download throughput: Ponder's resumable, hashing download vs a bare `hf_hub_download`.

Both fetch the same file from the same local Hub server (tests/hubserver.py on 127.0.0.1)
into fresh caches, interleaved (bare, ponder, bare, ponder, …), so disk and CPU noise hit
both alike. Ponder hashes while it writes; the ratio therefore includes verification. The
separate cost of verifying a file already on disk (what happens to files another tool
downloaded) is printed too. Run: `.venv/bin/python bench/download.py [--size-mb 1024]`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from app.core.downloads import download, plan_download  # noqa: E402
from app.core.downloads.verify import file_matches  # noqa: E402
from hubserver import HubServer  # noqa: E402

REPO = "bench/Big-GGUF"
NAME = "big-Q4_K_M.gguf"


def make_file(path: Path, size: int) -> None:
    block = os.urandom(8 * 1024 * 1024)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, len(block))
            f.write(block[:n])
            left -= n


def bare(url: str, cache: Path) -> float:
    from huggingface_hub import hf_hub_download

    t0 = time.perf_counter()
    hf_hub_download(REPO, NAME, endpoint=url, cache_dir=cache, token=False)
    return time.perf_counter() - t0


def ponder(url: str, cache: Path) -> float:
    t0 = time.perf_counter()
    plan = plan_download(REPO, (NAME,), endpoint=url, cache_dir=cache, token=False)
    result = download(plan, endpoint=url, cache_dir=cache, token=False)
    assert result.status == "complete", result.status
    return time.perf_counter() - t0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mb * 1024 * 1024
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    os.environ.pop("HF_HUB_OFFLINE", None)
    with tempfile.TemporaryDirectory(prefix="ponder-bench-dl-") as tmp:
        src = Path(tmp) / "source.gguf"
        make_file(src, size)
        hub = HubServer()
        try:
            hub.add_repo(REPO, {NAME: src})
            ratios, bare_mbs, ponder_mbs = [], [], []
            for i in range(args.rounds):
                times = {}
                for name, fn in (("bare", bare), ("ponder", ponder)):
                    cache = Path(tmp) / f"cache-{name}-{i}"
                    times[name] = fn(hub.url, cache)
                    if name == "ponder":
                        blob = next((cache / "models--bench--Big-GGUF" / "blobs").iterdir())
                        plan = plan_download(
                            REPO, (NAME,), endpoint=hub.url, cache_dir=cache, token=False
                        )
                        t0 = time.perf_counter()
                        assert file_matches(blob, plan.files[0], lambda n: None, lambda: False)
                        verify_s = time.perf_counter() - t0
                    shutil.rmtree(cache)
                bare_mbs.append(size / times["bare"] / 1e6)
                ponder_mbs.append(size / times["ponder"] / 1e6)
                ratios.append(times["bare"] / times["ponder"])
                print(
                    f"round {i + 1}: bare {bare_mbs[-1]:.0f} MB/s, ponder {ponder_mbs[-1]:.0f}"
                    f" MB/s, ratio {ratios[-1]:.3f}; verifying the file on disk alone"
                    f" {verify_s:.2f} s ({size / verify_s / 1e6:.0f} MB/s)"
                )
        finally:
            hub.close()
    print(
        f"\n{args.size_mb} MiB file, {args.rounds} rounds: ponder/bare throughput ratio "
        f"median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, max {max(ratios):.3f});"
        f" bare median {statistics.median(bare_mbs):.0f} MB/s, ponder median"
        f" {statistics.median(ponder_mbs):.0f} MB/s (ponder includes sha256 verification)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
