"""AMQP (RabbitMQ) connector pieces shared by the ``amqp`` source and sink.

``client`` holds the settings and imports aio-pika only to connect; ``errors`` imports aiormq
and is loaded only when a component runs.
"""
