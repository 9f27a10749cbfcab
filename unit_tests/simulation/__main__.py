"""`python -m unit_tests.simulation --histories N [--seed S]`: play N histories, print the failing ones and,
last, `N histories: X lost, Y left over, Z hung, W unclear` (histories with at least one of each)."""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings

from .history import play, shrink


def main() -> int:
    parser = argparse.ArgumentParser(prog="simulate", description=__doc__)
    parser.add_argument("--histories", type=int, default=200)
    parser.add_argument("--seed", default="0", help="the base seed; history i plays seed '<seed>-<i>'")
    parser.add_argument("--one", help="play exactly this history seed (as printed) and tell its story")
    parser.add_argument("--without-open-holes", action="store_true",
                        help="draw no history that can meet a hole listed in history.OPEN_HOLES (CI's slice)")
    parser.add_argument("--shrink", metavar="SEED", help="a shorter history that fails as SEED does, and its story")
    parser.add_argument("--verbose", action="store_true", help="the story of every failing history")
    arguments = parser.parse_args()
    logging.disable(logging.CRITICAL)  # the connector's log lines: thousands per history, read by no one
    warnings.simplefilter("ignore")
    if arguments.shrink:
        shrunk, outcome = shrink(arguments.shrink, not arguments.without_open_holes)
        print("\n".join(outcome.story))
        print(f"shrunk: {shrunk}")
        print(outcome.summary())
        return 0 if outcome.ok else 1
    if arguments.one:
        outcome = play(arguments.one, not arguments.without_open_holes)
        print("\n".join(outcome.story))
        print(outcome.summary())
        return 0 if outcome.ok else 1
    started = time.monotonic()
    counts = {"lost": 0, "left over": 0, "hung": 0, "unclear": 0}
    worst = 0
    for number in range(arguments.histories):
        outcome = play(f"{arguments.seed}-{number}", not arguments.without_open_holes)
        if outcome.ok:
            continue
        counts["lost"] += bool(outcome.lost)
        counts["left over"] += bool(outcome.left_over)
        counts["hung"] += bool(outcome.hung)
        counts["unclear"] += bool(outcome.unclear)
        worst += outcome.clean_exit_with_difference
        print(outcome.summary(), flush=True)
        if arguments.verbose:
            print("  " + "\n  ".join(outcome.story), flush=True)
    elapsed = time.monotonic() - started
    print(f"({elapsed:.1f} s; {worst} of the failing histories ended their final sync with exit 0)")
    print(f"{arguments.histories} histories: {counts['lost']} lost, {counts['left over']} left over, "
          f"{counts['hung']} hung, {counts['unclear']} unclear")
    return 0 if not any(counts.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
