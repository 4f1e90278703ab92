"""The operator's clearing: one object per topology, solved every step."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from markets.diagnosis import diagnose, is_short
from markets.lp import ClearingError, ClearingModel
from markets.prices import derive_prices
from markets.result import ClearingResult
from scenarios.schema import Demand, OfferBlock, Scenario

logger = logging.getLogger(__name__)


class Clearing:
    """Clears the token-flow market of one scenario, step after step.

    The GLOP model is built once; `update` writes new demands and offers into
    it and `solve` restarts the dual simplex from the previous basis. A change
    of shape (a new demand pair, a different number of blocks) rebuilds it.
    With ``warm_start=False`` every solve starts from scratch. With
    ``compare_last=False`` degenerate optima are priced at the next token
    without checking that the last token's prices agree (one solve fewer),
    for clearings whose `degenerate` flag nobody reads.
    """

    def __init__(
        self, scenario: Scenario, *, warm_start: bool = True, compare_last: bool = True
    ):
        self.scenario = scenario
        self.warm_start = warm_start
        self.compare_last = compare_last
        self._demand = {(d.workload, d.node): d for d in scenario.demand}
        self._offers = {a.id: a.stated_offers() for a in scenario.assets}
        self._model = ClearingModel(scenario, self._demand, self._offers)
        self.builds = 1

    def update(
        self,
        *,
        demand: Iterable[Demand] | None = None,
        offers: Mapping[str, tuple[OfferBlock, ...]] | None = None,
    ) -> None:
        """Replace the demand (all of it) and/or the offers of some assets."""
        if demand is not None:
            self._demand = {(d.workload, d.node): d for d in demand}
        if offers is not None:
            unknown = set(offers) - set(self._offers)
            if unknown:
                raise KeyError(f"offers for unknown assets: {sorted(unknown)}")
            self._offers = {**self._offers, **offers}
        shape = self._model.shape_of(self._demand, self._offers)
        if shape != self._model.shape:
            logger.debug("market shape changed; rebuilding the clearing model")
            self._model = ClearingModel(self.scenario, self._demand, self._offers)
            self.builds += 1
        else:
            self._model.set_data(self._demand, self._offers)

    def size(self) -> dict[str, int]:
        """Number of LP variables and rows of the current model."""
        solver = self._model.solver
        return {"variables": solver.NumVariables(), "rows": solver.NumConstraints()}

    def solve(self) -> ClearingResult:
        """Clear the market as it stands now."""
        try:
            raw = self._model.solve(
                cold=not self.warm_start, compare_last=self.compare_last
            )
        except ClearingError:
            # GLOP could not decide; a market that the feasibility LP shows to
            # be short is reported as infeasible, anything else is an error.
            raw = None
        if raw is not None and raw.status == "optimal":
            prices = derive_prices(self._model, raw, self._model.gpus_used(raw))
            return ClearingResult(self._model, raw, prices)

        feasibility = ClearingModel(
            self.scenario, self._demand, self._offers, feasibility=True
        )
        short = feasibility.solve(cold=True)
        if raw is None and not is_short(short):
            raise ClearingError(f"GLOP could not solve {self.scenario.name}")
        unserved = diagnose(feasibility, short)
        logger.info(
            "%s is infeasible: %d demand(s) short", self.scenario.name, len(unserved)
        )
        return ClearingResult(feasibility, short, None, unserved=unserved)


def clear(scenario: Scenario) -> ClearingResult:
    """Build and clear a scenario once."""
    return Clearing(scenario).solve()
