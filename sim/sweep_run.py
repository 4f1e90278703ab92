"""One run of a sweep, inside a worker: plain data in, one plain row out.

The scenario is loaded and the model (with its GLOP solvers) is built in the
worker process, so nothing but dictionaries crosses a process boundary.
"""

from __future__ import annotations

import json
import logging

from scenarios import load_scenario
from sim.model import TokenFlowModel
from sim.output import run_tables, summarise
from sim.sweep_spec import PARAMETERS, build

logger = logging.getLogger(__name__)

METRICS = (
    "consumer_payments_usd",
    "consumer_surplus_usd",
    "provider_revenues_usd",
    "provider_costs_usd",
    "provider_profits_usd",
    "transfer_charges_usd",
    "congestion_rents_usd",
    "merchandising_surplus_usd",
    "redispatch_cost_usd",
    "pay_as_bid_retained_usd",
    "welfare_usd",
    "mean_lmp_usd_per_mtok",
    "mean_competitive_lmp_usd_per_mtok",
    "price_markup_over_competitive",
    "mean_price_dispersion",
    "unserved_token_hours",
    "deferred_lapsed_token_hours",
    "deferred_waiting_at_end_token_hours",
    "infeasible_steps",
)


def execute(spec: dict) -> dict:
    """Simulate one run and return its row: parameters, seed and metrics."""
    scenario, options = build(load_scenario(spec["scenario"]), spec["params"])
    model = TokenFlowModel(
        scenario,
        seed=spec["seed"],
        start=spec["start"],
        elastic=spec["elastic"],
        benchmark=spec["benchmark"],
        **options,
    )
    for _ in range(spec["hours"]):
        model.step()
    summary = summarise(model, run_tables(model))
    row = {"run_id": spec["run_id"], "seed": spec["seed"], "hours": spec["hours"]}
    row.update(param_columns(spec["params"]))
    row.update({m: _number(summary.get(m)) for m in METRICS})
    row["strategy_described"] = summary["strategy"]
    row["provider_profits_by_provider_usd"] = json.dumps(
        summary["provider_profits_by_provider_usd"], sort_keys=True
    )
    row["lerner_index_by_provider"] = json.dumps(
        summary["lerner_index_by_provider"], sort_keys=True
    )
    return row


def param_columns(params: dict) -> dict:
    """Every parameter as a text column ``param_<name>`` (mappings as JSON);
    None where a run does not set it. One type per column keeps the runs'
    files one dataset."""
    columns = {}
    for name in PARAMETERS:
        value = params.get(name)
        if isinstance(value, dict):
            value = json.dumps(value, sort_keys=True)
        columns[f"param_{name}"] = None if value is None else str(value)
    return columns


def _number(value) -> float:
    return float("nan") if value is None else float(value)
