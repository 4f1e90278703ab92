"""Reading the sections beyond the one-hour nodal clearing: electricity and
consumers (which drive the agents over time) and zones (for zonal market
designs).

All are optional: without them costs are constant, demand is hard, and only
the nodal and uniform designs apply.
"""

from __future__ import annotations

from typing import Any

from scenarios.schema import (
    ConsumerBehaviour,
    ElectricityPrice,
    Scenario,
    WillingnessBlock,
    Workload,
)
from scenarios.validation import Validator

_ELECTRICITY_FIELDS = {
    "mean_usd_per_kwh",
    "daily_swing",
    "daily_peak_hour_local",
    "solar_dip",
    "seasonal_swing",
    "seasonal_peak_day",
}
_CONSUMER_FIELDS = {
    "weekend_factor",
    "growth_per_year",
    "willingness_to_pay",
    "deferrable",
}


def electricity(v: Validator, top: dict, scenario: Scenario) -> dict:
    """Electricity price per node; every asset there must state its power."""
    raw = v.mapping(top.get("electricity") or {}, "electricity")
    result = {}
    for nid, entry in raw.items():
        path = f"electricity.{nid}"
        v.reference(nid, path, scenario.nodes)
        result[str(nid)] = _price(v, v.mapping(entry, path), path)
    for i, asset in enumerate(scenario.assets):
        price = result.get(asset.node)
        if price is not None:
            _check_power(v, scenario, asset, price, i)
    return result


def _price(v: Validator, entry: dict, path: str) -> ElectricityPrice:
    v.no_unknown(entry, _ELECTRICITY_FIELDS, path)
    mean = v.number(
        v.required(entry, "mean_usd_per_kwh", path),
        f"{path}.mean_usd_per_kwh",
        positive=True,
    )
    swings = {
        key: v.number(entry.get(key, 0.0), f"{path}.{key}", minimum=0.0)
        for key in ("daily_swing", "solar_dip", "seasonal_swing")
    }
    for key, value in swings.items():
        v.check(value < 1, f"{path}.{key}", f"must be < 1, got {value!r}")
    daily = swings["daily_swing"] + swings["solar_dip"]
    v.check(
        daily < 1,
        f"{path}.solar_dip",
        f"daily_swing + solar_dip must be < 1 so that the price stays positive, "
        f"got {daily:g}",
    )
    peak_hour = v.number(
        entry.get("daily_peak_hour_local", 18.0), f"{path}.daily_peak_hour_local"
    )
    peak_day = v.number(
        entry.get("seasonal_peak_day", 200.0), f"{path}.seasonal_peak_day"
    )
    v.check(
        0 <= peak_hour < 24,
        f"{path}.daily_peak_hour_local",
        f"must be in [0, 24), got {peak_hour!r}",
    )
    v.check(
        1 <= peak_day <= 366,
        f"{path}.seasonal_peak_day",
        f"must be in [1, 366], got {peak_day!r}",
    )
    return ElectricityPrice(
        mean_usd_per_kwh=mean,
        daily_peak_hour_local=peak_hour,
        seasonal_peak_day=peak_day,
        **swings,
    )


def _check_power(v, scenario, asset, price: ElectricityPrice, index: int) -> None:
    """Electricity is part of an asset's cost, so the cost must cover it."""
    kind = scenario.asset_types[asset.type]
    v.check(
        kind.power_kw_per_gpu is not None,
        f"asset_types.{kind.id}.power_kw_per_gpu",
        f"required: asset {asset.id} sits at {asset.node}, which has an "
        "electricity price",
    )
    energy = kind.power_kw_per_gpu * price.mean_usd_per_kwh
    v.check(
        asset.cost_usd_per_gpu_hour >= energy,
        f"assets[{index}].cost_usd_per_gpu_hour",
        f"{asset.cost_usd_per_gpu_hour!r} is less than the electricity it uses at "
        f"the mean price ({kind.power_kw_per_gpu:g} kW x "
        f"{price.mean_usd_per_kwh:g} USD/kWh = {energy:.4g} USD/GPU-h)",
    )


