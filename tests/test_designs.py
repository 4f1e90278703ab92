"""Market designs against hand-solved markets and their defining properties."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from builders import one_node_market

from markets.designs import (
    DesignClearing,
    DesignError,
    MarketDesign,
    price_dispersion,
    zonal_scenario,
)
from scenarios import ScenarioError, load_scenario, scenario_from_dict

REL = 1e-6


def per_mtok(usd_per_gpu_hour: float, tokens_per_s_per_gpu: float = 1000) -> float:
    return usd_per_gpu_hour / (tokens_per_s_per_gpu * 3600) * 1e6


def _clear(scenario, design: MarketDesign):
    return DesignClearing(scenario, design).solve()


# -- two-node: A cheap (2,000 GPUs at 2.0), B dear (1,000 at 3.0), B demands
# 1.5e6 tokens/s, the link carries 1e6 tokens/s.


def test_uniform_price_ignores_the_link_and_pays_for_redispatch():
    result = _clear(load_scenario("two-node"), MarketDesign("uniform"))
    # One national market: A's GPUs serve all 1.5e6 at A's cost.
    assert result.lmp_grid[0] == pytest.approx([per_mtok(2.0)] * 2, rel=REL)
    # The link carries only 1e6: B's own GPUs run 500 instead of A's.
    assert result.gpus_used == pytest.approx([1000.0, 500.0], rel=REL)
    assert result.link_flow_gbps == pytest.approx([0.1], rel=REL)
    # Redispatch: B up 500 at 3.0, A down 500 at 2.0.
    assert result.redispatch_cost_usd_per_h == pytest.approx(500.0, rel=1e-4)
    s = result.settlement
    assert s.consumer_payments_usd_per_h == pytest.approx(3000.0, rel=1e-4)
    # Market 1500 GPUs x 2.0 + redispatch payments (+1500 to B, -1000 from A).
    assert s.provider_revenues_usd_per_h == pytest.approx(3500.0, rel=1e-4)
    assert s.congestion_rents_usd_per_h == pytest.approx(0.0, abs=1e-6)
    assert s.merchandising_surplus_usd_per_h == pytest.approx(-500.0, rel=1e-4)
    assert result.total_cost_usd_per_h == pytest.approx(3500.0, rel=1e-4)


def test_zonal_with_a_zone_per_node_equals_nodal():
    scenario = dataclasses.replace(
        load_scenario("two-node"), zones={"A": "a", "B": "b"}
    )
    nodal = _clear(scenario, MarketDesign("nodal"))
    zonal = _clear(scenario, MarketDesign("zonal"))
    assert zonal.lmp_grid == pytest.approx(nodal.lmp_grid, rel=REL)
    assert zonal.gpus_used == pytest.approx(nodal.gpus_used, rel=REL)
    assert zonal.link_price_usd_per_gbps_h == pytest.approx([10_000.0], rel=1e-4)
    assert zonal.redispatch_cost_usd_per_h == pytest.approx(0.0, abs=1e-3)
    assert zonal.settlement.congestion_rents_usd_per_h == pytest.approx(
        1000.0, rel=1e-4
    )


def test_zonal_design_needs_zones():
    with pytest.raises(DesignError, match="no zones"):
        DesignClearing(load_scenario("two-node"), MarketDesign("zonal"))


# -- one node, cheap pool 1,000 GPUs at 2.0 (owner p1), dear 1,000 at 3.0
# (owner p2), hard demand 1.5e6 tokens/s: the dear pool is marginal.


def _one_node():
    return one_node_market(
        [("cheap", 1000, 2.0, "p1"), ("dear", 1000, 3.0, "p2")], 1.5e6
    )


def test_pay_as_clear_pays_every_gpu_the_marginal_price():
    result = _clear(_one_node(), MarketDesign())
    # 1000 GPUs at 2 and 500 at 3 run; both are paid 3.0.
    assert result.asset_revenue_usd_per_h == pytest.approx([3000.0, 1500.0], rel=1e-4)


def test_pay_as_bid_pays_offers_and_the_operator_keeps_the_rest():
    result = _clear(_one_node(), MarketDesign(settlement="pay-as-bid"))
    assert result.lmp_grid[0, 0] == pytest.approx(per_mtok(3.0), rel=REL)
    assert result.asset_revenue_usd_per_h == pytest.approx([2000.0, 1500.0], rel=1e-4)
    s = result.settlement
    assert s.consumer_payments_usd_per_h == pytest.approx(4500.0, rel=1e-4)
    assert s.merchandising_surplus_usd_per_h == pytest.approx(1000.0, rel=1e-3)


def test_a_price_cap_limits_offers_and_so_the_price():
    result = _clear(_one_node(), MarketDesign(price_cap_usd_per_gpu_hour=2.5))
    assert result.lmp_grid[0, 0] == pytest.approx(per_mtok(2.5), rel=REL)
    assert result.settlement.consumer_payments_usd_per_h == pytest.approx(
        3750.0, rel=1e-4
    )


def test_bad_designs_are_refused():
    for kwargs in (
        {"design": "regional"},
        {"settlement": "pay-as-you-go"},
        {"price_cap_usd_per_gpu_hour": -1.0},
        {"price_cap_usd_per_gpu_hour": float("nan")},
    ):
        with pytest.raises(DesignError):
            MarketDesign(**kwargs)


# -- us5: no link is congested, so no design changes a price.


@pytest.fixture(scope="module")
def us5_zoned():
    zones = {"VA": "east", "IL": "east", "TX": "central", "OR": "west", "CA": "west"}
    return dataclasses.replace(load_scenario("us5"), zones=zones)


@pytest.mark.parametrize("design", ["zonal", "uniform"])
def test_without_congestion_every_design_gives_the_nodal_prices(us5_zoned, design):
    nodal = _clear(us5_zoned, MarketDesign("nodal"))
    other = _clear(us5_zoned, MarketDesign(design))
    assert other.lmp_grid == pytest.approx(nodal.lmp_grid, rel=1e-5)
    # Redispatch moves nothing of value (up to the LP's tie-break offsets).
    scale = nodal.total_cost_usd_per_h
    assert abs(other.redispatch_cost_usd_per_h) < 1e-5 * scale
    assert other.unserved_total_tokens_per_s == 0.0


@pytest.mark.parametrize("scale", [0.5, 1.0, 1.3])
@pytest.mark.parametrize("design", ["zonal", "uniform"])
def test_redispatch_cost_is_never_negative(us5_zoned, design, scale):
    from scenarios import with_overrides

    # Tight links make the zonal schedules undeliverable as cleared.
    narrow = dataclasses.replace(
        us5_zoned,
        links=tuple(
            dataclasses.replace(link, capacity_gbps=link.capacity_gbps / 20)
            for link in us5_zoned.links
        ),
    )
    scenario = with_overrides(narrow, demand_scale=scale)
    result = _clear(scenario, MarketDesign(design))
    assert result.status == "optimal"
    tie_tolerance = 1e-5 * abs(result.market.total_cost_usd_per_h)
    assert result.redispatch_cost_usd_per_h >= -tie_tolerance
    # Revenue adequacy under redispatch: the operator's surplus is the rents
    # less the redispatch cost.
    s = result.settlement
    assert s.merchandising_surplus_usd_per_h == pytest.approx(
        s.congestion_rents_usd_per_h - result.redispatch_cost_usd_per_h,
        abs=1e-4 * s.consumer_payments_usd_per_h,
    )


def test_zonal_scenario_pools_links_between_zones(us5_zoned):
    merged, to_pool = zonal_scenario(us5_zoned, us5_zoned.zones)
    assert list(merged.nodes) == ["east", "central", "west"]
    capacity = {link.id: link.capacity_gbps for link in merged.links}
    # east-central: VA-TX 40 + IL-TX 20; east-west: IL-OR 10 + IL-CA 20;
    # central-west: TX-CA 20. VA-IL and OR-CA lie inside a zone.
    assert capacity == {"east-central": 60, "east-west": 30, "central-west": 20}
    inside = [
        link.id for link, p in zip(us5_zoned.links, to_pool, strict=True) if p is None
    ]
    assert inside == ["VA-IL", "OR-CA"]


def test_price_dispersion_is_zero_for_equal_prices_and_grows_with_spread():
    assert price_dispersion(np.array([[1.0, 1.0, 1.0]])) == 0.0
    assert price_dispersion(np.array([[1.0, 3.0]])) == pytest.approx(0.5)


def test_zones_section_is_validated():
    data = {
        "name": "z",
        "bandwidth_model": "transfer",
        "token_equivalent_bits": 400,
        "nodes": {"A": {"lat": 0, "lon": 0}, "B": {"lat": 0, "lon": 1}},
        "asset_types": {"g": {"tokens_per_s_per_gpu": {"w": 1}}},
        "assets": [
            {
                "node": "A",
                "type": "g",
                "gpus": 1,
                "cost_usd_per_gpu_hour": 1,
                "owner": "o",
            }
        ],
        "workloads": {"w": {"latency_limit_ms": 1, "bits_per_token": 1}},
    }
    for zones, field in (({"A": "x"}, "zones.B"), ({"A": "x", "C": "y"}, "zones.C")):
        with pytest.raises(ScenarioError) as info:
            scenario_from_dict({**data, "zones": zones})
        assert info.value.field == field
    ok = scenario_from_dict({**data, "zones": {"A": "x", "B": "x"}})
    assert ok.zones == {"A": "x", "B": "x"}


def test_zone_allocation_serves_hard_first_then_bids_by_value():
    from markets.designs import _split
    from scenarios.schema import BidBlock, Demand

    entries = [
        Demand("A", "w", 100.0, (BidBlock(50.0, 5.0), BidBlock(40.0, 1.0))),
        Demand("B", "w", 0.0, (BidBlock(60.0, 1.0 + 1e-9), BidBlock(30.0, 9.0))),
    ]
    # 100 hard + 30 (value 9) + 50 (value 5) = 180; the last 20 go to the two
    # blocks worth ~1.0 in proportion to their sizes (40 and 60).
    served = _split(200.0, entries)
    assert served == pytest.approx([100 + 50 + 8, 30 + 12])
    assert sum(_split(123.4, entries)) == pytest.approx(123.4)
    assert _split(50.0, entries) == pytest.approx([50.0, 0.0])


def test_a_simulated_uncongested_market_prices_alike_under_every_design(us5_zoned):
    from sim import run_tables, simulate

    prices = {}
    for design in ("nodal", "zonal", "uniform"):
        model = simulate(us5_zoned, 36, seed=4, design=MarketDesign(design))
        tables = run_tables(model)
        steps = tables["steps"]
        assert steps["redispatch_cost_usd"].abs().max() < 1e-3
        assert steps["unserved_tokens_per_s"].max() == 0.0
        prices[design] = tables["prices"]["lmp_usd_per_mtok"].to_numpy()
    assert prices["zonal"] == pytest.approx(prices["nodal"], rel=1e-6)
    assert prices["uniform"] == pytest.approx(prices["nodal"], rel=1e-6)


@pytest.mark.parametrize("design", ["zonal", "uniform"])
def test_undelivered_tokens_are_not_charged(us5_zoned, design):
    # Every link closed: the zonal market sells what the network cannot carry.
    closed = dataclasses.replace(
        us5_zoned,
        links=tuple(dataclasses.replace(x, capacity_gbps=0.0) for x in us5_zoned.links),
    )
    result = _clear(closed, MarketDesign(design))
    assert result.unserved_total_tokens_per_s > 0
    _, served = result.demand_grid
    delivered = float(np.nansum(result.lmp_grid * served)) * 3600 / 1e6
    s = result.settlement
    assert s.consumer_payments_usd_per_h == pytest.approx(delivered, rel=1e-9)
    assert result.undelivered_refund_usd_per_h > 0
    assert s.merchandising_surplus_usd_per_h == pytest.approx(
        s.congestion_rents_usd_per_h - result.redispatch_cost_usd_per_h,
        abs=1e-6 * s.consumer_payments_usd_per_h,
    )


def test_pay_as_bid_identity_holds_every_step_of_a_simulation(us5_zoned):
    from sim import run_tables, simulate

    design = MarketDesign("zonal", "pay-as-bid")
    steps = run_tables(simulate(us5_zoned, 12, seed=2, design=design))["steps"]
    surplus = (
        steps["congestion_rents_usd"]
        - steps["redispatch_cost_usd"]
        + steps["pay_as_bid_retained_usd"]
    )
    assert steps["pay_as_bid_retained_usd"].min() > 0
    assert np.allclose(
        steps["merchandising_surplus_usd"],
        surplus,
        atol=1e-4 * steps["consumer_payments_usd"].max(),
    )
