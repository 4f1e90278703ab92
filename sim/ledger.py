"""The settlement ledger of one step: who paid, who earned, what was gained.

All amounts are USD over the step. In a step that did not clear every amount
is NaN: nothing was bought or sold.

    merchandising surplus = consumer payments - provider revenues - transfer charges
                          = congestion rents (MODEL.md identity 4) under nodal
                            pay-as-clear; less the redispatch cost under zonal
                            and uniform designs; plus what pay-as-bid keeps
                            (retained_usd)
    consumer surplus      = stated value of the demand served - consumer payments
    provider profit       = provider revenue - true cost of the GPUs run
    welfare               = consumer surplus + provider profits + merchandising surplus
                          = stated value served - true cost - transfer charges

The value of what was served is the consumers' own: bids at their values,
deferred work at its willingness to pay (not the lower price it waited for).
Hard demand has no stated value of its own; it counts at the scenario's shed
penalty when there is one and at zero otherwise, so with hard demand the
consumer surplus is a lower bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from markets import ClearingResult
from scenarios.schema import Scenario


@dataclass(frozen=True)
class StepLedger:
    consumer_payments_usd: float
    consumer_surplus_usd: float
    provider_revenues_usd: float
    provider_costs_usd: float
    transfer_charges_usd: float
    congestion_rents_usd: float
    redispatch_cost_usd: float = 0.0
    retained_usd: float = 0.0
    revenue_by_provider_usd: dict[str, float] = field(default_factory=dict)
    cost_by_provider_usd: dict[str, float] = field(default_factory=dict)

    @property
    def provider_profits_usd(self) -> float:
        return self.provider_revenues_usd - self.provider_costs_usd

    @property
    def merchandising_surplus_usd(self) -> float:
        return (
            self.consumer_payments_usd
            - self.provider_revenues_usd
            - self.transfer_charges_usd
        )

    @property
    def welfare_usd(self) -> float:
        return (
            self.consumer_surplus_usd
            + self.provider_profits_usd
            + self.merchandising_surplus_usd
        )

    def profit_of(self, owner: str) -> float:
        return self.revenue_by_provider_usd.get(
            owner, math.nan
        ) - self.cost_by_provider_usd.get(owner, math.nan)


def settle(
    result: ClearingResult,
    scenario: Scenario,
    true_costs_usd_per_gpu_hour: np.ndarray,
    step_hours: float,
    served_value_usd: float | None = None,
) -> StepLedger:
    """Book one clearing at the step's true costs.

    ``served_value_usd`` is what consumers say the served demand is worth to
    them; by default the stated value of the bids the clearing accepted.
    """
    owners = sorted({a.owner for a in scenario.assets})
    if result.status != "optimal":
        nan = math.nan
        return StepLedger(
            *[nan] * 8,
            revenue_by_provider_usd=dict.fromkeys(owners, nan),
            cost_by_provider_usd=dict.fromkeys(owners, nan),
        )
    settlement = result.settlement
    revenue = np.nan_to_num(result.asset_revenue_usd_per_h) * step_hours
    cost = result.gpus_used * true_costs_usd_per_gpu_hour * step_hours
    by_revenue, by_cost = dict.fromkeys(owners, 0.0), dict.fromkeys(owners, 0.0)
    for asset, r, c in zip(scenario.assets, revenue, cost, strict=True):
        by_revenue[asset.owner] += float(r)
        by_cost[asset.owner] += float(c)
    payments = settlement.consumer_payments_usd_per_h * step_hours
    if served_value_usd is None:
        served_value_usd = result.served_value_usd_per_h * step_hours
    return StepLedger(
        consumer_payments_usd=payments,
        consumer_surplus_usd=served_value_usd - payments,
        provider_revenues_usd=float(revenue.sum()),
        provider_costs_usd=float(cost.sum()),
        transfer_charges_usd=settlement.transfer_charges_usd_per_h * step_hours,
        congestion_rents_usd=settlement.congestion_rents_usd_per_h * step_hours,
        redispatch_cost_usd=result.redispatch_cost_usd_per_h * step_hours,
        retained_usd=result.retained_usd_per_h * step_hours,
        revenue_by_provider_usd=by_revenue,
        cost_by_provider_usd=by_cost,
    )


def mean_lmp_usd_per_mtok(
    result: ClearingResult, weights: ClearingResult | None = None
) -> float:
    """Served-token-weighted mean LMP of one clearing (NaN when nothing priced).

    With ``weights`` the tokens served in that other clearing weigh the
    prices, so that a benchmark's prices are averaged over the same tokens.
    """
    lmp = result.lmp_grid
    _, served = (weights or result).demand_grid
    priced = np.isfinite(lmp) & (served > 0)
    weight = served[priced].sum()
    if not weight > 0:
        return math.nan
    return float((lmp[priced] * served[priced]).sum() / weight)
