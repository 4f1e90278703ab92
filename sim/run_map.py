"""The network of one run on a map of the contiguous U.S.

Nodes sit at their longitude and latitude (nodes.parquet) and are coloured by
one workload's LMP; links are drawn between their end nodes, thicker and in
warmer colours the more often they were saturated. Longitude is stretched by
1 / cos(mean latitude), so that distances look roughly right.
"""

from __future__ import annotations

import logging
import math

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D

from sim.run_figures import FigureDataError, require
from sim.us_outline import bounds_lon_lat, outline_lon_lat

logger = logging.getLogger(__name__)

MOSTLY_SATURATED = 0.5  # share of steps above which a link counts as mostly full
MAP_MARGIN_DEG = 2.0


def _link_styles(links: pd.DataFrame) -> pd.DataFrame:
    """Endpoints and a drawing style per link, from the share of steps saturated."""
    per_link = links.groupby("link", sort=False).agg(
        a=("a", "first"), b=("b", "first"), share=("saturated", "mean")
    )
    per_link["style"] = np.select(
        [per_link["share"] > MOSTLY_SATURATED, per_link["share"] > 0],
        ["most", "some"],
        default="never",
    )
    return per_link


LINK_STYLES = {
    "never": dict(color="0.45", linewidth=1.2, label="link, never saturated"),
    "some": dict(color="tab:orange", linewidth=2.4, label="saturated in some hours"),
    "most": dict(
        color="tab:red",
        linewidth=3.6,
        label=f"saturated in more than {MOSTLY_SATURATED:.0%} of hours",
    ),
}


def _draw_outline(ax, positions: pd.DataFrame) -> bool:
    """The U.S. outline behind the nodes, if every node lies near it."""
    west, south, east, north = bounds_lon_lat()
    m = MAP_MARGIN_DEG
    inside = positions["lon"].between(west - m, east + m) & positions["lat"].between(
        south - m, north + m
    )
    if not inside.all():
        logger.info("network map: nodes lie outside the U.S.; outline left out")
        return False
    lons, lats = outline_lon_lat()
    ax.fill(lons, lats, facecolor="0.95", edgecolor="0.6", linewidth=0.8, zorder=0)
    ax.set_xlim(west - m, east + m)
    ax.set_ylim(south - m, north + m)
    return True


def _node_lmp(prices: pd.DataFrame, workload: str, step: int | None) -> pd.Series:
    rows = prices[prices["workload"] == workload]
    if step is not None:
        rows = rows[rows["step"] == step]
    if rows.empty or rows["lmp_usd_per_mtok"].isna().all():
        where = "" if step is None else f" in step {step}"
        raise FigureDataError(
            "prices", "lmp_usd_per_mtok", f"no price of {workload!r}{where}"
        )
    return rows.groupby("node")["lmp_usd_per_mtok"].mean()


def network_map(
    nodes: pd.DataFrame,
    links: pd.DataFrame,
    prices: pd.DataFrame,
    workload: str,
    step: int | None = None,
    ax=None,
):
    """The network on a map, nodes coloured by one workload's LMP.

    The colour is the mean LMP over all steps, or the LMP of ``step`` if given.
    Links are drawn between their end nodes; those saturated in some steps,
    and in more than MOSTLY_SATURATED of them, are drawn thicker in orange and
    red. The U.S. outline is drawn when all nodes lie within it. Needs
    nodes.node, lat, lon; links.link, a, b, saturated (links may be empty);
    prices.step, workload, node, lmp_usd_per_mtok.
    """
    require(nodes, "nodes", "node", "lat", "lon")
    require(prices, "prices", "step", "workload", "node", "lmp_usd_per_mtok")
    lmp = _node_lmp(prices, workload, step)
    positions = nodes.drop_duplicates("node").set_index("node")[["lon", "lat"]]
    if ax is None:
        _, ax = plt.subplots(figsize=(10, 6), layout="constrained")
    _draw_outline(ax, positions)

    shown = _draw_links(ax, links, positions)
    _draw_nodes(ax, positions, lmp, workload, step)
    priced = positions.index.isin(lmp.dropna().index)
    if not priced.all():
        shown.append(
            Line2D([], [], marker="o", ls="", mfc="white", mec="0.3", label="no price")
        )
    if shown:
        ax.legend(handles=shown, loc="lower left", fontsize=8, framealpha=0.9)

    mid_lat = float(np.radians(positions["lat"].mean()))
    ax.set_aspect(1.0 / max(math.cos(mid_lat), 0.2))
    ax.set_xlabel("longitude (degrees east)")
    ax.set_ylabel("latitude (degrees north)")
    when = "mean over all hours" if step is None else f"step {step}"
    ax.set_title(f"Network and LMP of {workload} ({when})")
    return ax


def _draw_links(ax, links: pd.DataFrame, positions: pd.DataFrame) -> list:
    """Draw every link; return legend handles of the styles drawn."""
    if links is None or links.empty:
        return []
    require(links, "links", "link", "a", "b", "saturated")
    per_link = _link_styles(links)
    drawn = set()
    for link, row in per_link.iterrows():
        if row["a"] not in positions.index or row["b"] not in positions.index:
            logger.info("network map: link %s has an end without coordinates", link)
            continue
        ends = positions.loc[[row["a"], row["b"]]]
        style = LINK_STYLES[row["style"]]
        ax.plot(
            ends["lon"],
            ends["lat"],
            color=style["color"],
            linewidth=style["linewidth"],
            solid_capstyle="round",
            zorder=1 + ("never", "some", "most").index(row["style"]),
        )
        drawn.add(row["style"])
    return [Line2D([], [], **LINK_STYLES[s]) for s in LINK_STYLES if s in drawn]


def _draw_nodes(ax, positions, lmp: pd.Series, workload: str, step) -> None:
    values = lmp.reindex(positions.index)
    priced = values.notna()
    points = ax.scatter(
        positions.loc[priced, "lon"],
        positions.loc[priced, "lat"],
        c=values[priced],
        cmap="viridis",
        s=90,
        edgecolors="black",
        linewidths=0.6,
        zorder=5,
    )
    ax.scatter(
        positions.loc[~priced, "lon"],
        positions.loc[~priced, "lat"],
        facecolors="white",
        edgecolors="0.3",
        s=90,
        zorder=5,
    )
    for node, row in positions.iterrows():
        ax.annotate(
            node,
            (row["lon"], row["lat"]),
            xytext=(5, 5),
            textcoords="offset points",
            fontsize=8,
            zorder=6,
        )
    what = "mean LMP" if step is None else "LMP"
    ax.figure.colorbar(
        points,
        ax=ax,
        shrink=0.8,
        label=f"{what} of {workload} (USD per million tokens)",
    )
