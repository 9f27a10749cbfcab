"""Airbyte's UI conventions for the spec, and valid, open JSON schemas for the discovered streams.

Each check collects every violation (as a JSON pointer and what is wrong), so a failure names the
exact change to make in spec.json or in a stream schema.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from airbyte_cdk.test.entrypoint_wrapper import discover
from jsonschema import Draft7Validator, FormatChecker

from source_jmap import SourceJmap

from .fake_jmap import FakeJmap

logger = logging.getLogger("test")
ROOT = Path(__file__).resolve().parent.parent

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


def test_the_package_serves_the_spec_at_the_repository_root() -> None:
    link = ROOT / "source_jmap" / "spec.json"
    assert link.is_symlink() and link.readlink() == Path("../spec.json")


def test_properties_with_a_pattern_describe_it_and_examples_match_it(connection_specification: dict[str, Any]) -> None:
    """Every example and default of a property with a `pattern` matches it (as jsonschema applies it: a search),
    and the UI has a `pattern_descriptor` to show."""
    problems = []
    for pointer, _, schema in properties_of(connection_specification):
        if "pattern" not in schema:
            continue
        pattern = re.compile(schema["pattern"])
        values = [schema["default"]] if "default" in schema else []
        values += schema.get("examples", [])
        problems += [f"{pointer}: {value!r} does not match" for value in values if not pattern.search(value)]
        if not values:
            problems.append(f"{pointer}: no example")
        if not schema.get("pattern_descriptor"):
            problems.append(f"{pointer}: no pattern_descriptor")
    assert problems == []


def test_patterns_are_anchored_and_portable_to_the_ui(connection_specification: dict[str, Any]) -> None:
    """The UI checks patterns with JavaScript regular expressions: no Python-only syntax, and ^...$ anchors (jsonschema
    searches, so an unanchored pattern would accept any value that merely contains a match)."""
    problems = []
    for pointer, _, schema in properties_of(connection_specification):
        pattern = schema.get("pattern")
        if pattern is None:
            continue
        if not (pattern.startswith("^") and pattern.endswith("$")):
            problems.append(f"{pointer}: not anchored")
        if re.search(r"\(\?P|\\[AZz]|\(\?#", pattern):
            problems.append(f"{pointer}: Python-only syntax")
    assert problems == []


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("https://api.fastmail.com/jmap/session", True),
        ("https://mail.example.com", True),
        ("https://mail.example.com/jmap/", True),
        ("https://mail.example.com:8443/.well-known/jmap", True),
        ("http://127.0.0.1:18080/jmap/", True),  # a server on the same machine, as in this repository's tests
        ("http://localhost:8080", True),
        ("http://[::1]/jmap/", True),
        ("http://mail.example.com/jmap/", False),  # credentials in the clear over the network
        ("http://127.0.0.1.example.com/jmap/", False),
        ("ftp://mail.example.com/jmap/", False),
        ("mail.example.com", False),
        ("https://", False),
        ("https://alice:secret@mail.example.com/", False),  # no credentials in the URL
        ("https://mail.example.com/jmap session", False),
    ],
)
def test_session_url_pattern(connection_specification: dict[str, Any], value: str, accepted: bool) -> None:
    pattern = connection_specification["properties"]["session_url"]["pattern"]
    assert bool(re.search(pattern, value)) is accepted


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("2024-01-01T00:00:00Z", True),
        ("2024-01-01T00:00:00.250Z", True),
        ("2024-01-01T09:30:00+02:00", True),
        ("2024-01-01", True),
        ("2024-01-01T00:00:00", False),  # no offset: ambiguous
        ("2024-01-01 00:00:00Z", False),
        ("01/02/2024", False),
        ("yesterday", False),
        ("last tuesday", False),
        ("now", False),
        ("", False),
    ],
)
def test_start_date_pattern(connection_specification: dict[str, Any], value: str, accepted: bool) -> None:
    pattern = connection_specification["properties"]["start_date"]["pattern"]
    assert bool(re.search(pattern, value)) is accepted


def test_date_pattern_descriptors_describe_what_the_pattern_accepts(connection_specification: dict[str, Any]) -> None:
    """Each form a date descriptor names ("YYYY-MM-DD or YYYY-MM-DDTHH:mm:ssZ"), filled in, matches the pattern."""
    digits = {"YYYY": "2024", "MM": "01", "DD": "02", "HH": "03", "mm": "04", "ss": "05"}
    problems = []
    for pointer, _, schema in properties_of(connection_specification):
        descriptor = schema.get("pattern_descriptor", "")
        if "YYYY" not in descriptor:
            continue
        for form in descriptor.split(" or "):
            value = re.sub("|".join(digits), lambda match: digits[match.group()], form)
            if not re.search(schema["pattern"], value):
                problems.append(f"{pointer}: {form} ({value}) does not match the pattern")
    assert problems == []


def test_optional_fields_are_organised_in_declared_groups(connection_specification: dict[str, Any]) -> None:
    groups = connection_specification.get("groups", [])
    ids = [group["id"] for group in groups]
    used = {schema.get("group") for schema in connection_specification["properties"].values()}
    problems = [f"group {group['id']}: no title" for group in groups if not group.get("title")]
    problems += [f"/properties/{name}: group {schema.get('group')!r} is not declared"
                 for name, schema in connection_specification["properties"].items() if schema.get("group") not in ids]
    problems += [f"group {group_id}: holds no property" for group_id in ids if group_id not in used]
    assert len(set(ids)) == len(ids) and len(ids) > 1
    assert problems == []


def test_account_ids_and_read_all_accounts_say_that_they_exclude_each_other(
    connection_specification: dict[str, Any],
) -> None:
    properties = connection_specification["properties"]
    account_ids, read_all = properties["account_ids"], properties["read_all_accounts"]
    assert read_all["title"] in account_ids["description"] and "Excludes" in account_ids["description"]
    assert account_ids["title"] in read_all["description"] and "Excludes" in read_all["description"]


def _config_from(connection_specification: dict[str, Any], kind: str) -> dict[str, Any]:
    """A config of every top-level property's default (kind "default") or first example (kind "examples")."""
    config: dict[str, Any] = {"session_url": "https://mail.example.com",
                              "credentials": {"auth_type": "basic", "username": "alice", "password": "pw"}}
    for name, schema in connection_specification["properties"].items():
        if kind == "default" and "default" in schema:
            config[name] = schema["default"]
        if kind == "examples" and schema.get("examples"):
            config[name] = schema["examples"][0]
    return config


@pytest.mark.parametrize("kind", ["default", "examples"])
def test_the_spec_defaults_and_examples_make_a_config_the_connector_accepts(
    connection_specification: dict[str, Any], kind: str
) -> None:
    """Valid against the spec (what Airbyte checks before the connector runs) and accepted by the connector's own
    config model: building the streams parses the config and touches no network."""
    config = _config_from(connection_specification, kind)
    if kind == "examples":
        config.pop("read_all_accounts", None)  # it has no example; account_ids has one and they exclude each other
    Draft7Validator(connection_specification).validate(config)
    assert SourceJmap().streams(config)


def test_spec_json_has_no_plain_http_url() -> None:
    """Airbyte's HTTPS-only check reads spec.json line by line: only the draft-07 $schema may say http://."""
    text = (ROOT / "spec.json").read_text().replace("http://json-schema.org", "")
    assert "http://" not in text
    assert json.loads((ROOT / "spec.json").read_text())


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
