"""Fan-out junctions: Broadcast, Balance, Partition, Unzip, UnzipWith and the WireTap
behind ``wire_tap``.

Completion and cancellation follow Akka: a fan-out stage completes (or fails) with its
upstream; a cancelled output is skipped from then on, and the stage cancels upstream when
every output has cancelled, or at the first cancellation with ``eager_cancel``.

One module per family: broadcast, balance, partition; what they share is in ``_base``."""

from __future__ import annotations

from ..._errors import PartitionOutOfBoundsError
from .balance import Balance
from .broadcast import Broadcast, Unzip, UnzipWith, WireTap
from .partition import Partition

__all__ = [
    "Broadcast",
    "Balance",
    "Partition",
    "PartitionOutOfBoundsError",
    "Unzip",
    "UnzipWith",
    "WireTap",
]
