"""Make re-exported names look public: ``reactive.NoSuchElementError`` in tracebacks and
reprs, not ``reactive._errors.NoSuchElementError`` (as anyio and trio do).

Each public package ends with ``publish(__name__, globals())``. A class or function
named in its ``__all__`` gets ``__module__`` set to that package when it is defined in a
private module (a ``_``-prefixed part) or in a submodule of the package; so among the
public modules exporting a name, the shortest one wins whatever the import order
(``reactive`` over ``reactive.stage``, ``connectors.kafka`` over
``connectors.kafka.errors``). Pickle finds the class there (each module exports it);
third-party names re-exported (aiokafka's ``TopicPartition``) are left alone.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["publish"]


def publish(module: str, namespace: Mapping[str, Any]) -> None:
    """Set ``__module__`` of the classes and functions in ``namespace["__all__"]`` that
    are defined in a private module or a submodule of ``module`` to ``module``."""
    top = module.partition(".")[0]
    for name in namespace["__all__"]:
        obj = namespace[name]
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue
        current: str = obj.__module__
        if current.partition(".")[0] != top:
            continue
        private = any(part.startswith("_") for part in current.split("."))
        if private or current.startswith(module + "."):
            obj.__module__ = module
