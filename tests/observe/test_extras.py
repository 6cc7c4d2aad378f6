"""Without its extra, an exporter says which extra to install."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

BLOCK = """
import importlib.abc, sys

class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == {top!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Block())
import reactive, reactive.observe  # the core and the snapshots need no extra
import {module}
"""


@pytest.mark.parametrize(
    ("module", "top", "needs", "extra"),
    [
        ("reactive.observe.prometheus", "prometheus_client", "prometheus-client", "metrics"),
        ("reactive.observe.otel", "opentelemetry", "opentelemetry-api", "metrics"),
        ("reactive.observe.live_view", "rich", "rich", "observe"),
    ],
)
def test_missing_extra_is_named(module: str, top: str, needs: str, extra: str) -> None:
    code = textwrap.dedent(BLOCK.format(top=top, module=module))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    name = module if module != "reactive.observe.live_view" else "reactive.observe.live"
    assert last.startswith(f"ModuleNotFoundError: {name} needs {needs}"), proc.stderr
    assert f"pip install 'reactive-streams-py[{extra}]'" in last
