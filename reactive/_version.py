"""The installed version of the distribution (``reactive-streams-py``), from its metadata."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

DISTRIBUTION = "reactive-streams-py"
"""The name the project is installed under (``pip install reactive-streams-py``)."""

try:
    __version__: str = version(DISTRIBUTION)
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"
