"""FileIO.to_path(start_position=...) on real files: overwriting the middle of a file
without truncating it, appending at its end, a gap past the end, a missing file created,
the default still truncating, and bad positions rejected naming the stage."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from reactive import Keep, Materializer, Source
from reactive.io import FileIO, IOOperationIncompleteError, IOResult
from reactive.testkit import TestSource

if TYPE_CHECKING:
    from pathlib import Path


class Boom(Exception):
    """A test failure."""


async def test_overwrites_the_middle_of_a_file_without_truncating(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789abcdef")
    result = await Source.from_iterable([b"XY", b"Z"]).run_with(
        FileIO.to_path(path, start_position=5), materializer
    )
    assert result == IOResult(3)
    assert path.read_bytes() == b"01234XYZ89abcdef"


async def test_appends_at_the_end_when_the_position_is_the_size(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "log.txt"
    path.write_bytes(b"first\n")
    size = path.stat().st_size
    result = await Source.from_iterable([b"second\n", b"third\n"]).run_with(
        FileIO.to_path(str(path), start_position=size), materializer
    )
    assert result.count == 13 and result.was_successful
    assert path.read_bytes() == b"first\nsecond\nthird\n"


async def test_a_position_past_the_end_leaves_zero_bytes_and_a_missing_file_is_created(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "sparse.bin"
    path.write_bytes(b"ab")
    await Source.single(b"Z").run_with(FileIO.to_path(path, start_position=5), materializer)
    assert path.read_bytes() == b"ab\x00\x00\x00Z"
    fresh = tmp_path / "fresh.bin"
    await Source.single(b"xyz").run_with(FileIO.to_path(fresh, start_position=2), materializer)
    assert fresh.read_bytes() == b"\x00\x00xyz"


async def test_the_default_position_still_truncates(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    await Source.single(b"ab").run_with(FileIO.to_path(path), materializer)
    assert path.read_bytes() == b"ab"
    await Source.single(b"cd").run_with(FileIO.to_path(path, start_position=0), materializer)
    assert path.read_bytes() == b"cd"


async def test_an_upstream_failure_keeps_what_was_written_at_the_position(
    tmp_path: Path, materializer: Materializer
) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"..........")
    pub, result = (
        TestSource.probe()
        .to_mat(FileIO.to_path(path, start_position=4), Keep.both)
        .run(materializer)
    )
    await pub.expect_request()
    pub.send_next(b"ab")
    await pub.expect_request()
    pub.send_error(Boom("upstream"))
    with pytest.raises(IOOperationIncompleteError) as info:
        await result
    assert info.value.count == 2
    assert isinstance(info.value.__cause__, Boom)
    assert path.read_bytes() == b"....ab...."


def test_bad_positions_are_rejected_naming_the_stage(tmp_path: Path) -> None:
    path = tmp_path / "x"
    with pytest.raises(ValueError, match=r"FileIO.to_path: start_position must be an int >= 0"):
        FileIO.to_path(path, start_position=-1)
    with pytest.raises(ValueError, match=r"FileIO.to_path: start_position .* got 1.5"):
        FileIO.to_path(path, start_position=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"FileIO.to_path: append=True .* start_position=3"):
        FileIO.to_path(path, append=True, start_position=3)
    assert not path.exists()
