"""Behaviour over time: electricity prices, consumer agents and the step ledger.

Every expected value is worked out by hand from the scenario's numbers in the
test itself; none is produced by the code under test. Conventions used below:

- one pool of GPUs serving 1000 tokens/s each at c USD/GPU-h prices a token at
  c * 1e6 / (1000 * 3600) USD per million tokens (USD/Mtok);
- the default start, 2026-01-05 00:00 UTC, is a Monday;
- demand uses the ``flat`` profile and no noise, so a step's demand is the
  scenario's demand times the weekend factor and the growth factor only.
"""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime

import numpy as np
import pytest

from agents import ConsumerAgent
from agents.costs import CostModel, price_usd_per_kwh
from agents.strategies import Markup, Withholding
from scenarios import Demand, ScenarioError, load_scenario, scenario_from_dict
from scenarios.schema import BidBlock, ElectricityPrice
from sim import run_tables, simulate
from sim.model import TokenFlowModel

REL = 1e-6
THR = 1000.0
MONDAY_NOON = datetime(2026, 1, 5, 12, tzinfo=UTC)


def usd_per_mtok(price_usd_per_gpu_hour: float) -> float:
    return price_usd_per_gpu_hour * 1e6 / (THR * 3600)


def _market(demand_tokens_per_s: float = 1e6, utc_offset_h: float = 0) -> dict:
    # One node A, 2000 GPUs of 1 kW at 2.0 USD/GPU-h (owner p1), flat demand.
    return {
        "name": "one",
        "bandwidth_model": "transfer",
        "token_equivalent_bits": 400,
        "nodes": {"A": {"name": "A", "lat": 0, "lon": 0, "utc_offset_h": utc_offset_h}},
        "asset_types": {
            "g": {"tokens_per_s_per_gpu": {"bulk": THR}, "power_kw_per_gpu": 1.0}
        },
        "assets": [
            {
                "id": "pool",
                "node": "A",
                "type": "g",
                "gpus": 2000,
                "cost_usd_per_gpu_hour": 2.0,
                "owner": "p1",
            }
        ],
        "workloads": {
            "bulk": {"latency_limit_ms": 100, "bits_per_token": 100, "profile": "flat"}
        },
        "demand": [
            {"node": "A", "workload": "bulk", "tokens_per_s": demand_tokens_per_s}
        ],
    }


def _with(data: dict, **sections) -> dict:
    return {**copy.deepcopy(data), **sections}


def _model(data: dict, **options) -> TokenFlowModel:
    return TokenFlowModel(scenario_from_dict(data), seed=1, noise_sigma=0.0, **options)


def _run(data: dict, hours: int, **options) -> TokenFlowModel:
    return simulate(scenario_from_dict(data), hours, seed=1, noise_sigma=0.0, **options)


def _prices(model: TokenFlowModel) -> dict[tuple[int, str], tuple[float, float]]:
    """{(step, node): (demand, served) tokens/s} of workload bulk."""
    table = run_tables(model)["prices"]
    table = table[table["workload"] == "bulk"]
    return {
        (int(row.step), row.node): (
            float(row.demand_tokens_per_s),
            float(row.served_tokens_per_s),
        )
        for row in table.itertuples(index=False)
    }


def _consumer(model: TokenFlowModel) -> ConsumerAgent:
    (consumer,) = model.agents_by_type[ConsumerAgent]
    return consumer


# ---------------------------------------------------------------- loader


def _behaviour_base() -> dict:
    """A valid scenario using every field of electricity and consumers."""
    return _with(
        _market(),
        electricity={
            "A": {
                "mean_usd_per_kwh": 0.1,
                "daily_swing": 0.2,
                "daily_peak_hour_local": 18,
                "solar_dip": 0.1,
                "seasonal_swing": 0.1,
                "seasonal_peak_day": 200,
            }
        },
        consumers={
            "weekend_factor": {"bulk": 0.5},
            "growth_per_year": 0.1,
            "willingness_to_pay": {
                "bulk": [
                    {"share": 0.5, "value_usd_per_mtok": 5.0},
                    {"share": 0.3, "value_usd_per_mtok": 1.0},
                ]
            },
            "deferrable": {"bulk": {"window_h": 6}},
        },
    )


