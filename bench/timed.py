"""Run a Python script and write how long it read: from its first HTTP request to the end of its work.

    python bench/timed.py TIMING_FILE SCRIPT [ARGS ...]

Start-up (the interpreter, imports, the CDK's parsing of config and catalog) is left out the same way for the
connector and for the floor: the clock starts when the first request is handed to requests (the session
URL, for both) and stops when the script's main returns, before the interpreter's teardown. The seconds go
to TIMING_FILE as text; the script's exit status is kept.
"""

from __future__ import annotations

import runpy
import sys
import time
from pathlib import Path
from typing import Any

import requests.adapters

_first: list[float] = []
_send = requests.adapters.HTTPAdapter.send


def _timed_send(self: requests.adapters.HTTPAdapter, *args: Any, **kwargs: Any) -> Any:
    if not _first:
        _first.append(time.perf_counter())
    return _send(self, *args, **kwargs)


def main() -> int:
    timing, script = Path(sys.argv[1]), sys.argv[2]
    sys.argv = sys.argv[2:]
    sys.path.insert(0, str(Path(script).resolve().parent))
    requests.adapters.HTTPAdapter.send = _timed_send  # type: ignore[method-assign]
    status: Any = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        status = exit_.code
    finished = time.perf_counter()
    timing.write_text(f"{finished - _first[0]:.4f}\n" if _first else "nan\n")
    return status if isinstance(status, int) else (0 if status is None else 1)


if __name__ == "__main__":
    sys.stdout.flush()
    raise SystemExit(main())
