"""The exception hierarchy of the runtime: one root, :class:`StreamError`.

::

    Exception
     +-- StreamError                      base of every error raised by the runtime itself
          +-- AbruptTerminationError      the materializer shut down under a running stream
          |                               (or the loop's tasks were cancelled, or a stage
          |                               raised KeyboardInterrupt / SystemExit)
          +-- BufferOverflowError         a buffer with OverflowStrategy.fail overflowed
          +-- StreamLimitReachedError     limit(n) / limit_weighted saw more than allowed
          +-- StreamTimeoutError          (also a TimeoutError) a timeout operator fired
          |    +-- InitialTimeoutError    initial_timeout: no first element in time
          |    +-- CompletionTimeoutError completion_timeout: not completed in time
          |    +-- StreamIdleTimeoutError idle_timeout: no element for too long
          |    +-- BackpressureTimeoutError  backpressure_timeout: no demand for too long
          +-- RateExceededError           throttle in enforcing mode saw too many elements
          +-- TooManySubstreamsError      group_by exceeded max_substreams
          +-- NoSuchElementError          (also a LookupError) head/last/reduce of an empty stream
          +-- PortStateError              misuse of the stage API (push without demand, ...)
          |    +-- NoneElementError       a stage pushed None (a function missing its return)
          +-- IllegalGraphError           (also a ValueError) a blueprint that cannot be built
          |    +-- MissingHandlerError    (also a PortStateError) [reactive.stage] a port
          |    |                          without a handler
          |    +-- MaterializerShutdownError  (also a RuntimeError) a stream run on a
          |                               materializer that was shut down
          +-- NeverMaterializedError      a lazy/nested graph was never materialized
          +-- SubscriptionTimeoutError    (also a TimeoutError) a substream was not
          |                               materialized in time
          +-- PartitionOutOfBoundsError   (also an IndexError) Partition chose no output
          +-- QueueConcurrencyError       (also a RuntimeError) too many waiting offers/pulls
          +-- RetryFlowError              the flow in RetryFlow broke one-in one-out
          +-- AsyncCallCancelledError     the awaitable a map_async/scan_async/... call
          |                               returned was cancelled, or a stage's code raised
          |                               asyncio.CancelledError
          +-- StreamDetachedError         invoke_with_feedback: the stage stopped first
          +-- SubscriptionRejectedError   [reactive.rs] a publisher refused a subscriber
          +-- SubscriptionWithCancelError [reactive.stage] a cancellation cause, no failure
          |    +-- NoMoreElementsNeeded   the default cause of cancel(inlet)
          |    +-- StageWasCompleted      a stage cancels its inlets because it completed
          +-- IOStreamError               [reactive.io] base of the stream IO errors
          |    +-- FramingError           a frame over its limit, truncated, or bad JSON
          |    |    +-- PartialObjectError  the stream ended inside a JSON object
          |    +-- CompressionError       corrupt or truncated compressed input
          |    +-- IOOperationIncompleteError  a file/TCP stage failed after ``count`` bytes
          |    +-- ProcessFailedError     a subprocess exited with a non-zero code
          |    +-- StreamTcpError         a TCP connection failed
          |         +-- BindFailedError   Tcp.bind could not listen
          +-- StoreClosedError            [reactive.state] a store used while not open
          +-- KeySerdeError               (also a TypeError) [reactive.state] a key its
          |                               store's key serde cannot encode
          +-- OwnershipNotReadyError      (also a RuntimeError) [reactive.state] a state
                                          server's ownership cannot name a key's owner yet

Each error is exported from ``reactive``, or from the module named in brackets
(``PortStateError`` also from ``reactive.stage``). The errors of the optional subpackages
are defined in ``reactive/io/errors.py`` and ``reactive/state/errors.py`` (importing
their root from here); everything else is defined in this module.
``tests/test_error_tree.py`` checks the tree against the classes.

Not in the tree: ``reactive.testkit.ExpectationError`` is an ``AssertionError`` (a
failed test expectation, as pytest expects it), not a stream error.

User exceptions are never wrapped: a function that raises fails the stream with that very
exception.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "StreamError",
    "AbruptTerminationError",
    "BufferOverflowError",
    "StreamLimitReachedError",
    "StreamTimeoutError",
    "InitialTimeoutError",
    "CompletionTimeoutError",
    "StreamIdleTimeoutError",
    "BackpressureTimeoutError",
    "RateExceededError",
    "TooManySubstreamsError",
    "NoSuchElementError",
    "PortStateError",
    "NoneElementError",
    "IllegalGraphError",
    "MissingHandlerError",
    "MaterializerShutdownError",
    "NeverMaterializedError",
    "SubscriptionTimeoutError",
    "PartitionOutOfBoundsError",
    "QueueConcurrencyError",
    "RetryFlowError",
    "AsyncCallCancelledError",
    "StreamDetachedError",
    "SubscriptionRejectedError",
    "SubscriptionWithCancelError",
    "NoMoreElementsNeeded",
    "StageWasCompleted",
    "NO_MORE_ELEMENTS_NEEDED",
    "STAGE_WAS_COMPLETED",
]


def reduce_error(error: BaseException) -> tuple[Any, ...]:
    """``__reduce__`` of the roots of the error trees (here and in ``connectors.kafka``).

    Exception's own ``__reduce__`` rebuilds with ``cls(*args)``, which breaks for the
    errors whose ``__init__`` takes more than the message (``ProcessFailedError``,
    ``DeserializationError``, ...): these rebuild without calling ``__init__``, and the
    instance attributes come back as the pickled state.
    """
    return _rebuild, (type(error), error.args), error.__dict__ or None


def _rebuild(cls: type[BaseException], args: tuple[Any, ...]) -> BaseException:
    # ``cls.__new__`` may find a builtin base whose instance layout is not the class's
    # (RuntimeError's for an error that is also a TimeoutError, i.e. an OSError): take the
    # builtin base with the largest layout, the one ``cls(...)`` would use.
    base = max((c for c in cls.__mro__ if c.__module__ == "builtins"), key=_layout_size)
    error: BaseException = base.__new__(cls, *args)
    error.args = args
    return error


def _layout_size(cls: type) -> int:
    return int(cls.__basicsize__)


class StreamError(Exception):
    """Base class of the errors raised by the stream runtime."""

    def __reduce__(self) -> tuple[Any, ...]:
        return reduce_error(self)


class AbruptTerminationError(StreamError):
    """A stream was stopped because its materializer shut down; also when its island's
    task was cancelled (``asyncio.run`` returning with the stream still running cancels
    every task of its loop) or a stage raised ``KeyboardInterrupt`` / ``SystemExit``
    (``__cause__`` holds it; it goes on ending the loop as asyncio makes it). The message
    says which. Never reported as an unobserved failure."""


class BufferOverflowError(StreamError):
    """A buffer configured with ``OverflowStrategy.fail`` overflowed."""


class StreamLimitReachedError(StreamError):
    """``limit``/``limit_weighted`` received more than the allowed number of elements."""


class StreamTimeoutError(StreamError, TimeoutError):
    """A timeout operator (``idle_timeout``, ``completion_timeout``, ...) fired; each
    operator raises its own subclass (Akka's separate timeout exceptions), TCP's idle
    timeout this class itself."""


class InitialTimeoutError(StreamTimeoutError):
    """``initial_timeout``: the first element did not arrive in time (Akka's
    ``InitialTimeoutException``)."""


class CompletionTimeoutError(StreamTimeoutError):
    """``completion_timeout``: the stream did not complete in time (Akka's
    ``CompletionTimeoutException``)."""


class StreamIdleTimeoutError(StreamTimeoutError):
    """``idle_timeout``: no element passed for too long (Akka's
    ``StreamIdleTimeoutException``)."""


class BackpressureTimeoutError(StreamTimeoutError):
    """``backpressure_timeout``: downstream stayed without demand for too long (Akka's
    ``BackpressureTimeoutException``)."""


class RateExceededError(StreamError):
    """``throttle`` in enforcing mode received elements faster than allowed."""


class TooManySubstreamsError(StreamError):
    """``group_by`` would have to open more substreams than ``max_substreams``."""


class NoSuchElementError(StreamError, LookupError):
    """An operator needed an element but the stream was empty."""


class PortStateError(StreamError):
    """A custom stage used the port API illegally; the message names stage and port."""


class NoneElementError(PortStateError):
    """A stage pushed ``None``, which is not an element (Reactive Streams rule 2.13); the
    message names the stage and port. Raised because a user function returned ``None``
    (a ``map`` or ``scan`` function missing its return), it is that function's failure:
    supervision decides on it as on an exception the function raised (``resume`` drops
    the element), as Akka decides on the NullPointerException ``push(out, null)`` throws.
    """


class IllegalGraphError(StreamError, ValueError):
    """A blueprint is malformed: unconnected or doubly connected ports, foreign ports."""


class MissingHandlerError(IllegalGraphError, PortStateError):
    """A stage logic left a port without a handler (found when the graph is run)."""


class MaterializerShutdownError(IllegalGraphError, RuntimeError):
    """A stream was run (``run()``, ``run_with()``, ...) on a materializer after its
    ``shutdown()``: Akka's ``IllegalStateException`` ("Trying to materialize stream after
    materializer has been shutdown"), hence also a ``RuntimeError``, Python's error for an
    object used in a state that forbids the call. It stays an ``IllegalGraphError`` (a
    ``ValueError``), what earlier versions raised, so handlers written for that still
    catch it. The message names the materializer."""


class NeverMaterializedError(StreamError):
    """A nested or lazy graph was never materialized."""


class SubscriptionTimeoutError(StreamError, TimeoutError):
    """A substream source was not materialized within the subscription timeout."""


class PartitionOutOfBoundsError(StreamError, IndexError):
    """A ``Partition`` function returned an index outside ``[0, n)``."""


class QueueConcurrencyError(StreamError, RuntimeError):
    """More concurrent calls than a queue allows (Akka's ``IllegalStateException``): an
    ``offer`` while ``max_concurrent_offers`` offers already wait for room under
    ``OverflowStrategy.backpressure``, or a ``pull`` while ``max_concurrent_pulls`` pulls
    already wait for an element. Only that call fails; the stream goes on."""


class RetryFlowError(StreamError):
    """The flow wrapped by ``RetryFlow`` broke its one-in one-out contract."""


class StreamDetachedError(StreamError):
    """``AsyncCallback.invoke_with_feedback``'s awaitable: the stage stopped before the
    callback's handler ran (Akka's ``StreamDetachedException``)."""


class AsyncCallCancelledError(StreamError):
    """An awaitable the stream awaited for you was cancelled: one a call of an
    asynchronous operator's function returned (``map_async``, ``map_async_unordered``,
    ``map_async_partitioned``, ``foreach_async``, ``scan_async``, ``fold_async``,
    ``unfold_async``), or one a source awaits (``Source.from_awaitable``,
    ``Source.maybe()``'s future, an async iterator's step, ``unfold_resource_async``'s
    calls, a lazy source's ``f()``); also an ``asyncio.CancelledError`` a stage's
    synchronous code raised (a function given to ``map``, a handler: it cannot be the
    cancellation of the stream's task, which never awaits while it runs them), the
    message naming the stage. It is a failure like any exception (supervision
    decides on it where the operator supervises its function), as Akka's stages treat a
    future failed with a CancellationException. Raising ``asyncio.CancelledError`` itself
    out of the stream would look like the cancellation of the task awaiting it;
    ``__cause__`` holds it."""


class SubscriptionRejectedError(StreamError):
    """A publisher refused a subscriber (``on_subscribe`` then ``on_error`` with this):
    ``Sink.as_publisher(fanout=False)`` accepts only one subscriber, and a publisher
    whose stream shut down because all subscribers cancelled accepts no more."""


class SubscriptionWithCancelError(StreamError):
    """A cancellation cause that is not a failure (Akka's SubscriptionWithCancelException)."""


class NoMoreElementsNeeded(SubscriptionWithCancelError):
    """The default cause of ``cancel(inlet)``: downstream simply needs no more elements."""


class StageWasCompleted(SubscriptionWithCancelError):
    """The cause used when a stage cancels its inlets because it completed."""


NO_MORE_ELEMENTS_NEEDED = NoMoreElementsNeeded("no more elements needed")
STAGE_WAS_COMPLETED = StageWasCompleted("stage was completed")
