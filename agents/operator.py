"""The operator agent: clears the market every step, and the competitive benchmark."""

from __future__ import annotations

import mesa

from markets import ClearingResult
from markets.designs import DesignClearing, MarketDesign
from scenarios.schema import Demand, OfferBlock


class OperatorAgent(mesa.Agent):
    """Owns the clearing model and the latest result, under a market design.

    With ``benchmark`` it keeps a second clearing of the same market in which
    every GPU is offered at its true cost; clearing it with the step's bids
    gives the competitive prices that market-power measures compare against.
    """

    def __init__(
        self,
        model: mesa.Model,
        warm_start: bool = True,
        benchmark: bool = False,
        design: MarketDesign | None = None,
    ):
        super().__init__(model)
        design = design or MarketDesign()
        self.design = design
        self.clearing = DesignClearing(model.scenario, design, warm_start=warm_start)
        self.benchmark = (
            DesignClearing(
                model.scenario, design, warm_start=warm_start, compare_last=False
            )
            if benchmark
            else None
        )
        self.result: ClearingResult | None = None

    def clear(
        self, demand: list[Demand], offers: dict[str, tuple[OfferBlock, ...]]
    ) -> ClearingResult:
        """Clear this step's bids and offers with GLOP."""
        self.clearing.update(demand=demand, offers=offers)
        self.result = self.clearing.solve()
        return self.result

    def clear_competitive(
        self, demand: list[Demand], truthful: dict[str, tuple[OfferBlock, ...]]
    ) -> ClearingResult:
        """Clear the same bids against truthful offers."""
        self.benchmark.update(demand=demand, offers=truthful)
        return self.benchmark.solve()
