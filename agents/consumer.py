"""Consumer agents: one per demand node, bidding for its workloads each hour."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

import mesa
import numpy as np

from agents import profiles
from scenarios.schema import BidBlock, Demand


@dataclass
class _Backlog:
    """Deferrable work waiting to be served: (last step it may run, tokens/s)."""

    window_steps: int
    entries: deque
    recent_lmps: deque


class ConsumerAgent(mesa.Agent):
    """The demand of one metro region.

    Each step the scenario's demand (the weekday daily mean) is scaled by the
    workload's profile at the node's local hour, the weekend factor on local
    Saturdays and Sundays, the growth trend since the start of the run and
    seeded lognormal noise with a mean of one.

    With ``elastic`` consumers the scaled demand is bid in blocks at the
    scenario's willingness to pay (the share not covered stays hard demand),
    and deferrable workloads wait for cheaper hours: the part of the backlog
    due this step is bid at the highest willingness to pay (hard if the
    workload has none), the rest at the mean price the node paid over the
    last window. Without ``elastic`` all demand is hard and served at once.
    """

    def __init__(
        self, model: mesa.Model, node: str, demand: list[Demand], elastic: bool = True
    ):
        super().__init__(model)
        self.node = node
        self.base_demand = demand
        self.elastic = elastic
        behaviour = model.scenario.consumers
        self.utc_offset_h = model.scenario.nodes[node].utc_offset_h
        self.node_index = list(model.scenario.nodes).index(node)
        self.backlogs: dict[str, _Backlog] = {}
        if elastic:
            for d in demand:
                window_h = behaviour.deferrable_window_h.get(d.workload)
                if window_h is not None:
                    steps = max(1, round(window_h / model.step_hours))
                    self.backlogs[d.workload] = _Backlog(steps, deque(), deque())
        self.lapsed_tokens_per_s = 0.0
        self.served_value_usd = 0.0
        self._bids_by_workload: dict[str, Demand] = {}

    # -- bidding ---------------------------------------------------------------

    def submit_bids(
        self, time_utc: datetime, years: float, noise_sigma: float
    ) -> list[Demand]:
        """This step's demand for every workload of the node."""
        local = time_utc + timedelta(hours=self.utc_offset_h)
        bids = [self._bid(d, local, years, noise_sigma) for d in self.base_demand]
        self._bids_by_workload = {d.workload: d for d in bids}
        return bids

    def _bid(self, demand: Demand, local: datetime, years: float, sigma) -> Demand:
        factor = self._factor(demand.workload, local, years, sigma)
        bids = tuple(
            BidBlock(b.tokens_per_s * factor, b.value_usd_per_mtok) for b in demand.bids
        )
        hard = demand.tokens_per_s * factor
        if demand.workload in self.backlogs:
            return self._deferred(demand, hard, bids)
        curve = self._curve(demand.workload)
        elastic = sum(b.share for b in curve)
        bids += tuple(BidBlock(hard * b.share, b.value_usd_per_mtok) for b in curve)
        return Demand(demand.node, demand.workload, hard * (1.0 - elastic), bids)

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

    def _deferred(self, demand: Demand, arriving: float, bids: tuple) -> Demand:
        """Bid the backlog: what is due at the top value, the rest at the
        recent mean price."""
        backlog = self.backlogs[demand.workload]
        step = self.model.steps
        backlog.entries.append([step + backlog.window_steps - 1, arriving])
        due = sum(x for last, x in backlog.entries if last <= step)
        later = sum(x for last, x in backlog.entries if last > step)
        curve = self._curve(demand.workload)
        if not curve:
            waiting = self._recent_price(backlog, math.inf)
            return Demand(demand.node, demand.workload, due, (*bids, waiting(later)))
        top = max(b.value_usd_per_mtok for b in curve)
        waiting = self._recent_price(backlog, top)
        blocks = (*bids, BidBlock(due, top), waiting(later))
        return Demand(demand.node, demand.workload, 0.0, blocks)

    @staticmethod
    def _recent_price(backlog: _Backlog, cap: float):
        prices = [p for p in backlog.recent_lmps if math.isfinite(p)]
        value = min(sum(prices) / len(prices), cap) if prices else cap
        if not math.isfinite(value):
            # No price seen yet and no stated value: wait for one.
            value = 0.0
        return lambda tokens_per_s: BidBlock(tokens_per_s, value)

    # -- after the clearing ------------------------------------------------------

    def observe(self, lmp_grid: np.ndarray, served_grid: np.ndarray) -> None:
        """Value what was served; serve deferrable backlogs earliest deadline
        first and drop what lapsed."""
        workloads = list(self.model.scenario.workloads)
        column = served_grid[:, self.node_index].tolist()
        served = {
            k: (x if x == x else 0.0)  # NaN (no service) counts as zero
            for k, x in zip(workloads, column, strict=True)
            if k in self._bids_by_workload
        }
        shares = {k: self._allocate(k, x) for k, x in served.items()}
        self.served_value_usd = sum(self._value(k, *x) for k, x in shares.items())
        self._serve_backlogs(workloads, lmp_grid, shares)

    def _allocate(self, workload: str, served_tokens_per_s: float):
        """Split what a (workload, node) was served among its hard part and
        bid blocks.

        Bids are truthful, so a market at one price serves hard demand first
        and then the blocks in order of value.
        """
        bid = self._bids_by_workload[workload]
        hard = min(served_tokens_per_s, bid.tokens_per_s)
        left = served_tokens_per_s - hard
        blocks = [0.0] * len(bid.bids)
        for i in sorted(
            range(len(bid.bids)), key=lambda i: -bid.bids[i].value_usd_per_mtok
        ):
            blocks[i] = min(max(left, 0.0), bid.bids[i].tokens_per_s)
            left -= blocks[i]
        return hard, blocks

    def _own_blocks(self, workload: str) -> int:
        """How many of a workload's bid blocks are the scenario's own bids."""
        return len(next(d for d in self.base_demand if d.workload == workload).bids)

    def _value(self, workload: str, hard: float, blocks: list[float]) -> float:
        """What the served tokens are worth to the consumer, USD over the step.

        Bid blocks count at their values, except deferred work, which is worth
        the share-weighted mean of the workload's willingness to pay whichever
        hour serves it. Hard demand is worth the scenario's shed penalty (its
        value of lost load), or nothing when the scenario has none.
        """
        hard_value = self.model.scenario.shed_penalty_usd_per_mtok or 0.0
        bids = self._bids_by_workload[workload].bids
        if workload not in self.backlogs:
            value = hard * hard_value
            value += sum(
                x * b.value_usd_per_mtok for x, b in zip(blocks, bids, strict=True)
            )
            return _usd(value, self.model.step_hours)
        own = self._own_blocks(workload)
        value = sum(
            x * b.value_usd_per_mtok
            for x, b in zip(blocks[:own], bids[:own], strict=True)
        )
        curve = self._curve(workload)
        mean = hard_value
        if curve:
            total = sum(b.share for b in curve)
            mean = sum(b.share * b.value_usd_per_mtok for b in curve) / total
        value += (hard + sum(blocks[own:])) * mean
        return _usd(value, self.model.step_hours)

    def _serve_backlogs(self, workloads, lmp_grid, shares) -> None:
        step = self.model.steps
        self.lapsed_tokens_per_s = 0.0
        for workload, backlog in self.backlogs.items():
            k = workloads.index(workload)
            hard, blocks = shares[workload]
            served = hard + sum(blocks[self._own_blocks(workload) :])
            backlog.recent_lmps.append(float(lmp_grid[k, self.node_index]))
            while len(backlog.recent_lmps) > backlog.window_steps:
                backlog.recent_lmps.popleft()
            backlog.entries = deque(sorted(backlog.entries))
            while backlog.entries and served > 0:
                take = min(served, backlog.entries[0][1])
                backlog.entries[0][1] -= take
                served -= take
                if backlog.entries[0][1] <= 1e-9:
                    backlog.entries.popleft()
            while backlog.entries and backlog.entries[0][0] <= step:
                self.lapsed_tokens_per_s += backlog.entries.popleft()[1]

    @property
    def backlog_tokens_per_s(self) -> float:
        """Deferrable work waiting, as tokens/s for one step each."""
        return sum(x for b in self.backlogs.values() for _, x in b.entries)


def _usd(tokens_per_s_times_usd_per_mtok: float, step_hours: float) -> float:
    """(tokens/s x USD per million tokens) over a step, in USD."""
    return tokens_per_s_times_usd_per_mtok / 1e6 * 3600.0 * step_hours
