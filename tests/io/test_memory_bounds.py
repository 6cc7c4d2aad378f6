"""A large file copied through gzip and gunzip in a fresh process: identical bytes, and
the peak RSS grows by a bounded amount (incremental compression; nothing accumulates).
The size is 128 MiB, more than twice the 50 MB bound, so a stage that held the file's
bytes (read, or decompressed) fails; ``REACTIVE_IO_BIG_MB=512`` runs the issue's 512 MiB
(about 7 s; the RSS grew by 3.8 MB at 256 and at 512 MiB alike)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = r"""
import asyncio, hashlib, json, os, resource, sys
from reactive import Sink, Source
from reactive.io import Compression, FileIO

src, gz, out, mib = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])

def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

async def main():
    # Compressible but not trivial: a repeating pattern of varied 1 KiB blocks.
    blocks = [bytes((i * 7 + j) % 251 for j in range(1024)) for i in range(64)]
    chunk = b"".join(blocks)  # 64 KiB
    digest = hashlib.sha256()
    before = rss_kib()
    n = mib * 16
    with open(src, "wb") as f:
        for _ in range(n):
            f.write(chunk)
            digest.update(chunk)
    gzip = Compression.gzip(1)
    await FileIO.from_path(src, chunk_size=65536).via(gzip).run_with(FileIO.to_path(gz))
    await FileIO.from_path(gz).via(Compression.gunzip()).run_with(FileIO.to_path(out))
    copy = hashlib.sha256()
    with open(out, "rb") as f:
        while b := f.read(1 << 20):
            copy.update(b)
    print(json.dumps({"same": copy.digest() == digest.digest(),
                      "growth_kib": rss_kib() - before, "size": os.path.getsize(out)}))

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.subprocess_only
def test_gzip_gunzip_file_copy_in_bounded_memory(tmp_path: Path) -> None:
    mib = int(os.environ.get("REACTIVE_IO_BIG_MB", "128"))
    files = [str(tmp_path / name) for name in ("src", "src.gz", "copy")]
    done = subprocess.run(
        [sys.executable, "-c", PROGRAM, *files, str(mib)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["same"] and report["size"] == mib << 20
    assert report["growth_kib"] < 50 * 1024, report  # under 50 MB, as the issue asks


# The file copy above compresses ~75:1, so a stage that kept its gzip output (about 7 MB
# of 512 MiB, 2 MB of 128 MiB) would stay under the bound. Incompressible input makes the
# output as large as the input: 128 MiB of seeded random bytes, gzip then gunzip in one
# stream (no files), must keep the peak RSS growth under the same bound, so neither side
# may hold what it produced or was handed.
INCOMPRESSIBLE = r"""
import asyncio, hashlib, json, random, resource, sys
from reactive import Sink, Source
from reactive.io import Compression

mib = int(sys.argv[1])

def chunks(digest):
    rng = random.Random(7)
    for _ in range(mib * 16):
        chunk = rng.randbytes(65536)
        digest.update(chunk)
        yield chunk

def rss_kib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

async def main():
    digest, copy = hashlib.sha256(), hashlib.sha256()
    before = rss_kib()
    size = await (
        Source.from_iterable(chunks(digest))
        .via(Compression.gzip(1))
        .via(Compression.gunzip())
        .map(lambda b: (copy.update(b), len(b))[1])
        .run_with(Sink.fold(0, lambda a, n: a + n))
    )
    print(json.dumps({"same": copy.digest() == digest.digest(),
                      "growth_kib": rss_kib() - before, "size": size}))

asyncio.run(main())
"""


@pytest.mark.slow
@pytest.mark.subprocess_only
def test_gzip_gunzip_incompressible_stream_in_bounded_memory() -> None:
    mib = 128  # more than twice the bound: a kept output (about the input's size) shows
    done = subprocess.run(
        [sys.executable, "-c", INCOMPRESSIBLE, str(mib)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=55,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    assert report["same"] and report["size"] == mib << 20
    assert report["growth_kib"] < 50 * 1024, report  # under 50 MB, as the issue asks
