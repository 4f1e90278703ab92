"""Figures of one simulated run, drawn from the tables of its run folder.

Each function takes tidy DataFrames with the run folder's column names, draws
on an optional Axes (small multiples: an optional Figure, documented as such),
labels its axes with units and returns what it drew on; none calls
``plt.show()``. When the data a figure needs is missing, empty or all NaN, the
function raises ``FigureDataError`` naming the table and column, so that a
caller can leave the figure out.

The x axis is UTC time when the table has a ``time_utc`` column with values,
and hours since the start of the run otherwise (from ``step``).
"""

from __future__ import annotations

import logging
import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.ticker import StrMethodFormatter  # noqa: E402

logger = logging.getLogger(__name__)

STEP_HOURS = 1.0  # a step of a run folder is one hour
DAILY_ABOVE_STEPS = 24 * 7  # longer runs show money and congestion per day
PRICE_LABEL = "LMP (USD per million tokens)"


class FigureDataError(ValueError):
    """The data a figure needs is missing, empty or without values."""

    def __init__(self, table: str, column: str | None, reason: str):
        self.table, self.column = table, column
        where = f"{table}.{column}" if column else table
        super().__init__(f"{where}: {reason}")


def require(frame: pd.DataFrame | None, table: str, *columns: str) -> None:
    """Raise FigureDataError unless ``frame`` has rows and values in ``columns``."""
    if frame is None:
        raise FigureDataError(table, None, "table is missing")
    if frame.empty:
        raise FigureDataError(table, None, "table has no rows")
    for column in columns:
        if column not in frame.columns:
            raise FigureDataError(table, column, "column is missing")
        if frame[column].isna().all():
            raise FigureDataError(table, column, "column has no values (all NaN)")


def _axes(ax, figsize=(8, 4.5)):
    if ax is None:
        _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def _has_time(frame: pd.DataFrame) -> bool:
    return "time_utc" in frame.columns and frame["time_utc"].notna().all()


def _utc(times: pd.Series) -> pd.Series:
    """UTC times without a time zone attached (matplotlib plots them as UTC)."""
    return pd.to_datetime(times, utc=True).dt.tz_localize(None)


