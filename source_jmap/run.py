"""The console script: the CDK's `launch()` without its print buffer.

`launch()` gathers the messages of every 0.1 s in a StringIO and copies that text twice on its way
to stdout. An import emits about 25 MB of records in 0.1 s, so the buffer, not the data, set the
peak memory of a read (10k emails: 195 MB with it, 103 MB without; bench/README.md). Here each
message goes straight to stdout, whole and in order; block buffering still groups the writes, and
log lines still pass through the CDK's logging handler, which flushes stdout after each one. That handler
writes from the thread that logs, a partition's worker as well, and Python's text stream over stdout is not
safe between threads: a record and a log line written at once could share a line (108 of 5,000 lines broken
while the reader was slow, unit_tests/test_read_failures.py). Each message is written under the handler's lock.

Before the CDK checks the config against spec.json, the connector's own model checks it, so that a value
both refuse is answered in the connector's words ("start_date 'now' is not an RFC 3339 date-time ...")
rather than as a regular expression ("Config validation error: 'now' does not match '^[0-9]{4}-...'").

A run that fails with an error in words (an AirbyteTracedException raised from nothing: a bad setting, a failing
server, a failed stream) ends with that TRACE error alone and exit 1; the CDK's handler would log it again with a
traceback and put that traceback in the TRACE. Any other exception (a bug) still goes to the CDK's handler.
"""

import sys
from collections.abc import Mapping
from typing import Any

from airbyte_cdk.entrypoint import AirbyteEntrypoint
from airbyte_cdk.logger import PRINT_BUFFER
from airbyte_cdk.models import ConnectorSpecification
from airbyte_cdk.sources.utils.schema_helpers import split_config
from airbyte_cdk.utils.airbyte_secrets_utils import get_secrets, update_secrets
from airbyte_cdk.utils.traced_exception import AirbyteTracedException

from .config import JmapConfig
from .failures import traced
from .jmap import JmapError
from .source import SourceJmap, secrets_to_mask


class JmapEntrypoint(AirbyteEntrypoint):
    @staticmethod
    def validate_connection(source_spec: ConnectorSpecification, config: Mapping[str, Any]) -> None:
        """The connector's model first, then the CDK's schema check, which still refuses what the model accepts
        but spec.json does not (plain http to another host)."""
        connector_config, _ = split_config(config)
        try:
            JmapConfig.parse(connector_config)
        except JmapError as error:
            raise traced(error) from None
        AirbyteEntrypoint.validate_connection(source_spec, config)

    @staticmethod
    def set_up_secret_filter(config: Mapping[str, Any], connection_specification: Mapping[str, Any]) -> None:
        """The CDK's masking of the config's secrets, without those too short to mask."""
        update_secrets(secrets_to_mask(get_secrets(connection_specification, config)))


def run() -> None:
    entrypoint = JmapEntrypoint(SourceJmap())
    try:
        for message in entrypoint.run(entrypoint.parse_args(sys.argv[1:])):
            _write(message)
    except AirbyteTracedException as error:
        if error.__cause__ is not None:
            raise
        failure = error.as_sanitized_airbyte_message()
        assert failure.trace is not None and failure.trace.error is not None
        failure.trace.error.stack_trace = None
        _write(AirbyteEntrypoint.airbyte_message_to_string(failure))
        sys.stdout.flush()
        sys.exit(1)
    sys.stdout.flush()


def _write(message: str) -> None:
    with PRINT_BUFFER.lock:  # the lock under which the CDK's log handler writes to stdout
        sys.stdout.write(message + "\n")
