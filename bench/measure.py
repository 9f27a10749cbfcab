"""Run one process and measure it: wall time, CPU time and peak RSS of that process alone.

Peak RSS and CPU come from GNU time (`/usr/bin/time`, Debian package `time`), which runs the command as its
own child and reports that child's wait4(2) rusage. Why not wait4 from the bench itself: Linux carries the
RSS high-water mark of the process that fork()s across exec(), so every child of the bench (a Python process
of ~90 MB) would report at least 90 MB; GNU time is ~1 MB. getrusage(RUSAGE_CHILDREN) is no better: it is the
maximum over all children so far. Wall time is measured here (perf_counter around the whole run; GNU time
adds about a millisecond).
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

GNU_TIME = "/usr/bin/time"


@dataclass(frozen=True)
class Measurement:
    wall: float  # seconds
    cpu: float  # user + system seconds
    max_rss_mb: float


class RunFailed(RuntimeError):
    pass


def check_gnu_time() -> None:
    if not (shutil.which(GNU_TIME) and os.access(GNU_TIME, os.X_OK)):
        raise SystemExit(f"{GNU_TIME} is missing: apt-get install time")


def run_measured(
    argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None,
    stdout: Path | None = None, stderr: Path | None = None,
) -> Measurement:
    """Run `argv` to completion; stdout goes to `stdout` (or /dev/null), stderr to `stderr` (or a temporary file)."""
    out_path = stdout or Path(os.devnull)
    with (
        open(out_path, "wb") as out,
        open(stderr, "w+b") if stderr else tempfile.TemporaryFile() as err,
        tempfile.NamedTemporaryFile("r", suffix=".time") as usage,
    ):
        command = [GNU_TIME, "--quiet", "-f", "%U %S %M", "-o", usage.name, *argv]
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=cwd, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        wall = time.perf_counter() - started
        if completed.returncode != 0:
            err.seek(0)
            tail = err.read().decode(errors="replace")[-3000:]
            raise RunFailed(f"{' '.join(argv)} exited with {completed.returncode}:\n{tail}")
        user, system, max_rss_kb = usage.read().split()[-3:]
    return Measurement(wall, float(user) + float(system), int(max_rss_kb) / 1024)


def median_of(runs: Sequence[Measurement]) -> Measurement:
    """The median wall and CPU time; the largest peak RSS."""
    return Measurement(
        statistics.median(run.wall for run in runs),
        statistics.median(run.cpu for run in runs),
        max(run.max_rss_mb for run in runs),
    )
