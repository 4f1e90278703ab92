"""Bidding strategies of provider agents.

A strategy turns the assets a provider owns into capacity offers each step.
To add one, subclass `Strategy`, implement `offers`, and register it in
`STRATEGIES` under the name used by ``--strategy NAME[:PARAM=VALUE,...]``;
its constructor's keyword arguments are the parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

from scenarios.schema import Asset, OfferBlock


class StrategyError(ValueError):
    """A strategy name or parameter that cannot be used."""


class Strategy(ABC):
    """Offers for a provider's assets; stateless unless a subclass learns."""

    name = "strategy"

    @abstractmethod
    def offers(self, assets: list[Asset]) -> dict[str, tuple[OfferBlock, ...]]:
        """Offer blocks per asset id for this step."""

    def describe(self) -> str:
        return self.name


@dataclass
class Truthful(Strategy):
    """Every GPU at its true cost."""

    name = "truthful"

    def offers(self, assets):
        return {a.id: a.cost_offer() for a in assets}


@dataclass
class Markup(Strategy):
    """Every GPU at true cost times (1 + markup)."""

    markup: float = 0.2
    name = "markup"

    def __post_init__(self):
        if not self.markup >= -1:
            raise StrategyError(f"markup: must be >= -1, got {self.markup}")

    def offers(self, assets):
        factor = 1.0 + self.markup
        return {
            a.id: (OfferBlock(a.gpus, a.cost_usd_per_gpu_hour * factor),)
            for a in assets
        }

    def describe(self) -> str:
        return f"markup:markup={self.markup:g}"


@dataclass
class Withholding(Strategy):
    """Only a share of each asset's GPUs offered, at true cost."""

    share: float = 0.8
    name = "withholding"

    def __post_init__(self):
        if not 0 <= self.share <= 1:
            raise StrategyError(f"share: must be in [0, 1], got {self.share}")

    def offers(self, assets):
        return {
            a.id: (OfferBlock(a.gpus * self.share, a.cost_usd_per_gpu_hour),)
            for a in assets
        }

    def describe(self) -> str:
        return f"withholding:share={self.share:g}"


STRATEGIES: dict[str, type[Strategy]] = {
    "truthful": Truthful,
    "markup": Markup,
    "withholding": Withholding,
}


def parse_strategy(text: str) -> Strategy:
    """``markup:markup=0.3`` -> Markup(markup=0.3)."""
    name, _, params = text.partition(":")
    name = name.strip()
    if name not in STRATEGIES:
        known = ", ".join(STRATEGIES)
        raise StrategyError(f"--strategy: unknown strategy {name!r} (known: {known})")
    kwargs = {}
    for item in filter(None, (p.strip() for p in params.split(","))):
        key, sep, value = item.partition("=")
        try:
            kwargs[key.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise StrategyError(
                f"--strategy {name}: expected PARAM=NUMBER, got {item!r}"
            )
    try:
        return STRATEGIES[name](**kwargs)
    except TypeError as err:
        raise StrategyError(f"--strategy {name}: {err}") from None
