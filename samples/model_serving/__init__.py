"""Model-serving sample: score a stream of wine-quality records with hot-swappable models.

The sample follows the classic "dynamically controlled stream" pattern: one Kafka topic
carries data records (the eleven physico-chemical features of the wine-quality data set plus
an ``id`` and an event timestamp), a second topic carries model messages (a model type and
its parameters).  A scoring stage keeps the most recent valid model, scores every data
record with it and emits scored records; invalid model messages are rejected without
disturbing the model in use.

This package holds the pure-Python domain layer, with no Kafka or stream dependencies:

* :mod:`samples.model_serving.records` -- data and scored records, their msgpack codecs and
  a deterministic synthetic record generator.
* :mod:`samples.model_serving.models` -- model messages, the :class:`~.models.Model`
  protocol, linear / logistic / tree-ensemble implementations, validation and a pluggable
  registry of model types, plus example models.
* :mod:`samples.model_serving.stats` -- :class:`~.stats.ServingState`, live serving
  statistics suitable as the materialized value of a scoring stage.
"""
