"""Consumer agents: one per demand node, bidding for its workloads each hour."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import mesa
import numpy as np

from agents import profiles
from markets import units
from scenarios.schema import BidBlock, Demand


@dataclass
class Backlog:
    """Deferrable work of one workload: [last step it may run, tokens/s]
    entries, the prices of the last window, and what lapsed this step."""

    window_steps: int
    entries: deque = field(default_factory=deque)
    recent_lmps: deque = field(default_factory=deque)
    lapsed_tokens_per_s: float = 0.0

    @property
    def waiting_tokens_per_s(self) -> float:
        return sum(x for _, x in self.entries)

    def add(self, step: int, tokens_per_s: float) -> tuple[float, float]:
        """Add this step's arrivals; return (due now, may wait)."""
        self.entries.append([step + self.window_steps - 1, tokens_per_s])
        due = sum(x for last, x in self.entries if last <= step)
        return due, sum(x for _, x in self.entries) - due

    def waiting_value(self, cap: float) -> float:
        """What waiting work bids: the mean recent price, at most the top value.

        Before any price is seen it bids the top value, or nothing when the
        workload has no stated value (it then waits until its deadline).
        """
        prices = [p for p in self.recent_lmps if math.isfinite(p)]
        value = min(sum(prices) / len(prices), cap) if prices else cap
        return value if math.isfinite(value) else 0.0

    def settle(self, step: int, served: float, lmp: float) -> None:
        """Serve earliest deadline first, drop what lapsed, remember the price."""
        self.recent_lmps.append(lmp)
        while len(self.recent_lmps) > self.window_steps:
            self.recent_lmps.popleft()
        self.entries = deque(sorted(self.entries))
        while self.entries and served > 0:
            take = min(served, self.entries[0][1])
            self.entries[0][1] -= take
            served -= take
            if self.entries[0][1] <= 1e-9:
                self.entries.popleft()
        self.lapsed_tokens_per_s = 0.0
        while self.entries and self.entries[0][0] <= step:
            self.lapsed_tokens_per_s += self.entries.popleft()[1]


