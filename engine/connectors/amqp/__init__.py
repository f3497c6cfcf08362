"""AMQP (RabbitMQ) connector pieces shared by the ``amqp`` source and sink."""

from engine.connectors.amqp.client import AmqpEndpoint, connect
from engine.connectors.amqp.errors import map_amqp_error

__all__ = ["AmqpEndpoint", "connect", "map_amqp_error"]
