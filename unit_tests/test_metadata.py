"""metadata.yaml against Airbyte's connector metadata schema (PyPI airbyte-connector-models) and the rules of
Airbyte's metadata validators that need no network (airbytehq/airbyte, metadata_service/validators/
metadata_validator.py: tags, language tag, base image address, docs path, PyPI only for Python, major
versions and release candidates), and in step with the files that repeat its facts: setup.py, the
Containerfile, spec.json, the docs page with its changelog, and the icon.

Left out, because they ask Docker Hub: that the base image and the connector's image exist there and that
dockerImageTag is not below the last published one."""

from __future__ import annotations

import ast
import copy
import json
import re
import tomllib
import xml.etree.ElementTree as ElementTree
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
import yaml
from airbyte_connector_models.metadata.v0.connector_metadata_definition_v0 import ConnectorMetadataDefinitionV0
from jsonschema import Draft7Validator, FormatChecker

from source_jmap import SourceJmap

ROOT = Path(__file__).resolve().parent.parent
METADATA_PATH = ROOT / "metadata.yaml"
DOCS_SITE = "https://docs.airbyte.com/"
# The validator's own test: `image_name, tag_with_sha_prefix, digest = image_address.split(":")`; and a digest
# is sha256 and 64 lowercase hex digits.
BASE_IMAGE_ADDRESS = re.compile(
    r"(?P<image>[a-z0-9][a-z0-9./_-]*):(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]*)@sha256:[0-9a-f]{64}"
)
SEMVER = re.compile(
    r"(?P<major>0|[1-9]\d*)\.(?P<minor>0|[1-9]\d*)\.(?P<patch>0|[1-9]\d*)(?:-(?P<prerelease>[0-9A-Za-z.-]+))?"
)


def setup_keyword(name: str) -> Any:
    """A literal keyword argument of setup() in setup.py, read without running it."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    [call] = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup"]
    [keyword] = [keyword for keyword in call.keywords if keyword.arg == name]
    return ast.literal_eval(keyword.value)


def containerfile_instructions(keyword: str) -> list[str]:
    """The arguments of every instruction of that kind in the Containerfile (continuation lines not joined)."""
    return re.findall(rf"^{keyword}\s+(.+?)\s*$", (ROOT / "Containerfile").read_text(), flags=re.MULTILINE)


def docs_path(documentation_url: str) -> Path:
    """Where Airbyte's repository keeps the page of a docs.airbyte.com URL (the validators' docs_path)."""
    assert documentation_url.startswith(DOCS_SITE), documentation_url
    return ROOT / "docs" / f"{documentation_url.removeprefix(DOCS_SITE).strip('/')}.md"


def changelog_rows(page: str) -> list[dict[str, str]]:
    """The rows of the table under the docs page's `## Changelog` heading."""
    section = page.split("\n## Changelog", 1)[1]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in rows[0].strip("|").split("|")]
    return [dict(zip(header, (cell.strip() for cell in row.strip("|").split("|")), strict=True)) for row in rows[2:]]


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


def test_metadata_declares_file_transfer_exactly_while_a_stream_is_file_based(metadata: dict[str, Any]) -> None:
    """The platform offers "Include files" only to a connector whose metadata says supportsFileTransfer (read
    here through Airbyte's own model, so a misspelt or misplaced key counts as absent)."""
    every_stream = {"session_url": "https://jmap.example.com/jmap/", "include_raw_message": True,
                    "credentials": {"auth_type": "bearer", "api_token": "t"}}
    streams = SourceJmap().streams(every_stream)
    file_based = [stream.name for stream in streams if stream.as_airbyte_stream().is_file_based]
    assert file_based == ["attachments", "raw_messages"]
    declared = ConnectorMetadataDefinitionV0.model_validate(metadata).data.supports_file_transfer
    assert declared is bool(file_based), f"file-based streams {file_based}, but supportsFileTransfer is {declared}"


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


def test_versions_agree_between_setup_py_metadata_and_the_containerfile_label(metadata: dict[str, Any]) -> None:
    labels = dict(label.split("=", 1) for label in containerfile_instructions("LABEL"))
    assert setup_keyword("version") == metadata["data"]["dockerImageTag"] == labels["io.airbyte.version"]


