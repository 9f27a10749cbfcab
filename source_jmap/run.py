"""The console script: the CDK's `launch()` without its print buffer.

`launch()` gathers the messages of every 0.1 s in a StringIO and copies that text twice on its way
to stdout. An import emits about 25 MB of records in 0.1 s, so the buffer, not the data, set the
peak memory of a read (10k emails: 195 MB with it, 103 MB without; bench/README.md). Here each
message goes straight to stdout, whole and in order; block buffering still groups the writes, and
log lines still pass through the CDK's logging handler, which flushes stdout after each one.
"""

import sys

from airbyte_cdk.entrypoint import AirbyteEntrypoint

from .source import SourceJmap


def run() -> None:
    entrypoint = AirbyteEntrypoint(SourceJmap())
    for message in entrypoint.run(entrypoint.parse_args(sys.argv[1:])):
        sys.stdout.write(message + "\n")
    sys.stdout.flush()
