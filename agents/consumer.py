"""Consumer agents: one per demand node, bidding for its workloads each hour."""

from __future__ import annotations

import dataclasses
import math

import mesa

from agents import profiles
from scenarios.schema import Demand


class ConsumerAgent(mesa.Agent):
    """The demand of one metro region.

    Each hour the scenario's demand (the daily mean) is scaled by the
    workload's profile at the node's local hour and by seeded lognormal noise
    with a mean of one. Hard demand stays hard; bid blocks keep their values.
    """

    def __init__(self, model: mesa.Model, node: str, demand: list[Demand]):
        super().__init__(model)
        self.node = node
        self.base_demand = demand
        self.utc_offset_h = model.scenario.nodes[node].utc_offset_h

    def submit_bids(self, hour_utc: float, noise_sigma: float) -> list[Demand]:
        """This hour's demand for every workload of the node."""
        hour = profiles.local_hour(hour_utc, self.utc_offset_h)
        return [self._scaled(d, hour, noise_sigma) for d in self.base_demand]

    def _scaled(self, demand: Demand, hour_local: float, sigma: float) -> Demand:
        profile = self.model.scenario.workloads[demand.workload].profile
        factor = profiles.multiplier(profile, hour_local)
        if sigma > 0:
            # Lognormal with mean 1: exp(N(-sigma^2/2, sigma)).
            factor *= math.exp(self.model.rng.normal(-0.5 * sigma**2, sigma))
        bids = tuple(
            dataclasses.replace(b, tokens_per_s=b.tokens_per_s * factor)
            for b in demand.bids
        )
        return dataclasses.replace(
            demand, tokens_per_s=demand.tokens_per_s * factor, bids=bids
        )
