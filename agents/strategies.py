"""Bidding strategies of provider agents.

A strategy turns the assets a provider owns into capacity offers each step,
given the step's true cost of every asset, and may learn from the profit the
step brought. To add one, subclass `Strategy`, implement `offers` (and `learn`
if it adapts), and register the class in `STRATEGIES` under the name used by
``--strategy NAME[:PARAM=VALUE,...]``; its constructor's keyword arguments are
the parameters, given as numbers. Random choices must use ``context.rng``,
the model's seeded generator, so that a seed reproduces a run.
"""

from __future__ import annotations

import dataclasses
import math
import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from scenarios.schema import Asset, OfferBlock


class StrategyError(ValueError):
    """A strategy name or parameter that cannot be used."""


# Bounds that keep offers within what the solver handles reliably.
MAX_MARKUP = 100.0
MAX_BLOCKS = 20
MAX_LEVELS = 101


@dataclass(frozen=True)
class OfferContext:
    """What a provider knows when it offers: the step and its true costs."""

    step: int
    costs_usd_per_gpu_hour: Mapping[str, float]
    rng: np.random.Generator


@dataclass(frozen=True)
class Outcome:
    """A provider's settlement of one step, for strategies that learn.

    ``capacity_cost_usd`` is the true cost of running every GPU it owns for
    the step; learners use it to put profits of providers of any size on one
    scale.
    """

    revenue_usd: float
    cost_usd: float
    capacity_cost_usd: float

    @property
    def profit_usd(self) -> float:
        return self.revenue_usd - self.cost_usd


class Strategy(ABC):
    """Offers for a provider's assets; stateless unless a subclass learns."""

    name = "strategy"

    @abstractmethod
    def offers(
        self, assets: list[Asset], context: OfferContext
    ) -> dict[str, tuple[OfferBlock, ...]]:
        """Offer blocks per asset id for this step."""

    def learn(self, outcome: Outcome) -> None:
        """Take in the step's settlement; strategies that do not learn ignore it."""
        return

    @property
    def offered_markup(self) -> float:
        """The mean markup over true cost of the GPUs offered this step (NaN:
        the strategy's offers have no markup, e.g. stated prices)."""
        return math.nan

    def describe(self) -> str:
        """The strategy as ``--strategy`` text, every parameter included."""
        params = [
            f"{f.name}={_text(getattr(self, f.name))}"
            for f in dataclasses.fields(self)
            if f.init
        ]
        return f"{self.name}:{','.join(params)}" if params else self.name


