"""Edge cases found by trying the product: shedding, the capacity edge, --out."""

from __future__ import annotations

import pytest
from builders import asset_dict, demand_dict, link_dict, node_dicts, scenario_dict

from markets import clear
from scenarios import load_scenario, scenario_from_dict, with_overrides
from sim import check_out_dir, run_tables, simulate, summarise
from sim.cli import main
from sim.output import OutputError, OutputExistsError


def _two_node(demand_tokens_per_s: float, **extra) -> dict:
    # A: 2000 GPUs at 2.0, B: 1000 GPUs at 3.0, 1000 chat tokens/s per GPU; the
    # link carries 1e6 tokens/s. B can be served at most 1e6 + 1e6 = 2e6.
    return scenario_dict(
        "edge",
        node_dicts("AB"),
        {"g": {"chat": 1000}},
        [
            asset_dict("A/g", "A", "g", 2000, 2.0, owner="a"),
            asset_dict("B/g", "B", "g", 1000, 3.0, owner="b"),
        ],
        [link_dict("A", "B", 0.1, 10)],
        {"chat": (100, 100)},
        [demand_dict("B", "chat", demand_tokens_per_s)],
        **extra,
    )


@pytest.mark.parametrize("excess", [0.002, 0.02, 0.2, 5.0])
def test_demand_a_hair_above_capacity_is_infeasible_not_an_error(excess):
    r = clear(scenario_from_dict(_two_node(2e6 + excess)))
    assert r.status == "infeasible"
    assert not r.degenerate
    short = r.unserved["tokens_per_s"].sum()
    assert short == pytest.approx(excess, rel=0.05, abs=1e-3)


def test_extreme_demand_scale_is_reported_infeasible():
    scenario = with_overrides(load_scenario("us5"), demand_scale=1e6)
    r = clear(scenario)
    assert r.status == "infeasible"
    assert r.unserved["tokens_per_s"].sum() > 0


def test_shed_demand_is_reported_and_counted():
    # Penalty 5 USD/Mtok is above B's cost (0.8333), so B serves what it can
    # (2e6) and sheds the remaining 3e6 tokens/s; B's price is the penalty.
    data = _two_node(5e6, shed_penalty_usd_per_mtok=5.0)
    r = clear(scenario_from_dict(data))
    assert r.status == "optimal"
    shed = r.unserved.set_index(["workload", "node"])["tokens_per_s"]
    assert shed["chat", "B"] == pytest.approx(3e6, rel=1e-6)
    lmp = r.prices.set_index(["workload", "node"])["lmp_usd_per_mtok"]
    assert lmp["chat", "B"] == pytest.approx(5.0, rel=1e-6)

    model = simulate(scenario_from_dict(data), 2, seed=1, noise_sigma=0.0)
    tables = run_tables(model)
    summary = summarise(model, tables)
    assert summary["unserved_token_hours"] > 0
    assert len(tables["unserved"]) == 2


@pytest.mark.parametrize("out", [".", "..", ""])
def test_out_that_contains_the_working_folder_is_refused(tmp_path, monkeypatch, out):
    inner = tmp_path / "inner"
    inner.mkdir()
    (inner / "precious.txt").write_text("keep")
    monkeypatch.chdir(inner)
    with pytest.raises(OutputError):
        check_out_dir(out, overwrite=True)
    assert (inner / "precious.txt").read_text() == "keep"


def test_overwrite_never_replaces_a_file_or_a_folder_without_a_run(tmp_path):
    (tmp_path / "scenario.yaml").write_text("keep")
    with pytest.raises(OutputError, match="is a file"):
        check_out_dir(tmp_path / "scenario.yaml", overwrite=True)
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("keep")
    with pytest.raises(OutputError, match="not a tokenflow run"):
        check_out_dir(folder, overwrite=True)
    with pytest.raises(OutputExistsError):
        check_out_dir(folder, overwrite=False)
    assert (folder / "notes.txt").read_text() == "keep"


def test_cli_refuses_a_bad_out_before_simulating(tmp_path, capsys):
    target = tmp_path / "file.txt"
    target.write_text("keep")
    code = main(
        [
            "simulate",
            "two-node",
            "--hours",
            "1",
            "--out",
            str(target),
            "--overwrite",
            "--no-progress",
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file" in err
    assert target.read_text() == "keep"


def test_overwrite_spares_a_folder_with_a_summary_json_and_other_files(tmp_path):
    # A user's project folder that happens to hold a summary.json is not a run.
    folder = tmp_path / "project"
    (folder / "code").mkdir(parents=True)
    (folder / "code" / "main.py").write_text("print(1)")
    (folder / "summary.json").write_text('{"epoch": 3}')
    with pytest.raises(OutputError, match="not a tokenflow run"):
        check_out_dir(folder, overwrite=True)
    assert (folder / "code" / "main.py").read_text() == "print(1)"


def test_absurd_demand_scale_is_a_usage_error(capsys):
    assert main(["clear", "us5", "--demand-scale", "1e300"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--demand-scale" in err
