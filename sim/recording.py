"""What the simulation records each step: DataCollector reporters and tables.

Money columns are USD over the step; prices keep their own units.
"""

from __future__ import annotations

import math

import numpy as np

from agents import ConsumerAgent
from markets.designs import price_dispersion
from markets.result import SATURATED

PRICE_COLUMNS = [
    "step",
    "time_utc",
    "hour_utc",
    "workload",
    "node",
    "lmp_usd_per_mtok",
    "competitive_lmp_usd_per_mtok",
    "demand_tokens_per_s",
    "served_tokens_per_s",
]
LINK_COLUMNS = [
    "step",
    "time_utc",
    "hour_utc",
    "link",
    "a",
    "b",
    "flow_gbps",
    "capacity_gbps",
    "utilisation",
    "shadow_price_usd_per_gbps_h",
    "congestion_rent_usd",
    "saturated",
]
ASSET_COLUMNS = [
    "step",
    "hour_utc",
    "asset",
    "node",
    "owner",
    "gpus_used",
    "compute_price_usd_per_gpu_hour",
    "true_cost_usd_per_gpu_hour",
    "revenue_usd",
    "cost_usd",
]
UNSERVED_COLUMNS = ["step", "hour_utc", "workload", "node", "tokens_per_s", "reason"]
TABLES = {
    "prices": PRICE_COLUMNS,
    "links": LINK_COLUMNS,
    "assets": ASSET_COLUMNS,
    "unserved": UNSERVED_COLUMNS,
}

PROVIDER_REPORTERS = {
    "provider": "owner",
    "revenue_usd": "revenue_usd",
    "cost_usd": "cost_usd",
    "profit_usd": "profit_usd",
    "markup": "markup",
    "offered_gpus": "offered_gpus",
    "competitive_profit_usd": "competitive_profit_usd",
}


def _ledger(attribute: str):
    """A model reporter: an amount of the latest step's ledger, in USD."""
    return lambda model: getattr(model.ledger, attribute)


def _total_cost(model) -> float:
    cost = model.last_result.total_cost_usd_per_h
    return math.nan if cost is None else cost * model.step_hours


def _consumers(model, attribute: str) -> float:
    return float(
        sum(getattr(c, attribute) for c in model.agents_by_type[ConsumerAgent])
    )


MODEL_REPORTERS = {
    "time_utc": "time_utc",
    "hour_utc": "hour_utc",
    "status": lambda m: m.last_result.status,
    "degenerate": lambda m: m.last_result.degenerate,
    "total_cost_usd": _total_cost,
    "consumer_payments_usd": _ledger("consumer_payments_usd"),
    "consumer_surplus_usd": _ledger("consumer_surplus_usd"),
    "provider_revenues_usd": _ledger("provider_revenues_usd"),
    "provider_costs_usd": _ledger("provider_costs_usd"),
    "provider_profits_usd": _ledger("provider_profits_usd"),
    "transfer_charges_usd": _ledger("transfer_charges_usd"),
    "congestion_rents_usd": _ledger("congestion_rents_usd"),
    "merchandising_surplus_usd": _ledger("merchandising_surplus_usd"),
    "welfare_usd": _ledger("welfare_usd"),
    "redispatch_cost_usd": _ledger("redispatch_cost_usd"),
    "pay_as_bid_retained_usd": _ledger("retained_usd"),
    "price_dispersion": lambda m: price_dispersion(m.last_result.lmp_grid),
    "unserved_tokens_per_s": lambda m: m.last_result.unserved_total_tokens_per_s,
    "mean_lmp_usd_per_mtok": "mean_lmp_usd_per_mtok",
    "competitive_mean_lmp_usd_per_mtok": "competitive_mean_lmp_usd_per_mtok",
    "deferred_backlog_tokens_per_s": lambda m: _consumers(m, "backlog_tokens_per_s"),
    "deferred_lapsed_tokens_per_s": lambda m: _consumers(m, "lapsed_tokens_per_s"),
}


def record_tables(model, result, competitive) -> None:
    """Add this step's rows to the prices, links, assets and unserved tables."""
    when = {"step": model.steps, "time_utc": model.time_utc, "hour_utc": model.hour_utc}
    _prices(model, when, result, competitive)
    _links(model, when, result)
    _assets(model, when, result)
    if result.status != "optimal" or result.shedding:
        for row in result.unserved.itertuples(index=False):
            model.datacollector.add_table_row(
                "unserved",
                {"step": when["step"], "hour_utc": when["hour_utc"], **row._asdict()},
                ignore_missing=True,
            )


def _prices(model, when: dict, result, competitive) -> None:
    sc, add = model.scenario, model.datacollector.add_table_row
    lmp, (demand, served) = result.lmp_grid, result.demand_grid
    benchmark = (
        competitive.lmp_grid if competitive is not None else np.full_like(lmp, np.nan)
    )
    for i, workload in enumerate(sc.workloads):
        for j, node in enumerate(sc.nodes):
            add(
                "prices",
                {
                    **when,
                    "workload": workload,
                    "node": node,
                    "lmp_usd_per_mtok": float(lmp[i, j]),
                    "competitive_lmp_usd_per_mtok": float(benchmark[i, j]),
                    "demand_tokens_per_s": float(demand[i, j]),
                    "served_tokens_per_s": float(served[i, j]),
                },
            )


def _links(model, when: dict, result) -> None:
    sc, hours = model.scenario, model.step_hours
    flow, price = result.link_flow_gbps, result.link_price_usd_per_gbps_h
    for link, f, p in zip(sc.links, flow, price, strict=True):
        cap = link.capacity_gbps
        model.datacollector.add_table_row(
            "links",
            {
                **when,
                "link": link.id,
                "a": link.a,
                "b": link.b,
                "flow_gbps": float(f),
                "capacity_gbps": cap,
                "utilisation": float(f / cap) if cap > 0 else 0.0,
                "shadow_price_usd_per_gbps_h": float(p),
                "congestion_rent_usd": float(p * cap * hours),
                "saturated": bool(cap > 0 and f >= cap * (1 - SATURATED)),
            },
        )


def _assets(model, when: dict, result) -> None:
    sc, hours = model.scenario, model.step_hours
    used, price = result.gpus_used, result.compute_price_usd_per_gpu_hour
    revenue = result.asset_revenue_usd_per_h * hours
    cost = used * model.true_costs * hours
    if result.status != "optimal":
        # The rationing schedule is not a market outcome: no money.
        cost = np.full(len(sc.assets), np.nan)
    for a, asset in enumerate(sc.assets):
        model.datacollector.add_table_row(
            "assets",
            {
                "step": when["step"],
                "hour_utc": when["hour_utc"],
                "asset": asset.id,
                "node": asset.node,
                "owner": asset.owner,
                "gpus_used": float(used[a]),
                "compute_price_usd_per_gpu_hour": float(price[a]),
                "true_cost_usd_per_gpu_hour": float(model.true_costs[a]),
                "revenue_usd": float(revenue[a]),
                "cost_usd": float(cost[a]),
            },
        )
