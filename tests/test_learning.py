"""Learning providers, offer ladders, the ledger and Mesa's batch_run."""

from __future__ import annotations

import math

import mesa
import numpy as np
import pandas as pd
import pytest
from builders import one_node_market

from agents.strategies import (
    Markup,
    OfferContext,
    Outcome,
    RothErev,
    StrategyError,
    Truthful,
    ladder,
    parse_strategy,
)
from scenarios import load_scenario
from scenarios.schema import Asset
from sim import TokenFlowModel, run_tables, simulate

REL = 1e-6


def usd_per_mtok(price_usd_per_gpu_hour: float, tokens_per_s_per_gpu: float) -> float:
    return price_usd_per_gpu_hour / (tokens_per_s_per_gpu * 3600) * 1e6


def _market(pools, demand: float, value=None):
    return one_node_market(pools, demand, value)


def _context(costs: dict[str, float], seed: int = 0) -> OfferContext:
    return OfferContext(1, costs, np.random.default_rng(seed))


# -- offer ladders ----------------------------------------------------------------


def test_a_ladder_splits_gpus_evenly_with_markups_rising_to_the_top():
    asset = Asset("a", "A", "g", 900.0, 2.0, "p")
    blocks = ladder([asset], _context({"a": 2.0}), markup=0.3, blocks=3)["a"]
    assert [b.gpus for b in blocks] == pytest.approx([300.0, 300.0, 300.0])
    assert [b.price_usd_per_gpu_hour for b in blocks] == pytest.approx([2.2, 2.4, 2.6])


def test_the_marginal_block_of_a_ladder_sets_the_price():
    # 1000 GPUs in three blocks of 333.3 at 2.2, 2.4, 2.6 USD/GPU-h; demand
    # needs 500 GPUs, so the second block is marginal: price 2.4.
    scenario = _market([("a", 1000, 2.0, "p")], 0.5e6)
    model = simulate(
        scenario, 1, seed=1, noise_sigma=0.0, strategy=Markup(markup=0.3, blocks=3)
    )
    lmp = run_tables(model)["prices"]["lmp_usd_per_mtok"].iloc[0]
    assert lmp == pytest.approx(usd_per_mtok(2.4, 1000), rel=REL)


def test_strategy_text_reaches_learner_parameters_and_rejects_bad_ones():
    learner = parse_strategy("roth-erev:levels=5,max_markup=0.4,recency=0.05")
    assert isinstance(learner, RothErev)
    assert list(learner.markups) == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])
    assert learner.recency == 0.05
    for bad in (
        "roth-erev:levels=1.5",
        "roth-erev:levels=1",
        "roth-erev:recency=2",
        "roth-erev:experimentation=1",
        "roth-erev:max_markup=0",
        "markup:blocks=0",
        "markup:markup=inf",
        "roth-erev:speed=3",
        "roth-erev:levels=1e9",
        "markup:blocks=1000000",
        "markup:markup=1e6",
        "markup:markup=nan",
        "markup:markup=1_0",
        "markup:markup=0.3,markup=0.4",
    ):
        with pytest.raises(StrategyError):
            parse_strategy(bad)
    with pytest.raises(StrategyError, match="parameters: markup, blocks"):
        parse_strategy("markup:markup=0.3,foo=1")


def test_describe_gives_text_that_parses_back_to_the_same_strategy():
    for text in (
        "truthful",
        "markup:markup=0.3,blocks=3",
        "withholding:share=0.5",
        "roth-erev:blocks=3,initial=5,levels=6",
    ):
        strategy = parse_strategy(text)
        again = parse_strategy(strategy.describe())
        assert again.describe() == strategy.describe()
    assert "initial=5" in parse_strategy("roth-erev:initial=5").describe()


def test_a_ladder_reports_the_mean_markup_of_its_gpus():
    # Blocks at 1/3, 2/3 and 3/3 of 0.6: mean 0.4.
    assert Markup(markup=0.6, blocks=3).offered_markup == pytest.approx(0.4)
    assert Markup(markup=0.6).offered_markup == pytest.approx(0.6)


# -- the Roth-Erev rule, by hand ----------------------------------------------------


def test_roth_erev_update_matches_the_modified_rule_by_hand():
    learner = RothErev(levels=3, recency=0.1, experimentation=0.2, initial=1.0)
    learner.choice = 1
    # Profit 50 on a capacity cost of 100: reward 0.5.
    learner.learn(Outcome(revenue_usd=150.0, cost_usd=100.0, capacity_cost_usd=100.0))
    # chosen: 0.9 * 1 + 0.5 * 0.8 = 1.3; others: 0.9 * 1 + 1 * 0.2 / 2 = 1.0
    assert list(learner.propensities) == pytest.approx([1.0, 1.3, 1.0])


def test_roth_erev_draws_through_the_given_generator():
    asset = Asset("a", "A", "g", 10.0, 1.0, "p")

    def choices(seed: int) -> list[int]:
        learner = RothErev(levels=11)
        context = OfferContext(1, {"a": 1.0}, np.random.default_rng(seed))
        picked = []
        for _ in range(20):
            learner.offers([asset], context)
            picked.append(learner.choice)
        return picked

    assert choices(42) == choices(42)
    assert choices(42) != choices(43)
    assert len(set(choices(42))) > 3


