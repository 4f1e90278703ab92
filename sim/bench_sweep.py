"""Benchmark of sweeps: runs per minute with 1 and N workers, and the sweep
process's memory as the number of finished runs grows."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sim.sweep import run_sweep
from sim.sweep_spec import Sweep, sweep_from_dict


def _rss_mib() -> float:
    """Resident memory of this process now (Linux /proc), in MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


def _timed(sweep: Sweep, workers: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        counts = run_sweep(
            sweep,
            Path(folder) / "out",
            workers=workers,
            progress=False,
            in_process=False,
        )
        elapsed = time.perf_counter() - start
    if counts.runs_failed:
        raise RuntimeError(f"{counts.runs_failed} benchmark runs failed")
    return elapsed


def memory_growth(runs: int = 300, every: int = 50) -> list[tuple[int, float]]:
    """Sweep-process RSS after every ``every`` finished runs of a long sweep of
    short two-node runs on two worker processes, so that only the sweep's own
    bookkeeping and writing are in this process."""
    sweep = sweep_from_dict(
        {
            "name": "memory",
            "scenario": "two-node",
            "hours": 2,
            "seeds": list(range(runs)),
        }
    )
    samples = []

    def sample(counts) -> None:
        if counts.runs_done % every == 0:
            samples.append((counts.runs_done, _rss_mib()))

    with tempfile.TemporaryDirectory() as folder:
        run_sweep(
            sweep, Path(folder) / "out", workers=2, progress=False, monitor=sample
        )
    return samples


def run_sweep_bench(sweep: Sweep, workers: int = 2, memory_runs: int = 300) -> str:
    serial = _timed(sweep, 1)
    parallel = _timed(sweep, workers)
    runs = len(sweep.runs())
    lines = [
        f"tokenflow bench-sweep: {sweep.name}, {runs} runs of {sweep.hours} hours",
        f"  1 worker:  {serial:7.1f} s = {60 * runs / serial:6.1f} runs per minute",
        f"  {workers} workers: {parallel:7.1f} s = "
        f"{60 * runs / parallel:6.1f} runs per minute "
        f"(speed-up {serial / parallel:.2f}x)",
    ]
    samples = memory_growth(memory_runs, every=max(memory_runs // 6, 1))
    first = samples[0][1] if samples else float("nan")
    lines.append(
        f"sweep process memory over {memory_runs} short runs (2 workers): "
        + ", ".join(f"{n} runs {mib:.0f} MiB" for n, mib in samples)
        + f" (growth {samples[-1][1] - first:+.1f} MiB)"
    )
    return "\n".join(lines)
