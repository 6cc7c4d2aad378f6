"""The operator families of ``FlowOps``: one mixin per ``reactive/_ops/<family>.py``."""