def _refused(data: dict, field: str, *words: str) -> None:
    with pytest.raises(ScenarioError) as info:
        scenario_from_dict(data, "case.yaml")
    err = info.value
    assert err.source == "case.yaml"
    assert err.field == field
    for word in words:
        assert word in err.reason, f"{word!r} not in reason {err.reason!r}"


def test_behaviour_base_loads_every_field():
    sc = scenario_from_dict(_behaviour_base())
    assert sc.electricity["A"] == ElectricityPrice(0.1, 0.2, 18.0, 0.1, 0.1, 200.0)
    assert sc.consumers.weekend_factor == {"bulk": 0.5}
    assert sc.consumers.growth_per_year == 0.1
    assert [
        (b.share, b.value_usd_per_mtok) for b in sc.consumers.willingness_to_pay["bulk"]
    ] == [(0.5, 5.0), (0.3, 1.0)]
    assert sc.consumers.deferrable_window_h == {"bulk": 6}


def _set(path: tuple, value):
    """A change to the base: set the value at a path of keys and indices."""

    def change(data):
        *parents, last = path
        for key in parents:
            data = data[key]
        data[last] = value

    return change


def _drop(path: tuple):
    def change(data):
        *parents, last = path
        for key in parents:
            data = data[key]
        del data[last]

    return change


ELEC = ("electricity", "A")
WTP = ("consumers", "willingness_to_pay", "bulk")


@pytest.mark.parametrize(
    ("change", "field", "words"),
    [
        pytest.param(
            _set(("electricity", "ZZ"), {"mean_usd_per_kwh": 0.1}),
            "electricity.ZZ",
            ("unknown", "'ZZ'"),
            id="unknown-node",
        ),
        pytest.param(
            _drop((*ELEC, "mean_usd_per_kwh")),
            "electricity.A.mean_usd_per_kwh",
            ("required", "missing"),
            id="missing-mean",
        ),
        pytest.param(
            _set((*ELEC, "mean_usd_per_kwh"), 0),
            "electricity.A.mean_usd_per_kwh",
            ("> 0", "0"),
            id="zero-mean",
        ),
        pytest.param(
            _set((*ELEC, "daily_swing"), 1),
            "electricity.A.daily_swing",
            ("< 1", "1"),
            id="daily-swing-1",
        ),
        pytest.param(
            _set((*ELEC, "solar_dip"), 1.5),
            "electricity.A.solar_dip",
            ("< 1", "1.5"),
            id="solar-dip-1.5",
        ),
        pytest.param(
            _set((*ELEC, "seasonal_swing"), 1.0),
            "electricity.A.seasonal_swing",
            ("< 1", "1.0"),
            id="seasonal-swing-1",
        ),
        pytest.param(
            _set((*ELEC, "daily_swing"), -0.1),
            "electricity.A.daily_swing",
            (">= 0", "-0.1"),
            id="negative-daily-swing",
        ),
        pytest.param(
            _set((*ELEC, "seasonal_swing"), -0.2),
            "electricity.A.seasonal_swing",
            (">= 0", "-0.2"),
            id="negative-seasonal-swing",
        ),
        pytest.param(
            _set((*ELEC, "daily_peak_hour_local"), 24),
            "electricity.A.daily_peak_hour_local",
            ("[0, 24)", "24"),
            id="peak-hour-24",
        ),
        pytest.param(
            _set((*ELEC, "seasonal_peak_day"), 0),
            "electricity.A.seasonal_peak_day",
            ("[1, 366]", "0"),
            id="peak-day-0",
        ),
        pytest.param(
            _set((*ELEC, "peak_hour"), 18),
            "electricity.A.peak_hour",
            ("unknown field",),
            id="unknown-electricity-field",
        ),
        pytest.param(
            _drop(("asset_types", "g", "power_kw_per_gpu")),
            "asset_types.g.power_kw_per_gpu",
            ("required", "pool", "A"),
            id="no-power",
        ),
        pytest.param(
            # 1 kW x 0.1 USD/kWh = 0.1 USD/GPU-h of electricity alone.
            _set(("assets", 0, "cost_usd_per_gpu_hour"), 0.09),
            "assets[0].cost_usd_per_gpu_hour",
            ("0.09", "less than", "0.1"),
            id="cost-below-energy",
        ),
        pytest.param(
            _set(("consumers", "weekend_factor", "video"), 0.5),
            "consumers.weekend_factor.video",
            ("unknown", "'video'"),
            id="weekend-unknown-workload",
        ),
        pytest.param(
            _set(("consumers", "weekend_factor", "bulk"), -0.5),
            "consumers.weekend_factor.bulk",
            (">= 0", "-0.5"),
            id="negative-weekend-factor",
        ),
        pytest.param(
            _set(
                ("consumers", "willingness_to_pay", "video"),
                [{"share": 0.5, "value_usd_per_mtok": 1.0}],
            ),
            "consumers.willingness_to_pay.video",
            ("unknown", "'video'"),
            id="willingness-unknown-workload",
        ),
        pytest.param(
            _set(("consumers", "deferrable", "video"), {"window_h": 3}),
            "consumers.deferrable.video",
            ("unknown", "'video'"),
            id="deferrable-unknown-workload",
        ),
        pytest.param(
            # 0.5 + 0.3 + 0.3 = 1.1 > 1
            _set(
                WTP,
                [
                    {"share": 0.5, "value_usd_per_mtok": 5.0},
                    {"share": 0.3, "value_usd_per_mtok": 1.0},
                    {"share": 0.3, "value_usd_per_mtok": 0.5},
                ],
            ),
            "consumers.willingness_to_pay.bulk",
            ("1.1", "must not exceed 1"),
            id="shares-above-1",
        ),
        pytest.param(
            _set((*WTP, 0, "share"), 0),
            "consumers.willingness_to_pay.bulk[0].share",
            ("(0, 1]", "0"),
            id="share-0",
        ),
        pytest.param(
            _set(WTP, []),
            "consumers.willingness_to_pay.bulk",
            ("at least one block",),
            id="empty-curve",
        ),
        pytest.param(
            _set((*WTP, 1, "value_usd_per_mtok"), -1.0),
            "consumers.willingness_to_pay.bulk[1].value_usd_per_mtok",
            (">= 0", "-1.0"),
            id="negative-value",
        ),
        pytest.param(
            _set(("consumers", "deferrable", "bulk", "window_h"), 0),
            "consumers.deferrable.bulk.window_h",
            ("whole number", "0"),
            id="window-0",
        ),
        pytest.param(
            _set(("consumers", "deferrable", "bulk", "window_h"), 1.5),
            "consumers.deferrable.bulk.window_h",
            ("whole number", "1.5"),
            id="window-1.5",
        ),
        pytest.param(
            _set(("consumers", "growth_per_year"), -1),
            "consumers.growth_per_year",
            ("> -1", "-1"),
            id="growth-minus-1",
        ),
        pytest.param(
            _set(("electricity", "A", "solar_dip"), 0.8),
            "electricity.A.solar_dip",
            ("daily_swing + solar_dip", "< 1"),
            id="swing-plus-dip-reaches-1",
        ),
        pytest.param(
            _set(("consumers", "holiday_factor"), {"bulk": 0.5}),
            "consumers.holiday_factor",
            ("unknown field",),
            id="unknown-consumers-field",
        ),
    ],
)
def test_bad_behaviour_input_names_the_field_and_reason(change, field, words):
    data = _behaviour_base()
    change(data)
    _refused(data, field, *words)


