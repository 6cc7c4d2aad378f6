"""Subprocesses as flows, on ``anyio.open_process``: the flow's input is written to the
process's stdin, its stdout is emitted, its stderr is captured (the last
``max_stderr_bytes``) and a non-zero exit code fails the stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from .._dsl.blueprints import Flow
from .._impl.unobserved import ResultPromise
from ..stage import (
    FlowShape,
    GraphStageLogic,
    GraphStageWithMaterializedValue,
    InHandler,
    Inlet,
    OutHandler,
    Outlet,
)
from ._stages import outcome as _outcome
from ._stages import require_bytes
from .errors import IOStreamError, ProcessFailedError
from .files import _anyio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

__all__ = ["Subprocess", "ProcessResult", "ProcessFailedError"]


@dataclass(frozen=True)
class ProcessResult:
    """How a process ended: its exit code and the tail of what it wrote to stderr."""

    returncode: int
    stderr: bytes


class SubprocessStage(GraphStageWithMaterializedValue[FlowShape, "asyncio.Future[ProcessResult]"]):
    """``Subprocess.flow``."""

    def __init__(
        self,
        command: str | Sequence[str],
        cwd: str | None,
        env: Mapping[str, str] | None,
        check: bool,
        max_stderr_bytes: int,
    ) -> None:
        self.shape = FlowShape(Inlet("Subprocess.in"), Outlet("Subprocess.out"))
        self.command = command
        self.cwd = cwd
        self.env = env
        self.check = check
        self.max_stderr_bytes = max_stderr_bytes

    def create_logic_and_materialized_value(
        self, attributes: Any
    ) -> tuple[Any, asyncio.Future[ProcessResult]]:
        # Awaiting the result observes a stream failure (reactive._impl.unobserved).
        promise = ResultPromise(loop=asyncio.get_running_loop())
        return _SubprocessLogic(self, promise), promise

    def __repr__(self) -> str:
        return f"Subprocess({self.command!r})"


class _SubprocessLogic(GraphStageLogic, InHandler, OutHandler):
    """Tasks: at most one stdout read, one stdin write, the stderr reader and the final
    ``wait()``; outcomes come back through async callbacks."""

    OP = "Subprocess.flow"

    def __init__(self, stage: SubprocessStage, promise: asyncio.Future[ProcessResult]) -> None:
        super().__init__(stage.shape)
        self.stage = stage
        self.promise = promise
        self.in_: Inlet[Any] = stage.shape.in_
        self.out: Outlet[Any] = stage.shape.out
        self.set_handlers(self.in_, self.out, self)
        self.process: Any = None
        self.reading: asyncio.Task[Any] | None = None
        self.writing: asyncio.Task[Any] | None = None
        self.tasks: set[asyncio.Task[Any]] = set()
        self.open_task: asyncio.Task[Any] | None = None
        self.stderr = bytearray()
        self.stderr_done = False
        self.stdout_done = False
        self.input_done = False
        self.waiting = False
        self.cancelled = False  # downstream cancelled: the process was killed

    def _spawn(
        self,
        make: Callable[[], Awaitable[Any]],
        then: Callable[[bool, Any], None],
        cancel_on_shutdown: bool = True,
    ) -> Any:
        task = self.materializer.spawn(_outcome(make), cancel_on_shutdown=cancel_on_shutdown)
        self.tasks.add(task)
        cb = self.get_async_callback(partial(self._done, then))
        task.add_done_callback(cb.invoke)
        return task

    def _done(self, then: Callable[[bool, Any], None], task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled():
            then(*task.result())

    def _describe(self) -> str:
        c = self.stage.command
        return c if isinstance(c, str) else " ".join(map(str, c))

    # -- start ----------------------------------------------------------------------------
    def pre_start(self) -> None:
        anyio = _anyio()
        s = self.stage
        self.set_keep_going(True)
        # Not cancelled when the stage stops: a process being started is left to start,
        # then killed and reaped (``_reap_once_started``); cancelling the start could
        # leave the child running with nothing to reap it.
        self.open_task = self._spawn(
            partial(
                anyio.open_process,
                s.command,
                cwd=s.cwd,
                env=s.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            ),
            self._on_started,
            cancel_on_shutdown=False,
        )

    def _on_started(self, ok: bool, value: Any) -> None:
        self.open_task = None
        if not ok:
            err = IOStreamError(
                f"[{self.OP}] cannot start {self._describe()!r}: {type(value).__name__}: {value}"
            )
            err.__cause__ = value
            self._fail(err)
            return
        self.process = value
        self._spawn(partial(value.stderr.receive, 65536), self._stderr)
        if self.input_done:
            self._close_stdin()
        elif not self.is_closed(self.in_):
            self.pull(self.in_)
        if self.is_available(self.out):
            self.on_pull()

    def _stderr(self, ok: bool, value: Any) -> None:
        if ok:
            self.stderr += value
            extra = len(self.stderr) - self.stage.max_stderr_bytes
            if extra > 0:
                del self.stderr[:extra]
            self._spawn(partial(self.process.stderr.receive, 65536), self._stderr)
        else:
            self.stderr_done = True
            self._maybe_wait()

    # -- stdout ---------------------------------------------------------------------------
    def on_pull(self) -> None:
        if self.process is not None and self.reading is None and not self.stdout_done:
            self.reading = self._spawn(partial(self.process.stdout.receive, 65536), self._read)

    def _read(self, ok: bool, value: Any) -> None:
        self.reading = None
        if ok:
            self.push(self.out, value)
        else:  # EndOfStream (or a broken pipe): the process closed its stdout
            self.stdout_done = True
            self._maybe_wait()

    def on_downstream_finish(self, cause: BaseException) -> None:
        # Kill the process; the result is settled with its (signal) exit code once reaped.
        self.cancelled = True
        if self.process is None:
            self.complete_stage()
            return
        self._kill()
        if not self.is_closed(self.in_):
            self.cancel(self.in_)
        if not self.waiting:
            self.waiting = True
            self._spawn(self.process.wait, self._exited)

    # -- stdin ----------------------------------------------------------------------------
    def on_push(self) -> None:
        data = require_bytes(self.OP, self.grab(self.in_), 0)
        self.writing = self._spawn(partial(self.process.stdin.send, data), self._written)

    def _written(self, ok: bool, value: Any) -> None:
        self.writing = None
        if not ok:
            # The process closed its stdin (exited, or stopped reading): what it did not
            # read is not wanted; its output and exit code still decide the outcome.
            self.cancel(self.in_)
            self._close_stdin()
        elif self.input_done:
            self._close_stdin()
        else:
            self.pull(self.in_)

    def on_upstream_finish(self) -> None:
        self.input_done = True
        if self.process is not None and self.writing is None:
            self._close_stdin()

    def _close_stdin(self) -> None:
        self._spawn(self.process.stdin.aclose, lambda ok, v: None)

    def on_upstream_failure(self, exc: BaseException) -> None:
        self._kill()
        self._fail(exc)

    # -- the end --------------------------------------------------------------------------
    def _maybe_wait(self) -> None:
        if self.stdout_done and self.stderr_done and not self.waiting:
            self.waiting = True
            self._spawn(self.process.wait, self._exited)

    def _exited(self, ok: bool, code: Any) -> None:
        if not ok:
            self._fail(code)
            return
        stderr = bytes(self.stderr)
        if code != 0 and self.stage.check and not self.cancelled:
            tail = stderr.decode(errors="replace").strip()[-500:]
            err = ProcessFailedError(
                f"[{self.OP}] {self._describe()!r} exited with code {code}"
                + (f"; stderr: {tail}" if tail else ""),
                code,
                stderr,
            )
            self._fail(err)
            return
        self._resolve(ProcessResult(code, stderr))
        self.complete_stage()

    def _resolve(self, result: ProcessResult) -> None:
        if not self.promise.done():
            self.promise.set_result(result)

    def _fail(self, exc: BaseException) -> None:
        if not self.promise.done():
            self.promise.set_exception(exc)
        self.fail_stage(exc)

    def _kill(self) -> None:
        _kill(self.process)

    def _on_abort(self, exc: BaseException) -> None:
        self.aborted = exc  # (a materializer shutdown): the cause of the result's failure

    def post_stop(self) -> None:
        opening = self.open_task
        for t in list(self.tasks):
            if t is not opening:
                t.cancel()
        if opening is not None:  # started, and _on_started never ran: nobody has it
            if opening.done():
                _reap_started(self.materializer, opening)
            else:
                # Spawned now, not from the start's done callback: a shutdown whose wait
                # saw the start done could end before that callback ran, leaving the
                # process running with nothing to reap it.
                self.materializer.spawn(_reap_once_started(opening), cancel_on_shutdown=False)
        self._kill()
        if not self.promise.done():
            err = IOStreamError(f"[{self.OP}] the stream stopped before the process ended")
            cause = getattr(self, "aborted", None)
            err.__cause__ = cause
            self.promise.set_exception(err)
        p, self.process = self.process, None
        if p is not None:
            # Killed above; reaped by a task a materializer shutdown waits for (up to its
            # shutdown_timeout), so no process outlives ``async with Materializer()``.
            _reap_later(self.materializer, p)


def _kill(p: Any) -> None:
    """Kill the process ``p`` (None: none) unless it ended."""
    if p is not None and p.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            p.kill()


def _started(task: asyncio.Task[Any]) -> Any:
    """The process a finished start task gave (None: it failed or was cancelled)."""
    if task.cancelled():
        return None
    ok, p = task.result()
    return p if ok else None


def _reap_started(mat: Any, task: asyncio.Task[Any]) -> None:
    """A process started (``task`` done) after its stage stopped: killed, and reaped by
    a task the materializer's shutdown waits for."""
    p = _started(task)
    if p is not None:
        _kill(p)
        _reap_later(mat, p)