def test_containerfile_builds_from_the_metadata_base_image_and_carries_its_labels(metadata: dict[str, Any]) -> None:
    data = metadata["data"]
    stages = [line.split()[0] for line in containerfile_instructions("FROM")]
    labels = dict(label.split("=", 1) for label in containerfile_instructions("LABEL"))
    assert stages and all(stage == data["connectorBuildOptions"]["baseImage"] for stage in stages), stages
    assert labels == {"io.airbyte.name": data["dockerRepository"], "io.airbyte.version": data["dockerImageTag"]}


def test_no_dockerfile_at_the_root_where_airbyte_builds_python_connectors_from_the_base_image() -> None:
    """Airbyte's QA check CheckConnectorUsesPythonBaseImage fails a Python connector with a Dockerfile at its
    root (the image comes from metadata.yaml's baseImage there); ours is the Containerfile."""
    assert not (ROOT / "Dockerfile").exists()
    assert (ROOT / "Containerfile").is_file()


def test_a_pyproject_toml_if_any_is_a_poetry_project_as_airbyte_cdk_tag_check_reads_it() -> None:
    """Airbyte's QA check CheckConnectorCDKTag reads [tool.poetry.dependencies] of any pyproject.toml, and
    crashes the QA run (KeyError 'poetry') on one that only holds tool settings: those go to ruff.toml,
    pytest.ini and mypy.ini."""
    pyproject = ROOT / "pyproject.toml"
    if pyproject.exists():
        assert "dependencies" in tomllib.loads(pyproject.read_text()).get("tool", {}).get("poetry", {})


def test_base_image_is_an_address_pinned_by_digest(metadata: dict[str, Any]) -> None:
    address = metadata["data"]["connectorBuildOptions"]["baseImage"]
    assert BASE_IMAGE_ADDRESS.fullmatch(address), f"{address} is not <image>:<tag>@sha256:<64 hex digits>"
    assert len(address.split(":")) == 3  # how Airbyte's validator takes it apart


@pytest.mark.parametrize(
    "address",
    [
        "docker.io/airbyte/python-connector-base:4.0.0",
        "docker.io/airbyte/python-connector-base@sha256:" + "0" * 64,
        "docker.io/airbyte/python-connector-base:4.0.0@sha256:" + "0" * 63,
        "docker.io/airbyte/python-connector-base:4.0.0@sha256:" + "G" * 64,
        "localhost:5000/python-connector-base:4.0.0@sha256:" + "0" * 64,
    ],
    ids=["no digest", "no tag", "short digest", "not hex", "registry port"],
)
def test_the_base_image_check_rejects_addresses_without_tag_and_digest(address: str) -> None:
    assert not (BASE_IMAGE_ADDRESS.fullmatch(address) and len(address.split(":")) == 3)


def test_the_image_runs_the_console_script_as_the_airbyte_user() -> None:
    console_scripts = setup_keyword("entry_points")["console_scripts"]
    assert "source-jmap=source_jmap.run:run" in console_scripts
    users = containerfile_instructions("USER")
    assert users and users[-1] == "airbyte"
    assert containerfile_instructions("ENTRYPOINT") == ['["/usr/local/bin/source-jmap"]']
    assert containerfile_instructions("ENV").count('AIRBYTE_ENTRYPOINT="/usr/local/bin/source-jmap"') == 1


def test_tags_are_key_value_pairs_with_one_language(metadata: dict[str, Any]) -> None:
    tags = metadata["data"]["tags"]
    assert all(":" in tag for tag in tags), tags
    assert [tag for tag in tags if tag.startswith("language:")] == ["language:python"]


def test_pypi_publishing_names_the_setup_py_distribution(metadata: dict[str, Any]) -> None:
    pypi = metadata["data"]["remoteRegistries"]["pypi"]
    assert pypi == {"enabled": True, "packageName": setup_keyword("name")}
    assert setup_keyword("name") == "airbyte-source-jmap"  # the name Airbyte's registry and PyAirbyte install
    assert "language:python" in metadata["data"]["tags"]  # the validator: PyPI only for Python connectors


