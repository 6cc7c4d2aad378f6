"""The blueprint DSL: Source, Flow, Sink, BidiFlow, RunnableGraph, GraphDSL, Keep."""