def _text(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def ladder(
    assets: list[Asset],
    context: OfferContext,
    markup: float,
    blocks: int = 1,
    share: float = 1.0,
) -> dict[str, tuple[OfferBlock, ...]]:
    """Offers in equal blocks whose markups rise evenly up to ``markup``.

    With one block every offered GPU is priced at cost x (1 + markup); with
    three, a third each at markups of markup/3, 2 markup/3 and markup.
    """
    result = {}
    for asset in assets:
        cost = context.costs_usd_per_gpu_hour[asset.id]
        gpus = asset.gpus * share / blocks
        result[asset.id] = tuple(
            OfferBlock(gpus, cost * (1.0 + markup * (i + 1) / blocks))
            for i in range(blocks)
        )
    return result


def _whole(value: float, name: str, largest: int) -> int:
    if not 1 <= value <= largest or value != int(value):
        raise StrategyError(
            f"{name}: must be a whole number from 1 to {largest}, got {value:g}"
        )
    return int(value)


def _ladder_mean(markup: float, blocks: int) -> float:
    """Mean markup over the GPUs of a ladder: equal blocks at k/blocks."""
    return markup * (blocks + 1) / (2 * blocks)


@dataclass
class Truthful(Strategy):
    """Every GPU at its true cost."""

    name = "truthful"

    def offers(self, assets, context):
        return ladder(assets, context, 0.0)

    @property
    def offered_markup(self) -> float:
        return 0.0


@dataclass
class Stated(Strategy):
    """The offer blocks written in the scenario (or true cost where none are)."""

    name = "stated"

    def offers(self, assets, context):
        return {a.id: a.offers or ladder([a], context, 0.0)[a.id] for a in assets}


@dataclass
class Markup(Strategy):
    """Every GPU at true cost times (1 + markup), in ``blocks`` rising blocks."""

    markup: float = 0.2
    blocks: float = 1
    name = "markup"

    def __post_init__(self):
        if not -1 <= self.markup <= MAX_MARKUP:
            raise StrategyError(
                f"markup: must be from -1 to {MAX_MARKUP:g}, got {self.markup}"
            )
        self.blocks = _whole(self.blocks, "blocks", MAX_BLOCKS)

    def offers(self, assets, context):
        return ladder(assets, context, self.markup, self.blocks)

    @property
    def offered_markup(self) -> float:
        return _ladder_mean(self.markup, self.blocks)


@dataclass
class Withholding(Strategy):
    """Only a share of each asset's GPUs offered, at true cost."""

    share: float = 0.8
    name = "withholding"

    def __post_init__(self):
        if not 0 <= self.share <= 1:
            raise StrategyError(f"share: must be in [0, 1], got {self.share}")

    def offers(self, assets, context):
        return ladder(assets, context, 0.0, share=self.share)

    @property
    def offered_markup(self) -> float:
        return 0.0


@dataclass
class RothErev(Strategy):
    """A reinforcement learner choosing its markup from the profits it earned.

    The modified Roth-Erev rule of agent-based wholesale power market studies
    (Erev and Roth 1998; Nicolaisen, Petrov and Tesfatsion 2001): the
    provider holds a propensity for each of ``levels`` markups evenly spaced
    from 0 to ``max_markup``. Each step it draws a markup with probability
    proportional to its propensity. After settlement every propensity decays
    by the ``recency`` share; the chosen one gains the step's reward times
    (1 - ``experimentation``) and each other one gains its own propensity
    times experimentation / (levels - 1). The reward is the step's profit
    divided by the true cost of running all the provider's GPUs for the
    step, so that providers of any size learn at the same pace.
    """

    levels: float = 11
    max_markup: float = 1.0
    recency: float = 0.1
    experimentation: float = 0.2
    initial: float = 1.0
    blocks: float = 1
    name = "roth-erev"
    propensities: np.ndarray = field(init=False, repr=False)
    choice: int = field(init=False, default=0)

    def __post_init__(self):
        self.levels = _whole(self.levels, "levels", MAX_LEVELS)
        self.blocks = _whole(self.blocks, "blocks", MAX_BLOCKS)
        if self.levels < 2:
            raise StrategyError(f"levels: must be at least 2, got {self.levels}")
        checks = {
            "max_markup": (
                0 < self.max_markup <= MAX_MARKUP,
                f"in (0, {MAX_MARKUP:g}]",
            ),
            "recency": (0 <= self.recency <= 1, "in [0, 1]"),
            "experimentation": (0 <= self.experimentation < 1, "in [0, 1)"),
            "initial": (0 < self.initial <= 1e6, "in (0, 1e6]"),
        }
        for key, (ok, bounds) in checks.items():
            if not ok:
                raise StrategyError(
                    f"{key}: must be {bounds}, got {getattr(self, key)}"
                )
        self.propensities = np.full(self.levels, float(self.initial))

    @property
    def markups(self) -> np.ndarray:
        return np.linspace(0.0, self.max_markup, self.levels)

    @property
    def chosen_markup(self) -> float:
        """The markup level drawn this step (the top of its ladder)."""
        return float(self.markups[self.choice])

    @property
    def offered_markup(self) -> float:
        return _ladder_mean(self.chosen_markup, self.blocks)

    def offers(self, assets, context):
        chances = self.propensities / self.propensities.sum()
        self.choice = int(context.rng.choice(self.levels, p=chances))
        return ladder(assets, context, self.chosen_markup, self.blocks)

    def learn(self, outcome: Outcome) -> None:
        if not outcome.capacity_cost_usd > 0 or not math.isfinite(outcome.profit_usd):
            return
        reward = max(outcome.profit_usd, 0.0) / outcome.capacity_cost_usd
        q = self.propensities
        spill = q * self.experimentation / (self.levels - 1)
        spill[self.choice] = reward * (1.0 - self.experimentation)
        # A floor keeps every markup drawable, however long it went unchosen.
        self.propensities = np.maximum((1.0 - self.recency) * q + spill, 1e-12)


STRATEGIES: dict[str, type[Strategy]] = {
    "truthful": Truthful,
    "stated": Stated,
    "markup": Markup,
    "withholding": Withholding,
    "roth-erev": RothErev,
}


_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def parse_strategy(text: str, where: str = "--strategy") -> Strategy:
    """``markup:markup=0.3`` -> Markup(markup=0.3); ``where`` names the
    source of the text in error messages."""
    name, _, params = str(text).partition(":")
    name = name.strip()
    if name not in STRATEGIES:
        known = ", ".join(STRATEGIES)
        raise StrategyError(f"{where}: unknown strategy {name!r} (known: {known})")
    kind = STRATEGIES[name]
    allowed = [f.name for f in dataclasses.fields(kind) if f.init]
    kwargs = {}
    for item in filter(None, (p.strip() for p in params.split(","))):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep or not _NUMBER.match(value):
            raise StrategyError(f"{where} {name}: expected PARAM=NUMBER, got {item!r}")
        if key not in allowed:
            names = ", ".join(allowed) or "none"
            raise StrategyError(
                f"{where} {name}: unknown parameter {key!r} (parameters: {names})"
            )
        if key in kwargs:
            raise StrategyError(f"{where} {name}: {key} given twice")
        kwargs[key] = float(value)
    try:
        return kind(**kwargs)
    except StrategyError as err:
        raise StrategyError(f"{where} {name}: {err}") from None
