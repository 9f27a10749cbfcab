"""Run the connector exactly as Airbyte does: `python main.py <command> --config ...`, and parse its output."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [message for message in self.messages if message["type"] == kind]

    def lines_of(self, stream: str) -> list[str]:
        """The RECORD lines of a stream as the connector wrote them (for a check of the wire format)."""
        return [line for line in self.stdout.splitlines() if line.startswith("{")
                and (message := json.loads(line))["type"] == "RECORD" and message["record"]["stream"] == stream]

    def records(self, stream: str) -> list[dict[str, Any]]:
        return [m["record"]["data"] for m in self.of_type("RECORD") if m["record"]["stream"] == stream]

    def final_state(self) -> list[dict[str, Any]]:
        """The last state of every stream, as a `--state` file for the next run."""
        latest: dict[str, dict[str, Any]] = {}
        for message in self.of_type("STATE"):
            latest[message["state"]["stream"]["stream_descriptor"]["name"]] = message["state"]
        return list(latest.values())

    def stream_state(self, stream: str) -> dict[str, Any]:
        [state] = [s for s in self.final_state() if s["stream"]["stream_descriptor"]["name"] == stream]
        return state["stream"]["stream_state"]

    @property
    def connection_status(self) -> dict[str, Any]:
        [status] = self.of_type("CONNECTION_STATUS")
        return status["connectionStatus"]

    @property
    def log_text(self) -> str:
        return "\n".join(m["log"]["message"] for m in self.of_type("LOG"))


def catalog(streams: list[str], sync_mode: str = "incremental", files: Collection[str] = ()) -> dict[str, Any]:
    """The configured catalog; the streams named in `files` are configured with `include_files` (file transfer)."""
    return {"streams": [
        {"stream": {"name": name, "json_schema": {}, "supported_sync_modes": ["full_refresh", "incremental"],
                    "source_defined_cursor": True, "default_cursor_field": ["_ab_cdc_updated_at"]},
         "sync_mode": sync_mode, "destination_sync_mode": "append_dedup" if sync_mode == "incremental" else "overwrite",
         "cursor_field": ["_ab_cdc_updated_at"], "primary_key": [["accountId"], ["id"]],
         **({"include_files": True} if name in files else {})}
        for name in streams
    ]}


def connector_arguments(command: str, tmp_path: Path, config: dict[str, Any] | None = None,
                        streams: list[str] | None = None, state: list[dict[str, Any]] | None = None,
                        sync_mode: str = "incremental", files: Collection[str] = ()) -> list[str]:
    """The command line of the connector; its config, catalog and state files are written to `tmp_path`."""
    arguments = [sys.executable, str(ROOT / "main.py"), command]
    contents = {"config": config, "catalog": catalog(streams, sync_mode, files) if streams else None, "state": state}
    for name, content in contents.items():
        if content is not None:
            path = tmp_path / f"{name}-{command}.json"
            path.write_text(json.dumps(content))
            arguments += [f"--{name}", str(path)]
    return arguments


def staging_environment(staging: Path) -> dict[str, str]:
    """The environment of a connector that writes transferred files to `staging`, created here: the CDK
    silently stages in /tmp/airbyte-file-transfer instead when AIRBYTE_STAGING_DIRECTORY does not exist."""
    staging.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "AIRBYTE_STAGING_DIRECTORY": str(staging)}


def run_connector(command: str, tmp_path: Path, config: dict[str, Any] | None = None,
                  streams: list[str] | None = None, state: list[dict[str, Any]] | None = None,
                  sync_mode: str = "incremental", files: Collection[str] = (),
                  env: Mapping[str, str] | None = None) -> Run:
    arguments = connector_arguments(command, tmp_path, config, streams, state, sync_mode, files)
    completed = subprocess.run(arguments, capture_output=True, text=True, timeout=300, cwd=ROOT, env=env)
    return Run(completed.returncode, completed.stdout, completed.stderr)
