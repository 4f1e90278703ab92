"""The operator agent: clears the market every step and settles it."""

from __future__ import annotations

import mesa

from markets import Clearing, ClearingResult
from scenarios.schema import Demand, OfferBlock


class OperatorAgent(mesa.Agent):
    """Owns the clearing model and the latest result."""

    def __init__(self, model: mesa.Model, warm_start: bool = True):
        super().__init__(model)
        self.clearing = Clearing(model.scenario, warm_start=warm_start)
        self.result: ClearingResult | None = None

    def clear(
        self, demand: list[Demand], offers: dict[str, tuple[OfferBlock, ...]]
    ) -> ClearingResult:
        """Clear this step's bids and offers with GLOP."""
        self.clearing.update(demand=demand, offers=offers)
        self.result = self.clearing.solve()
        return self.result
