"""Map JMAP failures to Airbyte failure types: the user fixes config errors, transient ones pass."""

from __future__ import annotations

from airbyte_cdk.models import FailureType
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from .jmap import JmapError
from .jmap.policy import FailureKind, resolve

# The one place a JMAP failure's kind (jmap/policy.py decides it) becomes an Airbyte failure type.
FAILURE_TYPES: dict[FailureKind, FailureType] = {
    FailureKind.USER: FailureType.config_error,
    FailureKind.TRANSIENT: FailureType.transient_error,
    FailureKind.UNEXPECTED: FailureType.system_error,
}


def failure_type_of(error: JmapError) -> FailureType:
    return FAILURE_TYPES[resolve(error).kind]


def traced(error: JmapError) -> AirbyteTracedException:
    message = str(error)
    return AirbyteTracedException(message=message, internal_message=message, failure_type=failure_type_of(error))


def config_error(message: str) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)
