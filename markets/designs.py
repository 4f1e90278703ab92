"""Market designs: how prices are formed and how sellers are paid.

- ``nodal`` (default): a price per workload and node, from the network LP.
- ``zonal``: nodes are grouped into the scenario's zones. The market clears
  with each zone as one node (the network inside a zone, and its latency,
  ignored; links between two zones pooled into one), giving one price per
  zone and workload. Consumers are served what they bought at their zone's
  price. The operator then redispatches the GPUs at their offer prices on the
  full network to deliver exactly that, and pays for the difference.
- ``uniform``: zonal with a single zone: one national price per workload.

Settlement is ``pay-as-clear`` (sellers paid the clearing price) or
``pay-as-bid`` (sellers paid their own offer prices; consumers still pay the
clearing price, the operator keeps the difference). An optional price cap
limits every offer price.

Redispatch is paid at offer prices: an asset run more than the market
schedule is paid its offer for the extra GPUs; one run less pays back its
offer for the GPUs it did not run. Tokens the network cannot deliver (the
redispatch sheds them at ``REDISPATCH_SHED_USD_PER_MTOK``) are reported as
unserved, and consumers pay only for what is delivered, the operator
refunding the rest. The redispatch cost is the offer cost of the physical
dispatch minus that of the market schedule, plus the change in transfer
charges, plus that refund. When the network can deliver the whole schedule it
is never negative: the zonal market is a relaxation of the network the
physical dispatch must respect (up to the LP's tie-break offsets, about 1e-5
of prices).
"""

from __future__ import annotations

import dataclasses
import math
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from markets.clearing import Clearing
from markets.result import ClearingResult, Settlement
from scenarios.schema import Demand, Link, Node, OfferBlock, Scenario

DESIGNS = ("nodal", "zonal", "uniform")
SETTLEMENTS = ("pay-as-clear", "pay-as-bid")
REDISPATCH_SHED_USD_PER_MTOK = 1e4
REDISPATCH_SHORT = "the network cannot deliver the zonal market's schedule"
UNIFORM_ZONE = "all"


class DesignError(ValueError):
    """A market design that cannot be applied to a scenario."""


@dataclass(frozen=True)
class MarketDesign:
    """How a step is priced and settled."""

    design: str = "nodal"
    settlement: str = "pay-as-clear"
    price_cap_usd_per_gpu_hour: float | None = None

    def __post_init__(self):
        if self.design not in DESIGNS:
            raise DesignError(f"design: must be one of {', '.join(DESIGNS)}")
        if self.settlement not in SETTLEMENTS:
            raise DesignError(f"settlement: must be one of {', '.join(SETTLEMENTS)}")
        cap = self.price_cap_usd_per_gpu_hour
        if cap is not None and not (0 <= cap < math.inf):
            raise DesignError(f"price cap: must be a number >= 0, got {cap!r}")

    @property
    def is_plain_nodal(self) -> bool:
        return (
            self.design == "nodal"
            and self.settlement == "pay-as-clear"
            and self.price_cap_usd_per_gpu_hour is None
        )

    def zones_of(self, scenario: Scenario) -> dict[str, str]:
        """Zone of every node under this design."""
        if self.design == "nodal":
            return {n: n for n in scenario.nodes}
        if self.design == "uniform":
            return dict.fromkeys(scenario.nodes, UNIFORM_ZONE)
        if not scenario.zones:
            raise DesignError(
                f"design zonal: {scenario.source} has no zones section (node -> zone)"
            )
        return dict(scenario.zones)

    def cap(self, offers: dict[str, tuple[OfferBlock, ...]]):
        """Offers with every price limited to the cap."""
        cap = self.price_cap_usd_per_gpu_hour
        if cap is None:
            return offers
        return {
            asset: tuple(
                OfferBlock(b.gpus, min(b.price_usd_per_gpu_hour, cap)) for b in blocks
            )
            for asset, blocks in offers.items()
        }


def zonal_scenario(scenario: Scenario, zones: dict[str, str]) -> tuple[Scenario, list]:
    """The scenario with each zone as one node; and, per link, the index of the
    pooled link it belongs to (None for a link inside a zone)."""
    order = list(dict.fromkeys(zones[n] for n in scenario.nodes))
    members = defaultdict(list)
    for node in scenario.nodes.values():
        members[zones[node.id]].append(node)
    nodes = {
        z: Node(
            id=z,
            name=z,
            lat=float(np.mean([n.lat for n in members[z]])),
            lon=float(np.mean([n.lon for n in members[z]])),
            utc_offset_h=members[z][0].utc_offset_h,
        )
        for z in order
    }
    pooled: dict[tuple[str, str], list[Link]] = {}
    link_to_pool: list[int | None] = []
    for link in scenario.links:
        za, zb = zones[link.a], zones[link.b]
        if za == zb:
            link_to_pool.append(None)
            continue
        key = tuple(sorted((za, zb), key=order.index))
        pooled.setdefault(key, []).append(link)
        link_to_pool.append(list(pooled).index(key))
    links = tuple(
        Link(
            id=f"{a}-{b}",
            a=a,
            b=b,
            capacity_gbps=sum(x.capacity_gbps for x in group),
            latency_ms=min(x.latency_ms for x in group),
            transfer_usd_per_gb=min(x.transfer_usd_per_gb for x in group),
        )
        for (a, b), group in pooled.items()
    )
    assets = tuple(dataclasses.replace(a, node=zones[a.node]) for a in scenario.assets)
    merged = dataclasses.replace(
        scenario,
        name=f"{scenario.name} (zones)",
        nodes=nodes,
        assets=assets,
        links=links,
        demand=tuple(_merge_demand(scenario.demand, zones)),
        electricity={},
        zones={},
    )
    return merged, link_to_pool


