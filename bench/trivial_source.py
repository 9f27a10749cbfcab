#!/usr/bin/env python3
"""The smallest source on the same Airbyte CDK: one stream that yields nothing.

`python bench/trivial_source.py spec` is the start-up baseline of any connector built on this CDK: importing
airbyte_cdk, `launch()`, and serving a spec. The spec is the connector's own spec.json, loaded and parsed the
way the CDK's default `spec()` does, so only the start-up itself differs.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from airbyte_cdk.entrypoint import launch
from airbyte_cdk.models import ConnectorSpecification, ConnectorSpecificationSerializer, SyncMode
from airbyte_cdk.sources import AbstractSource
from airbyte_cdk.sources.streams import Stream

SPEC = Path(__file__).resolve().parent.parent / "spec.json"


class Nothing(Stream):
    primary_key = "id"

    def read_records(
        self, sync_mode: SyncMode, cursor_field: list[str] | None = None,
        stream_slice: Mapping[str, Any] | None = None, stream_state: Mapping[str, Any] | None = None,
    ) -> Iterable[Mapping[str, Any]]:
        yield from ()

    def get_json_schema(self) -> Mapping[str, Any]:
        return {"type": "object", "properties": {"id": {"type": "string"}}}


class TrivialSource(AbstractSource):
    def spec(self, logger: logging.Logger) -> ConnectorSpecification:
        return ConnectorSpecificationSerializer.load(json.loads(SPEC.read_bytes()))

    def check_connection(self, logger: logging.Logger, config: Mapping[str, Any]) -> tuple[bool, Any]:
        return True, None

    def streams(self, config: Mapping[str, Any]) -> list[Stream]:
        return [Nothing()]


if __name__ == "__main__":
    launch(TrivialSource(), sys.argv[1:])
