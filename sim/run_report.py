"""The report of one simulated run: figures and report.md in its run folder.

``write_report`` reads the Parquet tables and summary.json that
``tokenflow simulate --out RUN_DIR`` wrote, draws the figures of
``sim.run_figures`` and ``sim.run_map`` into RUN_DIR/figures/ and writes
RUN_DIR/report.md: the run in numbers, then every figure with one sentence on
what it shows. Files are never replaced unless ``overwrite`` is given.
Optional tables and columns (the competitive benchmark, learning strategies'
markups, node coordinates) may be missing or all NaN; the figures and lines
that need them are left out, with a logged note and a line at the end of the
report.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import matplotlib.pyplot as plt
from tqdm import tqdm

from sim import run_figures as rf
from sim import run_map
from sim.run_data import ReportError, RunData, read_run
from sim.run_figures import FigureDataError
from sim.run_markdown import (
    FIGURE_DIR,
    link_table,
    price_text,
    provider_table,
    report_markdown,
    usd_text,
)

logger = logging.getLogger(__name__)

__all__ = ["FIGURES", "FIGURE_NAMES", "ReportError", "write_report"]

REPORT_NAME = "report.md"
DPI = 120
PRICE_TOLERANCE = 1e-9  # relative; prices closer than this count as equal


def _price_sentence(run: RunData) -> str:
    prices = run.prices.dropna(subset=["lmp_usd_per_mtok"])
    top = prices.loc[prices["lmp_usd_per_mtok"].idxmax()]
    low = prices["lmp_usd_per_mtok"].min()
    return (
        f"LMPs ranged from {price_text(low)} to {price_text(top['lmp_usd_per_mtok'])} "
        f"USD/Mtok; the highest was {top['workload']} at {top['node']} in step "
        f"{int(top['step'])}."
    )


def _congestion_sentence(run: RunData) -> str:
    saturated = int(run.links["saturated"].astype(bool).sum())
    if saturated == 0:
        return "No link was saturated in any hour."
    table = link_table(run.links)
    busiest = table.index[0]
    return (
        f"{saturated} of {len(run.links)} link-hours were saturated (red); "
        f"{busiest} was saturated longest, "
        f"{table['hours_saturated'].iloc[0]:g} h."
    )


def _provider_sentence(run: RunData) -> str:
    table = provider_table(run)
    best = table["profit_usd"].idxmax()
    return (
        f"{best} made the largest profit over the run, "
        f"{usd_text(table.loc[best, 'profit_usd'])} USD."
    )


def map_workload(run: RunData) -> str:
    """The workload shown on the map: the one with the most tokens served."""
    served = run.prices.groupby("workload", sort=False)["served_tokens_per_s"].sum()
    return str(served.idxmax())


def _map_sentence(run: RunData) -> str:
    workload = map_workload(run)
    rows = run.prices[run.prices["workload"] == workload]
    mean = rows.groupby("node")["lmp_usd_per_mtok"].mean().dropna()
    busy = 0
    if not run.links.empty:
        share = run.links.groupby("link")["saturated"].mean()
        busy = int((share > run_map.MOSTLY_SATURATED).sum())
    saturated = (
        f"{busy} link(s) were saturated in more than "
        f"{run_map.MOSTLY_SATURATED:.0%} of hours."
    )
    if price_text(mean.min()) == price_text(mean.max()):
        return (
            f"Mean LMP of {workload} over all hours was {price_text(mean.min())} "
            f"USD/Mtok at every node; {saturated}"
        )
    return (
        f"Mean LMP of {workload} over all hours ran from {price_text(mean.min())} "
        f"USD/Mtok at {mean.idxmin()} to {price_text(mean.max())} at {mean.idxmax()}; "
        f"{saturated}"
    )


def _duration_sentence(run: RunData) -> str:
    medians = run.prices.groupby("workload", sort=False)["lmp_usd_per_mtok"].median()
    parts = ", ".join(f"{w} {price_text(v)}" for w, v in medians.dropna().items())
    return f"Median LMP over node-hours (USD/Mtok): {parts}."


def _markup_sentence(run: RunData) -> str:
    means = run.providers.groupby("provider", sort=False)["markup"].mean().dropna()
    parts = ", ".join(f"{p} {100 * v:.2f}%" for p, v in means.items())
    return f"Mean offered markup over the run: {parts}."


def _competitive_sentence(run: RunData) -> str:
    steps = run.steps.dropna(
        subset=["mean_lmp_usd_per_mtok", "competitive_mean_lmp_usd_per_mtok"]
    )
    actual = steps["mean_lmp_usd_per_mtok"]
    competitive = steps["competitive_mean_lmp_usd_per_mtok"]
    above = int((actual > competitive * (1 + PRICE_TOLERANCE)).sum())
    below = int((actual < competitive * (1 - PRICE_TOLERANCE)).sum())
    return (
        f"In {above} of {len(steps)} hours with both prices the mean LMP was "
        f"above the competitive one, in {below} below it and in "
        f"{len(steps) - above - below} equal to it."
    )


@dataclass(frozen=True)
class FigureSpec:
    """One figure of the report: file name, heading, drawing and sentence."""

    name: str
    heading: str
    draw: Callable[[RunData], object]
    sentence: Callable[[RunData], str]


FIGURES = (
    FigureSpec(
        "prices.png",
        "Prices over time",
        lambda run: rf.price_series(run.prices),
        _price_sentence,
    ),
    FigureSpec(
        "congestion.png",
        "Link congestion",
        lambda run: rf.congestion_heatmap(run.links),
        _congestion_sentence,
    ),
    FigureSpec(
        "providers.png",
        "Provider revenue and profit",
        lambda run: rf.provider_money(run.providers),
        _provider_sentence,
    ),
    FigureSpec(
        "network.png",
        "Network map",
        lambda run: run_map.network_map(
            run.nodes, run.links, run.prices, map_workload(run)
        ),
        _map_sentence,
    ),
    FigureSpec(
        "price-duration.png",
        "Price-duration curves",
        lambda run: rf.price_duration(run.prices),
        _duration_sentence,
    ),
    FigureSpec(
        "markup.png",
        "Offered markups",
        lambda run: rf.markup_series(run.providers),
        _markup_sentence,
    ),
    FigureSpec(
        "competitive.png",
        "Mean LMP against the competitive benchmark",
        lambda run: rf.competitive_prices(run.steps),
        _competitive_sentence,
    ),
)
FIGURE_NAMES = tuple(spec.name for spec in FIGURES)


def _check_target(path: Path, overwrite: bool) -> None:
    if path.is_symlink():
        raise ReportError(path, "is a symbolic link; it is not followed")
    if path.exists() and not path.is_file():
        raise ReportError(path, "is not a file; it is not replaced")
    if path.exists() and not overwrite:
        raise ReportError(path, "exists; pass --overwrite to replace it")


def _check_targets(run_dir: Path, overwrite: bool) -> None:
    """Fail before drawing anything if a file would be replaced."""
    figures = run_dir / FIGURE_DIR
    if figures.is_symlink() or (figures.exists() and not figures.is_dir()):
        raise ReportError(figures, "is not a folder; it is not replaced")
    _check_target(run_dir / REPORT_NAME, overwrite)
    for name in FIGURE_NAMES:
        _check_target(figures / name, overwrite)


def _check_writable(path: Path) -> None:
    """Fail before drawing if the file could not be written."""
    probe = path.with_name(f".{path.name}.probe")
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ReportError(path, f"cannot be written: {err.strerror or err}") from None


def _save(drawn, path: Path) -> Path:
    """Save an Axes' or a Figure's figure as PNG and close it."""
    figure = getattr(drawn, "figure", None) or drawn
    try:
        figure.savefig(path, dpi=DPI, bbox_inches="tight")
    except OSError as err:
        raise ReportError(path, f"cannot be written: {err.strerror or err}") from None
    finally:
        plt.close(figure)
    return path


def _draw_all(run: RunData, progress: bool = False):
    """Draw and save every figure whose data is there; note the others.

    A figure left out this time is removed if an earlier report drew it, so
    that the folder matches report.md.
    """
    folder = run.run_dir / FIGURE_DIR
    written, shown, skipped = [], [], []
    for spec in tqdm(FIGURES, desc="report", unit="figure", disable=not progress):
        try:
            drawn = spec.draw(run)
        except FigureDataError as err:
            logger.info("report: %s left out: %s", spec.name, err)
            skipped.append((spec.name, str(err)))
            (folder / spec.name).unlink(missing_ok=True)
            continue
        written.append(_save(drawn, folder / spec.name))
        shown.append((spec.name, spec.heading, spec.sentence(run)))
    return written, shown, skipped


def write_report(
    run_dir: str | Path, overwrite: bool = False, progress: bool = False
) -> list[Path]:
    """Write RUN_DIR/figures/*.png and RUN_DIR/report.md; return their paths.

    Raises ReportError, naming the path, when the folder, summary.json or a
    required table is missing or unreadable, or when a file would be replaced
    without ``overwrite``.
    """
    run = read_run(run_dir)
    _check_targets(run.run_dir, overwrite)
    figures = run.run_dir / FIGURE_DIR
    try:
        figures.mkdir(exist_ok=True)
    except OSError as err:
        raise ReportError(figures, f"cannot be created: {err.strerror}") from None
    _check_writable(run.run_dir / REPORT_NAME)
    _check_writable(figures / FIGURES[0].name)

    written, shown, skipped = _draw_all(run, progress)
    report = run.run_dir / REPORT_NAME
    try:
        report.write_text(report_markdown(run, shown, skipped), encoding="utf-8")
    except OSError as err:
        raise ReportError(report, f"cannot be written: {err.strerror or err}") from None
    logger.info("report: wrote %s and %d figures", report, len(written))
    return [*written, report]
