"""The ``tokenflow`` command end to end.

Most runs call `sim.cli.main` in-process (fast, output through capsys); a few
run the real command in a subprocess (``python -m sim.cli``) to check exit
codes and that nothing ends in a traceback.

The scenario is small enough to clear by hand. Two nodes, one GPU type
serving 1000 chat tokens/s per GPU, one link of 0.1 Gbps and 10 ms:

- A: 2000 GPUs at 2.0 USD/GPU-h (cheap), no demand;
- B: 2000 GPUs at 3.0 USD/GPU-h (dear), 1.5e6 chat tokens/s of hard demand;
- chat: 100 bits per token, latency limit 100 ms.

(B has 2000 GPUs rather than 1000 so that, with the link closed by a 5 ms
latency limit, B can still serve its own 1.5e6 tokens/s.)

Hand solution, transfer bandwidth model: the link carries at most
0.1e9 / 100 = 1e6 tokens/s, all served by A (1000 of its 2000 GPUs); B serves
the remaining 0.5e6 tokens/s itself (500 of 2000 GPUs). Both pools keep spare
GPUs, so each price is set by one pool's cost:
- LMP at B = 3.0 / (1000 * 3600) * 1e6 USD/Mtok (B's next token is local);
- LMP at A = 2.0 / (1000 * 3600) * 1e6 USD/Mtok;
- the link is full; one more Gbps moves 1e9 / 100 = 1e7 tokens/s from B to A,
  i.e. 1e7 / 1000 = 1e4 GPUs at 1.0 USD/GPU-h less: 1e4 USD/Gbps-h.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from scenarios import load_scenario
from sim.cli import main

# ---------------------------------------------------------------- hand values

S_PER_H = 3600.0
TOK_PER_MTOK = 1e6
THR = 1000.0  # tokens/s per GPU (chat, type g)
COST_A = 2.0  # USD/GPU-h
COST_B = 3.0
GPUS_A = 2000.0
GPUS_B = 2000.0
DEMAND_B = 1.5e6  # tokens/s
BITS = 100.0  # chat bits per token (transfer model)
TOKEN_BITS = 200.0  # token_equivalent_bits (token model)
CAPACITY = 0.1  # Gbps

LMP_A = COST_A / (THR * S_PER_H) * TOK_PER_MTOK  # 0.5556 USD/Mtok
LMP_B = COST_B / (THR * S_PER_H) * TOK_PER_MTOK  # 0.8333 USD/Mtok

# Transfer model: the link carries CAPACITY * 1e9 / BITS = 1e6 tokens/s.
VIA_LINK = CAPACITY * 1e9 / BITS
USED_A = VIA_LINK / THR  # 1000 GPUs
USED_B = (DEMAND_B - VIA_LINK) / THR  # 500 GPUs
SHADOW = (COST_B - COST_A) * (1e9 / BITS) / THR  # 1e4 USD/Gbps-h
RENT = SHADOW * CAPACITY  # 1000 USD/h
TOTAL_COST = USED_A * COST_A + USED_B * COST_B  # 3500 USD/h
PAYMENTS = DEMAND_B * S_PER_H / TOK_PER_MTOK * LMP_B  # 4500 USD/h
REVENUES = USED_A * COST_A + USED_B * COST_B  # 3500 USD/h

REL = 1e-6


def _approx(value, abs_=1e-6):
    return pytest.approx(value, rel=REL, abs=abs_)


SCENARIO_YAML = f"""\
name: two-node
bandwidth_model: transfer
token_equivalent_bits: {TOKEN_BITS:g}
nodes:
  A: {{name: cheap, lat: 0.0, lon: 0.0, utc_offset_h: 0}}
  B: {{name: dear, lat: 0.0, lon: 1.0, utc_offset_h: 0}}
asset_types:
  g: {{tokens_per_s_per_gpu: {{chat: 1000}}}}
