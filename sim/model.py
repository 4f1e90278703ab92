"""The Mesa model: consumers bid, providers offer, the operator clears."""

from __future__ import annotations

import copy
import logging
import math
from collections import defaultdict

import mesa
import numpy as np

from agents import ConsumerAgent, OperatorAgent, ProviderAgent
from agents.strategies import Strategy, StrategyError, parse_strategy
from markets import ClearingResult
from markets.result import SATURATED
from scenarios import ScenarioError
from scenarios.schema import Scenario

logger = logging.getLogger(__name__)

PRICE_COLUMNS = [
    "step",
    "hour_utc",
    "workload",
    "node",
    "lmp_usd_per_mtok",
    "demand_tokens_per_s",
    "served_tokens_per_s",
]
LINK_COLUMNS = [
    "step",
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
    "revenue_usd",
    "cost_usd",
]
UNSERVED_COLUMNS = ["step", "hour_utc", "workload", "node", "tokens_per_s", "reason"]


class TokenFlowModel(mesa.Model):
    """An hourly token-flow market on one scenario.

    Each step is ``step_hours`` long (default one hour). Money columns of the
    recorded tables are in USD per step; prices keep their own units.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int | None = None,
        start_hour_utc: float = 0.0,
        step_hours: float = 1.0,
        noise_sigma: float = 0.05,
        warm_start: bool = True,
        strategy: Strategy | None = None,
    ):
        super().__init__(seed=seed)
        self.scenario = scenario
        self.seed_value = seed
        self.start_hour_utc = start_hour_utc
        self.step_hours = step_hours
        self.noise_sigma = noise_sigma
        self.last_result: ClearingResult | None = None
        self.strategy = strategy

        self._create_agents(warm_start)
        self.datacollector = mesa.DataCollector(
            model_reporters=_MODEL_REPORTERS,
            agenttype_reporters={
                ProviderAgent: {
                    "provider": "owner",
                    "revenue_usd": "revenue_usd",
                    "cost_usd": "cost_usd",
                    "profit_usd": "profit_usd",
                }
            },
            tables={
                "prices": PRICE_COLUMNS,
                "links": LINK_COLUMNS,
                "assets": ASSET_COLUMNS,
                "unserved": UNSERVED_COLUMNS,
            },
        )

    def _create_agents(self, warm_start: bool) -> None:
        by_node = defaultdict(list)
        for demand in self.scenario.demand:
            by_node[demand.node].append(demand)
        for node in self.scenario.nodes:
            if by_node[node]:
                ConsumerAgent(self, node, by_node[node])

        by_owner = defaultdict(list)
        for asset in self.scenario.assets:
            by_owner[asset.owner].append(asset)
        for owner in sorted(by_owner):
            ProviderAgent(self, owner, by_owner[owner], self._strategy_of(owner))

        self.operator = OperatorAgent(self, warm_start=warm_start)

    def _strategy_of(self, owner: str) -> Strategy:
        """The run's strategy if one was given, else the scenario's for owner.

        Each provider gets its own copy, so a learning strategy's state stays
        with its provider.
        """
        if self.strategy is not None:
            return copy.deepcopy(self.strategy)
        text = self.scenario.provider_strategies.get(owner, "truthful")
        try:
            return parse_strategy(text)
        except StrategyError as err:
            field = f"providers.{owner}.strategy"
            raise ScenarioError(self.scenario.source, field, str(err)) from None

    @property
    def hour_utc(self) -> float:
        """UTC hour of day at the start of the current step."""
        return (self.start_hour_utc + (self.steps - 1) * self.step_hours) % 24.0

    def step(self) -> None:
        """Bid, offer, clear, settle, record."""
        demand = []
        for consumer in self.agents_by_type[ConsumerAgent]:
            demand.extend(consumer.submit_bids(self.hour_utc, self.noise_sigma))
        offers = {}
        for provider in self.agents_by_type[ProviderAgent]:
            offers.update(provider.submit_offers())

        result = self.operator.clear(demand, offers)
        self.last_result = result
        self._settle(result)
        self._record(result)

    def _settle(self, result: ClearingResult) -> None:
        hours = self.step_hours
        if result.status != "optimal":
            # No market outcome: nothing is bought, sold or run this step.
            for provider in self.agents_by_type[ProviderAgent]:
                provider.book(0.0, 0.0)
            return
        revenue = np.nan_to_num(result.asset_revenue_usd_per_h) * hours
        cost = result.asset_cost_usd_per_h * hours
        by_owner = defaultdict(lambda: [0.0, 0.0])
        for asset, r, c in zip(self.scenario.assets, revenue, cost, strict=True):
            by_owner[asset.owner][0] += float(r)
            by_owner[asset.owner][1] += float(c)
        for provider in self.agents_by_type[ProviderAgent]:
            provider.book(*by_owner[provider.owner])

    def _record(self, result: ClearingResult) -> None:
        self.datacollector.collect(self)
        step, hour = self.steps, self.hour_utc
        sc, hours = self.scenario, self.step_hours
        add = self.datacollector.add_table_row

        lmp, (demand, served) = result.lmp_grid, result.demand_grid
        for i, workload in enumerate(sc.workloads):
            for j, node in enumerate(sc.nodes):
                add(
                    "prices",
                    {
                        "step": step,
                        "hour_utc": hour,
                        "workload": workload,
                        "node": node,
                        "lmp_usd_per_mtok": float(lmp[i, j]),
                        "demand_tokens_per_s": float(demand[i, j]),
                        "served_tokens_per_s": float(served[i, j]),
                    },
                )

        flow, price = result.link_flow_gbps, result.link_price_usd_per_gbps_h
        for link, f, p in zip(sc.links, flow, price, strict=True):
            cap = link.capacity_gbps
            add(
                "links",
                {
                    "step": step,
                    "hour_utc": hour,
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

        used, price = result.gpus_used, result.compute_price_usd_per_gpu_hour
        revenue, cost = result.asset_revenue_usd_per_h, result.asset_cost_usd_per_h
        if result.status != "optimal":
            # The rationing schedule is not a market outcome: no money.
            cost = np.full(len(sc.assets), np.nan)
        for a, asset in enumerate(sc.assets):
            add(
                "assets",
                {
                    "step": step,
                    "hour_utc": hour,
                    "asset": asset.id,
                    "node": asset.node,
                    "owner": asset.owner,
                    "gpus_used": float(used[a]),
                    "compute_price_usd_per_gpu_hour": float(price[a]),
                    "revenue_usd": float(revenue[a] * hours),
                    "cost_usd": float(cost[a] * hours),
                },
            )

        if result.status != "optimal" or result.shedding:
            for row in result.unserved.itertuples(index=False):
                add(
                    "unserved",
                    {"step": step, "hour_utc": hour, **row._asdict()},
                    ignore_missing=True,
                )


def _money(attribute: str):
    """A model reporter: a settlement amount of the latest step, in USD."""

    def report(model: TokenFlowModel) -> float:
        # NaN in a step that did not clear; run totals skip such steps.
        return getattr(model.last_result.settlement, attribute) * model.step_hours

    return report


def _total_cost(model: TokenFlowModel) -> float:
    cost = model.last_result.total_cost_usd_per_h
    return math.nan if cost is None else cost * model.step_hours


def _unserved(model: TokenFlowModel) -> float:
    return float(model.last_result.unserved["tokens_per_s"].sum())


_MODEL_REPORTERS = {
    "hour_utc": "hour_utc",
    "status": lambda m: m.last_result.status,
    "degenerate": lambda m: m.last_result.degenerate,
    "total_cost_usd": _total_cost,
    "consumer_payments_usd": _money("consumer_payments_usd_per_h"),
    "provider_revenues_usd": _money("provider_revenues_usd_per_h"),
    "transfer_charges_usd": _money("transfer_charges_usd_per_h"),
    "congestion_rents_usd": _money("congestion_rents_usd_per_h"),
    "unserved_tokens_per_s": _unserved,
}
