"""Connectors: sources, flows and sinks that link streams to external systems.

``connectors.kafka`` is the Alpakka Kafka port, built on aiokafka (install the
``kafka`` extra; the ``broker`` extra adds an embedded Kafka-protocol broker for
tests and demos).
"""

from reactive import __version__ as __version__
