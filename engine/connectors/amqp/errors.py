"""The one place where aio-pika/aiormq exceptions become Transient or Permanent errors."""

from __future__ import annotations

from aiormq import exceptions as amqp

from engine.errors import EngineError, PermanentError, TransientError

__all__ = ["map_amqp_error"]

#: a retry cannot fix these: credentials, protocol, missing queue/exchange, bad arguments,
#: an exclusive queue held elsewhere, a message no queue is bound for
_PERMANENT = (
    amqp.ProbableAuthenticationError,
    amqp.AuthenticationError,
    amqp.IncompatibleProtocolError,
    amqp.ChannelAccessRefused,
    amqp.ChannelNotFoundEntity,
    amqp.ChannelPreconditionFailed,
    amqp.ChannelLockedResource,
    amqp.DuplicateConsumerTag,
    amqp.ConnectionNotAllowed,
    amqp.ConnectionCommandInvalid,
    amqp.ConnectionSyntaxError,
    amqp.ConnectionNotImplemented,
    amqp.MethodNotImplemented,
    amqp.ProtocolSyntaxError,
)


def map_amqp_error(exc: BaseException, *, action: str = "amqp") -> EngineError:
    """Classify ``exc``; unknown exceptions are permanent (retrying hides bugs)."""
    if isinstance(exc, EngineError):
        return exc
    try:
        text = str(exc).splitlines()[0][:300] if str(exc) else ""
    except Exception:  # some aiormq errors cannot render a partial frame
        text = ""
    message = f"{action}: {type(exc).__name__}" + (f": {text}" if text else "")
    if isinstance(exc, _PERMANENT):
        return PermanentError(message)
    if isinstance(exc, amqp.PublishError):
        return PermanentError(message)  # returned unroutable (mandatory) message
    if isinstance(exc, amqp.DeliveryError):
        return TransientError(message)  # the broker nacked a publish: it may take it later
    if isinstance(exc, amqp.AMQPConnectionError | amqp.ChannelInvalidStateError):
        return TransientError(message)  # connection lost or closing: robust reconnect
    if isinstance(exc, amqp.ChannelClosed | amqp.AMQPChannelError):
        return TransientError(message)  # e.g. channel closed by the broker under load
    if isinstance(exc, TimeoutError | ConnectionError | OSError):
        return TransientError(message)
    if isinstance(exc, amqp.AMQPError):
        return PermanentError(message)
    return PermanentError(message)
