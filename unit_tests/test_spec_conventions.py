"""Airbyte's UI conventions for the spec, and valid, open JSON schemas for the discovered streams.

Each check collects every violation (as a JSON pointer and what is wrong), so a failure names the
exact change to make in spec.json or in a stream schema.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from airbyte_cdk.test.entrypoint_wrapper import discover
from jsonschema import Draft7Validator, FormatChecker

from source_jmap import SourceJmap

from .fake_jmap import FakeJmap

logger = logging.getLogger("test")

Property = tuple[str, str, dict[str, Any]]  # (JSON pointer, property name, property schema)

SECRET_NAME = re.compile(r"(password|passphrase|secret|token|api_?key|private_?key|access_?key)$", re.IGNORECASE)

RFC3339_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")
VALUE_FORMATS = FormatChecker()  # jsonschema checks date-time only with an extra package: check it here


@VALUE_FORMATS.checks("date-time", raises=ValueError)
def is_rfc3339_date_time(value: object) -> bool:
    if not isinstance(value, str) or not RFC3339_DATE_TIME.fullmatch(value):
        return False
    return datetime.fromisoformat(value) is not None


@pytest.fixture(scope="module")
def connection_specification() -> dict[str, Any]:
    return SourceJmap().spec(logger).connectionSpecification


@pytest.fixture
def discovered_streams(fake: FakeJmap, config: dict[str, Any]) -> list[dict[str, Any]]:
    output = discover(SourceJmap(), config)
    return [stream.__dict__ for stream in output.catalog.catalog.streams]


def properties_of(schema: dict[str, Any], pointer: str = "") -> Iterator[Property]:
    """Every property, at any depth: object properties, their oneOf options' properties, array items'."""
    for name, child in schema.get("properties", {}).items():
        child_pointer = f"{pointer}/properties/{name}"
        yield child_pointer, name, child
        yield from properties_of(child, child_pointer)
        for index, option in enumerate(child.get("oneOf", [])):
            yield from properties_of(option, f"{child_pointer}/oneOf/{index}")
        if isinstance(child.get("items"), dict):
            yield from properties_of(child["items"], f"{child_pointer}/items")


def one_of_options(schema: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for pointer, _, child in properties_of(schema):
        for index, option in enumerate(child.get("oneOf", [])):
            yield f"{pointer}/oneOf/{index}", option


def keyword_pointers(schema: Any, keywords: set[str], pointer: str = "") -> Iterator[str]:
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in keywords:
                yield f"{pointer}/{key}"
            yield from keyword_pointers(value, keywords, f"{pointer}/{key}")
    elif isinstance(schema, list):
        for index, item in enumerate(schema):
            yield from keyword_pointers(item, keywords, f"{pointer}/{index}")


def types_of(schema: dict[str, Any]) -> set[str]:
    declared = schema.get("type", [])
    return {declared} if isinstance(declared, str) else set(declared)


def is_free_text(schema: dict[str, Any]) -> bool:
    """A string (or list of strings) the user types in, where an example shows the expected shape."""
    if schema.get("airbyte_secret") or "const" in schema or "enum" in schema:
        return False
    if types_of(schema) & {"string", "integer", "number"}:
        return True
    return "array" in types_of(schema) and "string" in types_of(schema.get("items", {}))


# -- the connection specification ------------------------------------------------------------------------


def test_connection_specification_is_a_valid_draft7_schema(connection_specification: dict[str, Any]) -> None:
    Draft7Validator.check_schema(connection_specification)


def test_every_property_has_a_title_and_a_description(connection_specification: dict[str, Any]) -> None:
    missing = [
        f"{pointer}: {key}"
        for pointer, _, schema in properties_of(connection_specification)
        for key in ("title", "description")
        if not str(schema.get(key, "")).strip()
    ]
    assert missing == []


def test_every_oneof_option_has_a_title_and_a_description(connection_specification: dict[str, Any]) -> None:
    missing = [
        f"{pointer}: {key}"
        for pointer, option in one_of_options(connection_specification)
        for key in ("title", "description")
        if not str(option.get(key, "")).strip()
    ]
    assert missing == []


@pytest.mark.parametrize("level", ["top level", "oneOf options"])
def test_properties_have_distinct_orders(connection_specification: dict[str, Any], level: str) -> None:
    objects = (
        [("", connection_specification)]
        if level == "top level"
        else list(one_of_options(connection_specification))
    )
    problems = []
    for pointer, schema in objects:
        orders = {name: child.get("order") for name, child in schema["properties"].items()}
        problems += [f"{pointer}/properties/{name}: no integer order" for name, order in orders.items()
                     if not isinstance(order, int)]
        if len(set(orders.values())) != len(orders):
            problems.append(f"{pointer}: repeated orders {sorted(orders.items(), key=lambda item: str(item[1]))}")
    assert problems == []


def test_oneof_options_share_a_required_const_discriminator(connection_specification: dict[str, Any]) -> None:
    problems = []
    for pointer, _, schema in properties_of(connection_specification):
        options = schema.get("oneOf")
        if not options:
            continue
        shared = set.intersection(*({name for name, p in o["properties"].items() if "const" in p} for o in options))
        if len(shared) != 1:
            problems.append(f"{pointer}: the options share no single const property (they share {sorted(shared)})")
            continue
        [discriminator] = shared
        consts = [option["properties"][discriminator]["const"] for option in options]
        if len(set(consts)) != len(consts):
            problems.append(f"{pointer}: {discriminator} consts repeat: {consts}")
        for index, option in enumerate(options):
            field = option["properties"][discriminator]
            if discriminator not in option.get("required", []):
                problems.append(f"{pointer}/oneOf/{index}: {discriminator} not required")
            if field.get("default") != field["const"]:
                problems.append(f"{pointer}/oneOf/{index}/properties/{discriminator}: default is not the const")
    assert problems == []


def test_oneof_options_require_only_their_own_properties(connection_specification: dict[str, Any]) -> None:
    problems = [
        f"{pointer}: requires {name}, which it does not declare"
        for pointer, option in one_of_options(connection_specification)
        for name in option.get("required", [])
        if name not in option.get("properties", {})
    ]
    top_level = connection_specification
    problems += [f"/required: {name} is not a property" for name in top_level.get("required", [])
                 if name not in top_level["properties"]]
    assert problems == []


def test_secret_looking_properties_are_marked_airbyte_secret(connection_specification: dict[str, Any]) -> None:
    unmarked = [
        pointer
        for pointer, name, schema in properties_of(connection_specification)
        if SECRET_NAME.search(name) and "string" in types_of(schema) and not schema.get("airbyte_secret")
    ]
    assert unmarked == []


def test_secrets_are_strings_without_examples_or_defaults(connection_specification: dict[str, Any]) -> None:
    problems = [
        pointer
        for pointer, _, schema in properties_of(connection_specification)
        if schema.get("airbyte_secret")
        and (types_of(schema) != {"string"} or "examples" in schema or "default" in schema)
    ]
    assert problems == []


def test_spec_uses_no_allof_or_not(connection_specification: dict[str, Any]) -> None:
    assert list(keyword_pointers(connection_specification, {"allOf", "not"})) == []


def test_free_text_properties_have_examples(connection_specification: dict[str, Any]) -> None:
    missing = [
        pointer
        for pointer, _, schema in properties_of(connection_specification)
        if is_free_text(schema) and not schema.get("examples")
    ]
    assert missing == []


def test_examples_and_defaults_are_valid_values_of_their_property(connection_specification: dict[str, Any]) -> None:
    invalid = []
    for pointer, _, schema in properties_of(connection_specification):
        validator = Draft7Validator(schema, format_checker=VALUE_FORMATS)
        values = [("default", schema["default"])] if "default" in schema else []
        values += [("examples", example) for example in schema.get("examples", [])]
        invalid += [f"{pointer}: {kind} {value!r}" for kind, value in values if not validator.is_valid(value)]
    assert invalid == []


def test_date_time_properties_describe_their_pattern(connection_specification: dict[str, Any]) -> None:
    missing = [
        pointer
        for pointer, _, schema in properties_of(connection_specification)
        if schema.get("format") == "date-time" and not schema.get("pattern_descriptor")
    ]
    assert missing == []


# -- the discovered stream schemas -----------------------------------------------------------------------


def test_discover_finds_streams(discovered_streams: list[dict[str, Any]]) -> None:
    assert {"mailboxes", "emails"} <= {stream["name"] for stream in discovered_streams}


def test_discovered_stream_schemas_are_valid_draft7_schemas(discovered_streams: list[dict[str, Any]]) -> None:
    for stream in discovered_streams:
        Draft7Validator.check_schema(stream["json_schema"])


def test_discovered_stream_schemas_never_forbid_additional_properties(
    discovered_streams: list[dict[str, Any]],
) -> None:
    closed = [
        f"{stream['name']}{pointer}"
        for stream in discovered_streams
        for pointer in keyword_pointers(stream["json_schema"], {"additionalProperties"})
        if _value_at(stream["json_schema"], pointer) is False
    ]
    assert closed == []


def test_discovered_keys_and_cursors_are_declared_in_the_stream_schema(
    discovered_streams: list[dict[str, Any]],
) -> None:
    undeclared = []
    for stream in discovered_streams:
        declared = stream["json_schema"]["properties"]
        fields = [path[0] for path in stream["source_defined_primary_key"] or []]
        fields += list(stream["default_cursor_field"] or [])
        undeclared += [f"{stream['name']}: {name}" for name in fields if name not in declared]
    assert undeclared == []


def test_discovered_streams_carry_a_nullable_deletion_timestamp(discovered_streams: list[dict[str, Any]]) -> None:
    problems = [
        stream["name"]
        for stream in discovered_streams
        if types_of(stream["json_schema"]["properties"].get("_ab_cdc_deleted_at", {})) != {"null", "string"}
    ]
    assert problems == []


def _value_at(document: Any, pointer: str) -> Any:
    for part in pointer.strip("/").split("/"):
        document = document[int(part)] if isinstance(document, list) else document[part]
    return document
