"""The result of a step under a zonal, uniform or pay-as-bid design.

It has the attributes of `markets.ClearingResult` that the simulation reads:
prices come from the market clearing, flows and GPUs from the physical
(redispatched) dispatch; see `markets.designs` for the rules.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from markets import units
from markets.result import Settlement

if TYPE_CHECKING:
    from markets.designs import DesignClearing

REDISPATCH_SHORT = "the network cannot deliver the zonal market's schedule"


class DesignResult:
    """A step under a zonal, uniform or pay-as-bid design, shaped like
    `ClearingResult` for the simulation: prices from the market, flows and
    GPUs from the physical (redispatched) dispatch."""

    def __init__(self, clearing: DesignClearing, market, physical, demand):
        self._clearing = clearing
        self.market = market
        self.physical = physical
        self._demand = demand
        sc = clearing.scenario
        self.scenario = sc
        self.status = market.status
        self.degenerate = market.degenerate
        self.bandwidth_model = sc.bandwidth_model
        self.scenario_name = sc.name
        zone_ids = list(market._model.node_ids)
        self._zone_index = np.array(
            [zone_ids.index(clearing.zones[n]) for n in sc.nodes]
        )
        self.shedding = (
            physical is not None
            and physical.shedding
            and (physical.unserved_total_tokens_per_s > 0)
        )

    @property
    def _zonal(self) -> bool:
        return self.physical is not self.market

    @cached_property
    def lmp_grid(self) -> np.ndarray:
        return self.market.lmp_grid[:, self._zone_index]

    @cached_property
    def demand_grid(self):
        sc = self.scenario
        workloads, nodes = list(sc.workloads), list(sc.nodes)
        demand = np.zeros((len(workloads), len(nodes)))
        for d in self._demand:
            offered = d.tokens_per_s + sum(b.tokens_per_s for b in d.bids)
            demand[workloads.index(d.workload), nodes.index(d.node)] += offered
        if not self._zonal:
            return demand, self.market.demand_grid[1]
        if self.physical is None:
            return demand, np.zeros_like(demand)
        return demand, self.physical.demand_grid[1]

    @cached_property
    def gpus_used(self) -> np.ndarray:
        if self.physical is None:
            return self.market.gpus_used
        return self.physical.gpus_used

    @cached_property
    def link_flow_gbps(self) -> np.ndarray:
        if self.physical is None:
            return np.zeros(len(self.scenario.links))
        return self.physical.link_flow_gbps

    @cached_property
    def link_price_usd_per_gbps_h(self) -> np.ndarray:
        if not self._zonal:
            return self.market.link_price_usd_per_gbps_h
        pooled = self.market.link_price_usd_per_gbps_h
        return np.array(
            [0.0 if p is None else pooled[p] for p in self._clearing.link_to_pool]
        )

    @cached_property
    def compute_price_usd_per_gpu_hour(self) -> np.ndarray:
        return self.market.compute_price_usd_per_gpu_hour

    @cached_property
    def redispatch_payments_usd_per_h(self) -> np.ndarray:
        """Per asset: offer cost of the physical dispatch minus the schedule's."""
        if not self._zonal or self.physical is None:
            return np.zeros(len(self.scenario.assets))
        return (
            self.physical.asset_offer_cost_usd_per_h
            - self.market.asset_offer_cost_usd_per_h
        )

    @cached_property
    def redispatch_cost_usd_per_h(self) -> float:
        if self.status != "optimal":
            return math.nan
        if not self._zonal:
            return 0.0
        transfer = (
            self.physical.transfer_charges_usd_per_h
            - self.market.transfer_charges_usd_per_h
        )
        payments = float(self.redispatch_payments_usd_per_h.sum())
        return payments + transfer + self.undelivered_refund_usd_per_h

    @cached_property
    def undelivered_refund_usd_per_h(self) -> float:
        """What consumers paid the market for tokens the network could not
        deliver, returned to them by the operator (USD/h)."""
        if not self._zonal or self.physical is None:
            return 0.0
        sold = self.market.settlement.consumer_payments_usd_per_h
        return sold - self._delivered_payments_usd_per_h

    @cached_property
    def _delivered_payments_usd_per_h(self) -> float:
        _, served = self.demand_grid
        payments = np.nansum(self.lmp_grid * served)
        return units.usd_per_h(float(payments))

    @cached_property
    def asset_revenue_usd_per_h(self) -> np.ndarray:
        if self.status != "optimal":
            return np.full(len(self.scenario.assets), np.nan)
        if self._clearing.design.settlement == "pay-as-bid":
            market = self.market.asset_offer_cost_usd_per_h
        else:
            market = self.market.asset_revenue_usd_per_h
        return market + self.redispatch_payments_usd_per_h

    @cached_property
    def transfer_charges_usd_per_h(self) -> float:
        return (self.physical or self.market).transfer_charges_usd_per_h

    @cached_property
    def retained_usd_per_h(self) -> float:
        """What pay-as-bid keeps: sellers' clearing-price revenue less their
        offer prices (0 under pay-as-clear)."""
        if self.status != "optimal":
            return math.nan
        if self._clearing.design.settlement != "pay-as-bid":
            return 0.0
        clearing = self.market.asset_revenue_usd_per_h.sum()
        return float(clearing - self.market.asset_offer_cost_usd_per_h.sum())

    @cached_property
    def settlement(self) -> Settlement:
        if self.status != "optimal":
            return Settlement(math.nan, math.nan, math.nan, math.nan)
        market = self.market.settlement
        payments = market.consumer_payments_usd_per_h
        if self._zonal:
            # Consumers pay their zone's price for what is delivered to them.
            payments = self._delivered_payments_usd_per_h
        return Settlement(
            consumer_payments_usd_per_h=payments,
            provider_revenues_usd_per_h=float(self.asset_revenue_usd_per_h.sum()),
            transfer_charges_usd_per_h=self.transfer_charges_usd_per_h,
            congestion_rents_usd_per_h=market.congestion_rents_usd_per_h,
        )

    @cached_property
    def served_value_usd_per_h(self) -> float:
        return self.market.served_value_usd_per_h

    @cached_property
    def total_cost_usd_per_h(self) -> float | None:
        """The market's total cost plus the cost of redispatching it."""
        cost = self.market.total_cost_usd_per_h
        return None if cost is None else cost + self.redispatch_cost_usd_per_h

    @cached_property
    def unserved(self) -> pd.DataFrame:
        if self.physical is None or not self._zonal:
            return self.market.unserved
        frame = self.physical.unserved.copy()
        frame["reason"] = REDISPATCH_SHORT
        return frame

    @cached_property
    def unserved_total_tokens_per_s(self) -> float:
        if self.physical is None or not self._zonal:
            return self.market.unserved_total_tokens_per_s
        return self.physical.unserved_total_tokens_per_s


def price_dispersion(lmp_grid: np.ndarray) -> float:
    """Mean over workloads of the coefficient of variation of LMPs across nodes."""
    values = []
    for row in lmp_grid:
        row = row[np.isfinite(row)]
        if len(row) > 1 and row.mean() > 0:
            values.append(row.std() / row.mean())
    return float(np.mean(values)) if values else math.nan