def _late_markups(model: TokenFlowModel, provider: str, last: int) -> pd.Series:
    table = run_tables(model)["providers"]
    mine = table[table["provider"] == provider]
    return mine["markup"].iloc[-last:]


def test_a_monopoly_learner_raises_its_markup():
    # One provider owns all GPUs; consumers value the tokens at 3x cost, so
    # every markup up to 100% sells everything and profit grows with markup.
    cost = 2.0
    scenario = _market(
        [("a", 1000, cost, "mono")], 0.6e6, value=usd_per_mtok(3 * cost, 1000)
    )
    model = simulate(scenario, 400, seed=3, noise_sigma=0.0, strategy=RothErev())
    late = _late_markups(model, "mono", 100)
    # Choosing at random among 0, 0.1, ..., 1.0 gives a mean of 0.5.
    assert late.mean() > 0.75
    prices = run_tables(model)["prices"]["lmp_usd_per_mtok"].iloc[-100:]
    assert prices.mean() > 1.6 * usd_per_mtok(cost, 1000)


def test_learners_facing_a_competitive_fringe_stay_near_cost():
    # Two small learners at 2.0 USD/GPU-h; a truthful fringe at 2.1 can serve
    # all demand alone, so it is marginal and sets the price at 2.1. A learner
    # that marks up by more than 5% is not dispatched and earns nothing.
    scenario = _market(
        [
            ("l1", 200, 2.0, "learner1"),
            ("l2", 200, 2.0, "learner2"),
            ("fringe", 2000, 2.1, "fringe"),
        ],
        1.0e6,
    )
    strategies = {
        "learner1": "roth-erev:levels=21",
        "learner2": "roth-erev:levels=21",
        "fringe": "truthful",
    }
    scenario = _with_strategies(scenario, strategies)
    model = simulate(scenario, 400, seed=5, noise_sigma=0.0)
    for learner in ("learner1", "learner2"):
        assert _late_markups(model, learner, 100).mean() < 0.15
    prices = run_tables(model)["prices"]["lmp_usd_per_mtok"]
    assert prices.max() == pytest.approx(usd_per_mtok(2.1, 1000), rel=1e-4)


def _with_strategies(scenario, strategies: dict[str, str]):
    import dataclasses

    return dataclasses.replace(scenario, provider_strategies=strategies)


# -- competitive benchmark and ledger ------------------------------------------------


def test_competitive_benchmark_prices_the_same_bids_at_truthful_offers():
    # Markup 0.3 on the only pool: actual price 2.6, competitive price 2.0;
    # the provider's competitive profit is 0 (it is marginal at cost).
    scenario = _market([("a", 1000, 2.0, "p")], 0.5e6)
    model = simulate(scenario, 2, seed=1, noise_sigma=0.0, strategy=Markup(0.3))
    tables = run_tables(model)
    row = tables["prices"].iloc[0]
    assert row["lmp_usd_per_mtok"] == pytest.approx(usd_per_mtok(2.6, 1000), rel=REL)
    assert row["competitive_lmp_usd_per_mtok"] == pytest.approx(
        usd_per_mtok(2.0, 1000), rel=REL
    )
    providers = tables["providers"]
    assert providers["competitive_profit_usd"].abs().max() < 1e-6
    # Profit: 500 GPUs x 0.6 USD/GPU-h x 1 h per step.
    assert providers["profit_usd"].iloc[0] == pytest.approx(300.0, rel=REL)


def test_marked_up_offers_never_lower_a_price_below_the_competitive_one():
    # Same bids, every offer at or above true cost: no LMP may fall below the
    # truthful clearing's, and the step means (same served-token weights)
    # follow.
    model = simulate(load_scenario("us5"), 24, seed=2, strategy=Markup(0.2))
    tables = run_tables(model)
    prices, steps = tables["prices"], tables["steps"]
    gap = prices["lmp_usd_per_mtok"] - prices["competitive_lmp_usd_per_mtok"]
    assert (gap >= -1e-9).all()
    assert (gap > 1e-6).any()
    step_gap = (
        steps["mean_lmp_usd_per_mtok"] - steps["competitive_mean_lmp_usd_per_mtok"]
    )
    assert (step_gap >= -1e-9).all()


def test_benchmark_off_leaves_competitive_columns_empty():
    scenario = _market([("a", 1000, 2.0, "p")], 0.5e6)
    model = simulate(
        scenario, 1, seed=1, noise_sigma=0.0, strategy=Markup(0.3), benchmark=False
    )
    tables = run_tables(model)
    assert tables["prices"]["competitive_lmp_usd_per_mtok"].isna().all()
    assert tables["providers"]["competitive_profit_usd"].isna().all()


@pytest.fixture(scope="module")
def us5_learning_day():
    return simulate(load_scenario("us5"), 24, seed=11, strategy=RothErev())


