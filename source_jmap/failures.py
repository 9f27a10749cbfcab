"""Map JMAP failures to Airbyte failure types: the user fixes config errors, transient ones pass."""

from __future__ import annotations

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from .jmap import JmapConfigError, JmapError, JmapServerError, JmapTransportError
from .jmap.errors import JmapMethodError
from .jmap.retry import Action, method_error_action


def failure_type_of(error: JmapError) -> FailureType:
    if isinstance(error, JmapConfigError):
        return FailureType.config_error
    if isinstance(error, JmapMethodError) and method_error_action(error) is Action.FAIL_CONFIG:
        return FailureType.config_error
    if isinstance(error, JmapTransportError | JmapServerError):
        return FailureType.transient_error
    return FailureType.system_error


def traced(error: JmapError) -> AirbyteTracedException:
    message = str(error)
    return AirbyteTracedException(message=message, internal_message=message, failure_type=failure_type_of(error))


def config_error(message: str) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)
