"""Provider agents: one per owner, offering capacity for the assets it owns."""

from __future__ import annotations

import mesa

from scenarios.schema import Asset, OfferBlock


class ProviderAgent(mesa.Agent):
    """A provider that offers every GPU it owns at its true cost.

    Revenue, true cost and profit of the latest step are kept as attributes so
    that the DataCollector's agent-type reporters can read them.
    """

    strategy = "truthful"

    def __init__(self, model: mesa.Model, owner: str, assets: list[Asset]):
        super().__init__(model)
        self.owner = owner
        self.assets = assets
        self.revenue_usd = 0.0
        self.cost_usd = 0.0

    @property
    def profit_usd(self) -> float:
        return self.revenue_usd - self.cost_usd

    def submit_offers(self) -> dict[str, tuple[OfferBlock, ...]]:
        """One block per asset: all GPUs at true cost."""
        return {asset.id: asset.cost_offer() for asset in self.assets}

    def book(self, revenue_usd: float, cost_usd: float) -> None:
        """Record this step's settlement."""
        self.revenue_usd = revenue_usd
        self.cost_usd = cost_usd
