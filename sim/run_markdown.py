"""report.md of a run: the run in numbers, then its figures.

Totals come from summary.json; per-workload, per-provider and per-link numbers
from the tables. A line or column whose value the run does not record is left
out with a logged note.
"""

from __future__ import annotations

import logging
import math

import pandas as pd

from sim.run_data import RunData
from sim.run_figures import STEP_HOURS

logger = logging.getLogger(__name__)

FIGURE_DIR = "figures"
TOP_LINKS = 5


def _value(summary: dict, key: str) -> float | None:
    """A number of summary.json, or None when it is absent, null or NaN."""
    value = summary.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return None if math.isnan(value) else float(value)


def _has_values(frame: pd.DataFrame | None, column: str) -> bool:
    return frame is not None and column in frame and frame[column].notna().any()


def usd_text(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.2f}"


def price_text(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{100 * value:+.2f}%"


def _amount(value: float) -> str:
    """Whole numbers with thousands separators; small ones to 6 digits."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.6g}"


def _weighted_mean(prices: pd.DataFrame, column: str) -> pd.Series:
    """Mean of ``column`` per workload, weighted by served tokens/s."""
    served = prices["served_tokens_per_s"].astype(float)
    value = prices[column].astype(float)
    used = (served > 0) & value.notna()
    frame = pd.DataFrame(
        {
            "workload": prices["workload"][used],
            "product": (value * served)[used],
            "served": served[used],
        }
    )
    sums = frame.groupby("workload", sort=False)[["product", "served"]].sum()
    means = sums["product"] / sums["served"]
    return means.reindex(pd.unique(prices["workload"]))


def link_table(links: pd.DataFrame) -> pd.DataFrame:
    """Per link: hours saturated, mean utilisation and congestion rent (USD)."""
    frame = links.assign(saturated=links["saturated"].astype(bool))
    grouped = frame.groupby("link", sort=False)
    table = pd.DataFrame(
        {
            "hours_saturated": grouped["saturated"].sum() * STEP_HOURS,
            "mean_utilisation": grouped["utilisation"].mean(),
        }
    )
    if "congestion_rent_usd" in frame:
        table["congestion_rent_usd"] = grouped["congestion_rent_usd"].sum(min_count=1)
    return table.sort_values(
        ["hours_saturated", "mean_utilisation"], ascending=False, kind="stable"
    )


def provider_table(run: RunData) -> pd.DataFrame:
    """Per provider: revenue, cost, profit over the run, and what else is known."""
    providers = run.providers
    grouped = providers.groupby("provider", sort=False)
    # min_count: a provider with money in no cleared hour shows n/a, not 0.
    table = grouped[["revenue_usd", "cost_usd", "profit_usd"]].sum(min_count=1)
    lerner = run.summary.get("lerner_index_by_provider")
    if isinstance(lerner, dict) and lerner:
        table["lerner_index"] = pd.Series(lerner, dtype=float)
    if _has_values(providers, "markup"):
        table["mean_markup"] = grouped["markup"].mean()
    if _has_values(providers, "competitive_profit_usd"):
        table["competitive_profit_usd"] = grouped["competitive_profit_usd"].sum(
            min_count=1
        )
    return table


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def _run_section(run: RunData) -> list[str]:
    s = run.summary
    items = [
        ("scenario", s.get("scenario")),
        ("bandwidth model", s.get("bandwidth_model")),
        ("hours", s.get("hours")),
        ("steps", s.get("steps", run.steps["step"].nunique())),
        ("seed", s.get("seed")),
        ("start (UTC)", s.get("start_time_utc")),
        ("strategy", s.get("strategy")),
    ]
    rows = [[name, f"{value}"] for name, value in items if value is not None]
    return ["## Run", "", *_table(["item", "value"], rows), ""]


def _price_section(run: RunData) -> list[str]:
    means = _weighted_mean(run.prices, "lmp_usd_per_mtok")
    competitive = _has_values(run.prices, "competitive_lmp_usd_per_mtok")
    header = ["workload", "mean LMP (USD/Mtok)"]
    if competitive:
        comp = _weighted_mean(run.prices, "competitive_lmp_usd_per_mtok")
        header += ["mean competitive LMP (USD/Mtok)", "markup over competitive"]
    rows = []
    for workload, mean in means.items():
        row = [str(workload), price_text(mean)]
        if competitive:
            c = comp.get(workload)
            row += [price_text(c), _pct(mean / c - 1.0 if c else None)]
        rows.append(row)
    lines = ["## Prices", "", *_table(header, rows), ""]
    lines.append(
        "Means are weighted by the tokens served in each node and hour; hours "
        "that did not clear have no price."
    )

    overall = _value(run.summary, "mean_lmp_usd_per_mtok")
    mean_comp = _value(run.summary, "mean_competitive_lmp_usd_per_mtok")
    markup = _value(run.summary, "price_markup_over_competitive")
    lines += ["", f"- mean LMP over all workloads: {price_text(overall)} USD/Mtok"]
    if mean_comp is not None:
        lines.append(f"- mean competitive LMP: {price_text(mean_comp)} USD/Mtok")
    if markup is not None:
        lines.append(f"- price markup over competitive: {_pct(markup)}")
    if mean_comp is None and markup is None:
        _note("summary.json has no competitive benchmark; its lines are left out")
    return lines + [""]


MONEY_LINES = (
    ("consumer_payments_usd", "consumer payments"),
    ("consumer_surplus_usd", "consumer surplus"),
    ("provider_revenues_usd", "provider revenues"),
    ("provider_costs_usd", "provider costs (true cost)"),
    ("provider_profits_usd", "provider profits"),
    ("transfer_charges_usd", "transfer charges"),
    ("congestion_rents_usd", "congestion rents"),
    ("merchandising_surplus_usd", "merchandising surplus"),
    ("welfare_usd", "welfare"),
    ("total_cost_usd", "offer cost + transfer charges - value of accepted bids"),
)


def _money_section(run: RunData) -> list[str]:
    rows = []
    for key, label in MONEY_LINES:
        value = _value(run.summary, key)
        if value is None:
            _note(f"summary.json has no value for {key}; its line is left out")
            continue
        rows.append([label, usd_text(value)])
    if not rows:
        return [
            "## Money (USD over the run)",
            "",
            "No hour cleared, so no money changed hands.",
            "",
        ]
    return ["## Money (USD over the run)", "", *_table(["item", "USD"], rows), ""]


def _provider_section(run: RunData) -> list[str]:
    table = provider_table(run)
    if table.empty:
        return ["## Providers", "", "The run has no providers.", ""]
    header = ["provider", "revenue (USD)", "cost (USD)", "profit (USD)"]
    optional = (
        ("lerner_index", "Lerner index (profit / revenue)", lambda v: f"{v:.4f}"),
        ("mean_markup", "mean offered markup", lambda v: f"{100 * v:.2f}%"),
        ("competitive_profit_usd", "profit if truthful (USD)", usd_text),
    )
    present = [item for item in optional if item[0] in table]
    header += [label for _, label, _ in present]
    rows = []
    for name, row in table.iterrows():
        cells = [str(name), usd_text(row["revenue_usd"]), usd_text(row["cost_usd"])]
        cells.append(usd_text(row["profit_usd"]))
        cells += [_cell(row[col], fmt) for col, _, fmt in present]
        rows.append(cells)
    if "lerner_index" not in table:
        _note("summary.json has no lerner_index_by_provider; the column is left out")
    return ["## Providers", "", *_table(header, rows), ""]


def _cell(value, fmt) -> str:
    return "n/a" if value is None or pd.isna(value) else fmt(value)


def _congestion_section(run: RunData) -> list[str]:
    lines = ["## Congestion", ""]
    if run.links.empty:
        return lines + ["The network has no links.", ""]
    table = link_table(run.links)
    busy = table[table["hours_saturated"] > 0].head(TOP_LINKS)
    if busy.empty:
        return lines + ["No link was saturated in any hour.", ""]
    header = ["link", "hours saturated", "mean utilisation"]
    rent = "congestion_rent_usd" in busy
    header += ["congestion rent (USD)"] if rent else []
    rows = []
    for link, row in busy.iterrows():
        cells = [str(link), f"{row['hours_saturated']:g}"]
        cells.append(f"{row['mean_utilisation']:.3f}")
        cells += [usd_text(row["congestion_rent_usd"])] if rent else []
        rows.append(cells)
    title = f"Most congested links (at most {TOP_LINKS}, by hours saturated):"
    return lines + [title, "", *_table(header, rows), ""]


def _shortfall_section(run: RunData) -> list[str]:
    s = run.summary
    unserved = _value(s, "unserved_token_hours")
    if unserved is None and "unserved_tokens_per_s" in run.steps:
        unserved = float(run.steps["unserved_tokens_per_s"].sum() * STEP_HOURS)
    infeasible = _value(s, "infeasible_steps")
    if infeasible is None:
        infeasible = float((run.steps["status"] != "optimal").sum())
    degenerate = _value(s, "degenerate_steps")
    steps = run.steps["step"].nunique()
    lines = ["## Unserved demand and infeasible hours", ""]
    if unserved is not None:
        lines.append(
            f"- unserved demand: {_amount(unserved * 3600 / 1e6)} million tokens "
            "(hard demand not served in hours that did not clear, or shed)"
        )
    lapsed = _value(s, "deferred_lapsed_token_hours")
    if lapsed is not None:
        lines.append(
            f"- deferred work that lapsed unserved: {_amount(lapsed * 3600 / 1e6)} "
            "million tokens"
        )
    if s.get("elastic_demand") is False:
        lines.append(
            "- demand was bid as hard demand (--inelastic): it has no stated "
            "value, so consumer surplus and welfare count it at the shed penalty "
            "or at zero and are not comparable with elastic runs"
        )
    lines.append(f"- infeasible steps: {infeasible:g} of {steps}")
    if degenerate is not None:
        lines.append(f"- degenerate steps (prices not unique): {degenerate:g}")
    return lines + [""]


def report_markdown(
    run: RunData,
    shown: list[tuple[str, str, str]],
    skipped: list[tuple[str, str]],
) -> str:
    """report.md: the run in numbers, then ``shown`` figures (file name, title,
    sentence), then the figures left out (file name, reason)."""
    title = run.summary.get("scenario") or run.run_dir.name
    lines = [
        f"# Run report: {title}",
        "",
        "Written by `tokenflow report` from the tables in this folder. Money is "
        "in USD over the whole run; prices are in USD per million tokens "
        "(USD/Mtok).",
        "",
    ]
    lines += _run_section(run) + _price_section(run) + _money_section(run)
    lines += _provider_section(run) + _congestion_section(run)
    lines += _shortfall_section(run)
    lines += ["## Figures", ""]
    for name, heading, sentence in shown:
        lines += [f"### {heading}", "", f"![{heading}]({FIGURE_DIR}/{name})", ""]
        lines += [sentence, ""]
    if skipped:
        lines += ["## Not in this report", ""]
        lines += [f"- {name}: {reason}" for name, reason in skipped]
        lines.append("")
    return "\n".join(lines)


def _note(message: str) -> None:
    logger.info("report: %s", message)
