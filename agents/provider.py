"""Provider agents: one per owner, offering capacity for the assets it owns."""

from __future__ import annotations

import mesa

from agents.strategies import Strategy, Truthful
from scenarios.schema import Asset, OfferBlock


class ProviderAgent(mesa.Agent):
    """A provider that offers the GPUs it owns following a bidding strategy.

    Revenue, true cost and profit of the latest step are kept as attributes so
    that the DataCollector's agent-type reporters can read them.
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

    @property
    def profit_usd(self) -> float:
        return self.revenue_usd - self.cost_usd

    def submit_offers(self) -> dict[str, tuple[OfferBlock, ...]]:
        """This step's offers for every asset the provider owns."""
        return self.strategy.offers(self.assets)

    def book(self, revenue_usd: float, cost_usd: float) -> None:
        """Record this step's settlement."""
        self.revenue_usd = revenue_usd
        self.cost_usd = cost_usd