def test_major_versions_have_a_breaking_change_entry_and_release_candidates_a_rollout(metadata: dict[str, Any]) -> None:
    data = metadata["data"]
    version = SEMVER.fullmatch(data["dockerImageTag"])
    assert version, f"dockerImageTag {data['dockerImageTag']} is not a semantic version"
    prerelease = version["prerelease"] or ""
    rollout = data.get("releases", {}).get("rolloutConfiguration", {}).get("enableProgressiveRollout")
    if version["major"] != "0" and version["minor"] == version["patch"] == "0":
        assert "rc" not in prerelease, "no release candidates of a major version"
        if not prerelease:
            assert data["dockerImageTag"] in data.get("releases", {}).get("breakingChanges", {})
    if "rc" in prerelease:
        assert rollout is not None, "a release candidate needs releases.rolloutConfiguration.enableProgressiveRollout"
    if rollout:
        assert prerelease, "progressive rollout only for an -rc.N (or dev) version"


def test_documentation_page_exists_where_airbyte_keeps_it(metadata: dict[str, Any]) -> None:
    assert docs_path(metadata["data"]["documentationUrl"]).is_file()


def test_docs_changelog_has_an_entry_for_the_version_and_dates_the_release(metadata: dict[str, Any]) -> None:
    data = metadata["data"]
    rows = changelog_rows(docs_path(data["documentationUrl"]).read_text())
    versions = [row["Version"] for row in rows]
    assert versions[0] == data["dockerImageTag"], f"the newest changelog entry is {versions[0]}"
    assert all(date.fromisoformat(row["Date"]) for row in rows)
    assert all(row["Subject"] for row in rows)
    first_release = min(date.fromisoformat(row["Date"]) for row in rows)
    assert date.fromisoformat(str(data["releaseDate"])) == first_release


def test_icon_is_an_svg_file_next_to_the_metadata(metadata: dict[str, Any]) -> None:
    icon = ROOT / metadata["data"]["icon"]
    assert metadata["data"]["icon"] == "icon.svg"
    root = ElementTree.parse(icon).getroot()
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert root.get("viewBox")


def test_metadata_documentation_url_is_the_spec_documentation_url(metadata: dict[str, Any]) -> None:
    spec = json.loads((ROOT / "spec.json").read_text())
    assert metadata["data"]["documentationUrl"] == spec["documentationUrl"]


def test_metadata_allowed_hosts_name_the_configured_session_url(metadata: dict[str, Any]) -> None:
    """The platform replaces ${session_url} with the host of the configured URL; no other host is needed."""
    spec_properties = json.loads((ROOT / "spec.json").read_text())["connectionSpecification"]["properties"]
    hosts = metadata["data"]["allowedHosts"]["hosts"]
    placeholders = {name for host in hosts for name in re.findall(r"\$\{([^}]+)\}", host)}
    assert hosts and placeholders <= set(spec_properties)


# Airbyte's connectors_qa check "Connectors must use HTTPS only" (CheckConnectorUsesHTTPSOnly), run the same way:
# every line of every file outside the test folders, lowercased; comment lines of .py/.yml/.yaml/.md files, lines
# marked `# ignore-https-check` and the two prefixes below do not count.
HTTPS_CHECK_IGNORED_PARTS = {".venv", "tests", "unit_tests", "integration_tests", "build", ".pytest_cache",
                             ".hypothesis", ".ruff_cache", "acceptance_tests_logs", ".git", ".local", "secrets",
                             "__pycache__"}
HTTPS_CHECK_IGNORED_FILES = ["*.svg", "*.pyc", "*.gz", "*.jar", "expected_records.jsonl", "expected_records.json"]
HTTPS_CHECK_COMMENTS = {".py": "#", ".yml": "#", ".yaml": "#", ".md": "<!--"}


def test_no_plain_http_url_outside_the_tests_as_airbyte_https_only_check() -> None:
    offenders = []
    for path in sorted(ROOT.rglob("*")):
        parts = set(path.relative_to(ROOT).parts)
        if not path.is_file() or parts & HTTPS_CHECK_IGNORED_PARTS:
            continue
        if any(path.match(pattern) for pattern in HTTPS_CHECK_IGNORED_FILES):
            continue
        try:
            lines = path.read_text().splitlines()
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(lines, 1):
            line = line.lower()
            comment = HTTPS_CHECK_COMMENTS.get(path.suffix)
            if (comment and line.lstrip().startswith(comment)) or "# ignore-https-check" in line:
                continue
            if "http://" in line.replace("http://json-schema.org", "").replace("http://localhost", ""):
                offenders.append(f"{path.relative_to(ROOT)}:{number}")
    assert offenders == []
