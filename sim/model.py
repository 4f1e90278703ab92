"""The Mesa model: consumers bid, providers offer, the operator clears."""

from __future__ import annotations

import copy
import logging
import math
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import mesa

from agents import ConsumerAgent, OperatorAgent, ProviderAgent
from agents.costs import CostModel
from agents.strategies import (
    OfferContext,
    Strategy,
    StrategyError,
    Truthful,
    ladder,
    parse_strategy,
)
from markets import ClearingResult
from markets.designs import MarketDesign
from scenarios import ScenarioError
from scenarios.loader import MAX_TOKENS_PER_S
from scenarios.schema import Scenario
from sim.ledger import StepLedger, mean_lmp_usd_per_mtok, settle
from sim.recording import MODEL_REPORTERS, PROVIDER_REPORTERS, TABLES, record_tables

logger = logging.getLogger(__name__)


class DemandError(ValueError):
    """Demand that grew beyond what the solver handles reliably."""


# A Monday in January: weekdays come first and the season starts in winter.
DEFAULT_START = datetime(2026, 1, 5, tzinfo=UTC)
SECONDS_PER_YEAR = 365.25 * 86400


# Runs start within these years, so that no step leaves the calendar, and
# last at most ten years of hourly steps.
FIRST_YEAR, LAST_YEAR = 1900, 2200
MAX_HOURS = 87_600


def parse_start(value: str | datetime) -> datetime:
    """An ISO 8601 start time as an aware UTC datetime (naive times are UTC).

    Raises ValueError for anything else, and for years outside 1900-2200.
    """
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(
                f"not an ISO 8601 time such as 2026-01-05T00:00Z: {value!r}"
            ) from None
    if not isinstance(value, datetime):
        raise ValueError(f"not a time: {value!r}")
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(
            f"the year must be from {FIRST_YEAR} to {LAST_YEAR}, got {value.year}"
        )
    return value.astimezone(UTC)


