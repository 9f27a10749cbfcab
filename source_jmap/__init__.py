"""Airbyte source connector for JMAP mail servers (RFC 8620/8621)."""

from .source import SourceJmap

__all__ = ["SourceJmap"]
