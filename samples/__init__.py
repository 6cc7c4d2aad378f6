"""Runnable samples built on the asyncio port of Akka Streams and Alpakka Kafka."""