def test_settlement_identities_hold_every_step_of_a_learning_day(us5_learning_day):
    tables = run_tables(us5_learning_day)
    steps, assets = tables["steps"], tables["assets"]
    assert (steps["status"] == "optimal").all()
    scale = steps["consumer_payments_usd"].abs().max()
    # Revenue adequacy (MODEL.md 4); the LP's tie-break offsets sit in the
    # duals at ~1e-5 of prices, so compare at that precision.
    lhs = (
        steps["consumer_payments_usd"]
        - steps["provider_revenues_usd"]
        - steps["transfer_charges_usd"]
    )
    assert np.allclose(lhs, steps["congestion_rents_usd"], atol=1e-4 * scale)
    assert np.allclose(lhs, steps["merchandising_surplus_usd"], atol=1e-9 * scale)
    assert (lhs > -1e-4 * scale).all()
    # Provider revenue and true cost add up from the per-asset rows.
    by_step = assets.groupby("step")[["revenue_usd", "cost_usd"]].sum()
    assert np.allclose(by_step["revenue_usd"], steps["provider_revenues_usd"])
    assert np.allclose(by_step["cost_usd"], steps["provider_costs_usd"])
    recomputed = assets["gpus_used"] * assets["true_cost_usd_per_gpu_hour"]
    assert np.allclose(recomputed, assets["cost_usd"])
    # Welfare = surplus + profit + merchandising surplus.
    total = (
        steps["consumer_surplus_usd"]
        + steps["provider_profits_usd"]
        + steps["merchandising_surplus_usd"]
    )
    assert np.allclose(total, steps["welfare_usd"])


def test_true_costs_follow_the_electricity_price_over_the_day(us5_learning_day):
    assets = run_tables(us5_learning_day)["assets"]
    tx = assets[assets["asset"] == "TX/h100/atlas"].set_index("step")
    cost = tx["true_cost_usd_per_gpu_hour"]
    # TX: 1.785 kW x 0.066 USD/kWh x 0.24 daily swing = 0.0283 USD/GPU-h either
    # side of the 1.190 mean (less the January season: x (1 - 0.18 cos ...)).
    assert cost.max() - cost.min() == pytest.approx(2 * 0.0283, rel=0.25)
    # Peak at 19:00 local (UTC-6) = 01:00 UTC.
    assert tx.loc[cost.idxmax(), "hour_utc"] == 1.0


def test_providers_learn_and_record_their_markup(us5_learning_day):
    providers = run_tables(us5_learning_day)["providers"]
    assert set(providers["provider"]) == {"atlas", "borealis", "cascade"}
    grid = set(np.round(np.linspace(0, 1, 11), 10))
    assert set(np.round(providers["markup"], 10)) <= grid
    assert providers["markup"].nunique() > 2


def test_a_seed_reproduces_a_learning_run_exactly():
    scenario = load_scenario("us5")
    runs = [simulate(scenario, 12, seed=s, strategy=RothErev()) for s in (4, 4, 5)]
    tables = [run_tables(m) for m in runs]
    for name in ("steps", "prices", "providers"):
        pd.testing.assert_frame_equal(tables[0][name], tables[1][name])
    assert not tables[0]["providers"]["markup"].equals(tables[2]["providers"]["markup"])


def test_mesa_batch_run_sweeps_strategies_over_the_model():
    results = mesa.batch_run(
        TokenFlowModel,
        parameters={
            "scenario": load_scenario("two-node"),
            "seed": [1, 2],
            "strategy": [Truthful(), Markup(markup=0.5)],
        },
        iterations=1,
        max_steps=3,
        number_processes=1,
        data_collection_period=1,
        display_progress=False,
    )
    frame = pd.DataFrame(results)
    assert len(frame) == 2 * 2 * 4  # 4 collections: steps 0..3 of each run
    frame["markup"] = frame["strategy"].map(lambda s: s.offered_markup)
    last = frame[frame["Step"] == frame["Step"].max()]
    mean = last.groupby("markup")["mean_lmp_usd_per_mtok"].mean()
    assert mean[0.5] > mean[0.0]
    assert math.isfinite(mean[0.0])


def test_the_benchmark_world_of_a_markup_run_is_the_truthful_run():
    # A fixed markup draws nothing from the generator, so the markup run's
    # benchmark (truthful offers, its own deferrable backlogs) must replay the
    # truthful run of the same seed exactly.
    scenario = load_scenario("us5")
    marked = run_tables(simulate(scenario, 48, seed=3, strategy=Markup(0.3)))
    truthful = run_tables(simulate(scenario, 48, seed=3, strategy=Truthful()))
    assert marked["prices"]["competitive_lmp_usd_per_mtok"].to_numpy() == (
        pytest.approx(truthful["prices"]["lmp_usd_per_mtok"].to_numpy(), rel=1e-9)
    )
    by_provider = marked["providers"].groupby("provider")["competitive_profit_usd"]
    honest = truthful["providers"].groupby("provider")["profit_usd"]
    assert by_provider.sum().to_numpy() == pytest.approx(
        honest.sum().to_numpy(), rel=1e-6, abs=1e-3
    )
