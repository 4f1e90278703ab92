"""Saving a finished run: tidy Parquet tables and summary.json.

A run folder is written next to its destination and renamed into place, so
that an interrupted save leaves no half-written run, and an existing folder is
only replaced when the caller asks for it.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd

logger = logging.getLogger(__name__)

TABLES = ("steps", "prices", "links", "assets", "providers", "unserved", "nodes")
# What a run folder may hold: its tables, summary, and `tokenflow report` output.
RUN_FILES = {f"{name}.parquet" for name in TABLES} | {
    "summary.json",
    "report.md",
    "figures",
}


class OutputError(Exception):
    """An output folder that cannot be used, named with the reason."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        super().__init__(f"{path}: --out {reason}")


class OutputExistsError(OutputError):
    """The output folder exists and holds files; it is not overwritten silently."""

    def __init__(self, path: Path):
        super().__init__(
            path,
            "folder exists and is not empty; choose another --out or pass "
            "--overwrite to replace it",
        )


def check_out_dir(out_dir: str | Path, overwrite: bool = False) -> Path:
    """Check an output folder before a run, so that nothing fails after it.

    Only a folder holding nothing but a previous run's files is ever
    replaced, and only with ``overwrite``; files, links, folders with other
    contents and folders that contain the working directory are refused.
    Nothing is created here.
    """
    out = Path(out_dir)
    if not str(out_dir).strip():
        raise OutputError(Path("''"), "must name a folder")
    resolved = out.resolve()
    cwd = Path.cwd().resolve()
    if resolved == cwd or resolved in cwd.parents:
        raise OutputError(out, "contains the current folder; name a new folder")
    if out.is_symlink():
        raise OutputError(out, "is a symbolic link; name the folder itself")
    if out.exists() and not out.is_dir():
        raise OutputError(out, "is a file, not a folder; it is not replaced")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise OutputExistsError(out)
        others = sorted(p.name for p in out.iterdir() if p.name not in RUN_FILES)
        if others or not (out / "summary.json").is_file():
            found = ", ".join(others[:3]) or "no summary.json"
            raise OutputError(
                out, f"holds files that are not a tokenflow run ({found}); not replaced"
            )
    ancestor = resolved.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir() or not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(out, f"cannot create a folder under {ancestor}")
    return out


def run_tables(model) -> dict[str, pd.DataFrame]:
    """The recorded run as tidy DataFrames, one row per step and entity."""
    dc = model.datacollector
    steps = dc.get_model_vars_dataframe().reset_index(names="step")
    steps["step"] += 1
    providers = _provider_table(model)
    return {
        "steps": steps,
        "prices": dc.get_table_dataframe("prices"),
        "links": dc.get_table_dataframe("links"),
        "assets": dc.get_table_dataframe("assets"),
        "providers": providers,
        "unserved": dc.get_table_dataframe("unserved"),
        "nodes": pd.DataFrame(
            [
                {
                    "node": n.id,
                    "name": n.name,
                    "lat": n.lat,
                    "lon": n.lon,
                    "utc_offset_h": n.utc_offset_h,
                }
                for n in model.scenario.nodes.values()
            ],
            columns=["node", "name", "lat", "lon", "utc_offset_h"],
        ),
    }


def _provider_table(model) -> pd.DataFrame:
    from agents import ProviderAgent

    frame = model.datacollector.get_agenttype_vars_dataframe(ProviderAgent)
    frame = frame.reset_index().rename(columns={"Step": "step"})
    return frame.drop(columns=[c for c in ("AgentID",) if c in frame.columns])


