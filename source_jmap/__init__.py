"""Airbyte source connector for JMAP mail servers (RFC 8620/8621).

`SourceJmap` is loaded when first asked for, so that `source_jmap.jmap` can be used without the CDK.
"""

from typing import Any

__all__ = ["SourceJmap"]


def __getattr__(name: str) -> Any:
    if name == "SourceJmap":
        from .source import SourceJmap

        return SourceJmap
    raise AttributeError(f"module 'source_jmap' has no attribute {name!r}")
