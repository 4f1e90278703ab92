"""The study's experiments: mathematical properties, not tuned numbers."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from markets import clear
from scenarios import load_scenario, with_overrides
from sim.cli import main
from sim.experiments import latency_sweep, transfer_vs_token

REL = 1e-7


def _cost(scenario) -> float:
    return clear(scenario).total_cost_usd_per_h


@pytest.fixture(scope="module")
def us5():
    return load_scenario("us5")


@pytest.fixture(scope="module")
def us5_split(us5):
    # Every workload limited to 7 ms: only VA-IL and OR-CA stay usable, so
    # prices differ between regions and latency limits bind.
    limits = dict.fromkeys(us5.workloads, 7.0)
    return with_overrides(us5, latency_limits_ms=limits)


@pytest.mark.parametrize("workload", ["chat", "code", "image"])
def test_cost_never_falls_when_a_latency_limit_tightens(us5, workload):
    sweep = latency_sweep(us5, workload, [200, 100, 50, 25, 12, 6, 3, 0])
    costs = [r.total_cost_usd_per_h for r in sweep.results]
    assert all(r.status == "optimal" for r in sweep.results)
    for looser, tighter in zip(costs, costs[1:], strict=False):
        assert tighter >= looser - REL * looser


def test_cost_grows_with_demand_and_is_convex_in_the_scale(us5_split):
    scales = np.linspace(0.2, 1.3, 12)
    costs = []
    for scale in scales:
        result = clear(with_overrides(us5_split, demand_scale=float(scale)))
        if result.status != "optimal":
            break
        costs.append(result.total_cost_usd_per_h)
    assert len(costs) >= 8
    costs = np.array(costs)
    step = costs.max() * REL
    assert (np.diff(costs) >= -step).all()
    # Equal steps in the scale: convexity means second differences >= 0.
    assert (np.diff(costs, 2) >= -10 * step).all()


def test_models_agree_when_every_payload_equals_the_token_equivalent(us5_split):
    bits = us5_split.token_equivalent_bits
    workloads = {
        k: dataclasses.replace(w, bits_per_token=bits)
        for k, w in us5_split.workloads.items()
    }
    same = dataclasses.replace(us5_split, workloads=workloads)
    report = transfer_vs_token(same)
    token, transfer = report.token, report.transfer
    assert token.status == transfer.status == "optimal"
    assert transfer.total_cost_usd_per_h == pytest.approx(
        token.total_cost_usd_per_h, rel=REL
    )
    lmp_token = token.prices["lmp_usd_per_mtok"].to_numpy()
    lmp_transfer = transfer.prices["lmp_usd_per_mtok"].to_numpy()
    assert lmp_transfer == pytest.approx(lmp_token, rel=1e-6)
    assert report.to_dict()["cost_change_pct"] == pytest.approx(0.0, abs=1e-5)


def test_split_market_shows_a_price_rise_when_chat_must_stay_local(us5_split):
    # Other workloads are held at 7 ms; chat goes from 100 ms to local only.
    sweep = latency_sweep(us5_split, "chat", [100, 15, 0])
    rise = sweep.largest_rise()
    assert rise is not None and rise["change_pct"] > 0
    # The rise is measured from the loosest limit at the same node.
    prices = sweep.prices().set_index(["limit_ms", "node"])["lmp_usd_per_mtok"]
    node, limit = rise["node"], rise["limit_ms"]
    expected = 100 * (prices[limit, node] - prices[100.0, node]) / prices[100.0, node]
    assert rise["change_pct"] == pytest.approx(expected, rel=1e-9)


def test_cli_json_shapes(capsys):
    assert main(["experiment", "transfer-vs-token", "us5", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    for key in (
        "token_total_cost_usd_per_h",
        "transfer_total_cost_usd_per_h",
        "cost_change_pct",
        "saturated_links_token",
        "saturated_links_transfer",
    ):
        assert key in report
    args = ["experiment", "latency-sweep", "two-node", "--workload", "chat"]
    assert main([*args, "--limits", "100,10,5", "--json"]) == 0
    sweep = json.loads(capsys.readouterr().out)
    statuses = [p["status"] for p in sweep["points"]]
    # At 5 ms the 10 ms link is out of reach and B alone cannot serve 1.5e6.
    assert statuses == ["optimal", "optimal", "infeasible"]
    assert sweep["points"][2]["unserved"][0]["tokens_per_s"] == pytest.approx(5e5)
    assert {"limit_ms", "status", "total_cost_usd_per_h", "prices"} <= set(
        sweep["points"][0]
    )


def test_cli_rejects_bad_sweep_arguments(capsys):
    args = ["experiment", "latency-sweep", "us5", "--workload"]
    assert main([*args, "nope"]) == 2
    assert main([*args, "chat", "--limits", "10,x"]) == 2
    assert main([*args, "chat", "--limits", "-5"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3 and "Traceback" not in err


def _max_flow_threshold(data: dict, bits: float) -> float:
    """Largest demand scale that a max-flow (networkx) can serve: the oracle."""
    import networkx as nx

    graph = nx.DiGraph()
    for link in data["links"]:
        capacity = link["capacity_gbps"] * 1e9 / bits  # tokens/s
        graph.add_edge(link["a"], link["b"], capacity=capacity)
        graph.add_edge(link["b"], link["a"], capacity=capacity)
    thr = data["asset_types"]["g"]["tokens_per_s_per_gpu"]["chat"]
    for asset in data["assets"]:
        graph.add_edge(asset["node"], "sink", capacity=asset["gpus"] * thr)
    total = sum(d["tokens_per_s"] for d in data["demand"])

    def serves(scale: float) -> bool:
        g = graph.copy()
        for d in data["demand"]:
            g.add_edge("source", d["node"], capacity=scale * d["tokens_per_s"])
        return nx.maximum_flow_value(g, "source", "sink") >= scale * total * (1 - 1e-12)

    low, high = 0.0, 100.0
    while high - low > 1e-9:
        middle = (low + high) / 2
        low, high = (middle, high) if serves(middle) else (low, middle)
    return low


def test_infeasibility_threshold_matches_max_flow():
    from scenarios import scenario_from_dict
    from sim.experiments import copper_plate, infeasibility_threshold

    # Four nodes, five links, one workload; demand at A and B, compute at C
    # and D. max_routes 10 covers every simple path, so the LP may route as
    # freely as a max-flow.
    nodes = {n: {"name": n, "lat": 0, "lon": 0, "utc_offset_h": 0} for n in "ABCD"}
    link = [
        ("A", "B", 0.4),
        ("A", "C", 0.3),
        ("B", "D", 0.2),
        ("C", "D", 0.5),
        ("A", "D", 0.1),
    ]
    data = {
        "name": "flow",
        "bandwidth_model": "transfer",
        "token_equivalent_bits": 100,
        "max_routes": 10,
        "nodes": nodes,
        "asset_types": {"g": {"tokens_per_s_per_gpu": {"chat": 1000}}},
        "assets": [
            {
                "node": "C",
                "type": "g",
                "gpus": 5000,
                "cost_usd_per_gpu_hour": 1.0,
                "owner": "c",
            },
            {
                "node": "D",
                "type": "g",
                "gpus": 3000,
                "cost_usd_per_gpu_hour": 2.0,
                "owner": "d",
            },
        ],
        "links": [
            {"a": a, "b": b, "capacity_gbps": c, "latency_ms": 5} for a, b, c in link
        ],
        "workloads": {"chat": {"latency_limit_ms": 100, "bits_per_token": 100}},
        "demand": [
            {"node": "A", "workload": "chat", "tokens_per_s": 2e6},
            {"node": "B", "workload": "chat", "tokens_per_s": 1e6},
        ],
    }
    scenario = scenario_from_dict(data)
    expected = _max_flow_threshold(data, bits=100)
    assert infeasibility_threshold(scenario) == pytest.approx(expected, rel=1e-5)
    # Without the network only the 8000 GPUs bind: 8e6 / 3e6 tokens/s.
    plate = infeasibility_threshold(copper_plate(scenario))
    assert plate == pytest.approx(8e6 / 3e6, rel=1e-5)
    assert expected < plate


def test_experiment_all_writes_report_and_figures_and_never_clobbers(tmp_path, capsys):
    out = tmp_path / "study"
    assert main(["experiment", "all", "--out", str(out)]) == 0
    names = {p.name for p in out.iterdir()}
    assert {
        "report.md",
        "transfer-vs-token.png",
        "latency-sweep.png",
        "scale-up-cost.png",
        "scale-up-merit-order.png",
        "scale-up.json",
    } <= names
    report = (out / "report.md").read_text()
    assert "| finding | source study | tokenflow |" in report
    before = (out / "report.md").stat().st_mtime_ns
    assert main(["experiment", "all", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "report.md").stat().st_mtime_ns == before


def test_never_infeasible_market_gives_null_threshold_in_valid_json(tmp_path, capsys):
    from importlib import resources

    bundled = resources.files("scenarios.data") / "two-node.yaml"
    path = tmp_path / "shed.yaml"
    path.write_text(bundled.read_text() + "shed_penalty_usd_per_mtok: 50\n")
    args = ["experiment", "scale-up", str(path), "--points", "3", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)  # strict: no Infinity
    assert report["infeasible_above_scale"] is None


def test_duplicate_sweep_limits_are_cleared_once(us5):
    sweep = latency_sweep(us5, "chat", [100, 100, 50])
    assert sweep.limits_ms == [100.0, 50.0]
    assert len(sweep.prices()) == 2 * len(us5.nodes)


def test_experiment_all_checks_every_file_before_writing(tmp_path, capsys):
    out = tmp_path / "P"
    out.mkdir()
    (out / "latency-sweep.json").write_text("KEEP")
    assert main(["experiment", "all", "--out", str(out)]) == 2
    assert [p.name for p in out.iterdir()] == ["latency-sweep.json"]
    assert (out / "latency-sweep.json").read_text() == "KEEP"
