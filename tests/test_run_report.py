"""Figures and report.md of a run folder (``tokenflow report``).

Every test builds its own small run folder with the target schema: two nodes
(VA, IL) joined by one link, two workloads, two providers and 30 hourly steps.
The link is full in steps 10 to 20, step 25 does not clear (no prices, no
money), provider alpha's markup moves while beta stays truthful. The values
the report must show are computed here from these tables, not by the code
under test.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.path import Path as PolygonPath

from sim import run_figures as rf
from sim import run_map
from sim.cli import main
from sim.run_report import FIGURE_NAMES, ReportError, write_report
from sim.us_outline import OUTLINE_LON_LAT

STEPS = 30
NODES = {"VA": (39.04, -77.49), "IL": (42.00, -87.97)}
WORKLOADS = ("chat", "batch")
PROVIDERS = ("alpha", "beta")
SATURATED_STEPS = set(range(10, 21))  # 11 steps
INFEASIBLE_STEP = 25
CAPACITY_GBPS = 10.0
START = pd.Timestamp("2025-01-06 00:00", tz="UTC")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# ---------------------------------------------------------------- the run


def _prices(rng) -> pd.DataFrame:
    rows = []
    for step in range(1, STEPS + 1):
        full = step in SATURATED_STEPS
        for w, workload in enumerate(WORKLOADS):
            for node in NODES:
                lmp = (0.8 if workload == "chat" else 0.3) + 0.05 * rng.random()
                lmp += 0.4 if (full and node == "IL") else 0.0
                demand = (2e6 if w == 0 else 5e5) * (1.0 + 0.3 * rng.random())
                served = demand if step != INFEASIBLE_STEP else 0.8 * demand
                if step == INFEASIBLE_STEP:
                    lmp = np.nan
                rows.append(
                    {
                        "step": step,
                        "time_utc": START + pd.Timedelta(hours=step - 1),
                        "hour_utc": float((step - 1) % 24),
                        "workload": workload,
                        "node": node,
                        "lmp_usd_per_mtok": lmp,
                        "competitive_lmp_usd_per_mtok": lmp / 1.1,
                        "demand_tokens_per_s": demand,
                        "served_tokens_per_s": served,
                    }
                )
    return pd.DataFrame(rows)


def _links(rng) -> pd.DataFrame:
    rows = []
    for step in range(1, STEPS + 1):
        full = step in SATURATED_STEPS
        flow = CAPACITY_GBPS if full else CAPACITY_GBPS * (0.3 + 0.6 * rng.random())
        shadow = 50.0 + 10 * rng.random() if full else 0.0
        rows.append(
            {
                "step": step,
                "time_utc": START + pd.Timedelta(hours=step - 1),
                "hour_utc": float((step - 1) % 24),
                "link": "VA-IL",
                "a": "VA",
                "b": "IL",
                "flow_gbps": flow,
                "capacity_gbps": CAPACITY_GBPS,
                "utilisation": flow / CAPACITY_GBPS,
                "shadow_price_usd_per_gbps_h": shadow,
                "congestion_rent_usd": shadow * CAPACITY_GBPS,
                "saturated": full,
            }
        )
    return pd.DataFrame(rows)


def _providers(rng) -> pd.DataFrame:
    rows = []
    for step in range(1, STEPS + 1):
        for provider in PROVIDERS:
            revenue = 1000.0 + 500.0 * rng.random()
            cost = 0.7 * revenue
            markup = 0.1 + 0.2 * step / STEPS if provider == "alpha" else 0.0
            if step == INFEASIBLE_STEP:
                revenue = cost = np.nan
            rows.append(
                {
                    "step": step,
                    "provider": provider,
                    "revenue_usd": revenue,
                    "cost_usd": cost,
                    "profit_usd": revenue - cost,
                    "markup": markup,
                    "offered_gpus": 1000.0,
                    "competitive_profit_usd": 0.5 * (revenue - cost),
                }
            )
    return pd.DataFrame(rows)


def _steps(prices, links, providers) -> pd.DataFrame:
    """Per-step money and means, computed from the other tables."""
    rows = []
    for step in range(1, STEPS + 1):
        p = prices[prices["step"] == step]
        served = p["served_tokens_per_s"]
        ok = step != INFEASIBLE_STEP
        money = 1.0 if ok else np.nan
        revenue = providers.loc[providers["step"] == step, "revenue_usd"].sum()
        rent = links.loc[links["step"] == step, "congestion_rent_usd"].sum()
        rows.append(
            {
                "step": step,
                "time_utc": START + pd.Timedelta(hours=step - 1),
                "hour_utc": float((step - 1) % 24),
                "status": "optimal" if ok else "infeasible",
                "degenerate": step == 3,
                "total_cost_usd": money * 0.7 * revenue,
                "consumer_payments_usd": money * (revenue + rent + 100.0),
                "consumer_surplus_usd": money * 250.0,
                "provider_revenues_usd": money * revenue,
                "provider_costs_usd": money * 0.7 * revenue,
                "provider_profits_usd": money * 0.3 * revenue,
                "transfer_charges_usd": money * 100.0,
                "congestion_rents_usd": money * rent,
                "merchandising_surplus_usd": money * (rent + 100.0),
                "welfare_usd": money * (250.0 + 0.3 * revenue + rent + 100.0),
                "unserved_tokens_per_s": 0.0 if ok else 0.2 * served.sum() / 0.8,
                "mean_lmp_usd_per_mtok": _weighted(p, "lmp_usd_per_mtok"),
                "competitive_mean_lmp_usd_per_mtok": _weighted(
                    p, "competitive_lmp_usd_per_mtok"
                ),
            }
        )
    return pd.DataFrame(rows)


def _weighted(prices: pd.DataFrame, column: str) -> float:
    """Served-token-weighted mean of a price column over priced rows."""
    priced = prices[prices[column].notna() & (prices["served_tokens_per_s"] > 0)]
    if priced.empty:
        return np.nan
    weights = priced["served_tokens_per_s"].to_numpy()
    return float(np.sum(priced[column].to_numpy() * weights) / np.sum(weights))


def _summary(steps, prices, providers) -> dict:
    by_provider = providers.groupby("provider")[["revenue_usd", "profit_usd"]].sum()
    money = {
        key: float(np.nansum(steps[key]))
        for key in (
            "total_cost_usd",
            "consumer_payments_usd",
            "consumer_surplus_usd",
            "provider_revenues_usd",
            "provider_costs_usd",
            "transfer_charges_usd",
            "congestion_rents_usd",
            "merchandising_surplus_usd",
            "welfare_usd",
        )
    }
    mean = _weighted(prices, "lmp_usd_per_mtok")
    competitive = _weighted(prices, "competitive_lmp_usd_per_mtok")
    return {
        "scenario": "synthetic",
        "bandwidth_model": "transfer",
        "hours": STEPS,
        "steps": STEPS,
        "seed": 7,
        "start_time_utc": START.isoformat(),
        "strategy": "alpha=learning, beta=truthful",
        **money,
        "provider_profits_usd": float(by_provider["profit_usd"].sum()),
        "provider_profits_by_provider_usd": by_provider["profit_usd"].to_dict(),
        "lerner_index_by_provider": (
            by_provider["profit_usd"] / by_provider["revenue_usd"]
        ).to_dict(),
        "mean_lmp_usd_per_mtok": mean,
        "mean_competitive_lmp_usd_per_mtok": competitive,
        "price_markup_over_competitive": mean / competitive - 1.0,
        "unserved_token_hours": float(steps["unserved_tokens_per_s"].sum()),
        "infeasible_steps": int((steps["status"] != "optimal").sum()),
        "degenerate_steps": int(steps["degenerate"].sum()),
    }


def make_run(folder: Path, seed: int = 1) -> dict[str, pd.DataFrame]:
    """Write a run folder of the target schema; return its tables."""
    rng = np.random.default_rng(seed)
    prices, links, providers = _prices(rng), _links(rng), _providers(rng)
    steps = _steps(prices, links, providers)
    nodes = pd.DataFrame(
        [
            {"node": n, "name": n, "lat": lat, "lon": lon, "utc_offset_h": -5}
            for n, (lat, lon) in NODES.items()
        ]
    )
    unserved = pd.DataFrame(
        {
            "step": [INFEASIBLE_STEP],
            "hour_utc": [float(INFEASIBLE_STEP - 1)],
            "workload": ["chat"],
            "node": ["IL"],
            "tokens_per_s": [steps["unserved_tokens_per_s"].max()],
            "reason": ["capacity"],
        }
    )
    tables = {
        "steps": steps,
        "prices": prices,
        "links": links,
        "providers": providers,
        "nodes": nodes,
        "unserved": unserved,
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    summary = _summary(steps, prices, providers)
    (folder / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    return tables


def strip_to_today(folder: Path) -> None:
    """Rewrite a run folder as today's runs are: no time_utc, no benchmark,
    no markup, no nodes table and a shorter summary."""
    drop = {
        "steps": ["time_utc", "competitive_mean_lmp_usd_per_mtok"],
        "prices": ["time_utc", "competitive_lmp_usd_per_mtok"],
        "links": ["time_utc"],
        "providers": ["markup", "offered_gpus", "competitive_profit_usd"],
    }
    for name, columns in drop.items():
        path = folder / f"{name}.parquet"
        pd.read_parquet(path).drop(columns=columns).to_parquet(path, index=False)
    (folder / "nodes.parquet").unlink()
    summary = json.loads((folder / "summary.json").read_text())
    for key in (
        "consumer_surplus_usd",
        "lerner_index_by_provider",
        "mean_competitive_lmp_usd_per_mtok",
        "price_markup_over_competitive",
        "welfare_usd",
    ):
        summary.pop(key)
    (folder / "summary.json").write_text(json.dumps(summary))


@pytest.fixture
def run(tmp_path):
    folder = tmp_path / "run"
    return folder, make_run(folder)


def _line(text: str, *words: str) -> str:
    """The one line of ``text`` that holds every word."""
    found = [line for line in text.splitlines() if all(w in line for w in words)]
    assert len(found) == 1, f"{words}: {found}"
    return found[0]


# ---------------------------------------------------------------- figures


def test_price_series_has_a_panel_per_workload_and_a_line_per_node(run):
    _, tables = run
    fig = rf.price_series(tables["prices"])
    assert isinstance(fig, Figure)
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == list(WORKLOADS)
    for ax in axes:
        assert "USD/Mtok" in ax.get_ylabel()
        assert len(ax.get_lines()) == len(NODES)
    assert "UTC" in axes[-1].get_xlabel()
    chat_va = tables["prices"].query("workload == 'chat' and node == 'VA'")
    drawn = axes[0].get_lines()[0].get_ydata()
    np.testing.assert_allclose(drawn, chat_va["lmp_usd_per_mtok"], equal_nan=True)


def test_price_series_falls_back_to_hours_without_time(run):
    _, tables = run
    fig = rf.price_series(tables["prices"].drop(columns="time_utc"))
    bottom = [ax for ax in fig.axes if ax.get_visible()][-1]
    assert bottom.get_xlabel() == "hours since the start of the run (h)"
    assert bottom.get_lines()[0].get_xdata()[[0, -1]].tolist() == [0.0, STEPS - 1]


def test_congestion_heatmap_marks_exactly_the_saturated_steps(run):
    _, tables = run
    ax = rf.congestion_heatmap(tables["links"].drop(columns="time_utc"))
    assert isinstance(ax, Axes)
    assert "(h)" in ax.get_xlabel()
    utilisation, marks = ax.get_images()
    assert utilisation.get_array().shape == (1, STEPS)
    marked = np.flatnonzero(~np.isnan(np.asarray(marks.get_array(), dtype=float)[0]))
    assert set(marked + 1) == SATURATED_STEPS
    colorbar = ax.figure.axes[-1]
    assert "flow / capacity" in colorbar.get_ylabel()


def test_congestion_heatmap_shows_days_for_long_runs(run):
    _, tables = run
    links = tables["links"]
    weeks = pd.concat(
        [links.assign(step=links["step"] + STEPS * k) for k in range(8)],
        ignore_index=True,
    ).drop(columns="time_utc")
    ax = rf.congestion_heatmap(weeks)
    assert ax.get_images()[0].get_array().shape == (1, 10)  # 240 hours, 10 days
    assert "(d)" in ax.get_xlabel()


def test_provider_money_draws_revenue_and_profit_per_provider(run):
    _, tables = run
    fig = rf.provider_money(tables["providers"])
    top, bottom = fig.axes
    assert top.get_ylabel() == "revenue (USD per hour)"
    assert bottom.get_ylabel() == "profit (USD per hour)"
    assert [line.get_label() for line in top.get_lines()] == list(PROVIDERS)
    assert [t.get_text() for t in fig.legends[0].get_texts()] == list(PROVIDERS)
    beta = tables["providers"].query("provider == 'beta'")
    np.testing.assert_allclose(
        bottom.get_lines()[1].get_ydata(), beta["profit_usd"], equal_nan=True
    )


def test_network_map_colours_nodes_by_mean_lmp_and_flags_the_link(run):
    _, tables = run
    ax = run_map.network_map(tables["nodes"], tables["links"], tables["prices"], "chat")
    assert "degrees" in ax.get_xlabel() and "degrees" in ax.get_ylabel()
    assert "USD per million tokens" in ax.figure.axes[-1].get_ylabel()
    assert len(ax.patches) == 1  # the U.S. outline
    chat = tables["prices"].query("workload == 'chat'")
    expected = chat.groupby("node")["lmp_usd_per_mtok"].mean()[list(NODES)]
    colours = ax.collections[0].get_array()
    np.testing.assert_allclose(colours, expected.to_numpy())
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["saturated in some hours"]  # 11 of 30 steps
    assert {t.get_text() for t in ax.texts} == set(NODES)


def test_network_map_leaves_the_outline_out_for_nodes_elsewhere(run):
    _, tables = run
    nodes = tables["nodes"].assign(lat=[0.0, 0.0], lon=[0.0, 1.0])
    ax = run_map.network_map(nodes, tables["links"], tables["prices"], "batch", step=3)
    assert len(ax.patches) == 0
    assert "step 3" in ax.get_title()


def test_network_map_without_links_draws_the_nodes_alone(run):
    _, tables = run
    no_links = tables["links"].iloc[0:0]
    ax = run_map.network_map(tables["nodes"], no_links, tables["prices"], "chat")
    assert ax.get_legend() is None
    assert len(ax.get_lines()) == 0
    assert len(ax.collections[0].get_offsets()) == len(NODES)


def test_price_duration_sorts_every_workload_from_high_to_low(run):
    _, tables = run
    ax = rf.price_duration(tables["prices"])
    assert "(%)" in ax.get_xlabel()
    assert "USD per million tokens" in ax.get_ylabel()
    chat, batch = ax.get_lines()
    y = chat.get_ydata()
    assert np.all(np.diff(y) <= 0)
    priced = tables["prices"].query("workload == 'chat'")["lmp_usd_per_mtok"]
    assert len(y) == priced.notna().sum() == 2 * (STEPS - 1)
    assert chat.get_xdata()[-1] == pytest.approx(100.0)


def test_markup_series_leaves_out_providers_without_a_markup(run):
    _, tables = run
    providers = tables["providers"].copy()
    providers.loc[providers["provider"] == "beta", "markup"] = np.nan
    ax = rf.markup_series(providers)
    assert "(%)" in ax.get_ylabel()
    zero, *lines = ax.get_lines()
    assert [line.get_label() for line in lines] == ["alpha"]
    assert lines[0].get_ydata()[-1] == pytest.approx(30.0)


def test_competitive_prices_draws_both_means(run):
    _, tables = run
    ax = rf.competitive_prices(tables["steps"])
    assert "USD/Mtok" in ax.get_ylabel() and ax.get_xlabel() == "time (UTC)"
    actual, competitive = ax.get_lines()
    np.testing.assert_allclose(
        competitive.get_ydata(),
        tables["steps"]["competitive_mean_lmp_usd_per_mtok"],
        equal_nan=True,
    )


@pytest.mark.parametrize(
    ("draw", "table", "column"),
    [
        (rf.markup_series, "providers", "markup"),
        (rf.competitive_prices, "steps", "competitive_mean_lmp_usd_per_mtok"),
    ],
)
def test_figures_refuse_missing_or_empty_columns(run, draw, table, column):
    _, tables = run
    frame = tables[table]
    with pytest.raises(rf.FigureDataError, match=f"{table}.{column}: column is miss"):
        draw(frame.drop(columns=column))
    with pytest.raises(rf.FigureDataError, match="all NaN"):
        draw(frame.assign(**{column: np.nan}))


def _crosses(p, q, r, s) -> bool:
    """True if segment pq properly crosses segment rs."""

    def side(a, b, c):
        return np.sign((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    return side(p, q, r) * side(p, q, s) < 0 and side(r, s, p) * side(r, s, q) < 0


def test_us_outline_is_a_simple_ring_around_us_cities():
    ring = OUTLINE_LON_LAT
    assert 60 <= len(ring) <= 120
    edges = [(ring[i], ring[(i + 1) % len(ring)]) for i in range(len(ring))]
    for i, first in enumerate(edges):
        for second in edges[i + 2 : len(edges) - (i == 0)]:
            assert not _crosses(*first, *second), (first, second)

    outline = PolygonPath(ring)
    inside = {
        "Ashburn": (-77.49, 39.04),
        "Boston": (-71.06, 42.36),
        "Miami": (-80.19, 25.77),
        "Houston": (-95.37, 29.76),
        "Denver": (-104.99, 39.74),
        "Seattle": (-122.33, 47.61),
        "Los Angeles": (-118.24, 34.05),
        "Minneapolis": (-93.27, 44.98),
    }
    outside = {
        "Toronto": (-79.38, 43.65),
        "Montreal": (-73.57, 45.50),
        "Vancouver": (-123.12, 49.28),
        "Hermosillo": (-110.96, 29.07),
        "Monterrey": (-100.31, 25.67),
        "Havana": (-82.38, 23.13),
        "Gulf of Mexico": (-90.0, 27.0),
        "Atlantic": (-72.0, 35.0),
        "Pacific": (-127.0, 40.0),
    }
    assert all(outline.contains_point(p) for p in inside.values())
    assert not any(outline.contains_point(p) for p in outside.values())


# ---------------------------------------------------------------- report


def test_write_report_writes_every_figure_and_the_report(run):
    folder, _ = run
    written = write_report(folder)
    expected = [folder / "figures" / name for name in FIGURE_NAMES]
    assert written == [*expected, folder / "report.md"]
    for path in expected:
        assert path.read_bytes()[:8] == PNG_MAGIC
    text = (folder / "report.md").read_text()
    for name in FIGURE_NAMES:
        assert f"](figures/{name})" in text
    assert "Not in this report" not in text


def test_report_numbers_match_the_tables(run):
    folder, tables = run
    write_report(folder)
    text = (folder / "report.md").read_text()
    prices, providers = tables["prices"], tables["providers"]

    for workload in WORKLOADS:
        rows = prices[prices["workload"] == workload]
        mean = _weighted(rows, "lmp_usd_per_mtok")
        competitive = _weighted(rows, "competitive_lmp_usd_per_mtok")
        line = _line(text, f"| {workload} |")
        assert f"| {mean:.4f} | {competitive:.4f} |" in line
        assert f"{100 * (mean / competitive - 1):+.2f}%" in line

    overall = _weighted(prices, "lmp_usd_per_mtok")
    assert f"{overall:.4f} USD/Mtok" in _line(text, "mean LMP over all workloads")
    assert "+10.00%" in _line(text, "price markup over competitive")

    steps = tables["steps"]
    for column, label in (
        ("consumer_payments_usd", "| consumer payments |"),
        ("consumer_surplus_usd", "| consumer surplus |"),
        ("congestion_rents_usd", "| congestion rents |"),
    ):
        assert f"{np.nansum(steps[column]):,.2f}" in _line(text, label)

    for provider in PROVIDERS:
        rows = providers[providers["provider"] == provider]
        revenue, cost = np.nansum(rows["revenue_usd"]), np.nansum(rows["cost_usd"])
        profit = np.nansum(rows["profit_usd"])
        line = _line(text, f"| {provider} |")
        assert f"| {revenue:,.2f} | {cost:,.2f} | {profit:,.2f} |" in line
        assert f"| {profit / revenue:.4f} |" in line
        assert f"{100 * rows['markup'].mean():.2f}%" in line

    rent = tables["links"]["congestion_rent_usd"].sum()
    assert f"| VA-IL | {len(SATURATED_STEPS)} |" in _line(text, "| VA-IL |")
    assert f"{rent:,.2f}" in _line(text, "| VA-IL |")
    unserved = steps["unserved_tokens_per_s"].sum()
    assert f"{unserved * 3600 / 1e6:,.0f} million tokens" in text
    assert "- infeasible steps: 1 of 30" in text
    assert f"{len(SATURATED_STEPS)} of {STEPS} link-hours were saturated" in text


def test_report_refuses_to_overwrite_without_the_flag(run):
    folder, _ = run
    write_report(folder)
    report = folder / "report.md"
    report.write_text("kept")
    with pytest.raises(ReportError, match="report.md: exists; pass --overwrite"):
        write_report(folder)
    assert report.read_text() == "kept"

    report.unlink()
    with pytest.raises(ReportError, match="prices.png: exists"):
        write_report(folder)
    assert not report.exists()

    write_report(folder, overwrite=True)
    assert report.read_text().startswith("# Run report: synthetic")


def test_missing_run_folder_is_named(tmp_path):
    missing = tmp_path / "nowhere"
    with pytest.raises(ReportError, match="run folder does not exist") as err:
        write_report(missing)
    assert err.value.path == missing


def test_missing_summary_is_named(run):
    folder, _ = run
    (folder / "summary.json").unlink()
    with pytest.raises(ReportError, match="summary.json: is missing") as err:
        write_report(folder)
    assert err.value.path == folder / "summary.json"


def test_unreadable_summary_is_named(run):
    folder, _ = run
    (folder / "summary.json").write_text("{not json")
    with pytest.raises(ReportError, match="summary.json: cannot be read as JSON"):
        write_report(folder)


def test_missing_prices_table_is_named(run):
    folder, _ = run
    (folder / "prices.parquet").unlink()
    with pytest.raises(ReportError, match="prices.parquet: is missing") as err:
        write_report(folder)
    assert err.value.path == folder / "prices.parquet"
    assert not (folder / "report.md").exists()


def test_unreadable_table_is_named(run):
    folder, _ = run
    (folder / "links.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(ReportError, match="links.parquet: cannot be read as Parq"):
        write_report(folder)


def test_prices_table_without_a_required_column_is_named(run):
    folder, tables = run
    path = folder / "prices.parquet"
    tables["prices"].drop(columns="lmp_usd_per_mtok").to_parquet(path)
    with pytest.raises(ReportError, match="lacks the column.s. lmp_usd_per_mtok"):
        write_report(folder)


def test_report_on_todays_runs_leaves_out_what_is_missing(run, caplog):
    folder, tables = run
    strip_to_today(folder)
    with caplog.at_level(logging.INFO, logger="sim"):
        written = write_report(folder)

    names = {path.name for path in written}
    expected = {"prices.png", "congestion.png", "providers.png", "price-duration.png"}
    assert names == expected | {"report.md"}
    text = (folder / "report.md").read_text()
    assert "competitive" not in text.split("## Figures")[0]
    assert "consumer surplus" not in text and "Lerner" not in text
    left_out = text.split("## Not in this report")[1]
    assert "- network.png: nodes: table is missing" in left_out
    assert "- markup.png: providers.markup: column is missing" in left_out
    assert "competitive.png: steps.competitive_mean_lmp_usd_per_mtok" in left_out
    assert "markup.png left out" in caplog.text
    assert "consumer_surplus_usd" in caplog.text
    # The numbers that remain are still those of the tables.
    chat = tables["prices"].query("workload == 'chat'")
    assert f"| chat | {_weighted(chat, 'lmp_usd_per_mtok'):.4f} |" in text


def test_all_nan_markups_leave_the_markup_figure_out(run):
    folder, tables = run
    path = folder / "providers.parquet"
    tables["providers"].assign(markup=np.nan).to_parquet(path)
    written = write_report(folder)
    assert "markup.png" not in {p.name for p in written}
    text = (folder / "report.md").read_text()
    assert "markup.png: providers.markup: column has no values" in text
    assert "mean offered markup" not in text


# ---------------------------------------------------------------- command line


def test_cli_report_writes_and_then_refuses(run, capsys):
    folder, _ = run
    assert main(["report", str(folder), "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed[-1] == str(folder / "report.md")
    assert len(listed) == len(FIGURE_NAMES) + 1

    assert main(["report", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tokenflow: error: ")
    assert str(folder / "report.md") in err

    assert main(["report", str(folder), "--overwrite"]) == 0
    assert "report written to" in capsys.readouterr().out


def test_cli_report_names_a_missing_folder(tmp_path, capsys):
    missing = tmp_path / "no-run"
    assert main(["report", str(missing)]) == 2
    assert f"{missing}: run folder does not exist" in capsys.readouterr().err
