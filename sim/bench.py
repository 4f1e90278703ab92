"""Benchmark: milliseconds per clearing and simulated hours per second.

Three ways to clear the same sequence of hourly demands are timed in one run:
a fresh build every hour (routes and LP), a new GLOP model each hour on the
routes found once (a cold start), and one model updated in place and
warm-started from the previous basis (the simulation's way).
"""

from __future__ import annotations

import resource
import statistics
import time
from datetime import timedelta

from tqdm import tqdm

from agents.strategies import Strategy
from markets import Clearing
from scenarios.schema import Scenario
from sim.model import TokenFlowModel
from sim.output import run_tables


def _demand_sequence(scenario: Scenario, hours: int, seed: int) -> list[list]:
    """Hourly demands as the simulation's consumers would bid them."""
    model = TokenFlowModel(scenario, seed=seed)
    from agents import ConsumerAgent

    sequence = []
    for hour in range(hours):
        time = model.start + timedelta(hours=hour)
        demand = []
        for consumer in model.agents_by_type[ConsumerAgent]:
            demand.extend(consumer.submit_bids(time, 0.0, model.noise_sigma))
        sequence.append(demand)
    return sequence


def _time_fresh(scenario, sequence) -> list[float]:
    times = []
    for demand in sequence:
        start = time.perf_counter()
        clearing = Clearing(scenario)
        clearing.update(demand=demand)
        result = clearing.solve()
        _ = result.prices, result.settlement
        times.append(time.perf_counter() - start)
    return times


def _time_reused(scenario, sequence, warm: bool) -> list[float]:
    clearing = Clearing(scenario, warm_start=warm)
    times = []
    for demand in sequence:
        start = time.perf_counter()
        clearing.update(demand=demand)
        result = clearing.solve()
        _ = result.prices, result.settlement
        times.append(time.perf_counter() - start)
    return times


def run_bench(
    scenario: Scenario,
    repeats: int = 200,
    hours: int = 168,
    strategy: Strategy | None = None,
    progress: bool = False,
) -> str:
    """Run all timings and return a printable report."""
    sequence = _demand_sequence(scenario, repeats, seed=1)
    fresh = statistics.median(_time_fresh(scenario, sequence)) * 1e3
    cold = statistics.median(_time_reused(scenario, sequence, warm=False)) * 1e3
    warm = statistics.median(_time_reused(scenario, sequence, warm=True)) * 1e3
    size = Clearing(scenario).size()
    lines = [
        f"tokenflow bench: {scenario.name}, {repeats} hourly clearings per variant",
        f"LP size: {size['variables']} variables, {size['rows']} rows",
        "median ms per clearing (solve + prices + settlement):",
        f"  fresh build (routes + LP) every hour     {fresh:8.2f}",
        f"  routes kept, new LP each hour (cold)     {cold:8.2f}",
        f"  one LP updated in place, warm start      {warm:8.2f}",
        f"  speed-up of warm start over fresh build: {fresh / warm:5.1f}x",
    ]

    name = strategy.describe() if strategy else "scenario's strategies"
    lines.append(f"simulation of {hours} hours ({name}, data collection on):")
    timed = _time_simulation(scenario, hours, strategy, True, progress)
    if not timed[3]:
        lines.append(_describe_run("all providers truthful, no re-clearing", timed))
        lines.append(f"  a year of hourly steps would take {8760 / timed[0]:.0f} s")
    else:
        without = _time_simulation(scenario, hours, strategy, False, progress)
        lines += [
            _describe_run("with the competitive re-clearing", timed),
            _describe_run("without it (--no-benchmark)", without),
            f"  re-clearing costs {without[0] / timed[0]:.2f}x the "
            "simulated hours per second",
            f"  a year of hourly steps would take {8760 / timed[0]:.0f} s "
            f"({8760 / without[0]:.0f} s without the re-clearing)",
        ]
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"peak resident memory: {peak_mib:.0f} MiB")
    return "\n".join(lines)


def _time_simulation(scenario, hours, strategy, benchmark, progress):
    """Simulated hours per second and seconds per phase of one run."""
    model = TokenFlowModel(scenario, seed=1, strategy=strategy, benchmark=benchmark)
    start = time.perf_counter()
    for _ in tqdm(range(hours), unit="h", disable=not progress, leave=False):
        model.step()
    elapsed = time.perf_counter() - start
    run_tables(model)
    return hours / elapsed, elapsed, dict(model.phase_seconds), model.benchmark


def _describe_run(label: str, timing) -> str:
    rate, elapsed, phases, _ = timing
    total = sum(phases.values()) or 1.0
    shares = ", ".join(
        f"{phase} {100 * seconds / total:.0f}%" for phase, seconds in phases.items()
    )
    return f"  {label}: {elapsed:.2f} s = {rate:.1f} h/s ({shares})"