def timeline(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    """The x value of every row and the axis label that goes with it."""
    if _has_time(frame):
        return _utc(frame["time_utc"]), "time (UTC)"
    hours = (frame["step"].astype(float) - 1.0) * STEP_HOURS
    return hours, "hours since the start of the run (h)"


def _day_key(frame: pd.DataFrame) -> tuple[pd.Series, str]:
    """The day of every row: a UTC date, or whole days since the start."""
    if _has_time(frame):
        return _utc(frame["time_utc"]).dt.floor("D"), "day (UTC)"
    hours = (frame["step"].astype(float) - 1.0) * STEP_HOURS
    return hours // 24.0, "days since the start of the run (d)"


def _dates_if(ax, is_time: bool) -> None:
    if is_time:
        locator = mdates.AutoDateLocator(minticks=3, maxticks=6)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def _colours(names) -> dict[str, tuple]:
    """One colour per name, stable in the order given."""
    cmap = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    return {name: cmap(i % cmap.N) for i, name in enumerate(names)}


def _panel_grid(fig, count: int, xlabel: str):
    """``count`` panels sharing x; each column's lowest panel shows the x axis."""
    ncols = 1 if count <= 2 else 2
    nrows = math.ceil(count / ncols)
    axes = fig.subplots(nrows, ncols, sharex=True, squeeze=False).ravel()
    for ax in axes[count:]:
        ax.set_visible(False)
    for i, ax in enumerate(axes[:count]):
        if i + ncols >= count:
            ax.xaxis.set_tick_params(labelbottom=True)
            ax.set_xlabel(xlabel)
    return axes[:count]


def _same_everywhere(rows: pd.DataFrame) -> bool:
    """True if every node has the same price in every step (lines overlap),
    up to the clearing's tie-break offsets (about 1e-5 of a price)."""
    spread = rows.groupby("step")["lmp_usd_per_mtok"].agg(["min", "max"])
    scale = max(float(rows["lmp_usd_per_mtok"].abs().max()), 1e-12)
    return bool(((spread["max"] - spread["min"]).dropna() <= 1e-5 * scale).all())


def price_series(prices: pd.DataFrame, fig=None):
    """LMP over time: one panel per workload, one line per node.

    Small multiples, so the function takes and returns a Figure. Needs
    prices.step, workload, node and lmp_usd_per_mtok; uses time_utc if present.
    """
    require(prices, "prices", "step", "workload", "node", "lmp_usd_per_mtok")
    workloads = list(pd.unique(prices["workload"]))
    nodes = list(pd.unique(prices["node"]))
    colours = _colours(nodes)
    if fig is None:
        rows = math.ceil(len(workloads) / (1 if len(workloads) <= 2 else 2))
        fig = plt.figure(figsize=(10, 1.2 + 2.6 * rows), layout="constrained")
    x, xlabel = timeline(prices)
    panels = _panel_grid(fig, len(workloads), xlabel)

    separate = False
    for ax, workload in zip(panels, workloads, strict=True):
        rows = prices[prices["workload"] == workload]
        same = _same_everywhere(rows)
        for node, group in rows.groupby("node", sort=False):
            ax.plot(
                x[group.index],
                group["lmp_usd_per_mtok"],
                color="0.2" if same else colours[node],
                linewidth=1.1,
                label=node,
            )
            if same:
                # Every node's line would lie on this one.
                break
        separate |= not same
        title = " (same price at every node)" if same else ""
        ax.set_title(f"{workload}{title}", fontsize=10)
        ax.set_ylabel("LMP (USD/Mtok)")
        ax.grid(alpha=0.3)
        _dates_if(ax, _has_time(prices))

    if separate:
        handles = [Line2D([], [], color=colours[n], label=n) for n in nodes]
        ncols = 1 if len(nodes) <= 12 else 2
        fig.legend(
            handles=handles, title="node", loc="outside right upper", ncols=ncols
        )
    fig.suptitle("Locational marginal prices by workload (USD per million tokens)")
    return fig


def _link_grid(links: pd.DataFrame, per_day: bool):
    """Utilisation and saturation as (link x column) tables, busiest link first."""
    frame = links.assign(saturated=links["saturated"].astype(bool))
    if per_day:
        frame["column"] = _day_key(frame)[0]
    else:
        frame["column"] = frame["step"]
    utilisation = frame.pivot_table(
        index="link", columns="column", values="utilisation", aggfunc="mean"
    )
    saturated = frame.pivot_table(
        index="link", columns="column", values="saturated", aggfunc="max"
    )
    saturated = saturated.reindex_like(utilisation).fillna(0).astype(bool)
    order = (
        pd.DataFrame(
            {
                "hours": saturated.sum(axis=1),
                "mean": utilisation.mean(axis=1),
            }
        )
        .sort_values(["hours", "mean"], ascending=False)
        .index
    )
    return utilisation.loc[order], saturated.loc[order]


def _heatmap_extent(links: pd.DataFrame, columns, per_day: bool):
    """x extent of the image and the x label, in the units of the timeline."""
    width = 24.0 if per_day else STEP_HOURS
    if _has_time(links):
        start = _utc(links["time_utc"]).min()
        if per_day:
            start = start.floor("D")
        left = mdates.date2num(start)
        right = left + len(columns) * width / 24.0
        return (left, right), ("day (UTC)" if per_day else "time (UTC)")
    first = (float(links["step"].min()) - 1.0) * STEP_HOURS
    if per_day:
        first = first // 24.0
        return (first, first + len(columns)), "days since the start of the run (d)"
    return (first, first + len(columns) * width), "hours since the start of the run (h)"


def congestion_heatmap(links: pd.DataFrame, ax=None):
    """Utilisation of every link in every step; saturated cells in red.

    Links are ordered by hours saturated, busiest at the top. Runs longer than
    DAILY_ABOVE_STEPS steps show one column per day: the day's mean
    utilisation, red if the link was saturated in any hour of that day. Needs
    links.step, link, utilisation and saturated; uses time_utc if present.
    """
    require(links, "links", "step", "link", "utilisation", "saturated")
    per_day = links["step"].nunique() > DAILY_ABOVE_STEPS
    utilisation, saturated = _link_grid(links, per_day)
    ax = _axes(ax, figsize=(9, max(3.2, 1.6 + 0.22 * len(utilisation))))
    (left, right), xlabel = _heatmap_extent(links, utilisation.columns, per_day)
    extent = (left, right, len(utilisation) - 0.5, -0.5)

    image = ax.imshow(
        utilisation.to_numpy(dtype=float),
        aspect="auto",
        cmap="Blues",
        vmin=0.0,
        vmax=1.0,
        interpolation="nearest",
        extent=extent,
    )
    marks = np.where(saturated.to_numpy(), 1.0, np.nan)
    ax.imshow(
        marks,
        aspect="auto",
        cmap=ListedColormap(["tab:red"]),
        interpolation="nearest",
        extent=extent,
    )

    ax.set_yticks(range(len(utilisation)), utilisation.index)
    ax.tick_params(axis="y", labelsize=8 if len(utilisation) > 20 else 9)
    _dates_if(ax, _has_time(links))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("link")
    what = "mean utilisation of the day" if per_day else "utilisation"
    ax.figure.colorbar(image, ax=ax, aspect=30, label=f"{what} (flow / capacity)")
    red = "saturated in some hour of the day" if per_day else "saturated"
    if saturated.to_numpy().any():
        ax.legend(
            handles=[Patch(facecolor="tab:red", label=red)],
            loc="lower left",
            bbox_to_anchor=(0.0, 1.0),
            frameon=False,
            fontsize=8,
        )
    ax.set_title("Link congestion", loc="right", fontsize=10)
    return ax


def provider_money(providers: pd.DataFrame, fig=None):
    """Revenue (top panel) and profit (bottom panel) of every provider.

    Two panels, so the function takes and returns a Figure. Values are USD per
    hour; runs longer than DAILY_ABOVE_STEPS steps are summed per day (the
    first and last day may be partial). Needs providers.step, provider,
    revenue_usd and profit_usd; uses time_utc if present.
    """
    require(providers, "providers", "step", "provider", "revenue_usd", "profit_usd")
    per_day = providers["step"].nunique() > DAILY_ABOVE_STEPS
    names = list(pd.unique(providers["provider"]))
    colours = _colours(names)
    if fig is None:
        fig = plt.figure(figsize=(9, 6), layout="constrained")
    top, bottom = fig.subplots(2, 1, sharex=True)

    if per_day:
        key, xlabel = _day_key(providers)
        frame = providers.assign(x=key).groupby(["x", "provider"], sort=False)
        frame = frame[["revenue_usd", "profit_usd"]].sum(min_count=1).reset_index()
        unit = "USD per day"
    else:
        key, xlabel = timeline(providers)
        frame = providers.assign(x=key)
        unit = "USD per hour"

    for name, group in frame.groupby("provider", sort=False):
        style = {"color": colours[name], "linewidth": 1.2}
        top.plot(group["x"], group["revenue_usd"], label=name, **style)
        bottom.plot(group["x"], group["profit_usd"], **style)
    bottom.axhline(0.0, color="0.4", linewidth=0.8)
    top.set_ylabel(f"revenue ({unit})")
    bottom.set_ylabel(f"profit ({unit})")
    bottom.set_xlabel(xlabel)
    for ax in (top, bottom):
        ax.grid(alpha=0.3)
        ax.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
        _dates_if(ax, _has_time(providers))
    handles, labels = top.get_legend_handles_labels()
    fig.legend(handles, labels, title="provider", loc="outside right upper")
    fig.suptitle("Provider revenue and profit (profit = revenue - true cost)")
    return fig


def price_duration(prices: pd.DataFrame, ax=None):
    """Price-duration curves: every workload's LMPs over all steps and nodes,
    sorted from highest to lowest.

    x is the share of node-hours (with a price) at or above the LMP. Needs
    prices.workload and lmp_usd_per_mtok.
    """
    require(prices, "prices", "workload", "lmp_usd_per_mtok")
    ax = _axes(ax)
    for workload, group in prices.groupby("workload", sort=False):
        values = np.sort(group["lmp_usd_per_mtok"].dropna().to_numpy())[::-1]
        if len(values) == 0:
            continue
        share_pct = 100.0 * np.arange(1, len(values) + 1) / len(values)
        ax.plot(share_pct, values, drawstyle="steps-pre", label=workload)
    ax.set_xlim(0.0, 100.0)
    ax.set_xlabel("share of node-hours at or above the price (%)")
    ax.set_ylabel(PRICE_LABEL)
    ax.set_title("Price-duration curves")
    ax.grid(alpha=0.3)
    ax.legend(title="workload")
    return ax


def markup_series(providers: pd.DataFrame, ax=None):
    """The markup over true cost each provider's strategy offered, per step.

    Providers without a single markup (all NaN) are left out. Needs
    providers.step, provider and markup; uses time_utc if present.
    """
    require(providers, "providers", "step", "provider", "markup")
    ax = _axes(ax)
    ax.axhline(0.0, color="0.4", linewidth=0.8, zorder=1)
    x, xlabel = timeline(providers)
    styles = ["-", "--", ":", "-."]
    drawn = 0
    for provider, group in providers.groupby("provider", sort=False):
        if group["markup"].isna().all():
            continue
        # Styles and widths differ so that providers offering the same markup
        # stay visible on top of each other.
        ax.plot(
            x[group.index],
            100.0 * group["markup"],
            label=provider,
            linestyle=styles[drawn % len(styles)],
            linewidth=2.4 - 0.5 * (drawn % 3),
        )
        drawn += 1
    _dates_if(ax, _has_time(providers))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("offered markup over true cost (%)")
    ax.set_title("Markups offered by the providers' strategies")
    ax.grid(alpha=0.3)
    ax.legend(title="provider")
    return ax


def competitive_prices(steps: pd.DataFrame, ax=None):
    """Mean LMP of every step next to the same step cleared with truthful offers.

    Needs steps.step, mean_lmp_usd_per_mtok and
    competitive_mean_lmp_usd_per_mtok; uses time_utc if present.
    """
    require(
        steps,
        "steps",
        "step",
        "mean_lmp_usd_per_mtok",
        "competitive_mean_lmp_usd_per_mtok",
    )
    ax = _axes(ax)
    x, xlabel = timeline(steps)
    ax.plot(x, steps["mean_lmp_usd_per_mtok"], label="as offered", linewidth=1.3)
    ax.plot(
        x,
        steps["competitive_mean_lmp_usd_per_mtok"],
        label="competitive (truthful offers)",
        linewidth=1.3,
        linestyle="--",
    )
    _dates_if(ax, _has_time(steps))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("mean LMP, weighted by served tokens (USD/Mtok)")
    ax.set_title("Mean LMP against the competitive benchmark")
    ax.grid(alpha=0.3)
    ax.legend()
    return ax
