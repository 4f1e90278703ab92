"""Provider agents: one per owner, offering capacity for the assets it owns."""

from __future__ import annotations

import math

import mesa

from agents.strategies import OfferContext, Outcome, Strategy, Truthful
from scenarios.schema import Asset, OfferBlock


class ProviderAgent(mesa.Agent):
    """A provider that offers the GPUs it owns following a bidding strategy.

    Revenue, true cost and profit of the latest step are kept as attributes so
    that the DataCollector's agent-type reporters can read them; so are the
    markup its strategy offered, the GPUs it offered, and its profit in the
    competitive benchmark (the same step cleared with truthful offers).
    """

    def __init__(
        self,
        model: mesa.Model,
        owner: str,
        assets: list[Asset],
        strategy: Strategy | None = None,
    ):
        super().__init__(model)
        self.owner = owner
        self.assets = assets
        self.strategy = strategy or Truthful()
        self.revenue_usd = 0.0
        self.cost_usd = 0.0
        self.offered_gpus = 0.0
        self.competitive_profit_usd = math.nan

    @property
    def profit_usd(self) -> float:
        return self.revenue_usd - self.cost_usd

    @property
    def markup(self) -> float:
        """Mean markup over true cost of the GPUs offered this step."""
        return self.strategy.offered_markup

    def submit_offers(self, context: OfferContext) -> dict[str, tuple[OfferBlock, ...]]:
        """This step's offers for every asset the provider owns."""
        offers = self.strategy.offers(self.assets, context)
        self.offered_gpus = sum(b.gpus for blocks in offers.values() for b in blocks)
        return offers

    def book(self, revenue_usd: float, cost_usd: float, capacity_cost_usd: float):
        """Record this step's settlement and let the strategy learn from it.

        NaN amounts mean the market did not clear: nothing was bought or sold,
        the step's money is recorded as NaN and nothing is learnt.
        """
        if math.isnan(revenue_usd) or math.isnan(cost_usd):
            self.revenue_usd = self.cost_usd = math.nan
            return
        self.revenue_usd = revenue_usd
        self.cost_usd = cost_usd
        self.strategy.learn(Outcome(revenue_usd, cost_usd, capacity_cost_usd))
