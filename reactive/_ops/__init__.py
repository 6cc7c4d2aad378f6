"""Operator implementations, one module per family of Akka's operator index."""