def test_asset_cost_equal_to_its_energy_at_the_mean_price_is_accepted():
    # 2 kW x 0.5 USD/kWh = 1.0 USD/GPU-h: the cost may equal it, not fall below.
    data = _behaviour_base()
    data["asset_types"]["g"]["power_kw_per_gpu"] = 2.0
    data["electricity"]["A"]["mean_usd_per_kwh"] = 0.5
    data["assets"][0]["cost_usd_per_gpu_hour"] = 1.0
    assert scenario_from_dict(data).assets[0].cost_usd_per_gpu_hour == 1.0
    data["assets"][0]["cost_usd_per_gpu_hour"] = 0.99
    _refused(data, "assets[0].cost_usd_per_gpu_hour", "less than")


def test_us5_prices_electricity_at_every_node_and_defers_batch_for_a_day():
    sc = load_scenario("us5")
    assert sorted(sc.electricity) == ["CA", "IL", "OR", "TX", "VA"]
    assert len(sc.electricity) == 5
    assert sc.consumers.deferrable_window_h == {"batch": 24}


# ---------------------------------------------------------------- electricity


def _swing(**fields) -> ElectricityPrice:
    # Mean 0.1 USD/kWh, +-20% over the day, peak at 18:00 local.
    return ElectricityPrice(
        mean_usd_per_kwh=0.1, daily_swing=0.2, daily_peak_hour_local=18.0, **fields
    )


