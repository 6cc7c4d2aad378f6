"""Custom stage machinery: ports, shapes, logics, handlers, timers (public via reactive.stage)."""
