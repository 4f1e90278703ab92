"""The ``tokenflow report`` command: figures and report.md of a run folder."""

from __future__ import annotations

import argparse
import json

from sim.cli_support import UsageError


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``tokenflow report RUN_DIR [--overwrite] [--json]``."""
    p = subparsers.add_parser(
        "report", help="write figures and report.md into a simulated run's folder"
    )
    p.add_argument("run_dir", metavar="RUN_DIR", help="folder of tokenflow simulate")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace report.md and figures of an earlier report",
    )
    p.add_argument(
        "--json", action="store_true", help="print the written files as a JSON list"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=report)
    return p


def report(args) -> int:
    from sim.run_report import ReportError, write_report

    try:
        written = write_report(
            args.run_dir, overwrite=args.overwrite, progress=not args.no_progress
        )
    except ReportError as err:
        raise UsageError(str(err)) from None
    if args.json:
        print(json.dumps([str(path) for path in written], indent=2))
    else:
        print(f"report written to {written[-1]} with {len(written) - 1} figures")
    return 0