def test_price_peaks_at_mean_times_one_plus_swing_and_troughs_opposite():
    price = _swing()
    assert price_usd_per_kwh(price, datetime(2026, 3, 2, 18)) == pytest.approx(
        0.12, rel=1e-12
    )
    # The trough is twelve hours from the peak.
    assert price_usd_per_kwh(price, datetime(2026, 3, 2, 6)) == pytest.approx(
        0.08, rel=1e-12
    )
    # 15:00 is three hours (45 deg) before the peak: 1 + 0.2 cos(-45 deg).
    assert price_usd_per_kwh(price, datetime(2026, 3, 2, 15)) == pytest.approx(
        0.1 * (1 + 0.2 * math.sqrt(0.5)), rel=1e-12
    )


def test_hourly_prices_average_to_the_mean():
    price = _swing()
    hourly = [price_usd_per_kwh(price, datetime(2026, 3, 2, h)) for h in range(24)]
    assert sum(hourly) / 24 == pytest.approx(0.1, rel=1e-12)


def test_seasonal_factor_is_one_plus_swing_on_the_peak_day_and_opposite_later():
    price = ElectricityPrice(mean_usd_per_kwh=0.1, seasonal_swing=0.2)
    # Day 200 of 2026 is 19 July (31+28+31+30+31+30+19).
    assert price_usd_per_kwh(price, datetime(2026, 7, 19, 9)) == pytest.approx(
        0.12, rel=1e-12
    )
    # Half a year (182.625 days) after 19 July 00:00 is 17 January 2027 15:00:
    # cos(2 pi (17 - 200) / 365.25) = -0.99998, so the factor is 0.8 + 4e-6.
    assert price_usd_per_kwh(price, datetime(2027, 1, 17, 15)) == pytest.approx(
        0.08, rel=1e-4
    )


