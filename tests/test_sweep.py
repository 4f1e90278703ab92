"""Sweeps: validation, parallel equals serial, resume after a kill, Dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from sim.cli import main
from sim.sweep import SweepOutputError, read_failures, read_results, run_sweep
from sim.sweep_report import numeric_axis, write_sweep_report
from sim.sweep_spec import SweepError, load_sweep, sweep_from_dict

REPO = Path(__file__).resolve().parent.parent


def _tiny(**changes) -> dict:
    """Four 3-hour runs of two-node: two markups x two seeds."""
    return {
        "name": "tiny",
        "scenario": "two-node",
        "hours": 3,
        "seeds": [1, 2],
        "grid": {"strategy": ["markup:markup=0", "markup:markup=0.5"]},
        **changes,
    }


def _write(tmp_path: Path, data: dict, name: str = "sweep.yaml") -> Path:
    import yaml

    path = tmp_path / name
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


# -- sweep files -----------------------------------------------------------------


def test_a_grid_times_seeds_gives_every_run_once_with_stable_ids():
    sweep = sweep_from_dict(_tiny())
    runs = sweep.runs()
    assert len(runs) == 4
    assert len({r.run_id for r in runs}) == 4
    assert [r.run_id for r in sweep_from_dict(_tiny()).runs()] == [
        r.run_id for r in runs
    ]
    assert sweep.swept == ["strategy"]
    # A different number of hours is a different run.
    other = sweep_from_dict(_tiny(hours=4)).runs()
    assert not {r.run_id for r in other} & {r.run_id for r in runs}


def test_runs_combine_with_the_grid():
    data = _tiny(runs=[{"design": "nodal"}, {"design": "uniform"}])
    sweep = sweep_from_dict(data)
    assert len(sweep.points) == 4
    assert set(sweep.swept) == {"strategy", "design"}


@pytest.mark.parametrize(
    "change, field, words",
    [
        ({"hours": 0}, "hours", ">= 1"),
        ({"seeds": []}, "seeds", "non-empty"),
        ({"seeds": [1, 1]}, "seeds", "twice"),
        ({"seeds": [-1]}, "seeds[0]", ">= 0"),
        ({"scenario": "nowhere.yaml"}, "scenario", "no such file"),
        ({"grid": {"markup": [0.1]}}, "grid.markup", "unknown parameter"),
        ({"grid": {"strategy": []}}, "grid.strategy", "non-empty"),
        ({"grid": {"strategy": ["bogus"]}}, "run 1", "unknown strategy"),
        ({"grid": {"design": ["zonal"]}}, "run 1", "no zones"),
        ({"grid": {"demand_scale": [-1.0]}}, "run 1", ">= 0"),
        ({"grid": {"owners": [0]}}, "run 1", "owners"),
        ({"start": "yesterday"}, "start", "ISO 8601"),
        ({"elastic": "yes"}, "elastic", "true or false"),
        ({"colour": "blue"}, "colour", "unknown field"),
        ({"hours": 10**8}, "hours", "at most"),
        ({"seeds": [2**40]}, "seeds", "below 2**32"),
        ({"grid": {"price_cap_usd_per_gpu_hour": ["5"]}}, "price_cap", "number"),
        ({"grid": {"latency_limits": [5]}}, "latency_limits", "mapping"),
        ({"grid": {"link_capacity_scale": [True]}}, "link_capacity", "number"),
        ({"grid": {"demand_scale": [1, 1.0]}}, "grid", "same run twice"),
    ],
)
def test_bad_sweep_files_name_the_field_and_reason(change, field, words):
    with pytest.raises(SweepError) as info:
        sweep_from_dict(_tiny(**change), "s.yaml")
    assert info.value.field.startswith(field)
    assert words in info.value.reason
    assert str(info.value).startswith("s.yaml: ")


def test_bundled_sweeps_load():
    for name, runs in (("markup", 15), ("designs", 24), ("small", 4)):
        sweep = load_sweep(REPO / "sweeps" / f"{name}.yaml")
        assert len(sweep.runs()) == runs


# -- running ------------------------------------------------------------------------


def test_two_workers_write_the_same_rows_as_one(tmp_path):
    sweep = sweep_from_dict(_tiny())
    one = run_sweep(sweep, tmp_path / "one", workers=1, progress=False)
    two = run_sweep(sweep, tmp_path / "two", workers=2, progress=False)
    assert one.runs_done == two.runs_done == 4
    a, b = read_results(tmp_path / "one"), read_results(tmp_path / "two")
    pd.testing.assert_frame_equal(a, b)
    # The markup raised the price in every seed.
    lmp = a.groupby("param_strategy")["mean_lmp_usd_per_mtok"].mean()
    assert lmp["markup:markup=0.5"] > lmp["markup:markup=0"]


def test_a_rerun_skips_finished_runs_and_redoes_missing_ones(tmp_path):
    sweep = sweep_from_dict(_tiny())
    out = tmp_path / "out"
    run_sweep(sweep, out, workers=1, progress=False)
    before = read_results(out)
    victim = sorted((out / "runs").glob("*.parquet"))[0]
    victim.unlink()
    counts = run_sweep(sweep, out, workers=1, progress=False)
    assert (counts.runs_skipped, counts.runs_done, counts.runs_failed) == (3, 1, 0)
    pd.testing.assert_frame_equal(read_results(out), before)


def test_a_killed_sweep_resumes_to_the_uninterrupted_dataset(tmp_path):
    data = _tiny(hours=40, seeds=[1, 2, 3])
    path = _write(tmp_path, data)
    full = tmp_path / "full"
    run_sweep(load_sweep(path), full, workers=1, progress=False)

    out = tmp_path / "killed"
    command = [
        sys.executable,
        "-m",
        "sim.cli",
        "sweep",
        str(path),
        "--out",
        str(out),
        "--workers",
        "1",
        "--no-progress",
    ]
    process = subprocess.Popen(command, cwd=REPO, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len(list((out / "runs").glob("*.parquet"))) >= 2:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    finished = len(list((out / "runs").glob("*.parquet")))
    assert 2 <= finished < 6, "the kill should land mid-sweep"

    counts = run_sweep(load_sweep(path), out, workers=1, progress=False)
    assert counts.runs_skipped == finished
    assert counts.runs_done == 6 - finished
    assert not list((out / "runs").glob(".*"))
    pd.testing.assert_frame_equal(read_results(out), read_results(full))


def test_a_failed_run_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    import sim.sweep as sweep_module

    def flaky(spec):
        if spec["seed"] == 2:
            raise RuntimeError("solver exploded")
        return real(spec)

    real = sweep_module.execute
    monkeypatch.setattr(sweep_module, "execute", flaky)
    sweep = sweep_from_dict(_tiny())
    counts = run_sweep(sweep, tmp_path / "out", workers=1, progress=False)
    assert (counts.runs_done, counts.runs_failed) == (2, 2)
    failures = read_failures(tmp_path / "out")
    assert {f["seed"] for f in failures} == {2}
    assert all("RuntimeError: solver exploded" in f["error"] for f in failures)
    # Once the cause is gone, a rerun redoes exactly the failed runs.
    monkeypatch.setattr(sweep_module, "execute", real)
    again = run_sweep(sweep, tmp_path / "out", workers=1, progress=False)
    assert (again.runs_skipped, again.runs_done, again.runs_failed) == (2, 2, 0)
    assert read_failures(tmp_path / "out") == []


def test_the_dask_path_on_a_local_cluster_gives_the_same_rows(tmp_path):
    pytest.importorskip("distributed")
    sweep = sweep_from_dict(_tiny())
    run_sweep(sweep, tmp_path / "local", workers=1, progress=False)
    counts = run_sweep(
        sweep, tmp_path / "dask", workers=2, scheduler="local", progress=False
    )
    assert counts.runs_done == 4
    pd.testing.assert_frame_equal(
        read_results(tmp_path / "dask"), read_results(tmp_path / "local")
    )


def test_an_out_folder_of_something_else_is_refused(tmp_path):
    sweep = sweep_from_dict(_tiny())
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(SweepOutputError, match="no sweep.json"):
        run_sweep(sweep, other, workers=1, progress=False)
    assert (other / "notes.txt").read_text() == "mine"
    first = tmp_path / "first"
    run_sweep(sweep, first, workers=1, progress=False)
    renamed = sweep_from_dict(_tiny(name="another"))
    with pytest.raises(SweepOutputError, match="holds sweep 'tiny'"):
        run_sweep(renamed, first, workers=1, progress=False)


def test_cli_sweep_prints_the_counts_as_json(tmp_path, capsys):
    path = _write(tmp_path, _tiny())
    out = tmp_path / "out"
    args = [
        "sweep",
        str(path),
        "--out",
        str(out),
        "--workers",
        "1",
        "--json",
        "--no-progress",
    ]
    assert main(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["runs_total"] == 4 and first["runs_done"] == 4
    assert main(args) == 0
    second = json.loads(capsys.readouterr().out)
    assert (second["runs_done"], second["runs_skipped"], second["runs_failed"]) == (
        0,
        4,
        0,
    )


# -- report ---------------------------------------------------------------------------


def test_sweep_report_tables_the_grid_and_draws_against_the_markup(tmp_path):
    out = tmp_path / "out"
    run_sweep(sweep_from_dict(_tiny()), out, workers=1, progress=False)
    results = read_results(out)
    name, x = numeric_axis(results, "strategy")
    assert name.startswith("markup (strategy markup:markup=")
    assert sorted(set(x)) == [0.0, 0.5]
    written = write_sweep_report(out)
    assert (out / "figures" / "sweep-strategy.png") in written
    text = (out / "sweep-report.md").read_text()
    # The table's mean LMP of markup 0.5 is the mean over its two seeds.
    rows = results[results["param_strategy"] == "markup:markup=0.5"]
    expected = rows["mean_lmp_usd_per_mtok"].mean()
    assert f"{expected:.4g}" in text
    with pytest.raises(ValueError, match="--overwrite"):
        write_sweep_report(out)
    assert write_sweep_report(out, overwrite=True)


def test_a_changed_sweep_leaves_its_old_runs_out_of_results(tmp_path):
    out = tmp_path / "out"
    run_sweep(sweep_from_dict(_tiny()), out, workers=1, progress=False)
    longer = sweep_from_dict(_tiny(hours=4))
    counts = run_sweep(longer, out, workers=1, progress=False)
    assert (counts.runs_done, counts.runs_skipped) == (4, 0)
    assert len(list((out / "runs").glob("*.parquet"))) == 8
    results = read_results(out)
    assert len(results) == 4 and set(results["hours"]) == {4}


def test_a_damaged_run_file_is_set_aside_and_run_again(tmp_path):
    sweep = sweep_from_dict(_tiny())
    out = tmp_path / "out"
    run_sweep(sweep, out, workers=1, progress=False)
    before = read_results(out)
    victim = sorted((out / "runs").glob("*.parquet"))[1]
    victim.write_bytes(victim.read_bytes()[:20])
    counts = run_sweep(sweep, out, workers=1, progress=False)
    assert (counts.runs_done, counts.runs_skipped) == (1, 3)
    assert (out / "damaged" / victim.name).exists()
    pd.testing.assert_frame_equal(read_results(out), before)


def test_a_bad_or_silent_scheduler_is_a_clear_error(tmp_path):
    from sim.sweep import SchedulerError

    sweep = sweep_from_dict(_tiny())
    with pytest.raises(SchedulerError, match="must be 'local' or a Dask address"):
        run_sweep(sweep, tmp_path / "a", scheduler="foo", progress=False)
    assert not (tmp_path / "a").exists()
