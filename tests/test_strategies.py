"""Provider strategies: each one's defining behaviour, against hand values."""

from __future__ import annotations

import pytest

from agents.strategies import (
    Markup,
    StrategyError,
    Truthful,
    Withholding,
    parse_strategy,
)
from scenarios import scenario_from_dict
from sim import run_tables, simulate
from sim.cli import main

REL = 1e-6


def usd_per_mtok(price_usd_per_gpu_hour: float, thr: float) -> float:
    return price_usd_per_gpu_hour / (thr * 3600) * 1e6


def _one_node(demand_tokens_per_s: float) -> dict:
    # One node, flat demand, two pools of 1000 GPUs (1000 tokens/s per GPU):
    # cheap at 2.0 USD/GPU-h (owner p1), dear at 3.0 (owner p2).
    return {
        "name": "one",
        "bandwidth_model": "transfer",
        "token_equivalent_bits": 400,
        "nodes": {"A": {"name": "A", "lat": 0, "lon": 0, "utc_offset_h": 0}},
        "asset_types": {"g": {"tokens_per_s_per_gpu": {"bulk": 1000}}},
        "assets": [
            {
                "id": "cheap",
                "node": "A",
                "type": "g",
                "gpus": 1000,
                "cost_usd_per_gpu_hour": 2.0,
                "owner": "p1",
            },
            {
                "id": "dear",
                "node": "A",
                "type": "g",
                "gpus": 1000,
                "cost_usd_per_gpu_hour": 3.0,
                "owner": "p2",
            },
        ],
        "workloads": {
            "bulk": {"latency_limit_ms": 100, "bits_per_token": 100, "profile": "flat"}
        },
        "demand": [
            {"node": "A", "workload": "bulk", "tokens_per_s": demand_tokens_per_s}
        ],
    }


def _price(strategy, demand=0.9e6) -> tuple[float, dict]:
    return _run(_one_node(demand), strategy)


def _run(data: dict, strategy=None) -> tuple[float, dict]:
    """One hour without noise: the LMP and each provider's profit."""
    model = simulate(
        scenario_from_dict(data), 1, seed=1, noise_sigma=0.0, strategy=strategy
    )
    tables = run_tables(model)
    lmp = float(tables["prices"]["lmp_usd_per_mtok"].iloc[0])
    profits = tables["providers"].set_index("provider")["profit_usd"].to_dict()
    return lmp, profits


def test_truthful_providers_price_at_the_marginal_cost_and_earn_no_profit_there():
    # 0.9e6 tokens/s fit in the cheap pool: it is marginal, the price is its cost.
    lmp, profits = _price(Truthful())
    assert lmp == pytest.approx(usd_per_mtok(2.0, 1000), rel=REL)
    assert profits["p1"] == pytest.approx(0.0, abs=1e-6)


def test_markup_raises_the_price_it_sets_when_marginal():
    # The cheap pool stays marginal and offers 2.0 * 1.3 = 2.6 USD/GPU-h; it
    # earns 0.6 USD on each of its 900 GPU-hours.
    lmp, profits = _price(Markup(markup=0.3))
    assert lmp == pytest.approx(usd_per_mtok(2.6, 1000), rel=REL)
    assert profits["p1"] == pytest.approx(0.6 * 900, rel=REL)


def test_withholding_raises_prices_when_capacity_is_tight():
    # Offering half of each pool leaves 500 cheap GPUs for 900 GPUs of demand:
    # the dear pool becomes marginal at 3.0, and the cheap one earns 1.0 on
    # each of its 500 GPU-hours.
    lmp, profits = _price(Withholding(share=0.5))
    assert lmp == pytest.approx(usd_per_mtok(3.0, 1000), rel=REL)
    assert profits["p1"] == pytest.approx(1.0 * 500, rel=REL)


def test_withholding_does_not_move_prices_when_capacity_is_ample():
    # 0.3e6 tokens/s need 300 GPUs, fewer than the 500 cheap ones offered.
    lmp, _ = _price(Withholding(share=0.5), demand=0.3e6)
    assert lmp == pytest.approx(usd_per_mtok(2.0, 1000), rel=REL)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("truthful", Truthful()),
        ("markup:markup=0.3", Markup(markup=0.3)),
        ("withholding:share=0.25", Withholding(share=0.25)),
    ],
)
def test_parse_strategy(text, expected):
    assert parse_strategy(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "greedy",
        "markup:markup",
        "markup:markup=x",
        "markup:rate=0.3",
        "withholding:share=1.5",
        "markup:markup=-2",
    ],
)
def test_bad_strategies_are_refused(text):
    with pytest.raises(StrategyError):
        parse_strategy(text)


def test_cli_strategy_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["simulate", "two-node", "--hours", "1", "--out", str(out), "--no-progress"]
    assert main([*args, "--strategy", "greedy"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "greedy" in err
    assert not out.exists()
    assert main([*args, "--strategy", "markup:markup=0.5"]) == 0
    assert '"strategy": "markup:markup=0.5,blocks=1"' in capsys.readouterr().out


def test_providers_section_sets_each_providers_strategy():
    # Only p2 (the dear pool) marks up; the cheap pool stays marginal at cost.
    data = {**_one_node(0.9e6), "providers": {"p2": {"strategy": "markup:markup=1"}}}
    model = simulate(scenario_from_dict(data), 1, seed=1, noise_sigma=0.0)
    assert {p.owner: p.strategy for p in model.agents_by_type[_provider_type()]} == {
        "p1": Truthful(),
        "p2": Markup(markup=1.0),
    }
    tables = run_tables(model)
    lmp = float(tables["prices"]["lmp_usd_per_mtok"].iloc[0])
    assert lmp == pytest.approx(usd_per_mtok(2.0, 1000), rel=REL)
    # Withholding by the cheap pool alone makes the marked-up dear pool marginal:
    # 500 cheap GPUs offered, the other 400 GPU-hours at 3.0 * 2 = 6.0.
    data["providers"]["p1"] = {"strategy": "withholding:share=0.5"}
    lmp, _ = _run(data)
    assert lmp == pytest.approx(usd_per_mtok(6.0, 1000), rel=REL)


def _provider_type():
    from agents import ProviderAgent

    return ProviderAgent


def test_providers_section_errors_name_the_field():
    from scenarios import ScenarioError

    unknown = {**_one_node(1e5), "providers": {"nobody": {"strategy": "truthful"}}}
    with pytest.raises(ScenarioError) as err:
        scenario_from_dict(unknown)
    assert err.value.field == "providers.nobody"
    bad = {**_one_node(1e5), "providers": {"p1": {"strategy": "greedy"}}}
    with pytest.raises(ScenarioError) as err:
        simulate(scenario_from_dict(bad), 1, seed=1)
    assert err.value.field == "providers.p1.strategy"
    assert "greedy" in err.value.reason