class TokenFlowModel(mesa.Model):
    """An hourly token-flow market on one scenario.

    Each step is ``step_hours`` long (default one hour) and starts at
    ``start + (step - 1) * step_hours`` (UTC). Consumers are elastic (bid at
    the scenario's willingness to pay, defer deferrable work) unless
    ``elastic`` is false. With ``benchmark`` every step is also cleared with
    truthful offers, for competitive prices and profits. ``design`` chooses
    the market design (nodal pay-as-clear by default). Money in the
    recorded tables is USD per step; prices keep their own units.
    """

    def __init__(
        self,
        scenario: Scenario,
        *,
        seed: int | None = None,
        start: str | datetime = DEFAULT_START,
        step_hours: float = 1.0,
        noise_sigma: float = 0.05,
        warm_start: bool = True,
        strategy: Strategy | str | None = None,
        elastic: bool = True,
        benchmark: bool = True,
        design: MarketDesign | None = None,
    ):
        super().__init__(seed=seed)
        if not 0 < step_hours <= 8784:
            raise ValueError(f"step_hours: must be in (0, 8784], got {step_hours!r}")
        if not 0 <= noise_sigma <= 2:
            raise ValueError(f"noise_sigma: must be in [0, 2], got {noise_sigma!r}")
        if isinstance(strategy, str):
            strategy = parse_strategy(strategy, where="strategy")
        self.scenario = scenario
        self.seed_value = seed
        self.start = parse_start(start)
        self.step_hours = step_hours
        self.noise_sigma = noise_sigma
        self.strategy = strategy
        self.elastic = elastic
        self.design = design or MarketDesign()
        self.costs = CostModel(scenario)
        self.true_costs = self.costs.base.copy()
        self.last_result: ClearingResult | None = None
        self.ledger: StepLedger | None = None
        self.mean_lmp_usd_per_mtok = math.nan
        self.competitive_mean_lmp_usd_per_mtok = math.nan
        self.phase_seconds: dict[str, float] = defaultdict(float)

        self._create_agents(warm_start, benchmark)
        self.datacollector = mesa.DataCollector(
            model_reporters=MODEL_REPORTERS,
            agenttype_reporters={ProviderAgent: PROVIDER_REPORTERS},
            tables=TABLES,
        )

    def _create_agents(self, warm_start: bool, benchmark: bool) -> None:
        by_owner = defaultdict(list)
        for asset in self.scenario.assets:
            by_owner[asset.owner].append(asset)
        strategies = {owner: self._strategy_of(owner) for owner in sorted(by_owner)}
        # With every provider truthful the benchmark is the market itself.
        self.all_truthful = all(isinstance(s, Truthful) for s in strategies.values())
        self.benchmark = benchmark and not self.all_truthful

        by_node = defaultdict(list)
        for demand in self.scenario.demand:
            by_node[demand.node].append(demand)
        for node in self.scenario.nodes:
            if by_node[node]:
                ConsumerAgent(
                    self,
                    node,
                    by_node[node],
                    elastic=self.elastic,
                    benchmark_world=self.benchmark,
                )
        for owner, strategy in strategies.items():
            ProviderAgent(self, owner, by_owner[owner], strategy)

        self.operator = OperatorAgent(
            self, warm_start=warm_start, benchmark=self.benchmark, design=self.design
        )

    def _strategy_of(self, owner: str) -> Strategy:
        """The run's strategy if one was given, else the scenario's for owner.

        Each provider gets its own copy, so a learning strategy's state stays
        with its provider.
        """
        if self.strategy is not None:
            return copy.deepcopy(self.strategy)
        text = self.scenario.provider_strategies.get(owner, "truthful")
        try:
            return parse_strategy(text, where="strategy")
        except StrategyError as err:
            field = f"providers.{owner}.strategy"
            raise ScenarioError(self.scenario.source, field, str(err)) from None

    # -- time ------------------------------------------------------------------

    @property
    def time_utc(self) -> datetime:
        """UTC time at the start of the current step."""
        return self.start + timedelta(hours=(self.steps - 1) * self.step_hours)

    @property
    def hour_utc(self) -> float:
        """UTC hour of day at the start of the current step."""
        time = self.time_utc
        return time.hour + time.minute / 60.0 + time.second / 3600.0

    @property
    def years_elapsed(self) -> float:
        return (self.time_utc - self.start).total_seconds() / SECONDS_PER_YEAR

    # -- one step ----------------------------------------------------------------

    def step(self) -> None:
        """Bid, offer, clear, settle, learn, record.

        The wall time of each phase accumulates in ``phase_seconds``.
        """
        tick = time.perf_counter()
        now = self.time_utc
        self.true_costs = self.costs.costs(now)
        demand = self._bids(now)
        context = OfferContext(self.steps, self._cost_map(), self.rng)
        offers = self._offers(context)
        tick = self._lap("agents", tick)

        result = self.operator.clear(demand, offers)
        competitive = self._competitive(result, context)
        self.last_result = result
        tick = self._lap("clearing", tick)

        self._observe(result, competitive)
        self.ledger = settle(
            result,
            self.scenario,
            self.true_costs,
            self.step_hours,
            served_value_usd=self._served_value(),
        )
        self._book(competitive)
        tick = self._lap("settlement", tick)

        self.mean_lmp_usd_per_mtok = mean_lmp_usd_per_mtok(result)
        self.competitive_mean_lmp_usd_per_mtok = (
            mean_lmp_usd_per_mtok(competitive, weights=result)
            if competitive
            else math.nan
        )
        self.datacollector.collect(self)
        record_tables(self, result, competitive)
        self._lap("recording", tick)

    def _lap(self, phase: str, since: float) -> float:
        now = time.perf_counter()
        self.phase_seconds[phase] += now - since
        return now

    def _bids(self, time: datetime) -> list:
        demand = []
        for consumer in self.agents_by_type[ConsumerAgent]:
            demand.extend(
                consumer.submit_bids(time, self.years_elapsed, self.noise_sigma)
            )
        for d in demand:
            offered = d.tokens_per_s + sum(b.tokens_per_s for b in d.bids)
            if not offered <= MAX_TOKENS_PER_S:
                raise DemandError(
                    f"step {self.steps}: demand for {d.workload} at {d.node} reached "
                    f"{offered:.3g} tokens/s, above the {MAX_TOKENS_PER_S:.0e} the "
                    "solver handles reliably (check consumers.growth_per_year and "
                    "weekend_factor)"
                )
        return demand

    def _cost_map(self) -> dict[str, float]:
        return {
            a.id: float(c)
            for a, c in zip(self.scenario.assets, self.true_costs, strict=True)
        }

    def _offers(self, context: OfferContext) -> dict:
        offers = {}
        for provider in self.agents_by_type[ProviderAgent]:
            offers.update(provider.submit_offers(context))
        return offers

    def _competitive(
        self, result: ClearingResult, context: OfferContext
    ) -> ClearingResult | None:
        """The step cleared with truthful offers in the benchmark's world (the
        market itself when every provider is truthful; None when off)."""
        if not self.benchmark:
            return result if self.all_truthful else None
        truthful = ladder(list(self.scenario.assets), context, 0.0)
        demand = []
        for consumer in self.agents_by_type[ConsumerAgent]:
            demand.extend(consumer.benchmark_bids())
        return self.operator.clear_competitive(demand, truthful)

    def _book(self, competitive: ClearingResult | None) -> None:
        benchmark = None
        if competitive is not None and competitive is not self.last_result:
            benchmark = settle(
                competitive, self.scenario, self.true_costs, self.step_hours
            )
        capacity = defaultdict(float)
        for asset, cost in zip(self.scenario.assets, self.true_costs, strict=True):
            capacity[asset.owner] += asset.gpus * cost * self.step_hours
        for provider in self.agents_by_type[ProviderAgent]:
            owner = provider.owner
            provider.book(
                self.ledger.revenue_by_provider_usd[owner],
                self.ledger.cost_by_provider_usd[owner],
                capacity[owner],
            )
            if benchmark is not None:
                provider.competitive_profit_usd = benchmark.profit_of(owner)
            elif competitive is not None:
                provider.competitive_profit_usd = provider.profit_usd
            else:
                provider.competitive_profit_usd = math.nan

    def _served_value(self) -> float:
        return sum(c.served_value_usd for c in self.agents_by_type[ConsumerAgent])

    def _observe(self, result: ClearingResult, competitive) -> None:
        lmp, served = _served(result)
        benchmark = (lmp, served) if competitive is result else None
        if competitive is not None and competitive is not result:
            benchmark = _served(competitive)
        for consumer in self.agents_by_type[ConsumerAgent]:
            consumer.observe(lmp, served, benchmark)


def _served(result: ClearingResult):
    """(LMP grid, served grid); nothing is served in a step that did not clear."""
    served = result.demand_grid[1]
    if result.status != "optimal":
        served = served * 0.0
    return result.lmp_grid, served
