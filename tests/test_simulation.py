"""The agent simulation: reproducibility, profiles, settlement every step."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from agents.profiles import local_hour, multiplier
from scenarios import scenario_from_dict
from sim import run_tables, simulate, summarise

REL = 1e-6


def _scenario():
    return scenario_from_dict(
        {
            "name": "sim-two",
            "bandwidth_model": "transfer",
            "token_equivalent_bits": 400,
            "nodes": {
                "A": {"name": "A", "lat": 0, "lon": 0, "utc_offset_h": 0},
                "B": {"name": "B", "lat": 0, "lon": 1, "utc_offset_h": -6},
            },
            "asset_types": {"g": {"tokens_per_s_per_gpu": {"chat": 1000, "bulk": 500}}},
            "assets": [
                {
                    "node": "A",
                    "type": "g",
                    "gpus": 3000,
                    "cost_usd_per_gpu_hour": 2.0,
                    "owner": "p1",
                },
                {
                    "node": "B",
                    "type": "g",
                    "gpus": 3000,
                    "cost_usd_per_gpu_hour": 3.0,
                    "owner": "p2",
                },
            ],
            "links": [{"a": "A", "b": "B", "capacity_gbps": 0.1, "latency_ms": 10}],
            "workloads": {
                "chat": {"latency_limit_ms": 100, "bits_per_token": 100},
                "bulk": {
                    "latency_limit_ms": 500,
                    "bits_per_token": 50,
                    "profile": "flat",
                },
            },
            "demand": [
                {"node": "B", "workload": "chat", "tokens_per_s": 1.5e6},
                {"node": "A", "workload": "chat", "tokens_per_s": 0.5e6},
                {"node": "B", "workload": "bulk", "tokens_per_s": 0.2e6},
            ],
        }
    )


@pytest.fixture(scope="module")
def day():
    model = simulate(_scenario(), 24, seed=7)
    return model, run_tables(model)


def test_same_seed_gives_identical_tables(day):
    _, tables = day
    again = run_tables(simulate(_scenario(), 24, seed=7))
    for name, frame in tables.items():
        pd.testing.assert_frame_equal(frame, again[name], check_exact=True)


def test_different_seed_gives_different_demand(day):
    _, tables = day
    other = run_tables(simulate(_scenario(), 24, seed=8))
    mine = tables["prices"]["demand_tokens_per_s"].to_numpy()
    theirs = other["prices"]["demand_tokens_per_s"].to_numpy()
    assert (mine != theirs).any()


def test_diurnal_profile_peaks_in_the_local_afternoon():
    # Node B is at UTC-6: its 15:00 local peak is 21:00 UTC.
    assert local_hour(21, -6) == 15
    assert multiplier("diurnal", 15) == pytest.approx(1.45)
    assert multiplier("diurnal", 3) == pytest.approx(0.55)
    mean = sum(multiplier("diurnal", h) for h in range(24)) / 24
    assert mean == pytest.approx(1.0)


def test_demand_follows_local_time_without_noise():
    model = simulate(_scenario(), 24, seed=1, noise_sigma=0.0)
    prices = run_tables(model)["prices"]
    chat_b = prices[(prices["workload"] == "chat") & (prices["node"] == "B")]
    peak = chat_b.loc[chat_b["demand_tokens_per_s"].idxmax()]
    assert peak["hour_utc"] == 21
    assert peak["demand_tokens_per_s"] == pytest.approx(1.5e6 * 1.45, rel=REL)
    bulk = prices[(prices["workload"] == "bulk") & (prices["node"] == "B")]
    assert bulk["demand_tokens_per_s"].to_numpy() == pytest.approx(0.2e6, rel=REL)


def test_settlement_identity_holds_every_step(day):
    _, tables = day
    steps = tables["steps"]
    surplus = (
        steps["consumer_payments_usd"]
        - steps["provider_revenues_usd"]
        - steps["transfer_charges_usd"]
    )
    rents = steps["congestion_rents_usd"]
    scale = steps["consumer_payments_usd"].abs().max()
    assert (surplus - rents).abs().max() <= REL * scale
    assert (rents >= -REL * scale).all()


def test_provider_revenue_is_the_sum_of_its_assets(day):
    _, tables = day
    assets = tables["assets"].groupby(["step", "owner"])["revenue_usd"].sum()
    providers = tables["providers"].set_index(["step", "provider"])["revenue_usd"]
    for (step, owner), revenue in assets.items():
        assert providers[(step, owner)] == pytest.approx(revenue, rel=REL, abs=1e-6)


def test_summary_totals_match_the_tables(day):
    model, tables = day
    summary = summarise(model, tables)
    assert summary["hours"] == 24
    assert summary["seed"] == 7
    steps = tables["steps"]
    assert summary["consumer_payments_usd"] == pytest.approx(
        steps["consumer_payments_usd"].sum(), rel=REL
    )
    prices = tables["prices"]
    served = prices["served_tokens_per_s"]
    weighted = (prices["lmp_usd_per_mtok"] * served).sum() / served.sum()
    assert summary["mean_lmp_usd_per_mtok"] == pytest.approx(weighted, rel=REL)
    assert summary["unserved_token_hours"] == 0.0
    assert not math.isnan(summary["total_cost_usd"])


def test_infeasible_hours_are_recorded_not_raised():
    # Scale demand far above capacity (6000 GPUs serve at most 6e6 chat tokens/s).
    from scenarios import with_overrides

    scenario = with_overrides(_scenario(), demand_scale=5.0)
    model = simulate(scenario, 3, seed=3)
    tables = run_tables(model)
    assert (tables["steps"]["status"] == "infeasible").all()
    summary = summarise(model, tables)
    assert summary["unserved_token_hours"] > 0
    assert summary["infeasible_steps"] == 3
