"""JMAP failures as Airbyte failure types: jmap/policy.py says whose each failure is, this says it to Airbyte."""

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
    """The error's message for the user; the internal message adds what its row says it means."""
    row = resolve(error)
    message = str(error)
    return AirbyteTracedException(message=message, internal_message=f"{message} ({row.wording})",
                                  failure_type=FAILURE_TYPES[row.kind])


def config_error(message: str) -> AirbyteTracedException:
    return AirbyteTracedException(message=message, internal_message=message, failure_type=FailureType.config_error)