assets:
  - {{node: A, type: g, gpus: 2000, cost_usd_per_gpu_hour: 2.0, owner: pa}}
  - {{node: B, type: g, gpus: 2000, cost_usd_per_gpu_hour: 3.0, owner: pb}}
links:
  - {{a: A, b: B, capacity_gbps: 0.1, latency_ms: 10}}
workloads:
  chat: {{latency_limit_ms: 100, bits_per_token: 100}}
demand:
  - {{node: B, workload: chat, tokens_per_s: 1.5e6}}
"""

US5 = Path(__file__).resolve().parents[1] / "scenarios" / "data" / "us5.yaml"

TABLES = ("steps", "prices", "links", "assets", "providers", "unserved")
SUMMARY_KEYS = {
    "hours",
    "seed",
    "total_cost_usd",
    "consumer_payments_usd",
    "provider_revenues_usd",
    "congestion_rents_usd",
    "mean_lmp_usd_per_mtok",
    "unserved_token_hours",
}


@pytest.fixture
def scenario_file(tmp_path) -> Path:
    path = tmp_path / "two.yaml"
    path.write_text(SCENARIO_YAML, encoding="utf-8")
    return path


# ---------------------------------------------------------------- runners


def _run(capsys, *args) -> tuple[int, str, str]:
    """Run the command in-process: (exit code, stdout, stderr)."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse refuses the arguments
        code = exc.code
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def _clear_json(capsys, *args) -> dict:
    code, out, err = _run(capsys, "clear", *args, "--json")
    assert code == 0, err
    return json.loads(out)  # the whole of stdout is one JSON object


