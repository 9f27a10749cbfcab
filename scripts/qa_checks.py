"""Run every check of Airbyte's connector QA (airbyte_ops_mcp.connector_qa.checks.ENABLED_CHECKS) on one
connector of a monorepo-shaped directory (the working directory), printing each result and a summary line.
Run by scripts/qa.sh, in its own venv.

The checks' network look-ups are answered here, as they would be for a connector never released:
- Airbyte's registries (connector_ops.utils.download_catalog: is the connector released, its cloud usage,
  its SBOM): registries without it.
- Docker Hub, the connector's image tags (metadata_validator: dockerImageTag not below the last release):
  none, the 404 of an image never pushed.
- GitHub, metadata.yaml on Airbyte's master (CheckVersionIncrement: the version before this change): 404.
- Docker Hub, the base image tag of metadata.yaml (ValidateMetadata): found, with the digest metadata.yaml
  pins. That is Airbyte's published python-connector-base, not this connector; without a network it cannot
  be asked, and unit_tests/test_metadata.py checks its address. The summary says it was assumed.
Any other request fails the run: a new look-up of a newer release must be answered here first.
"""

from __future__ import annotations

import sys
import traceback
from typing import Any
from urllib.parse import urlsplit

import requests
from airbyte_ops_mcp import metadata_validator
from airbyte_ops_mcp.connector_ops import utils as connector_utils
from airbyte_ops_mcp.connector_ops.utils import Connector
from airbyte_ops_mcp.connector_qa.checks import ENABLED_CHECKS
from airbyte_ops_mcp.connector_qa.models import CheckStatus

# setup.py, not Poetry: these three read pyproject.toml's [tool.poetry], which the project does not have.
POETRY_CHECKS = {"CheckConnectorUsesPoetry", "CheckConnectorLicenseMatchInPyproject",
                 "CheckConnectorVersionMatchInPyproject"}
BASE_IMAGE = "airbyte/python-connector-base"
ASSUMED: list[str] = []  # the look-ups answered "found" without asking, said in the summary


class UnansweredLookup(Exception):
    """A network look-up this script does not know how to answer as for an unreleased connector."""


def answer(method: str, url: str, **_: Any) -> requests.Response:
    """The answer a never-released connector gets; UnansweredLookup for anything else."""
    parts = urlsplit(url)
    response = requests.Response()
    response.url = url
    response.status_code = 404
    response._content = b'{"message": "not found"}'
    if parts.netloc == "raw.githubusercontent.com" and parts.path.endswith("/metadata.yaml"):
        return response
    if parts.netloc == "registry.hub.docker.com" and "/repositories/airbyte/source-" in parts.path:
        return response
    raise UnansweredLookup(f"{method} {url}")


def empty_registry(url: str) -> dict[str, list[Any]]:
    """Airbyte's OSS or cloud registry, as it is for a connector not in it."""
    return {"sources": [], "destinations": []}


def base_image_on_docker_hub(image: str, tag: str, digest: str | None = None, **_: Any) -> bool:
    if image != BASE_IMAGE:
        raise UnansweredLookup(f"Docker Hub: {image}:{tag}")
    ASSUMED.append(f"{image}:{tag}@sha256:{digest} is on Docker Hub")
    return True


def main(technical_name: str) -> int:
    requests.get = lambda url, *args, **kwargs: answer("GET", url, **kwargs)  # type: ignore[assignment]
    requests.post = lambda url, *args, **kwargs: answer("POST", url, **kwargs)  # type: ignore[assignment]
    connector_utils.download_catalog = empty_registry
    metadata_validator.is_image_on_docker_hub = base_image_on_docker_hub

    connector = Connector(technical_name)
    counts = {status: 0 for status in CheckStatus}
    failed: list[str] = []
    crashed: list[str] = []
    for check in ENABLED_CHECKS:
        check_name = type(check).__name__
        try:
            result = check.run(connector)
        except Exception as error:  # a crash is a result here: the run goes on, the summary counts it
            crashed.append(check_name)
            detail = "".join(traceback.format_exception_only(error)).strip()
            print(f"💥 Crashed  {check_name}: {detail}")
            continue
        counts[result.status] += 1
        if result.status is CheckStatus.FAILED:
            failed.append(check_name)
        print(f"{result.status.value}  {check_name}: {result.message}")

    for assumption in ASSUMED:
        print(f"assumed, without a network: {assumption}")
    if set(failed) == POETRY_CHECKS:
        failures = f"{len(failed)} failed (only the three Poetry checks)"
    else:
        failures = f"{len(failed)} failed ({', '.join(failed) or 'none'})"
    crashes = f"{len(crashed)} crashed" + (f" ({', '.join(crashed)})" if crashed else "")
    print(f"{len(ENABLED_CHECKS)} checks: {counts[CheckStatus.PASSED]} passed, {failures}, "
          f"{counts[CheckStatus.SKIPPED]} skipped, {crashes}")
    return 0 if not crashed and set(failed) <= POETRY_CHECKS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