async def _reap_once_started(task: asyncio.Task[Any]) -> None:
    """A process still being started (``task``) when its stage stopped: waited for
    (without cancelling its start), killed and reaped."""
    await asyncio.wait([task])
    p = _started(task)
    if p is not None:
        _kill(p)
        await _reap(p)


def _reap_later(mat: Any, p: Any) -> None:
    """Reap the killed process ``p`` in a task of ``mat`` its shutdown waits for (the
    materializer keeps the task)."""
    mat.spawn(_reap(p), cancel_on_shutdown=False)


async def _reap(p: Any) -> None:
    try:
        await p.aclose()  # closes the pipes and waits for the (killed) process
    except Exception:
        # Closing a pipe failed (a broken stdin, say) before the wait: wait still, or
        # the process is never reaped (Popen then warns that it "is still running").
        with contextlib.suppress(Exception):
            await p.wait()


class Subprocess:
    """Processes as flows, on ``anyio.open_process`` (needs the ``io`` extra)."""

    @staticmethod
    def flow(
        command: str | Sequence[str],
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        max_stderr_bytes: int = 65536,
    ) -> Flow[bytes, bytes, asyncio.Future[ProcessResult]]:
        """Start ``command`` (a list of arguments, or a string run by the shell) when
        the stream starts: the flow's elements are written to its stdin (closed when
        upstream completes), what it writes to stdout is emitted in chunks as it comes;
        its stderr is read all along (so the process never blocks on it) and the last
        ``max_stderr_bytes`` are kept.

        Materializes an awaitable ``ProcessResult(returncode, stderr)``. With ``check``
        a non-zero exit code fails the stream (and the awaitable) with a
        ``ProcessFailedError`` quoting the end of stderr. A process that exits or closes
        its stdin early cancels upstream; its output still goes out.

        *Emits when* the process wrote to stdout and downstream pulls.
        *Backpressures when* downstream backpressures (stdout is not read, so the
        process blocks on a full pipe), or a write to stdin is in progress.
        *Completes when* the process closed stdout and stderr and exited (code 0, or any
        code without ``check``).
        *Fails when* the process cannot start, or exits with a non-zero code.
        *Cancels when* downstream cancels: the process is killed.
        """
        if isinstance(max_stderr_bytes, bool) or not isinstance(max_stderr_bytes, int):
            raise ValueError(
                f"Subprocess.flow: max_stderr_bytes must be an int, got {max_stderr_bytes!r}"
            )
        _anyio()
        cwd_s = os.fspath(cwd) if cwd is not None else None
        return Flow.from_graph(SubprocessStage(command, cwd_s, env, check, max_stderr_bytes))