def _subprocess(*args, cwd) -> subprocess.CompletedProcess:
    """Run the real command: ``python -m sim.cli ARGS``."""
    proc = subprocess.run(
        [sys.executable, "-m", "sim.cli", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def _error_line(err: str) -> str:
    """The stderr of a refused run: exactly one line, no traceback."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    assert lines[0].startswith("tokenflow: error: "), lines[0]
    return lines[0]


def _by(rows: list[dict], **match) -> dict:
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, (match, rows)
    return found[0]


def _lmp(data: dict, node: str, workload: str = "chat") -> float:
    return _by(data["prices"], workload=workload, node=node)["lmp_usd_per_mtok"]


# ---------------------------------------------------------------- clear


def test_clear_prints_prices_and_saturated_links(capsys, scenario_file):
    code, out, err = _run(capsys, "clear", scenario_file)
    assert code == 0, err
    assert err == ""
    assert "two-node" in out
    assert "optimal" in out
    assert "Locational marginal prices" in out
    assert f"{LMP_B:.4f}" in out  # 0.8333
    assert f"{LMP_A:.4f}" in out  # 0.5556
    assert "Saturated links" in out
    saturated = out.split("Saturated links", 1)[1]
    assert "A-B" in saturated.split("Settlement")[0]
    assert "none" not in saturated.split("Settlement")[0]
    assert "Settlement" in out


def test_clear_json_shape(capsys, scenario_file):
    data = _clear_json(capsys, scenario_file)
    for key in (
        "status",
        "bandwidth_model",
        "total_cost_usd_per_h",
        "prices",
        "links",
        "assets",
        "settlement",
        "unserved",
    ):
        assert key in data, key
    assert data["status"] == "optimal"
    assert data["bandwidth_model"] == "transfer"
    # every workload at every node
    assert {(p["workload"], p["node"]) for p in data["prices"]} == {
        ("chat", "A"),
        ("chat", "B"),
    }
    for row in data["prices"]:
        assert {"workload", "node", "lmp_usd_per_mtok"} <= set(row)
    for row in data["links"]:
        assert {
            "a",
            "b",
            "flow_gbps",
            "capacity_gbps",
            "shadow_price_usd_per_gbps_h",
            "congestion_rent_usd_per_h",
            "saturated",
        } <= set(row)
    for row in data["assets"]:
        assert {
            "node",
            "type",
            "owner",
            "gpus_used",
            "compute_price_usd_per_gpu_hour",
            "revenue_usd_per_h",
        } <= set(row)
    assert set(data["settlement"]) >= {
        "consumer_payments_usd_per_h",
        "provider_revenues_usd_per_h",
        "transfer_charges_usd_per_h",
        "congestion_rents_usd_per_h",
    }
    assert data["unserved"] == []


def test_clear_json_hand_solved(capsys, scenario_file):
    data = _clear_json(capsys, scenario_file)
    assert _lmp(data, "B") == _approx(3.0 / (1000 * 3600) * 1e6)
    assert _lmp(data, "A") == _approx(2.0 / (1000 * 3600) * 1e6)
    assert data["total_cost_usd_per_h"] == _approx(TOTAL_COST)

    link = _by(data["links"], a="A", b="B")
    assert link["flow_gbps"] == _approx(CAPACITY)
    assert link["capacity_gbps"] == CAPACITY
    assert link["saturated"] is True
    assert link["shadow_price_usd_per_gbps_h"] == _approx(SHADOW)
    assert link["congestion_rent_usd_per_h"] == _approx(RENT)

    a = _by(data["assets"], node="A")
    assert (a["type"], a["owner"]) == ("g", "pa")
    assert a["gpus_used"] == _approx(USED_A, 1e-5)
    assert a["compute_price_usd_per_gpu_hour"] == _approx(COST_A)
    assert a["revenue_usd_per_h"] == _approx(USED_A * COST_A, 1e-3)
    b = _by(data["assets"], node="B")
    assert (b["type"], b["owner"]) == ("g", "pb")
    assert b["gpus_used"] == _approx(USED_B, 1e-5)
    assert b["compute_price_usd_per_gpu_hour"] == _approx(COST_B)
    assert b["revenue_usd_per_h"] == _approx(USED_B * COST_B, 1e-3)

    s = data["settlement"]
    assert s["consumer_payments_usd_per_h"] == _approx(PAYMENTS, 1e-3)
    assert s["provider_revenues_usd_per_h"] == _approx(REVENUES, 1e-3)
    assert s["transfer_charges_usd_per_h"] == _approx(0.0, 1e-3)
    assert s["congestion_rents_usd_per_h"] == _approx(RENT, 1e-3)


def test_clear_token_bandwidth_model(capsys, scenario_file):
    """Token model: every token takes 200 bits, so the link carries 5e5 tokens/s."""
    data = _clear_json(capsys, scenario_file, "--bandwidth-model", "token")
    assert data["bandwidth_model"] == "token"
    via_link = CAPACITY * 1e9 / TOKEN_BITS  # 5e5 tokens/s
    used_a = via_link / THR  # 500 GPUs
    used_b = (DEMAND_B - via_link) / THR  # 1000 of 2000 GPUs: B keeps spare
    shadow = (COST_B - COST_A) * (1e9 / TOKEN_BITS) / THR  # 5000 USD/Gbps-h
    assert _lmp(data, "B") == _approx(LMP_B)
    assert _lmp(data, "A") == _approx(LMP_A)
    assert data["total_cost_usd_per_h"] == _approx(used_a * COST_A + used_b * COST_B)
    link = _by(data["links"], a="A", b="B")
    assert link["flow_gbps"] == _approx(CAPACITY)
    assert link["shadow_price_usd_per_gbps_h"] == _approx(shadow)
    assert _by(data["assets"], node="A")["gpus_used"] == _approx(used_a, 1e-5)


def test_clear_bandwidth_model_default_is_the_scenarios(capsys, scenario_file):
    assert _clear_json(capsys, scenario_file)["bandwidth_model"] == "transfer"
    data = _clear_json(capsys, scenario_file, "--bandwidth-model", "transfer")
    assert data["bandwidth_model"] == "transfer"


def test_clear_latency_limit_closes_the_link(capsys, scenario_file):
    """chat=5 ms: the 10 ms link is out of reach, B serves all 1.5e6 itself."""
    data = _clear_json(capsys, scenario_file, "--latency-limit", "chat=5")
    assert data["status"] == "optimal"
    assert _lmp(data, "B") == _approx(3.0 / (1000 * 3600) * 1e6)
    # A has no demand: its price is the next token from its own idle pool.
    assert _lmp(data, "A") == _approx(2.0 / (1000 * 3600) * 1e6)
    link = _by(data["links"], a="A", b="B")
    assert link["flow_gbps"] == _approx(0.0)
    assert link["saturated"] is False
    assert link["shadow_price_usd_per_gbps_h"] == _approx(0.0)
    assert _by(data["assets"], node="A")["gpus_used"] == _approx(0.0, 1e-5)
    assert _by(data["assets"], node="B")["gpus_used"] == _approx(DEMAND_B / THR, 1e-5)
    assert data["total_cost_usd_per_h"] == _approx(DEMAND_B / THR * COST_B)
    s = data["settlement"]
    assert s["congestion_rents_usd_per_h"] == _approx(0.0, 1e-3)
    assert s["consumer_payments_usd_per_h"] == _approx(PAYMENTS, 1e-3)


def test_clear_latency_limit_is_repeatable_and_last_wins(capsys, scenario_file):
    data = _clear_json(
        capsys, scenario_file, "--latency-limit", "chat=5", "--latency-limit", "chat=50"
    )
    # 50 ms admits the 10 ms link again: back to the congested base case.
    assert _by(data["links"], a="A", b="B")["saturated"] is True
    assert _lmp(data, "B") == _approx(LMP_B)


def test_clear_demand_scale_infeasible(capsys, scenario_file):
    """x10: 1.5e7 tokens/s against 1e6 over the link + 2e6 at B."""
    data = _clear_json(capsys, scenario_file, "--demand-scale", "10")
    assert data["status"] == "infeasible"
    assert data["total_cost_usd_per_h"] is None
    assert data["unserved"], "an infeasible clearing lists its unserved demand"
    for row in data["unserved"]:
        assert {"workload", "node", "tokens_per_s", "reason"} <= set(row)
        assert row["tokens_per_s"] > 0
        assert row["reason"]
    row = _by(data["unserved"], workload="chat", node="B")
    short = 10 * DEMAND_B - VIA_LINK - GPUS_B * THR  # 1.2e7 tokens/s
    assert row["tokens_per_s"] == _approx(short, 1e-2)
    # Both the link and B's pool are exhausted (A keeps spare GPUs).
    assert "link" in row["reason"]
    assert "compute" in row["reason"]


def test_clear_demand_scale_infeasible_text(capsys, scenario_file):
    code, out, err = _run(capsys, "clear", scenario_file, "--demand-scale", "10")
    assert code == 0, err
    assert "infeasible" in out
    assert "cannot be served" in out


def test_clear_demand_scale_small_is_feasible(capsys, scenario_file):
    """x0.5: 7.5e5 tokens/s fit through the link; all of it comes from A."""
    data = _clear_json(capsys, scenario_file, "--demand-scale", "0.5")
    assert data["status"] == "optimal"
    link = _by(data["links"], a="A", b="B")
    assert link["saturated"] is False
    assert link["flow_gbps"] == _approx(0.5 * DEMAND_B * BITS / 1e9)
    # B's next token comes from A over an uncongested, free link.
    assert _lmp(data, "B") == _approx(LMP_A)


# ---------------------------------------------------------------- bad input


def test_missing_file(capsys, tmp_path):
    path = tmp_path / "nope.yaml"
    code, out, err = _run(capsys, "clear", path)
    assert code == 2  # README: bad input exits with code 2
    assert out == ""
    line = _error_line(err)
    assert str(path) in line
    assert "file" in line
    assert "no such file" in line


def test_bad_field(capsys, tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        SCENARIO_YAML.replace("capacity_gbps: 0.1", "capacity_gbps: -1"),
        encoding="utf-8",
    )
    code, _, err = _run(capsys, "clear", path)
    assert code == 2  # README: bad input exits with code 2
    line = _error_line(err)
    assert str(path) in line
    assert "links[0].capacity_gbps" in line
    assert ">= 0" in line
    assert "-1" in line


def test_bad_field_list_as_node_id(capsys, tmp_path):
    """A list where a node id belongs: a one-line error, not a TypeError."""
    path = tmp_path / "bad.yaml"
    path.write_text(
        SCENARIO_YAML.replace("{node: A, type: g", "{node: [A], type: g"),
        encoding="utf-8",
    )
    code, _, err = _run(capsys, "clear", path)
    assert code == 2  # README: bad input exits with code 2
    line = _error_line(err)
    assert str(path) in line
    assert "assets[0].node" in line


def test_latency_limit_without_value(capsys, scenario_file):
    code, out, err = _run(capsys, "clear", scenario_file, "--latency-limit", "chat")
    assert code == 2  # README: bad input exits with code 2
    assert out == ""
    line = _error_line(err)
    assert "--latency-limit" in line
    assert "WORKLOAD=MS" in line
    assert "'chat'" in line


def test_latency_limit_not_a_number(capsys, scenario_file):
    code, _, err = _run(capsys, "clear", scenario_file, "--latency-limit", "chat=x")
    assert code == 2  # README: bad input exits with code 2
    line = _error_line(err)
    assert "--latency-limit" in line
    assert "'chat=x'" in line


def test_latency_limit_unknown_workload(capsys, scenario_file):
    code, _, err = _run(capsys, "clear", scenario_file, "--latency-limit", "nope=5")
    assert code == 2  # README: bad input exits with code 2
    line = _error_line(err)
    assert str(scenario_file) in line
    assert "--latency-limit nope" in line
    assert "unknown workload" in line
    assert "chat" in line  # the known workloads


def test_negative_demand_scale(capsys, scenario_file):
    code, _, err = _run(capsys, "clear", scenario_file, "--demand-scale", "-1")
    assert code == 2  # README: bad input exits with code 2
    line = _error_line(err)
    assert str(scenario_file) in line
    assert "--demand-scale" in line
    assert ">= 0" in line
    assert "-1" in line


def test_unknown_bandwidth_model_is_an_argparse_error(capsys, scenario_file):
    code, out, err = _run(capsys, "clear", scenario_file, "--bandwidth-model", "foo")
    assert code == 2
    assert out == ""
    assert "--bandwidth-model" in err
    assert "invalid choice" in err
    assert "'foo'" in err


def test_simulate_hours_must_be_positive(capsys, scenario_file, tmp_path):
    out_dir = tmp_path / "run"
    code, _, err = _run(
        capsys, "simulate", scenario_file, "--hours", "0", "--out", out_dir
    )
    assert code == 2  # README: bad input exits with code 2
    line = _error_line(err)
    assert "--hours" in line
    assert not out_dir.exists()


# ---------------------------------------------------------------- simulate


def _simulate(capsys, scenario, out_dir, *extra, seed=7, hours=6):
    return _run(
        capsys,
        "simulate",
        scenario,
        "--hours",
        hours,
        "--seed",
        seed,
        "--out",
        out_dir,
        "--no-progress",
        *extra,
    )


def _tables(out_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(out_dir / f"{name}.parquet") for name in TABLES}


def test_simulate_writes_tables_and_summary(capsys, scenario_file, tmp_path):
    out_dir = tmp_path / "run"
    code, out, err = _simulate(capsys, scenario_file, out_dir)
    assert code == 0, err
    assert str(out_dir) in out
    for name in TABLES:
        assert (out_dir / f"{name}.parquet").is_file(), name
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    assert SUMMARY_KEYS <= set(summary)
    assert summary["hours"] == 6
    assert summary["seed"] == 7
    # Peak demand (1.45 x 1.5e6 x noise) stays far below the 3e6 tokens/s
    # the market can serve (1e6 over the link + 2e6 at B).
    assert summary["unserved_token_hours"] == 0
    assert summary["total_cost_usd"] > 0
    assert summary["consumer_payments_usd"] > 0
    assert summary["provider_revenues_usd"] > 0
    assert summary["congestion_rents_usd"] >= 0
    # Every served token is priced between A's cost and B's cost.
    assert LMP_A - 1e-9 <= summary["mean_lmp_usd_per_mtok"] <= LMP_B + 1e-9

    tables = _tables(out_dir)
    assert len(tables["steps"]) == 6
    assert len(tables["prices"]) == 6 * 2  # chat at A and B, every hour
    assert len(tables["links"]) == 6
    assert len(tables["assets"]) == 6 * 2
    assert tables["unserved"].empty


def test_simulate_refuses_to_overwrite(capsys, scenario_file, tmp_path):
    out_dir = tmp_path / "run"
    code, _, err = _simulate(capsys, scenario_file, out_dir)
    assert code == 0, err
    before = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    assert "summary.json" in before

    code, _, err = _simulate(capsys, scenario_file, out_dir, seed=8)
    assert code == 2  # README: bad input exits with code 2
    line = _error_line(err)
    assert "--overwrite" in line
    assert str(out_dir) in line
    after = {p.name: p.read_bytes() for p in out_dir.iterdir()}
    assert after == before  # the first run is untouched, file for file

    code, _, err = _simulate(capsys, scenario_file, out_dir, "--overwrite", seed=8)
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["seed"] == 8
    assert (out_dir / "summary.json").read_bytes() != before["summary.json"]
    # No staging folders are left next to the run.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run", "two.yaml"]


def test_simulate_same_seed_same_tables(capsys, scenario_file, tmp_path):
    first, second, other = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    for out_dir, seed in ((first, 7), (second, 7), (other, 8)):
        code, _, err = _simulate(capsys, scenario_file, out_dir, seed=seed)
        assert code == 0, err

    t1, t2, t3 = _tables(first), _tables(second), _tables(other)
    for name in TABLES:
        pd.testing.assert_frame_equal(t1[name], t2[name], check_exact=True)
    assert (first / "summary.json").read_bytes() == (
        second / "summary.json"
    ).read_bytes()

    demand_7 = t1["prices"]["demand_tokens_per_s"].to_numpy()
    demand_8 = t3["prices"]["demand_tokens_per_s"].to_numpy()
    assert len(demand_7) == len(demand_8)
    # Only B has demand; with different seeds its noisy hourly demand differs.
    b7 = t1["prices"].loc[t1["prices"]["node"] == "B", "demand_tokens_per_s"]
    b8 = t3["prices"].loc[t3["prices"]["node"] == "B", "demand_tokens_per_s"]
    assert (b7.to_numpy() != b8.to_numpy()).all()


def test_simulate_infeasible_run(capsys, scenario_file, tmp_path):
    """x10 demand: every hour is short; no token gets a price.

    Demand is 15e6 x (0.55..1.45) x noise tokens/s against 3e6 servable, so
    every step is infeasible and LMPs are null in every step: there is no
    price to average, and the served-token-weighted mean LMP must be null
    (not 0.0, which would claim tokens were served for free).
    """
    out_dir = tmp_path / "run"
    code, _, err = _simulate(capsys, scenario_file, out_dir, "--demand-scale", "10")
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["infeasible_steps"] == 6
    assert summary["unserved_token_hours"] > 0
    unserved = pd.read_parquet(out_dir / "unserved.parquet")
    assert len(unserved) == 6  # chat at B, every hour
    assert unserved["reason"].str.len().gt(0).all()
    assert summary["mean_lmp_usd_per_mtok"] is None


def test_simulate_mean_lmp_with_some_infeasible_hours(capsys, scenario_file, tmp_path):
    """x1.6 over a day: the afternoon peak is short, the night is served.

    Demand 2.4e6 x (0.55..1.45) x noise swings from about 1.3e6 to 3.5e6
    tokens/s against 3e6 servable. In every feasible hour B needs more than
    the 1e6 tokens/s the link carries, so the link is full and B's own pool
    (with spare GPUs) serves the rest: every priced token costs LMP_B, and
    the served-weighted mean LMP is exactly LMP_B. Tokens served in
    infeasible hours have no price and must not pull the mean down as if
    they were free.
    """
    out_dir = tmp_path / "run"
    code, _, err = _simulate(
        capsys, scenario_file, out_dir, "--demand-scale", "1.6", hours=24
    )
    assert code == 0, err
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    assert 0 < summary["infeasible_steps"] < 24
    assert summary["mean_lmp_usd_per_mtok"] == _approx(LMP_B)


# ---------------------------------------------------------------- real command


def test_subprocess_clear_json(scenario_file, tmp_path):
    proc = _subprocess("clear", scenario_file, "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["status"] == "optimal"
    assert _lmp(data, "B") == _approx(LMP_B)
    assert _lmp(data, "A") == _approx(LMP_A)


def test_subprocess_simulate(scenario_file, tmp_path):
    out_dir = tmp_path / "run"
    args = ("simulate", scenario_file, "--hours", "6", "--seed", "7")
    proc = _subprocess(*args, "--out", out_dir, "--no-progress", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
    assert summary["hours"] == 6 and summary["seed"] == 7
    for name in TABLES:
        assert (out_dir / f"{name}.parquet").is_file(), name

    again = _subprocess(*args, "--out", out_dir, "--no-progress", cwd=tmp_path)
    assert again.returncode == 2
    assert "--overwrite" in _error_line(again.stderr)


def test_subprocess_missing_file(tmp_path):
    path = tmp_path / "nope.yaml"
    proc = _subprocess("clear", path, cwd=tmp_path)
    assert proc.returncode == 2
    line = _error_line(proc.stderr)
    assert str(path) in line and "no such file" in line


def test_subprocess_bad_bandwidth_model(scenario_file, tmp_path):
    proc = _subprocess("clear", scenario_file, "--bandwidth-model", "foo", cwd=tmp_path)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_subprocess_console_script_if_installed(scenario_file, tmp_path):
    """The installed ``tokenflow`` script next to this Python, when present."""
    script = Path(sys.executable).with_name("tokenflow")
    if not script.exists():
        pytest.skip("no tokenflow console script next to sys.executable")
    proc = subprocess.run(
        [str(script), "clear", str(scenario_file)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "Saturated links" in proc.stdout


# ---------------------------------------------------------------- us5


def test_us5_clear(capsys):
    """The bundled us5 (runs once scenarios/data/us5.yaml exists; never skipped)."""
    assert US5.is_file(), f"{US5} is missing"
    sc = load_scenario("us5")
    data = _clear_json(capsys, "us5")
    assert data["status"] == "optimal"
    assert data["bandwidth_model"] == sc.bandwidth_model
    pairs = {(p["workload"], p["node"]) for p in data["prices"]}
    assert pairs == {(k, n) for k in sc.workloads for n in sc.nodes}
    for row in data["prices"]:
        lmp = row["lmp_usd_per_mtok"]
        assert lmp is not None and lmp > 0, row
    assert len(data["links"]) == len(sc.links)
    assert len(data["assets"]) == len(sc.assets)
    assert data["unserved"] == []

    code, out, err = _run(capsys, "clear", "us5")
    assert code == 0, err
    assert "Saturated links" in out

    token = _clear_json(capsys, "us5", "--bandwidth-model", "token")
    assert token["bandwidth_model"] == "token"
