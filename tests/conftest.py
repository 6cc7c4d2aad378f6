"""Root conftest: registers the Kafka fixtures (``kafka_bootstrap``, ``kafka_topic``, ...)
for every test folder; a non-root conftest cannot set ``pytest_plugins``."""

pytest_plugins = ["connectors.kafka.pytest_plugin"]
