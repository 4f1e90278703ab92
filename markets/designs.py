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

import numpy as np

from markets.clearing import Clearing
from markets.design_result import DesignResult, price_dispersion
from markets.result import ClearingResult
from scenarios.schema import Demand, Link, Node, OfferBlock, Scenario

DESIGNS = ("nodal", "zonal", "uniform")
SETTLEMENTS = ("pay-as-clear", "pay-as-bid")
REDISPATCH_SHED_USD_PER_MTOK = 1e4
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


__all__ = [
    "DESIGNS",
    "SETTLEMENTS",
    "DesignClearing",
    "DesignError",
    "DesignResult",
    "MarketDesign",
    "price_dispersion",
    "zonal_scenario",
]
