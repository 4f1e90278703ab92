"""The ``tokenflow sweep`` and ``tokenflow sweep-report`` commands."""

from __future__ import annotations

import json
import time

from sim.cli_support import UsageError


def add_parsers(subparsers) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="run a sweep file's seeded simulations in parallel, resumably",
    )
    p.add_argument("sweep_file", metavar="SWEEP_FILE", help="a sweep YAML file")
    p.add_argument("--out", required=True, help="folder of the results dataset")
    p.add_argument(
        "--workers",
        type=int,
        help="processes (local) or Dask workers for --scheduler local; "
        "default: all cores",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS|local",
        help="run on a Dask cluster (tcp://HOST:8786) or a local Dask cluster",
    )
    p.add_argument("--json", action="store_true", help="end with one JSON object")
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=sweep)

    p = subparsers.add_parser(
        "sweep-report", help="tables and figures across a finished sweep"
    )
    p.add_argument("out", metavar="SWEEP_DIR", help="folder of tokenflow sweep")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace sweep-report.md and figures of an earlier sweep report",
    )
    p.add_argument("--json", action="store_true", help="print the written files")
    p.set_defaults(handler=sweep_report)
    add_bench_parser(subparsers)


def add_bench_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "bench-sweep",
        help="runs per minute of a sweep with 1 and N workers; sweep memory",
    )
    p.add_argument("sweep_file", metavar="SWEEP_FILE")
    p.add_argument("--workers", type=int, default=2, help="parallel workers (2)")
    p.add_argument(
        "--memory-runs",
        type=int,
        default=300,
        help="short runs of the memory check (default 300)",
    )
    p.set_defaults(handler=bench_sweep)


def bench_sweep(args) -> int:
    from sim.bench_sweep import run_sweep_bench
    from sim.sweep_spec import SweepError, load_sweep

    if args.workers < 2 or args.memory_runs < 100:
        raise UsageError("--workers must be >= 2 and --memory-runs >= 100")
    try:
        spec = load_sweep(args.sweep_file)
    except SweepError as err:
        raise UsageError(str(err)) from None
    print(run_sweep_bench(spec, args.workers, args.memory_runs))
    return 0


def sweep(args) -> int:
    from sim.sweep import SchedulerError, SweepOutputError, run_sweep
    from sim.sweep_spec import SweepError, load_sweep

    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    try:
        spec = load_sweep(args.sweep_file)
        start = time.perf_counter()
        counts = run_sweep(
            spec,
            args.out,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=not args.no_progress,
        )
    except (SweepError, SweepOutputError, SchedulerError) as err:
        raise UsageError(str(err)) from None
    elapsed = time.perf_counter() - start
    body = {**counts.to_dict(), "out": str(args.out), "elapsed_s": round(elapsed, 2)}
    if args.json:
        print(json.dumps(body))
    else:
        print(
            f"sweep {spec.name}: {counts.runs_total} runs, {counts.runs_done} run now, "
            f"{counts.runs_skipped} already finished, {counts.runs_failed} failed "
            f"({elapsed:.1f} s); results in {args.out}"
        )
    return 1 if counts.runs_failed else 0


def sweep_report(args) -> int:
    from sim.sweep_report import SweepReportError, write_sweep_report

    try:
        written = write_sweep_report(args.out, overwrite=args.overwrite)
    except SweepReportError as err:
        raise UsageError(str(err)) from None
    if args.json:
        print(json.dumps([str(p) for p in written], indent=2))
    else:
        print(f"sweep report written to {written[-1]} with {len(written) - 1} figures")
    return 0
