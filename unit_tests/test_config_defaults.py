"""Each default is stated once, in the config model; spec.json shows users the same values."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic_core import PydanticUndefined

from source_jmap.config import JmapConfig

SPEC = json.loads((Path(__file__).parent.parent / "spec.json").read_text())["connectionSpecification"]
MINIMAL = {"session_url": "https://mail.example.com", "credentials": {"auth_type": "bearer", "api_token": "t"}}


def model_default(name: str) -> Any:
    field = JmapConfig.model_fields[name]
    return field.default_factory() if field.default_factory else field.default  # type: ignore[call-arg]


@pytest.mark.parametrize("name", sorted(SPEC["properties"]))
def test_spec_default_equals_the_config_models_default(name: str) -> None:
    spec_default = SPEC["properties"][name].get("default", PydanticUndefined)
    default = model_default(name)
    if spec_default is PydanticUndefined:  # the spec names no default: the model's is none or empty
        assert default in (PydanticUndefined, None, []), f"{name}: the model has {default!r}, spec.json none"
    else:
        assert spec_default == default


def test_a_config_of_only_the_required_fields_gets_every_spec_default() -> None:
    parsed = JmapConfig.parse(MINIMAL).model_dump()
    assert {name: parsed[name] for name, field in SPEC["properties"].items() if "default" in field} == {
        name: field["default"] for name, field in SPEC["properties"].items() if "default" in field
    }
