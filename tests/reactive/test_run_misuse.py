"""Running a stream the wrong way says what is wrong (a bare 'no running event loop' or
an AttributeError on the argument before)."""

from __future__ import annotations

import pytest

from reactive import Sink, Source


def test_running_outside_an_event_loop_says_how_to_run() -> None:
    with pytest.raises(RuntimeError, match=r"no running event loop: run a stream .* async"):
        Source.single(1).run_with(Sink.seq())


async def test_something_else_than_a_materializer_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match=r"run\(materializer\): a Materializer or None, got str"):
        Source.single(1).to(Sink.ignore()).run("notamat")  # type: ignore[arg-type]
