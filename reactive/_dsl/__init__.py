"""The blueprint DSL: Source, Flow, Sink, RunnableGraph, GraphDSL, Keep."""