def _merge_demand(demand, zones: dict[str, str]) -> list[Demand]:
    """One demand per (zone, workload): hard parts summed, bid blocks listed."""
    merged: dict[tuple[str, str], list[Demand]] = defaultdict(list)
    for d in demand:
        merged[(zones[d.node], d.workload)].append(d)
    return [
        Demand(
            zone,
            workload,
            sum(d.tokens_per_s for d in group),
            tuple(b for d in group for b in d.bids),
        )
        for (zone, workload), group in merged.items()
    ]


class DesignClearing:
    """Clears steps of one scenario under a market design.

    The plain nodal pay-as-clear design returns the network clearing's own
    `ClearingResult`; the others return a `DesignResult` with the same
    attributes.
    """

    def __init__(
        self,
        scenario: Scenario,
        design: MarketDesign,
        *,
        warm_start: bool = True,
        compare_last: bool = True,
    ):
        self.scenario = scenario
        self.design = design
        self.zones = design.zones_of(scenario)
        self._demand = list(scenario.demand)
        self._offers = design.cap({a.id: a.stated_offers() for a in scenario.assets})
        self.physical = None
        options = {"warm_start": warm_start, "compare_last": compare_last}
        if design.design == "nodal":
            self.market = Clearing(scenario, **options)
        else:
            merged, self.link_to_pool = zonal_scenario(scenario, self.zones)
            self.market = Clearing(merged, **options)
            shed = dataclasses.replace(
                scenario, shed_penalty_usd_per_mtok=REDISPATCH_SHED_USD_PER_MTOK
            )
            # Only the market's prices are reported as degenerate or not.
            self.physical = Clearing(shed, warm_start=warm_start, compare_last=False)
        if design.price_cap_usd_per_gpu_hour is not None:
            self.update()

    def update(self, *, demand=None, offers=None) -> None:
        if demand is not None:
            self._demand = list(demand)
        if offers is not None:
            self._offers = {**self._offers, **self.design.cap(offers)}
        market_demand = self._demand
        if self.physical is not None:
            market_demand = _merge_demand(self._demand, self.zones)
        self.market.update(demand=market_demand, offers=self._offers)

    def solve(self):
        market = self.market.solve()
        if self.design.is_plain_nodal:
            return market
        if self.physical is None:
            return DesignResult(self, market, market, list(self._demand))
        if market.status != "optimal":
            return DesignResult(self, market, None, list(self._demand))
        served = _allocate(self.scenario, self._demand, market, self.zones)
        schedule = [
            Demand(d.node, d.workload, x)
            for d, x in zip(self._demand, served, strict=True)
        ]
        self.physical.update(demand=schedule, offers=self._offers)
        return DesignResult(self, market, self.physical.solve(), list(self._demand))


def _allocate(scenario, demand: list[Demand], market: ClearingResult, zones) -> list:
    """What each node bought in its zone's market, zone by zone.

    The zone's served total is shared the way a market at one price serves:
    hard demand first, then bid blocks from the highest value down; blocks of
    (nearly) equal value share what is left in proportion to their size.
    """
    zone_ids = list(market._model.node_ids)
    workloads = list(scenario.workloads)
    _, zone_served = market.demand_grid
    groups = defaultdict(list)
    for i, d in enumerate(demand):
        groups[(d.workload, zones[d.node])].append(i)
    served = [0.0] * len(demand)
    for (workload, zone), members in groups.items():
        total = float(zone_served[workloads.index(workload), zone_ids.index(zone)])
        shares = _split(total, [demand[i] for i in members])
        for i, x in zip(members, shares, strict=True):
            served[i] = x
    return served


def _split(total: float, entries: list[Demand]) -> list[float]:
    hard = sum(d.tokens_per_s for d in entries)
    if total <= hard:
        share = total / hard if hard > 0 else 0.0
        return [d.tokens_per_s * share for d in entries]
    served = [d.tokens_per_s for d in entries]
    left = total - hard
    blocks = sorted(
        (
            (b.value_usd_per_mtok, i, b.tokens_per_s)
            for i, d in enumerate(entries)
            for b in d.bids
        ),
        key=lambda block: -block[0],
    )
    while blocks and left > 0:
        top = blocks[0][0]
        tie = 1e-6 * max(1.0, abs(top))
        group = [b for b in blocks if top - b[0] <= tie]
        blocks = blocks[len(group) :]
        size = sum(b[2] for b in group)
        share = min(left / size, 1.0) if size > 0 else 0.0
        for _, i, tokens in group:
            served[i] += tokens * share
        left -= size * share
    return served


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
        return float(payments) * 3600.0 / 1e6

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