def summarise(model, tables: dict[str, pd.DataFrame]) -> dict:
    """Run totals for summary.json (money in USD over the whole run).

    Money totals cover the steps that cleared; mean prices are weighted by
    served tokens.
    """
    steps, prices = tables["steps"], tables["prices"]
    mean_lmp = _weighted_mean(prices, "lmp_usd_per_mtok")
    competitive = _weighted_mean(prices, "competitive_lmp_usd_per_mtok")
    unserved = steps["unserved_tokens_per_s"].astype(float)
    providers = tables["providers"]
    by_provider = providers.groupby("provider")[["revenue_usd", "profit_usd"]].sum(
        min_count=1
    )
    money = {
        column: _sum_or_none(steps[column])
        for column in (
            "total_cost_usd",
            "consumer_payments_usd",
            "consumer_surplus_usd",
            "provider_revenues_usd",
            "provider_costs_usd",
        )
    }
    return {
        "scenario": model.scenario.name,
        "bandwidth_model": model.scenario.bandwidth_model,
        "hours": _whole(len(steps) * model.step_hours),
        "steps": len(steps),
        "seed": model.seed_value,
        "start_time_utc": model.start.isoformat(),
        "strategy": _strategies(model),
        "elastic_demand": model.elastic,
        "design": model.design.design,
        "settlement": model.design.settlement,
        "price_cap_usd_per_gpu_hour": model.design.price_cap_usd_per_gpu_hour,
        **money,
        "provider_profits_usd": _sum_or_none(providers["profit_usd"]),
        "provider_profits_by_provider_usd": {
            str(k): (None if math.isnan(v) else float(v))
            for k, v in by_provider["profit_usd"].items()
        },
        "lerner_index_by_provider": {
            str(k): (
                float(row.profit_usd / row.revenue_usd) if row.revenue_usd else None
            )
            for k, row in by_provider.iterrows()
        },
        "transfer_charges_usd": _sum_or_none(steps["transfer_charges_usd"]),
        "congestion_rents_usd": _sum_or_none(steps["congestion_rents_usd"]),
        "merchandising_surplus_usd": _sum_or_none(steps["merchandising_surplus_usd"]),
        "welfare_usd": _sum_or_none(steps["welfare_usd"]),
        "redispatch_cost_usd": _sum_or_none(steps["redispatch_cost_usd"]),
        "pay_as_bid_retained_usd": _sum_or_none(steps["pay_as_bid_retained_usd"]),
        "mean_price_dispersion": _mean_or_none(steps["price_dispersion"]),
        "mean_lmp_usd_per_mtok": mean_lmp,
        "mean_competitive_lmp_usd_per_mtok": competitive,
        "price_markup_over_competitive": (
            mean_lmp / competitive - 1.0 if competitive and competitive > 0 else None
        ),
        "unserved_token_hours": float(unserved.sum() * model.step_hours),
        "deferred_lapsed_token_hours": float(
            steps["deferred_lapsed_tokens_per_s"].sum() * model.step_hours
        ),
        # Work still waiting when the run ends is in no money total; welfare
        # comparisons of short runs should look at it.
        "deferred_waiting_at_end_token_hours": float(
            steps["deferred_backlog_tokens_per_s"].iloc[-1] * model.step_hours
        )
        if len(steps)
        else 0.0,
        "infeasible_steps": int((steps["status"] != "optimal").sum()),
        "degenerate_steps": int(steps["degenerate"].sum()),
    }


def _mean_or_none(column: pd.Series) -> float | None:
    values = column.astype(float).dropna()
    return float(values.mean()) if len(values) else None


def _weighted_mean(prices: pd.DataFrame, column: str) -> float:
    """Mean of a price column weighted by served tokens (NaN when none)."""
    served = prices["served_tokens_per_s"].astype(float)
    price = prices[column].astype(float)
    priced = (served > 0) & price.notna()
    weight = float(served[priced].sum())
    return (
        float((price[priced] * served[priced]).sum() / weight) if weight else math.nan
    )


def _strategies(model) -> str:
    """One strategy for all providers, or each provider's."""
    from agents import ProviderAgent

    described = {
        p.owner: p.strategy.describe() for p in model.agents_by_type[ProviderAgent]
    }
    if len(set(described.values())) == 1:
        return next(iter(described.values()))
    return ", ".join(f"{owner}={text}" for owner, text in sorted(described.items()))


def _whole(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def _sum_or_none(column: pd.Series) -> float | None:
    """Sum over the steps that have a value; None when no step has one."""
    values = column.astype(float).dropna()
    return float(values.sum()) if len(values) else None


def save_run(model, out_dir: str | Path, *, overwrite: bool = False) -> dict:
    """Write the run's tables and summary; return the summary."""
    out = check_out_dir(out_dir, overwrite)
    tables = run_tables(model)
    summary = summarise(model, tables)

    out.resolve().parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.resolve().parent))
    try:
        staging.chmod(0o777 & ~_umask())
        for name, frame in tables.items():
            frame.to_parquet(staging / f"{name}.parquet", index=False)
        text = json.dumps(json_safe(summary), indent=2)
        (staging / "summary.json").write_text(text + "\n", encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.info("saved run to %s", out)
    return summary


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def json_safe(value):
    """NaN becomes null, in nested mappings too."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
