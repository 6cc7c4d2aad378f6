"""A junction's port number out of range fails with a message naming the ports.

Found by an exploratory review: ``Broadcast(2).out(2)`` raised a bare ``IndexError``
("tuple index out of range") naming neither the stage nor the ports, and ``out(-1)``
silently picked the last outlet (API.md: port mistakes fail with a message naming the
port).
"""

from __future__ import annotations

from typing import Any

import pytest

from reactive import (
    Balance,
    Broadcast,
    ClosedShape,
    GraphDSL,
    IllegalGraphError,
    Merge,
    Partition,
    Sink,
    Source,
    Unzip,
    ZipWith,
)


@pytest.mark.parametrize(
    ("junction", "call", "i", "ports"),
    [
        (lambda: Broadcast(2), "out", 2, "Broadcast.out0, Broadcast.out1"),
        (lambda: Broadcast(2), "out", -1, "Broadcast.out0, Broadcast.out1"),
        (lambda: Balance(3), "out", 5, "Balance.out0, Balance.out1, Balance.out2"),
        (lambda: Partition(2, lambda x: 0), "out", 2, "Partition.out0, Partition.out1"),
        (lambda: Unzip(), "out", 2, "Unzip.out0, Unzip.out1"),
        (lambda: Merge(2), "in_", 3, "Merge.in0, Merge.in1"),
        (lambda: Merge(2), "in_", -2, "Merge.in0, Merge.in1"),
        (lambda: ZipWith(lambda a, b: a), "in_", 2, "ZipWith.in0, ZipWith.in1"),
    ],
)
def test_a_port_number_out_of_range_names_the_ports(
    junction: Any, call: str, i: int, ports: str
) -> None:
    def blueprint(b: Any, sink: Any) -> Any:
        getattr(b.add(junction()), call)(i)
        return ClosedShape

    with pytest.raises(IllegalGraphError) as info:
        GraphDSL.create(blueprint, Sink.seq())
    message = str(info.value)
    assert message.startswith(f"{call}({i}): no such port")
    assert ports in message


def test_port_numbers_in_range_still_give_the_ports() -> None:
    def blueprint(b: Any, sink: Any) -> Any:
        bcast = b.add(Broadcast(2))
        merge = b.add(Merge(2))
        assert bcast.out(1) is bcast.outlets[1] and merge.in_(0) is merge.inlets[0]
        b.add(Source.single(1)).out >> bcast.in_
        bcast.out(0) >> merge.in_(0)
        bcast.out(1) >> merge.in_(1)
        merge.out >> sink.in_
        return ClosedShape

    GraphDSL.create(blueprint, Sink.seq())
