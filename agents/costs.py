"""True costs over time: each asset's cost follows its node's electricity price.

An asset's ``cost_usd_per_gpu_hour`` in the scenario is its cost at the
node's annual mean electricity price. In a given hour the cost moves by the
GPU's power draw times the price's departure from that mean:

    cost(t) = cost_usd_per_gpu_hour + power_kw_per_gpu * (price(t) - mean)

so that capital costs stay fixed and the merit order can change over the day.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from functools import lru_cache

import numpy as np

from scenarios.schema import ElectricityPrice, Scenario

SOLAR_DIP_HOUR_LOCAL = 13.0
SOLAR_DIP_WIDTH_H = 3.0
DAYS_PER_YEAR = 365.25


def _raw_daily_shape(price: ElectricityPrice, hour_local: float) -> float:
    phase = 2.0 * math.pi * (hour_local - price.daily_peak_hour_local) / 24.0
    dip = math.exp(
        -0.5 * ((hour_local - SOLAR_DIP_HOUR_LOCAL) / SOLAR_DIP_WIDTH_H) ** 2
    )
    return 1.0 + price.daily_swing * math.cos(phase) - price.solar_dip * dip


@lru_cache(maxsize=256)
def _daily_mean(price: ElectricityPrice) -> float:
    """Mean of the raw daily shape over 24 hours (quarter-hour samples)."""
    return float(np.mean([_raw_daily_shape(price, h / 4) for h in range(96)]))


def price_usd_per_kwh(price: ElectricityPrice, local_time: datetime) -> float:
    """The electricity price at a node's local wall-clock time."""
    hour = local_time.hour + local_time.minute / 60.0
    daily = _raw_daily_shape(price, hour) / _daily_mean(price)
    day = local_time.timetuple().tm_yday
    phase = 2.0 * math.pi * (day - price.seasonal_peak_day) / DAYS_PER_YEAR
    seasonal = 1.0 + price.seasonal_swing * math.cos(phase)
    return price.mean_usd_per_kwh * daily * seasonal


class CostModel:
    """Every asset's true cost per GPU-hour at a given time (scenario order)."""

    def __init__(self, scenario: Scenario):
        self.scenario = scenario
        self.base = np.array([a.cost_usd_per_gpu_hour for a in scenario.assets])
        self._priced = [
            (
                i,
                scenario.nodes[a.node],
                scenario.electricity[a.node],
                scenario.asset_types[a.type].power_kw_per_gpu,
            )
            for i, a in enumerate(scenario.assets)
            if a.node in scenario.electricity
        ]

    @property
    def varies(self) -> bool:
        return bool(self._priced)

    def costs(self, time_utc: datetime) -> np.ndarray:
        costs = self.base.copy()
        for i, node, price, power_kw in self._priced:
            local = time_utc + timedelta(hours=node.utc_offset_h)
            departure = price_usd_per_kwh(price, local) - price.mean_usd_per_kwh
            costs[i] += power_kw * departure
        return costs
