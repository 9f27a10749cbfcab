"""Airbyte's standard connector test suite (airbyte_cdk.test.standard_tests) against the local Cyrus.

The scenarios come from acceptance-test-config.yml at the repository root: spec, connection (succeed,
wrong password, connection refused), discovery, basic_read (records in every stream, each valid against
its stream schema) and full_refresh. Their config files live in .local/standard_tests/ (git-ignored);
the module fixture below seeds a fresh account on the local Cyrus and writes them before any test of
the suite reads them (the suite reads a config file when a test runs, not when it is collected).

The suite's image tests (marked `image_tests`) build and run the Docker image. They run only when
SOURCE_JMAP_IMAGE_TESTS=1 is set and a container engine answers `docker info`; otherwise they are
skipped, so the normal test command never builds an image (scripts/image.sh does, separately).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from source_jmap.source import SourceJmap

from .conftest import ROOT, MailAccount, new_account, new_ext_account

with warnings.catch_warnings():
    # The CDK marks its tests `image_tests` and `requires_creds` without registering the markers.
    warnings.simplefilter("ignore", pytest.PytestUnknownMarkWarning)
    from airbyte_cdk.test.models.scenario import REMOVED_ENTRY_KEYS, SCENARIO_SECTIONS
    from airbyte_cdk.test.standard_tests import SourceTestSuiteBase

# Parametrizes the suite's tests with the scenarios of acceptance-test-config.yml, and adds its options.
pytest_plugins = ["airbyte_cdk.test.standard_tests.pytest_hooks"]

ACCEPTANCE_TEST_CONFIG = ROOT / "acceptance-test-config.yml"
CONFIG_DIR = ROOT / ".local" / "standard_tests"
IMAGE_TESTS_ENV = "SOURCE_JMAP_IMAGE_TESTS"
REFUSED_PORT = 9  # discard: nothing listens there on the test machine


def scenario_configs(account: MailAccount, ext_account: MailAccount) -> dict[str, dict[str, Any]]:
    """The config of every file acceptance-test-config.yml names, by file name."""
    return {
        "config.json": account.config(),
        "config_account.json": ext_account.config(),  # contacts, calendars, quotas and sieve on the ext Cyrus
        "config_all_content.json": account.config(
            read_all_accounts=True,
            exclude_mailboxes=[],
            body_values="all",
            max_body_value_bytes=64,
            include_headers=True,
            include_raw_message=True,  # adds the raw_messages stream
            max_raw_message_bytes=600,  # the sample messages are 312-1005 bytes: some downloaded, some skipped
        ),
        "config_wrong_password.json": account.config(
            credentials={"auth_type": "basic", "username": account.user, "password": "Wrong-password-0000"},
        ),
        "config_connection_refused.json": account.config(session_url=f"http://127.0.0.1:{REFUSED_PORT}/jmap/"),
    }


def config_paths_in_acceptance_test_config() -> set[str]:
    acceptance = yaml.safe_load(ACCEPTANCE_TEST_CONFIG.read_text())
    return {
        test["config_path"]
        for section in acceptance["acceptance_tests"].values()
        for test in section.get("tests", [])
        if "config_path" in test
    }


def write_atomically(path: Path, content: dict[str, Any]) -> None:
    """Replace the file in one step: another test run may be reading it at the same moment."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(content, indent=2))
    partial.replace(path)


@pytest.fixture(scope="module", autouse=True)
def standard_test_configs(cyrus: None, ext_cyrus: None) -> Iterator[dict[str, dict[str, Any]]]:
    account = new_account()
    configs = scenario_configs(account, new_ext_account(contacts=20, mail=True))
    CONFIG_DIR.mkdir(parents=True, exist_ok=True)
    for name, config in configs.items():
        write_atomically(CONFIG_DIR / name, config)
    yield configs


@pytest.fixture(autouse=True)
def image_tests_only_on_request(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("image_tests") is None:
        return
    if os.environ.get(IMAGE_TESTS_ENV) != "1":
        pytest.skip(f"image tests run only with {IMAGE_TESTS_ENV}=1 (see scripts/image.sh)")
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no container engine answers `docker info`")


class TestSourceJmapStandardSuite(SourceTestSuiteBase):
    connector = SourceJmap
    connector_name = "source-jmap"  # the suite would name it after the checkout's folder


def test_acceptance_test_config_names_exactly_the_written_configs(
    standard_test_configs: dict[str, dict[str, Any]],
) -> None:
    written = {str((CONFIG_DIR / name).relative_to(ROOT)) for name in standard_test_configs}
    assert config_paths_in_acceptance_test_config() == written


# The streams each basic_read config may leave empty: those its server cannot fill. The plain Cyrus serves
# mail only; the ext Cyrus serves everything but RFC 9610 AddressBook, which no Cyrus has.
ACCOUNT_STREAMS = {"contacts", "contact_groups", "address_books", "calendars", "calendar_events", "quotas",
                   "sieve_scripts"}
MAY_BE_EMPTY = {
    ".local/standard_tests/config.json": ACCOUNT_STREAMS,
    ".local/standard_tests/config_all_content.json": ACCOUNT_STREAMS,
    ".local/standard_tests/config_account.json": {"address_books"},
}


def test_basic_read_leaves_out_only_streams_the_config_server_cannot_fill() -> None:
    """Every other stream must return records from the seeded account, each valid against its schema."""
    acceptance = yaml.safe_load(ACCEPTANCE_TEST_CONFIG.read_text())
    basic_read = acceptance["acceptance_tests"]["basic_read"]["tests"]
    assert {test["config_path"] for test in basic_read} == set(MAY_BE_EMPTY)
    for test in basic_read:
        empty = test.get("empty_streams", [])
        assert {stream["name"] for stream in empty} == MAY_BE_EMPTY[test["config_path"]]
        assert all(stream.get("bypass_reason") for stream in empty)
        assert test.get("validate_schema", True)


def test_every_config_that_reads_is_also_checked_and_discovered() -> None:
    sections = yaml.safe_load(ACCEPTANCE_TEST_CONFIG.read_text())["acceptance_tests"]

    def configs(section: str) -> set[str]:
        tests = sections[section]["tests"]
        return {test["config_path"] for test in tests if test.get("status", "succeed") == "succeed"}

    read = configs("basic_read") | configs("full_refresh")
    assert read <= configs("connection")
    assert read <= configs("discovery")


def test_the_config_asks_only_for_checks_the_standard_suite_runs() -> None:
    """An `incremental` section is not collected and `expect_records` is no longer read (it fails collection):
    either would claim a check that never runs. The strictness level says so in the file."""
    acceptance = yaml.safe_load(ACCEPTANCE_TEST_CONFIG.read_text())
    assert set(acceptance["acceptance_tests"]) <= set(SCENARIO_SECTIONS)
    keys = {key for section in acceptance["acceptance_tests"].values() for test in section["tests"] for key in test}
    assert keys.isdisjoint(REMOVED_ENTRY_KEYS)
    assert acceptance["test_strictness_level"] == "low"


def test_suite_collects_every_scenario() -> None:
    scenario_ids = {scenario.id for scenario in TestSourceJmapStandardSuite.get_scenarios()}
    assert scenario_ids == {"config", "config_all_content", "config_account", "config_wrong_password",
                            "config_connection_refused"}
