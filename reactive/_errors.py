"""The exception hierarchy of the runtime.

::

    Exception
     +-- StreamError                      base of every error raised by the runtime itself
          +-- AbruptTerminationError      the materializer shut down under a running stream
          +-- BufferOverflowError         a buffer with OverflowStrategy.fail overflowed
          +-- StreamLimitReachedError     limit(n) / limit_weighted saw more than allowed
          +-- StreamTimeoutError          (also a TimeoutError) a timeout operator fired
          +-- RateExceededError           throttle in enforcing mode saw too many elements
          +-- TooManySubstreamsError      group_by exceeded max_substreams
          +-- NoSuchElementError          (also a LookupError) head/last/reduce of an empty stream
          +-- PortStateError              misuse of the stage API (push without demand, ...)
          +-- IllegalGraphError           (also a ValueError) a blueprint that cannot be built
          |    +-- MissingHandlerError    (also a PortStateError) a port without a handler
          +-- NeverMaterializedError      a lazy/nested graph was never materialized
          +-- SubscriptionTimeoutError    a substream was not materialized in time

User exceptions are never wrapped: a function that raises fails the stream with that very
exception.
"""

from __future__ import annotations

__all__ = [
    "StreamError",
    "AbruptTerminationError",
    "BufferOverflowError",
    "StreamLimitReachedError",
    "StreamTimeoutError",
    "RateExceededError",
    "TooManySubstreamsError",
    "NoSuchElementError",
    "PortStateError",
    "IllegalGraphError",
    "MissingHandlerError",
    "NeverMaterializedError",
    "SubscriptionTimeoutError",
    "StreamDetachedError",
]


class StreamError(Exception):
    """Base class of the errors raised by the stream runtime."""


class AbruptTerminationError(StreamError):
    """A stream was stopped because its materializer shut down."""


class BufferOverflowError(StreamError):
    """A buffer configured with ``OverflowStrategy.fail`` overflowed."""


class StreamLimitReachedError(StreamError):
    """``limit``/``limit_weighted`` received more than the allowed number of elements."""


class StreamTimeoutError(StreamError, TimeoutError):
    """A timeout operator (``idle_timeout``, ``completion_timeout``, ...) fired."""


class RateExceededError(StreamError):
    """``throttle`` in enforcing mode received elements faster than allowed."""


class TooManySubstreamsError(StreamError):
    """``group_by`` would have to open more substreams than ``max_substreams``."""


class NoSuchElementError(StreamError, LookupError):
    """An operator needed an element but the stream was empty."""


class PortStateError(StreamError):
    """A custom stage used the port API illegally; the message names stage and port."""


class IllegalGraphError(StreamError, ValueError):
    """A blueprint is malformed: unconnected or doubly connected ports, foreign ports."""


class MissingHandlerError(IllegalGraphError, PortStateError):
    """A stage logic left a port without a handler (found when the graph is run)."""


class NeverMaterializedError(StreamError):
    """A nested or lazy graph was never materialized."""


class SubscriptionTimeoutError(StreamError, TimeoutError):
    """A substream source was not materialized within the subscription timeout."""


class StreamDetachedError(StreamError):
    """The stream a handle refers to has already terminated."""


class SubscriptionWithCancelError(StreamError):
    """A cancellation cause that is not a failure (Akka's SubscriptionWithCancelException)."""


class NoMoreElementsNeeded(SubscriptionWithCancelError):
    """The default cause of ``cancel(inlet)``: downstream simply needs no more elements."""


class StageWasCompleted(SubscriptionWithCancelError):
    """The cause used when a stage cancels its inlets because it completed."""


NO_MORE_ELEMENTS_NEEDED = NoMoreElementsNeeded("no more elements needed")
STAGE_WAS_COMPLETED = StageWasCompleted("stage was completed")

__all__ += [
    "SubscriptionWithCancelError",
    "NoMoreElementsNeeded",
    "StageWasCompleted",
    "NO_MORE_ELEMENTS_NEEDED",
    "STAGE_WAS_COMPLETED",
]