def consumers(
    v: Validator, top: dict, workloads: dict[str, Workload]
) -> ConsumerBehaviour:
    """Weekend factors, growth, willingness to pay and deferrable workloads."""
    raw = v.mapping(top.get("consumers") or {}, "consumers")
    v.no_unknown(raw, _CONSUMER_FIELDS, "consumers")
    weekend = _per_workload(v, raw.get("weekend_factor"), "weekend_factor", workloads)
    growth = v.number(raw.get("growth_per_year", 0.0), "consumers.growth_per_year")
    v.check(
        -1 < growth <= 100,
        "consumers.growth_per_year",
        f"must be > -1 (a fall of less than 100%) and <= 100, got {growth!r}",
    )
    return ConsumerBehaviour(
        weekend_factor={
            k: _at_most(v, x, f"consumers.weekend_factor.{k}", 100.0)
            for k, x in weekend.items()
        },
        growth_per_year=growth,
        willingness_to_pay={
            k: _curve(v, x, f"consumers.willingness_to_pay.{k}")
            for k, x in _per_workload(
                v, raw.get("willingness_to_pay"), "willingness_to_pay", workloads
            ).items()
        },
        deferrable_window_h={
            k: _window(v, x, f"consumers.deferrable.{k}")
            for k, x in _per_workload(
                v, raw.get("deferrable"), "deferrable", workloads
            ).items()
        },
    )


def _per_workload(v: Validator, raw: Any, name: str, workloads: dict) -> dict:
    entries = v.mapping(raw or {}, f"consumers.{name}")
    for key in entries:
        v.reference(key, f"consumers.{name}.{key}", workloads)
    return {str(k): x for k, x in entries.items()}


def _curve(v: Validator, raw: Any, path: str) -> tuple[WillingnessBlock, ...]:
    """Bid blocks as shares of demand; the share left over stays hard demand."""
    blocks = []
    for i, entry in enumerate(v.sequence(raw, path)):
        where = f"{path}[{i}]"
        entry = v.mapping(entry, where)
        v.no_unknown(entry, {"share", "value_usd_per_mtok"}, where)
        share = v.number(v.required(entry, "share", where), f"{where}.share")
        v.check(0 < share <= 1, f"{where}.share", f"must be in (0, 1], got {share!r}")
        value = _at_most(
            v,
            v.required(entry, "value_usd_per_mtok", where),
            f"{where}.value_usd_per_mtok",
            MAX_VALUE_USD_PER_MTOK,
        )
        blocks.append(WillingnessBlock(share, value))
    v.check(bool(blocks), path, "must list at least one block")
    total = sum(b.share for b in blocks)
    v.check(
        total <= 1 + 1e-9,
        path,
        f"shares add up to {total:g}; they must not exceed 1",
    )
    return tuple(blocks)


# Bounds that keep the LP's coefficients within what GLOP solves reliably.
MAX_VALUE_USD_PER_MTOK = 1e6


def _at_most(v: Validator, raw: Any, path: str, largest: float) -> float:
    value = v.number(raw, path, minimum=0.0)
    v.check(value <= largest, path, f"must be <= {largest:g}, got {value!r}")
    return value


def _window(v: Validator, raw: Any, path: str) -> int:
    entry = v.mapping(raw, path)
    v.no_unknown(entry, {"window_h"}, path)
    return v.integer(v.required(entry, "window_h", path), f"{path}.window_h")


def zones(v: Validator, top: dict, nodes: dict) -> dict[str, str]:
    """The zone of every node, for the zonal market design."""
    raw = top.get("zones")
    raw = {} if raw is None else v.mapping(raw, "zones")
    for node in raw:
        v.reference(node, f"zones.{node}", nodes)
    if raw:
        missing = [n for n in nodes if n not in raw]
        v.check(
            not missing,
            f"zones.{missing[0] if missing else ''}",
            "every node needs a zone once the zones section is given",
        )
    return {str(n): v.text(z, f"zones.{n}") for n, z in raw.items()}
