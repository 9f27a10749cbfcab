"""The docs page (docs/integrations/sources/jmap.md) against Airbyte's connector documentation template
(airbytehq/airbyte connectors_qa: checks/documentation/templates/template.md.j2 and the checks that read it):
headings named and ordered as the template, the sync modes sentence, the Prerequisites naming the required
fields, the reference sections hidden in the in-app view, and the page in step with spec.json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "integrations" / "sources" / "jmap.md"
NAME = yaml.safe_load((ROOT / "metadata.yaml").read_text())["data"]["name"]
SPEC = json.loads((ROOT / "spec.json").read_text())["connectionSpecification"]
# The template's headings, in its order; the page may add its own between them.
TEMPLATE_HEADINGS = [
    f"# {NAME}",
    "## Prerequisites",
    "## Setup guide",
    f"## Set up {NAME}",
    f"## Set up the {NAME} connector in Airbyte",
    "## Supported sync modes",
    "## Supported Streams",
    "### Performance considerations",
    "## Data type map",
    "## Limitations & Troubleshooting",
    "## Changelog",
]


@pytest.fixture(scope="module")
def page() -> str:
    return PAGE.read_text()


def headings(page: str) -> list[str]:
    return [line.strip() for line in page.splitlines() if line.startswith("#")]


def section(page: str, heading: str) -> str:
    """The text under a heading, up to the next heading of the same or a higher level."""
    level = heading.split(" ")[0]
    start = page.index(f"\n{heading}\n") + len(heading) + 2
    following = re.search(rf"^#{{1,{len(level)}}} ", page[start:], flags=re.MULTILINE)
    return page[start : start + following.start()] if following else page[start:]


def test_the_template_headings_are_there_in_the_template_order(page: str) -> None:
    found = headings(page)
    missing = [heading for heading in TEMPLATE_HEADINGS if heading not in found]
    assert missing == []
    positions = [found.index(heading) for heading in TEMPLATE_HEADINGS]
    assert positions == sorted(positions), [found[position] for position in positions]
    assert found.count(f"# {NAME}") == 1 and found[0] == f"# {NAME}"


def test_supported_sync_modes_opens_with_the_template_sentence(page: str) -> None:
    first_line = section(page, "## Supported sync modes").strip().splitlines()[0]
    assert first_line == (
        f"The {NAME} source connector supports the following "
        "[sync modes](https://docs.airbyte.com/cloud/core-concepts/#connection-sync-modes):"
    )


def test_prerequisites_name_every_required_field(page: str) -> None:
    """Airbyte's check: the title of every required field, and for credentials one of its auth keywords."""
    prerequisites = section(page, "## Prerequisites").lower()
    titles = [SPEC["properties"][name]["title"] for name in SPEC["required"] if name != "credentials"]
    assert [title for title in titles if title.lower() not in prerequisites] == []
    assert any(word in prerequisites for word in ["account", "auth", "credentials", "access", "client"])


def test_reference_sections_are_hidden_in_the_in_app_view(page: str) -> None:
    """The intro sentence and everything from Supported sync modes to the changelog sit in <HideInUI> blocks,
    and the setup steps do not."""
    blocks = re.findall(r"<HideInUI>(.*?)</HideInUI>", page, flags=re.DOTALL)
    assert page.count("<HideInUI>") == page.count("</HideInUI>") == len(blocks) == 2
    assert "This page contains the setup guide and reference information" in blocks[0]
    hidden = [heading for block in blocks for heading in headings(block)]
    start = TEMPLATE_HEADINGS.index("## Supported sync modes")
    assert set(TEMPLATE_HEADINGS[start:]) <= set(hidden)
    assert not {"## Prerequisites", "## Setup guide", f"## Set up {NAME}"} & set(hidden)


def test_changelog_is_a_collapsed_table(page: str) -> None:
    changelog = section(page, "## Changelog")
    assert "<details>" in changelog and "<summary>Expand to review</summary>" in changelog
    assert "| Version | Date       | Pull Request | Subject |" in changelog


def test_the_configuration_reference_lists_every_spec_field(page: str) -> None:
    reference = section(page, "### Configuration reference")
    listed = set(re.findall(r"^\| [^|]*\(`([a-z_]+)`\)", reference, flags=re.MULTILINE))
    assert listed == set(SPEC["properties"])


def test_the_data_type_map_covers_the_types_the_streams_declare(page: str) -> None:
    data_type_map = section(page, "## Data type map")
    for airbyte_type in ["string", "integer", "boolean", "object", "array", "timestamp_with_timezone"]:
        assert f"`{airbyte_type}`" in data_type_map
