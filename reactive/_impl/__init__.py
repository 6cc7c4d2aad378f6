"""Runtime internals: interpreter, islands, boundaries, materializer, clock."""