class ConsumerAgent(mesa.Agent):
    """The demand of one metro region.

    Each step the scenario's demand (the weekday daily mean) is scaled by the
    workload's profile at the node's local hour, the weekend factor on local
    Saturdays and Sundays, the growth trend since the start of the run and
    seeded lognormal noise with a mean of one.

    With ``elastic`` consumers the scaled demand is bid in blocks at the
    scenario's willingness to pay (the share not covered stays hard demand),
    and deferrable workloads wait for cheaper hours: the part of the backlog
    due this step is bid along the willingness-to-pay curve (hard if the
    workload has none) and lapses if not served; the rest waits, bid at the
    mean price the node paid over the last window. Without ``elastic`` all
    demand is hard and served at once.

    The competitive benchmark is a second world with the same arrivals:
    deferrable work there has its own backlog and price history, served by
    the benchmark's clearings, so the benchmark never inherits the market's
    prices or the work the market left waiting.
    """

    def __init__(
        self,
        model: mesa.Model,
        node: str,
        demand: list[Demand],
        elastic: bool = True,
        benchmark_world: bool = False,
    ):
        super().__init__(model)
        self.node = node
        self.base_demand = demand
        self.elastic = elastic
        self.utc_offset_h = model.scenario.nodes[node].utc_offset_h
        self.node_index = list(model.scenario.nodes).index(node)
        self.workload_index = {k: i for i, k in enumerate(model.scenario.workloads)}
        # The scenario's own bid blocks come first in a workload's bid.
        self.own_blocks = {d.workload: len(d.bids) for d in demand}
        windows = model.scenario.consumers.deferrable_window_h
        self.deferrable = {
            d.workload: max(1, round(windows[d.workload] / model.step_hours))
            for d in demand
            if elastic and d.workload in windows
        }
        self.backlogs = {k: Backlog(w) for k, w in self.deferrable.items()}
        # Only a separate benchmark clearing needs the benchmark's own backlog.
        self.benchmark_world = benchmark_world
        self.benchmark_backlogs = {
            k: Backlog(w) for k, w in self.deferrable.items() if benchmark_world
        }
        self.served_value_usd = 0.0
        self._bids: dict[str, Demand] = {}
        self._benchmark_bids: dict[str, Demand] = {}

    # -- bidding ---------------------------------------------------------------

    def submit_bids(
        self, time_utc: datetime, years: float, noise_sigma: float
    ) -> list[Demand]:
        """This step's demand for every workload of the node."""
        local = time_utc + timedelta(hours=self.utc_offset_h)
        self._bids, self._benchmark_bids = {}, {}
        for demand in self.base_demand:
            factor = self._factor(demand.workload, local, years, noise_sigma)
            market, benchmark = self._bid(demand, factor)
            self._bids[demand.workload] = market
            self._benchmark_bids[demand.workload] = benchmark
        return list(self._bids.values())

    def benchmark_bids(self) -> list[Demand]:
        """This step's bids in the competitive benchmark's world."""
        return list(self._benchmark_bids.values())

    def _factor(self, workload: str, local: datetime, years: float, sigma) -> float:
        behaviour = self.model.scenario.consumers
        profile = self.model.scenario.workloads[workload].profile
        factor = profiles.multiplier(profile, local.hour + local.minute / 60.0)
        if local.weekday() >= 5:
            factor *= behaviour.weekend_factor.get(workload, 1.0)
        factor *= (1.0 + behaviour.growth_per_year) ** years
        if sigma > 0:
            # Lognormal with mean 1: exp(N(-sigma^2/2, sigma)).
            factor *= math.exp(self.model.rng.normal(-0.5 * sigma**2, sigma))
        return factor

    def _curve(self, workload: str):
        if not self.elastic:
            return ()
        return self.model.scenario.consumers.willingness_to_pay.get(workload, ())

    def _along_curve(self, workload: str, amount: float):
        """(hard part, bid blocks) of an amount bid along the workload's curve."""
        curve = self._curve(workload)
        elastic = sum(b.share for b in curve)
        blocks = tuple(BidBlock(amount * b.share, b.value_usd_per_mtok) for b in curve)
        return amount * (1.0 - elastic), blocks

    def _bid(self, demand: Demand, factor: float) -> tuple[Demand, Demand]:
        """(market bid, benchmark bid) of one workload."""
        own = tuple(
            BidBlock(b.tokens_per_s * factor, b.value_usd_per_mtok) for b in demand.bids
        )
        amount = demand.tokens_per_s * factor
        workload = demand.workload
        if workload not in self.deferrable:
            hard, blocks = self._along_curve(workload, amount)
            bid = Demand(demand.node, workload, hard, own + blocks)
            return bid, bid
        curve = self._curve(workload)
        top = max((b.value_usd_per_mtok for b in curve), default=math.inf)
        bids = []
        backlogs = [self.backlogs[workload]]
        if self.benchmark_world:
            backlogs.append(self.benchmark_backlogs[workload])
        for backlog in backlogs:
            due, later = backlog.add(self.model.steps, amount)
            hard, blocks = self._along_curve(workload, due)
            waiting = BidBlock(later, backlog.waiting_value(top))
            bids.append(Demand(demand.node, workload, hard, (*own, *blocks, waiting)))
        return bids[0], bids[-1]

    # -- after the clearing ------------------------------------------------------

    def observe(
        self,
        lmp_grid: np.ndarray,
        served_grid: np.ndarray,
        benchmark: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Value what was served; settle the backlogs of the market and, given
        its (lmp, served) grids, of the benchmark."""
        market = self._shares(self._bids, served_grid)
        self.served_value_usd = sum(self._value(k, *x) for k, x in market.items())
        self._settle(self.backlogs, market, lmp_grid)
        if benchmark is not None and self.benchmark_world:
            deferred = {k: self._benchmark_bids[k] for k in self.benchmark_backlogs}
            shares = self._shares(deferred, benchmark[1])
            self._settle(self.benchmark_backlogs, shares, benchmark[0])

    def _shares(self, bids: dict[str, Demand], served_grid: np.ndarray) -> dict:
        column = served_grid[:, self.node_index]
        shares = {}
        for k, bid in bids.items():
            served = float(column[self.workload_index[k]])
            # NaN: no service at all.
            shares[k] = _allocate(bid, served if served == served else 0.0)
        return shares

    def _value(self, workload: str, hard: float, blocks: list[float]) -> float:
        """What the served tokens are worth to the consumer, USD over the step.

        Bid blocks count at their values, except work served from the waiting
        part of a backlog, which is worth the share-weighted mean of the
        workload's willingness to pay (its bid is a price to wait for, not its
        value). Hard demand is worth the scenario's shed penalty (its value of
        lost load), or nothing when the scenario has none.
        """
        hard_value = self.model.scenario.shed_penalty_usd_per_mtok or 0.0
        values = [b.value_usd_per_mtok for b in self._bids[workload].bids]
        if workload in self.deferrable:
            values[-1] = self._mean_value(workload, hard_value)
        value = hard * hard_value
        value += sum(x * v for x, v in zip(blocks, values, strict=True))
        return _usd(value, self.model.step_hours)

    def _mean_value(self, workload: str, otherwise: float) -> float:
        """Share-weighted mean of a workload's willingness to pay."""
        curve = self._curve(workload)
        if not curve:
            return otherwise
        total = sum(b.share for b in curve)
        return sum(b.share * b.value_usd_per_mtok for b in curve) / total

    def _settle(self, backlogs, shares, lmp_grid) -> None:
        for workload, backlog in backlogs.items():
            hard, blocks = shares[workload]
            served = hard + sum(blocks[self.own_blocks[workload] :])
            lmp = float(lmp_grid[self.workload_index[workload], self.node_index])
            backlog.settle(self.model.steps, served, lmp)

    @property
    def backlog_tokens_per_s(self) -> float:
        """Deferrable work waiting in the market, as tokens/s for one step each."""
        return sum(b.waiting_tokens_per_s for b in self.backlogs.values())

    @property
    def lapsed_tokens_per_s(self) -> float:
        """Deferrable work that lapsed unserved in the market this step."""
        return sum(b.lapsed_tokens_per_s for b in self.backlogs.values())


def _allocate(bid: Demand, served_tokens_per_s: float):
    """Split what a (workload, node) was served among its hard part and bid
    blocks: a market at one price serves hard demand first, then the blocks in
    order of value (bids are truthful)."""
    hard = min(served_tokens_per_s, bid.tokens_per_s)
    left = served_tokens_per_s - hard
    blocks = [0.0] * len(bid.bids)
    for i in sorted(
        range(len(bid.bids)), key=lambda i: -bid.bids[i].value_usd_per_mtok
    ):
        blocks[i] = min(max(left, 0.0), bid.bids[i].tokens_per_s)
        left -= blocks[i]
    return hard, blocks


def _usd(tokens_per_s_times_usd_per_mtok: float, step_hours: float) -> float:
    """(tokens/s x USD per million tokens) over a step, in USD."""
    return units.usd_per_h(tokens_per_s_times_usd_per_mtok) * step_hours
