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

from markets import Clearing
from scenarios.schema import Scenario
from sim.model import TokenFlowModel


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


def run_bench(scenario: Scenario, repeats: int = 200, hours: int = 168) -> str:
    """Run all timings and return a printable report."""
    sequence = _demand_sequence(scenario, repeats, seed=1)
    fresh = statistics.median(_time_fresh(scenario, sequence)) * 1e3
    cold = statistics.median(_time_reused(scenario, sequence, warm=False)) * 1e3
    warm = statistics.median(_time_reused(scenario, sequence, warm=True)) * 1e3

    model = TokenFlowModel(scenario, seed=1)
    start = time.perf_counter()
    for _ in range(hours):
        model.step()
    elapsed = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    lp = model.operator.clearing
    size = lp.size()
    return "\n".join(
        [
            f"tokenflow bench: {scenario.name}, {repeats} hourly clearings per variant",
            f"LP size: {size['variables']} variables, {size['rows']} rows",
            "median ms per clearing (solve + prices + settlement):",
            f"  fresh build (routes + LP) every hour     {fresh:8.2f}",
            f"  routes kept, new LP each hour (cold)     {cold:8.2f}",
            f"  one LP updated in place, warm start      {warm:8.2f}",
            f"  speed-up of warm start over fresh build: {fresh / warm:5.1f}x",
            f"simulation: {hours} hours with data collection in {elapsed:.2f} s "
            f"= {hours / elapsed:.1f} simulated hours per second",
            f"peak resident memory: {peak_mib:.0f} MiB",
        ]
    )
