"""metadata.yaml against Airbyte's connector metadata schema (PyPI airbyte-connector-models), and in step
with the files that repeat its facts: setup.py, the Dockerfile and spec.json."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import ConnectorMetadataDefinitionV0
from jsonschema import Draft7Validator, FormatChecker

ROOT = Path(__file__).resolve().parent.parent
METADATA_PATH = ROOT / "metadata.yaml"


def without_ids(schema: Any) -> Any:
    """The schema nests sub-schemas with their own `$id` (URLs that jsonschema would try to resolve)."""
    if isinstance(schema, dict):
        return {key: without_ids(value) for key, value in schema.items() if key != "$id"}
    if isinstance(schema, list):
        return [without_ids(item) for item in schema]
    return schema


@pytest.fixture(scope="module")
def metadata_validator() -> Draft7Validator:
    schema_file = resources.files("airbyte_connector_models.metadata.v0") / "ConnectorMetadataDefinitionV0.json"
    schema = without_ids(json.loads(schema_file.read_text()))
    # Not Draft7Validator.check_schema(schema): Airbyte's schema itself fails it (data.ab_internal.metrics
    # uses `"type": "ConnectorMetric"`), which matters only to metadata that sets those metrics.
    return Draft7Validator(schema, format_checker=FormatChecker())  # every format, uuid included


@pytest.fixture(scope="module")
def metadata() -> dict[str, Any]:
    return yaml.safe_load(METADATA_PATH.read_text())


def schema_errors(validator: Draft7Validator, document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(document)]


def test_metadata_matches_the_airbyte_metadata_json_schema(
    metadata_validator: Draft7Validator, metadata: dict[str, Any]
) -> None:
    assert schema_errors(metadata_validator, metadata) == []


def test_metadata_parses_with_the_airbyte_metadata_model(metadata: dict[str, Any]) -> None:
    parsed = ConnectorMetadataDefinitionV0.model_validate(metadata)
    assert parsed.data.connector_type.value == "source"
    assert parsed.data.docker_repository == "airbyte/source-jmap"


@pytest.mark.parametrize(
    ("path", "bad_value"),
    [
        (("data", "releaseStage"), "ga"),
        (("data", "definitionId"), "not-a-uuid"),
        (("data", "connectorSubtype"), "mail"),
        (("data", "remoteRegistries", "pypi", "packagename"), "misspelt key"),
    ],
    ids=["unknown release stage", "definitionId not a uuid", "unknown subtype", "unknown key"],
)
def test_the_schema_check_rejects_a_broken_metadata_file(
    metadata_validator: Draft7Validator, metadata: dict[str, Any], path: tuple[str, ...], bad_value: str
) -> None:
    broken = copy.deepcopy(metadata)
    parent = broken
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = bad_value
    assert schema_errors(metadata_validator, broken)


@pytest.mark.parametrize("required", ["definitionId", "dockerImageTag", "license", "releaseStage", "githubIssueLabel"])
def test_the_schema_check_rejects_metadata_without_a_required_field(
    metadata_validator: Draft7Validator, metadata: dict[str, Any], required: str
) -> None:
    broken = copy.deepcopy(metadata)
    del broken["data"][required]
    assert schema_errors(metadata_validator, broken)


def test_metadata_version_is_the_package_version(metadata: dict[str, Any]) -> None:
    [package_version] = re.findall(r'version="([^"]+)"', (ROOT / "setup.py").read_text())
    assert metadata["data"]["dockerImageTag"] == package_version


def test_dockerfile_builds_from_the_metadata_base_image_and_carries_its_labels(metadata: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    data = metadata["data"]
    [base_image] = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    labels = dict(re.findall(r"^LABEL\s+(\S+)=(\S+)", dockerfile, flags=re.MULTILINE))
    assert base_image == data["connectorBuildOptions"]["baseImage"]
    assert labels == {"io.airbyte.name": data["dockerRepository"], "io.airbyte.version": data["dockerImageTag"]}


def test_metadata_documentation_url_is_the_spec_documentation_url(metadata: dict[str, Any]) -> None:
    spec = json.loads((ROOT / "spec.json").read_text())
    assert metadata["data"]["documentationUrl"] == spec["documentationUrl"]


def test_metadata_allowed_hosts_name_the_configured_session_url(metadata: dict[str, Any]) -> None:
    """The platform replaces ${session_url} with the host of the configured URL; no other host is needed."""
    spec_properties = json.loads((ROOT / "spec.json").read_text())["connectionSpecification"]["properties"]
    hosts = metadata["data"]["allowedHosts"]["hosts"]
    placeholders = {name for host in hosts for name in re.findall(r"\$\{([^}]+)\}", host)}
    assert hosts and placeholders <= set(spec_properties)
