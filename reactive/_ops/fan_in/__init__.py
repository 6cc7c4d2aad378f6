"""Fan-in stages: Zip, ZipWith, ZipN, Merge, Concat, and the other fan-in junctions:
MergePreferred, MergePrioritized, ZipLatest(With), ZipWithN, Interleave, MergeSorted,
OrElse, MergeLatest (used by the fluent operators and the GraphDSL junctions).

One module per family: zips, merges, latest, sequence; what they share is in ``_base``."""

from __future__ import annotations

from .latest import MergeLatest
from .merges import Merge, MergePreferred, MergePreferredShape, MergePrioritized, MergeSorted
from .sequence import Concat, Interleave, OrElse
from .zips import Zip, ZipAll, ZipLatest, ZipLatestWith, ZipN, ZipWith, ZipWithN

__all__ = [
    "Zip",
    "ZipWith",
    "ZipN",
    "Merge",
    "Concat",
    "MergePreferred",
    "MergePreferredShape",
    "MergePrioritized",
    "ZipLatest",
    "ZipLatestWith",
    "ZipWithN",
    "Interleave",
    "MergeSorted",
    "MergeLatest",
    "OrElse",
    "ZipAll",
]
