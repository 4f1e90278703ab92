"""Pieces shared by the command-line modules."""

from __future__ import annotations

import pandas as pd

from scenarios import load_scenario, with_overrides


class UsageError(ValueError):
    """A command-line value that cannot be used."""


def load_args(args):
    """The scenario named on the command line, with its overrides applied."""
    limits = {}
    for item in args.latency_limit:
        name, sep, value = item.partition("=")
        try:
            limits[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise UsageError(f"--latency-limit: expected WORKLOAD=MS, got {item!r}")
    scenario = load_scenario(args.scenario)
    return with_overrides(
        scenario,
        bandwidth_model=args.bandwidth_model,
        latency_limits_ms=limits,
        demand_scale=args.demand_scale,
    )


def table(frame: pd.DataFrame, significant: bool = False) -> str:
    """Money-like columns to cents; shortfalls to six significant figures."""
    if significant:
        return frame.to_string(index=False, float_format=lambda x: f"{x:,.6g}")
    return frame.to_string(index=False, float_format=lambda x: f"{x:,.2f}")
