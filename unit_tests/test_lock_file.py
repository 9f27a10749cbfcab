"""requirements.lock (what the container image installs, see Containerfile) against setup.py (the package's source
of truth): every install_requires is pinned there at a version it allows, with hashes. When this fails after a
change to setup.py, regenerate the lock files with scripts/lock.sh and commit them."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK_FILES = ["requirements.lock", "requirements-build.lock"]
# The image's interpreter: CPython 3.11 on Linux (the lock is compiled for it).
IMAGE_ENVIRONMENT = {"python_version": "3.11", "python_full_version": "3.11.11", "sys_platform": "linux",
                     "platform_system": "Linux", "implementation_name": "cpython",
                     "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}


def install_requires() -> list[Requirement]:
    """setup.py's install_requires, read without running setup.py: the list it names, as literals."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    lists = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    [call] = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup"]
    [value] = [keyword.value for keyword in call.keywords if keyword.arg == "install_requires"]
    if isinstance(value, ast.Name):
        value = lists[value.id]
    return [Requirement(text) for text in ast.literal_eval(value)]


def locked(lock_file: str) -> dict[str, tuple[Version, Marker | None, list[str]]]:
    """name -> (pinned version, environment marker, hashes) of every entry of a pip-compile style lock file."""
    text = (ROOT / lock_file).read_text()
    entries = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):  # an entry starts a line; its hashes and comments are indented
        requirement_line = block.split("\\")[0].strip()
        if not requirement_line or requirement_line.startswith("#"):
            continue
        requirement = Requirement(requirement_line)
        [specifier] = requirement.specifier
        assert specifier.operator == "==", f"{lock_file}: {requirement_line} is not pinned with =="
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", block)
        entries[canonicalize_name(requirement.name)] = (Version(specifier.version), requirement.marker, hashes)
    return entries


@pytest.mark.parametrize("lock_file", LOCK_FILES)
def test_every_locked_package_is_pinned_and_hashed(lock_file: str) -> None:
    entries = locked(lock_file)
    assert entries
    assert [name for name, (_, _, hashes) in entries.items() if not hashes] == []


def test_the_lock_file_covers_every_install_requires_of_setup_py() -> None:
    entries = locked("requirements.lock")
    problems = []
    for requirement in install_requires():
        if requirement.marker and not requirement.marker.evaluate(IMAGE_ENVIRONMENT):
            continue
        name = canonicalize_name(requirement.name)
        if name not in entries:
            problems.append(f"{requirement}: not in requirements.lock")
            continue
        version, marker, _ = entries[name]
        if not requirement.specifier.contains(version, prereleases=True):
            problems.append(f"{requirement}: requirements.lock pins {version}")
        if marker and not marker.evaluate(IMAGE_ENVIRONMENT):
            problems.append(f"{requirement}: requirements.lock installs it only where {marker}")
    assert problems == [], "run scripts/lock.sh: " + "; ".join(problems)


def test_the_lock_file_holds_the_dependencies_not_the_connector_itself() -> None:
    tree = ast.parse((ROOT / "setup.py").read_text())
    [name] = [
        ast.literal_eval(keyword.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "setup"
        for keyword in node.keywords
        if keyword.arg == "name"
    ]
    assert canonicalize_name(name) not in locked("requirements.lock")


def test_the_build_lock_pins_a_setuptools_that_builds_wheels_by_itself() -> None:
    """The Containerfile's builder stage builds without isolation and without an index: setuptools >= 70.1 has
    bdist_wheel built in, so no `wheel` package is needed."""
    version, _, _ = locked("requirements-build.lock")["setuptools"]
    assert version >= Version("70.1")


def test_the_containerfile_installs_from_the_lock_files() -> None:
    containerfile = (ROOT / "Containerfile").read_text()
    assert "--require-hashes -r requirements.lock" in containerfile
    assert "--require-hashes -r requirements-build.lock" in containerfile
    assert re.search(r"pip install [^\n]*--no-deps --no-index /tmp/wheels/", containerfile)