def test_solar_dip_keeps_the_daily_mean_and_lowers_noon():
    price = _swing(solar_dip=0.3)
    quarters = [
        price_usd_per_kwh(price, datetime(2026, 3, 2, q // 4, 15 * (q % 4)))
        for q in range(96)
    ]
    assert sum(quarters) / 96 == pytest.approx(0.1, rel=1e-12)
    # Without the dip noon is six hours before the peak: cos(-90 deg) = 0, so
    # exactly the mean. With it the raw shape at noon is
    # 1 - 0.3 exp(-0.5 (1/3)^2) = 0.71621, and the bell's daily mean is
    # 3 sqrt(2 pi) / 24 = 0.31333, so the shape is scaled by 1 / (1 - 0.094).
    noon = price_usd_per_kwh(price, datetime(2026, 3, 2, 12))
    assert noon < price_usd_per_kwh(_swing(), datetime(2026, 3, 2, 12))
    expected = 0.1 * (1 - 0.3 * math.exp(-1 / 18)) / (1 - 0.3 * 0.31333)
    assert noon == pytest.approx(expected, rel=1e-3)


def _cost_scenario():
    # A: 2000 GPUs of 2.5 kW at 2.0, UTC-5, priced at 0.1 USD/kWh +-20% with
    # the peak at 18:00 local; B: an unpriced pool of the same GPUs at 3.0.
    data = _market(utc_offset_h=-5)
    data["asset_types"]["g"]["power_kw_per_gpu"] = 2.5
    data["nodes"]["B"] = {"name": "B", "lat": 0, "lon": 1, "utc_offset_h": 0}
    data["assets"].append(
        {
            "id": "unpriced",
            "node": "B",
            "type": "g",
            "gpus": 100,
            "cost_usd_per_gpu_hour": 3.0,
            "owner": "p2",
        }
    )
    data["electricity"] = {
        "A": {"mean_usd_per_kwh": 0.1, "daily_swing": 0.2, "daily_peak_hour_local": 18}
    }
    return scenario_from_dict(data)


@pytest.mark.parametrize(
    ("hour_utc", "cost_at_a"),
    [
        # 18:00 local at UTC-5 is 23:00 UTC: 2.0 + 2.5 kW x 0.1 USD/kWh x 0.2.
        (23, 2.05),
        # 06:00 local is 11:00 UTC: the trough, 2.0 - 0.05.
        (11, 1.95),
        # 18:00 UTC is 13:00 local: 2.0 + 0.05 cos(-75 deg), and
        # cos(75 deg) = (sqrt(6) - sqrt(2)) / 4.
        (18, 2.0 + 0.05 * (math.sqrt(6) - math.sqrt(2)) / 4),
    ],
)
def test_cost_model_moves_priced_assets_by_power_times_departure(hour_utc, cost_at_a):
    costs = CostModel(_cost_scenario()).costs(
        datetime(2026, 3, 2, hour_utc, tzinfo=UTC)
    )
    assert costs[0] == pytest.approx(cost_at_a, rel=1e-12)
    assert costs[1] == 3.0


# ---------------------------------------------------------------- consumers


def _two_time_zones() -> dict:
    # A on UTC, B on UTC-5, each with its own pool and 1e6 tokens/s of demand;
    # weekend demand is half the weekday demand.
    data = _market()
    data["nodes"]["B"] = {"name": "B", "lat": 0, "lon": 1, "utc_offset_h": -5}
    data["assets"].append({**data["assets"][0], "id": "pool-b", "node": "B"})
    data["demand"].append({"node": "B", "workload": "bulk", "tokens_per_s": 1e6})
    data["consumers"] = {"weekend_factor": {"bulk": 0.5}}
    return data


def test_weekend_factor_starts_at_local_saturday_midnight():
    # Step 1 is Friday 23:00 UTC; step 2 Saturday 00:00 UTC, still Friday
    # 19:00 at B; step 7 Saturday 05:00 UTC, B's Saturday midnight.
    prices = _prices(_run(_two_time_zones(), 7, start="2026-01-09T23:00"))
    demand = {key: value[0] for key, value in prices.items()}
    assert demand[1, "A"] == pytest.approx(1e6, rel=REL)
    assert demand[2, "A"] == pytest.approx(0.5e6, rel=REL)
    assert demand[6, "B"] == pytest.approx(1e6, rel=REL)
    assert demand[7, "B"] == pytest.approx(0.5e6, rel=REL)


def test_weekend_factor_ends_at_local_monday_midnight():
    # Step 1 is Sunday 23:00 UTC, step 2 Monday 00:00 UTC (Sunday 19:00 at B).
    prices = _prices(_run(_two_time_zones(), 2, start="2026-01-11T23:00"))
    demand = {key: value[0] for key, value in prices.items()}
    assert demand[1, "A"] == pytest.approx(0.5e6, rel=REL)
    assert demand[2, "A"] == pytest.approx(1e6, rel=REL)
    assert demand[2, "B"] == pytest.approx(0.5e6, rel=REL)


@pytest.mark.parametrize(
    ("step_hours", "years", "factor"),
    [
        # 4383 h = 182.625 days = half of 365.25: demand x 2 ** 0.5.
        (4383.0, 0.5, 2**0.5),
        (8766.0, 1.0, 2.0),
    ],
)
def test_growth_compounds_over_the_years_since_the_start(step_hours, years, factor):
    data = _with(_market(1e6), consumers={"growth_per_year": 1.0})
    # 2000 GPUs serve 2e6 tokens/s: room for the doubled demand.
    model = _run(data, 2, step_hours=step_hours)
    assert model.years_elapsed == pytest.approx(years, rel=1e-12)
    demand = {key: value[0] for key, value in _prices(model).items()}
    assert demand[1, "A"] == pytest.approx(1e6, rel=REL)
    assert demand[2, "A"] == pytest.approx(1e6 * factor, rel=REL)


def _elastic(**consumers) -> dict:
    # Half of the demand is worth 5.0 USD/Mtok, 30% 0.3; 20% stays hard.
    curve = [
        {"share": 0.5, "value_usd_per_mtok": 5.0},
        {"share": 0.3, "value_usd_per_mtok": 0.3},
    ]
    return _with(
        _market(1e6), consumers={"willingness_to_pay": {"bulk": curve}, **consumers}
    )


def test_willingness_to_pay_bids_shares_and_keeps_the_rest_hard():
    (bid,) = _consumer(_model(_elastic())).submit_bids(MONDAY_NOON, 0.0, 0.0)
    assert bid.tokens_per_s == pytest.approx(0.2e6, rel=REL)
    assert [(b.tokens_per_s, b.value_usd_per_mtok) for b in bid.bids] == [
        pytest.approx((0.5e6, 5.0), rel=REL),
        pytest.approx((0.3e6, 0.3), rel=REL),
    ]


def test_block_valued_below_the_price_is_not_served():
    # The pool (2000 GPUs at 2.0) has room for all 1e6 tokens/s, so it is
    # marginal: LMP = 2.0 / 3.6 = 0.5556 USD/Mtok. The block at 5.0 is served,
    # the one at 0.3 is not: 0.2e6 hard + 0.5e6 served.
    model = _run(_elastic(), 1)
    table = run_tables(model)["prices"].iloc[0]
    assert table["lmp_usd_per_mtok"] == pytest.approx(usd_per_mtok(2.0), rel=REL)
    assert table["lmp_usd_per_mtok"] == pytest.approx(0.5555556, rel=1e-6)
    assert table["demand_tokens_per_s"] == pytest.approx(1e6, rel=REL)
    assert table["served_tokens_per_s"] == pytest.approx(0.7e6, rel=REL)


def test_inelastic_consumers_bid_all_demand_as_hard():
    model = _model(_elastic(), elastic=False)
    (bid,) = _consumer(model).submit_bids(MONDAY_NOON, 0.0, 0.0)
    assert bid == Demand("A", "bulk", 1e6, ())
    model.step()
    _, served = _prices(model)[1, "A"]
    assert served == pytest.approx(1e6, rel=REL)


# ---------------------------------------------------------------- deferrable


def _deferrable(window_h: int, demand_tokens_per_s: float = 1e5) -> dict:
    # All of bulk may wait window_h hours; it is worth 10 USD/Mtok.
    return _with(
        _market(demand_tokens_per_s),
        consumers={
            "willingness_to_pay": {"bulk": [{"share": 1.0, "value_usd_per_mtok": 10}]},
            "deferrable": {"bulk": {"window_h": window_h}},
        },
    )


def _swinging_electricity(data: dict) -> dict:
    # 1 kW GPUs, 0.5 USD/kWh +-50% peaking at 18:00: the pool's cost is
    # 2.0 + 0.25 cos(2 pi (h - 18) / 24), rising from 06:00 to 18:00 local
    # and falling from 18:00 to 06:00.
    electricity = {
        "A": {"mean_usd_per_kwh": 0.5, "daily_swing": 0.5, "daily_peak_hour_local": 18}
    }
    return _with(data, electricity=electricity)


def _served_by_step(model: TokenFlowModel) -> list[float]:
    prices = _prices(model)
    return [prices[step, "A"][1] for step in range(1, model.steps + 1)]


def test_deferred_work_waits_until_its_last_step_while_prices_rise():
    # From 08:00 the price rises every hour, so it always exceeds the mean of
    # the prices before it and waiting work is not served. Step 1 has no
    # history and bids at the top value. Work arriving at step 2 with a
    # 4-hour window must run by step 2 + 4 - 1 = 5, and runs there.
    data = _swinging_electricity(_deferrable(4))
    model = _run(data, 6, start="2026-01-05T08:00")
    served = _served_by_step(model)
    assert served == pytest.approx([1e5, 0, 0, 0, 1e5, 1e5], abs=1e-3)
    # Arrivals of steps 4, 5 and 6 wait; nothing lapsed.
    assert _consumer(model).backlog_tokens_per_s == pytest.approx(3e5, rel=REL)
    assert _consumer(model).lapsed_tokens_per_s == 0.0


def test_deferred_work_runs_at_once_while_prices_fall():
    # From 19:00 the price falls every hour: below the recent mean, so the
    # waiting bid (at that mean) is accepted as soon as the work arrives.
    data = _swinging_electricity(_deferrable(4))
    model = _run(data, 4, start="2026-01-05T19:00")
    assert _served_by_step(model) == pytest.approx([1e5] * 4, rel=REL)
    assert _consumer(model).backlog_tokens_per_s == pytest.approx(0.0, abs=1e-6)


def test_deferred_work_not_served_by_its_deadline_lapses():
    # Nothing is offered, so nothing is served. With a 3-hour window the work
    # of step 1 lapses at the end of step 3, that of step 2 at step 4, ...
    model = _run(_deferrable(3), 5, strategy=Withholding(share=0.0))
    frame = model.datacollector.get_model_vars_dataframe()
    lapsed = frame["deferred_lapsed_tokens_per_s"].tolist()
    backlog = frame["deferred_backlog_tokens_per_s"].tolist()
    assert lapsed == pytest.approx([0, 0, 1e5, 1e5, 1e5], abs=1e-6)
    assert backlog == pytest.approx([1e5, 2e5, 2e5, 2e5, 2e5], rel=REL)


def test_scenario_bids_of_a_deferrable_workload_leave_its_backlog_alone():
    # 1e5 tokens/s of deferrable bulk (3-hour window) plus the scenario's own
    # bid of 2e5 at 50 USD/Mtok; prices rise from 08:00, so deferred work
    # waits for its deadline (2 steps after arrival) while the bid is served
    # every step. Every token of deferred work that arrived is served, lapsed
    # or still waiting.
    data = _swinging_electricity(_deferrable(3))
    data["demand"][0]["bids"] = [{"tokens_per_s": 2e5, "value_usd_per_mtok": 50}]
    model = _run(data, 5, start="2026-01-05T08:00")
    served = _served_by_step(model)
    frame = model.datacollector.get_model_vars_dataframe()
    lapsed = float(frame["deferred_lapsed_tokens_per_s"].sum())
    deferred_served = sum(served) - 5 * 2e5
    waiting = _consumer(model).backlog_tokens_per_s
    assert deferred_served + lapsed + waiting == pytest.approx(5e5, rel=REL)
    assert served[3:] == pytest.approx([3e5, 3e5], rel=REL)


def _drive(consumer: ConsumerAgent, step: int, lmp: float, served: float):
    """One step of a consumer by hand: bid, then observe the given outcome.

    The consumer reads the step from its model's Mesa step counter.
    """
    consumer.model.steps = step
    (bid,) = consumer.submit_bids(MONDAY_NOON, 0.0, 0.0)
    consumer.observe(np.array([[lmp]]), np.array([[served]]))
    return bid


def test_backlog_is_served_earliest_deadline_first():
    # Window 2: work of step 1 must run by step 2, work of step 2 by step 3.
    # Step 1 serves nothing; step 2 serves one step's worth, which goes to the
    # work of step 1 (due now), so nothing lapses at step 2 and the work of
    # step 2 lapses at step 3 when again nothing is served.
    consumer = _consumer(_model(_deferrable(2)))
    _drive(consumer, 1, lmp=1.0, served=0.0)
    assert consumer.backlog_tokens_per_s == pytest.approx(1e5, rel=REL)
    _drive(consumer, 2, lmp=1.0, served=1e5)
    assert consumer.lapsed_tokens_per_s == 0.0
    assert consumer.backlog_tokens_per_s == pytest.approx(1e5, rel=REL)
    _drive(consumer, 3, lmp=1.0, served=0.0)
    assert consumer.lapsed_tokens_per_s == pytest.approx(1e5, rel=REL)
    assert consumer.backlog_tokens_per_s == pytest.approx(1e5, rel=REL)


def test_waiting_work_is_bid_at_the_mean_price_of_the_last_window():
    # Window 2: after prices 9, 1 and 3, the waiting bid is at (1 + 3) / 2.
    # Everything is served each step, so only the new arrival waits.
    consumer = _consumer(_model(_deferrable(2)))
    for step, lmp in enumerate([9.0, 1.0, 3.0], start=1):
        _drive(consumer, step, lmp=lmp, served=1e5)
    bid = _drive(consumer, 4, lmp=1.0, served=1e5)
    assert bid.tokens_per_s == 0.0
    assert bid.bids == (BidBlock(0.0, 10.0), BidBlock(pytest.approx(1e5), 2.0))


def test_waiting_bid_never_exceeds_the_top_willingness_to_pay():
    # Recent prices average 35 USD/Mtok, above the 10 the work is worth.
    consumer = _consumer(_model(_deferrable(2)))
    for step, lmp in enumerate([30.0, 40.0], start=1):
        _drive(consumer, step, lmp=lmp, served=1e5)
    bid = _drive(consumer, 3, lmp=1.0, served=1e5)
    assert bid.bids[-1].value_usd_per_mtok == 10.0


# ---------------------------------------------------------------- ledger


def _network() -> dict:
    # Two nodes in different time zones, a thin link with a transfer charge,
    # priced electricity at A, scenario bids, a shed penalty and elastic chat
    # and bulk demand.
    return {
        "name": "two",
        "bandwidth_model": "transfer",
        "token_equivalent_bits": 400,
        "nodes": {
            "A": {"name": "A", "lat": 0, "lon": 0, "utc_offset_h": 0},
            "B": {"name": "B", "lat": 0, "lon": 1, "utc_offset_h": -5},
        },
        "asset_types": {
            "g": {
                "tokens_per_s_per_gpu": {"chat": 1000, "bulk": 2000},
                "power_kw_per_gpu": 1.0,
            }
        },
        "assets": [
            {
                "id": "a",
                "node": "A",
                "type": "g",
                "gpus": 3000,
                "cost_usd_per_gpu_hour": 2.0,
                "owner": "p1",
            },
            {
                "id": "b",
                "node": "B",
                "type": "g",
                "gpus": 500,
                "cost_usd_per_gpu_hour": 3.0,
                "owner": "p2",
            },
        ],
        "links": [
            {
                "a": "A",
                "b": "B",
                "capacity_gbps": 0.1,
                "latency_ms": 10,
                "transfer_usd_per_gb": 0.01,
            }
        ],
        "workloads": {
            "chat": {"latency_limit_ms": 100, "bits_per_token": 100},
            "bulk": {"latency_limit_ms": 100, "bits_per_token": 400, "profile": "flat"},
        },
        "demand": [
            {"node": "A", "workload": "chat", "tokens_per_s": 1e6},
            {"node": "B", "workload": "chat", "tokens_per_s": 1.5e6},
            {
                "node": "B",
                "workload": "bulk",
                "tokens_per_s": 1e6,
                "bids": [{"tokens_per_s": 2e5, "value_usd_per_mtok": 0.9}],
            },
        ],
        "shed_penalty_usd_per_mtok": 20.0,
        "electricity": {"A": {"mean_usd_per_kwh": 0.1, "daily_swing": 0.3}},
        "consumers": {
            "willingness_to_pay": {
                "chat": [
                    {"share": 0.5, "value_usd_per_mtok": 3.0},
                    {"share": 0.3, "value_usd_per_mtok": 0.8},
                ],
                "bulk": [
                    {"share": 0.6, "value_usd_per_mtok": 1.2},
                    {"share": 0.2, "value_usd_per_mtok": 0.5},
                ],
            }
        },
    }


@pytest.fixture(scope="module")
def ledger_steps() -> list[tuple]:
    """(ledger, clearing result, consumers' served value) of each of 8 steps."""
    model = TokenFlowModel(
        scenario_from_dict(_network()),
        seed=3,
        noise_sigma=0.2,
        strategy=Markup(markup=0.3, blocks=3),
        start="2026-01-09T20:00",
    )
    steps = []
    for _ in range(8):
        model.step()
        valued = sum(c.served_value_usd for c in model.agents_by_type[ConsumerAgent])
        steps.append((model.ledger, model.last_result, valued))
    return steps


def test_ledger_steps_clear_and_carry_money(ledger_steps):
    # The identities below are only worth checking on cleared, congested steps.
    assert all(result.status == "optimal" for _, result, _ in ledger_steps)
    assert any(ledger.congestion_rents_usd > 1.0 for ledger, _, _ in ledger_steps)
    assert all(ledger.transfer_charges_usd > 0 for ledger, _, _ in ledger_steps)


def test_merchandising_surplus_equals_congestion_rents(ledger_steps):
    for ledger, _, _ in ledger_steps:
        scale = REL * ledger.consumer_payments_usd
        surplus = (
            ledger.consumer_payments_usd
            - ledger.provider_revenues_usd
            - ledger.transfer_charges_usd
        )
        assert ledger.merchandising_surplus_usd == pytest.approx(surplus, abs=scale)
        assert surplus == pytest.approx(ledger.congestion_rents_usd, abs=scale)


def test_welfare_is_the_sum_of_surpluses_and_profits(ledger_steps):
    for ledger, _, _ in ledger_steps:
        profits = ledger.provider_revenues_usd - ledger.provider_costs_usd
        parts = ledger.consumer_surplus_usd + profits + ledger.merchandising_surplus_usd
        assert ledger.welfare_usd == pytest.approx(parts, rel=REL)


def test_consumers_value_what_was_served_as_the_clearing_states(ledger_steps):
    # One-hour steps: the clearing's USD per hour is USD over the step.
    for ledger, result, valued in ledger_steps:
        assert valued == pytest.approx(result.served_value_usd_per_h, rel=REL)
        payments = ledger.consumer_payments_usd
        assert ledger.consumer_surplus_usd == pytest.approx(valued - payments, rel=REL)
