"""The Kafka stream stages: consumer sources, producer flows and sinks, committers."""
