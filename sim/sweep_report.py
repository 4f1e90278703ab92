"""The sweep report: tables and figures across a sweep's grid.

For every combination of the swept parameters the report gives the mean,
spread (standard deviation) and range of each metric across seeds. Figures:
metrics against a numeric parameter (a markup, a demand scale, ...) with
error bars across seeds, and the market designs side by side when the design
was swept.
"""

from __future__ import annotations

import json
import logging
import math
import re
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402

from sim.sweep import read_failures, read_results  # noqa: E402
from sim.sweep_spec import PARAMETERS  # noqa: E402

logger = logging.getLogger(__name__)

METRICS = {
    "mean_lmp_usd_per_mtok": "mean LMP (USD/Mtok)",
    "consumer_payments_usd": "consumer payments (USD)",
    "consumer_surplus_usd": "consumer surplus (USD)",
    "provider_profits_usd": "provider profits (USD)",
    "congestion_rents_usd": "congestion rents (USD)",
    "redispatch_cost_usd": "redispatch cost (USD)",
    "welfare_usd": "welfare (USD)",
    "mean_price_dispersion": "price dispersion across nodes (CV)",
}
PLOTTED = ("mean_lmp_usd_per_mtok", "provider_profits_usd")
DESIGN_PANELS = (
    "mean_lmp_usd_per_mtok",
    "consumer_payments_usd",
    "provider_profits_usd",
    "congestion_rents_usd",
    "redispatch_cost_usd",
    "welfare_usd",
)
_STRATEGY_NUMBER = re.compile(r"^([\w-]+):(\w+)=([-+0-9.eE]+)$")


class SweepReportError(ValueError):
    def __init__(self, path: Path, reason: str):
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}")


def write_sweep_report(out: str | Path, overwrite: bool = False) -> list[Path]:
    """Write OUT/figures/sweep-*.png and OUT/sweep-report.md; return them."""
    out = Path(out)
    manifest = _manifest(out)
    try:
        results = read_results(out)
    except (OSError, pa.ArrowException) as err:
        raise SweepReportError(out / "runs", f"cannot be read: {err}") from None
    if results.empty:
        raise SweepReportError(out, "no finished runs yet; run the sweep first")
    results = _with_defaults(results, manifest)
    report = out / "sweep-report.md"
    figures = out / "figures"
    if figures.exists() and not figures.is_dir():
        raise SweepReportError(figures, "is a file, not a folder; it is not replaced")
    swept = _swept(manifest)
    planned = _planned_figures(results, swept)
    targets = [figures / name for name in planned] + [report]
    existing = [p for p in targets if p.exists()]
    if existing and not overwrite:
        raise SweepReportError(
            existing[0], "exists; pass --overwrite to replace the sweep report"
        )
    figures.mkdir(exist_ok=True)
    written = []
    for name, draw in planned.items():
        fig = draw()
        fig.savefig(figures / name, dpi=120)
        plt.close(fig)
        written.append(figures / name)
    text = _markdown(manifest, results, swept, read_failures(out), list(planned))
    report.write_text(text, encoding="utf-8")
    return [*written, report]


def _manifest(out: Path) -> dict:
    path = out / "sweep.json"
    if not out.exists():
        raise SweepReportError(out, "no such folder")
    if not out.is_dir():
        raise SweepReportError(out, "is a file, not a sweep folder")
    if not path.is_file():
        raise SweepReportError(path, "missing: not a tokenflow sweep folder")
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
        runs = body["runs"]
        body["order"] = [r["run_id"] for r in runs]
        return body
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise SweepReportError(path, f"cannot be read as a sweep: {err!r}") from None


_DEFAULTS = {"design": "nodal", "settlement": "pay-as-clear"}


def _with_defaults(results: pd.DataFrame, manifest: dict) -> pd.DataFrame:
    """Rows in the sweep file's order; a default design or settlement, which
    run ids leave out, written back in; other unset parameters as '-'."""
    order = {run_id: i for i, run_id in enumerate(manifest["order"])}
    results = results.assign(_order=results["run_id"].map(order))
    results = results.sort_values("_order").drop(columns="_order")
    for name in PARAMETERS:
        column = f"param_{name}"
        if name in _DEFAULTS:
            results[column] = results[column].fillna(_DEFAULTS[name])
        elif results[column].notna().any():
            results[column] = results[column].fillna("-")
    return results.reset_index(drop=True)


def _swept(manifest: dict) -> list[str]:
    points = [run["params"] for run in manifest["runs"]]
    names = [p for p in PARAMETERS if any(p in x for x in points)]
    return [
        p
        for p in names
        if len({json.dumps(x.get(p), sort_keys=True) for x in points}) > 1
    ]


def numeric_axis(results: pd.DataFrame, param: str) -> tuple[str, pd.Series] | None:
    """A numeric x axis for a swept parameter: its value, or the one number
    that varies in strategy texts such as ``markup:markup=0.2``."""
    column = results[f"param_{param}"]
    numbers = pd.to_numeric(column, errors="coerce")
    if numbers.notna().all():
        return param, numbers
    if param != "strategy":
        return None
    matches = column.map(lambda text: _STRATEGY_NUMBER.match(str(text)))
    if not matches.map(bool).all():
        return None
    heads = {(m.group(1), m.group(2)) for m in matches}
    if len(heads) != 1:
        return None
    name, key = heads.pop()
    label = key if key == name else f"{name} {key}"
    return f"{label} (strategy {name}:{key}=...)", matches.map(
        lambda m: float(m.group(3))
    )


def _groups(results: pd.DataFrame, swept: list[str]) -> pd.DataFrame:
    """Mean, std, min, max and count of every metric per swept combination."""
    keys = [f"param_{p}" for p in swept] or ["hours"]
    grouped = results.groupby(keys, dropna=False, sort=False)
    # Groups in the sweep file's order (results are sorted that way).
    stats = grouped[list(METRICS)].agg(["mean", "std", "min", "max"])
    stats[("seeds", "")] = grouped["seed"].count()
    return stats


def _planned_figures(results: pd.DataFrame, swept: list[str]) -> dict:
    planned = {}
    for param in swept:
        axis = numeric_axis(results, param)
        if axis is not None:
            planned[f"sweep-{param}.png"] = lambda p=param, a=axis: _against(
                results, swept, p, a
            )
    if "design" in swept:
        planned["sweep-designs.png"] = lambda: _designs(results, swept)
    if not planned and swept:
        planned["sweep-runs.png"] = lambda: _bars(results, swept)
    return planned


def _label(row: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in row.items()) or "all runs"


def _combinations(frame: pd.DataFrame, params: list[str]) -> list:
    """(label, rows) for every combination of the parameters' values, in
    order of appearance; one ("all runs", frame) when there are none."""
    if not params:
        return [(_label({}), frame)]
    keys = [f"param_{p}" for p in params]
    return [
        (_label(dict(zip(params, _tuple(values), strict=True))), part)
        for values, part in frame.groupby(keys, dropna=False, sort=False)
    ]


def _tuple(values) -> tuple:
    return values if isinstance(values, tuple) else (values,)


def _against(results, swept, param, axis):
    """Metrics against a numeric parameter; a line per other combination."""
    x_name, x = axis
    others = [p for p in swept if p != param]
    frame = results.assign(_x=x)
    fig, axes = plt.subplots(
        1, len(PLOTTED), figsize=(11, 4.2), layout="constrained", squeeze=False
    )
    combos = _combinations(frame, others)
    for ax, metric in zip(axes[0], PLOTTED, strict=True):
        for label, part in combos:
            stats = part.groupby("_x")[metric].agg(["mean", "std"]).sort_index()
            ax.errorbar(
                stats.index,
                stats["mean"],
                yerr=stats["std"].fillna(0.0),
                marker="o",
                capsize=3,
                label=label,
            )
        ax.set_xlabel(x_name)
        ax.set_ylabel(METRICS[metric])
        # Absolute values: an offset would dress up differences below the
        # LP's precision as a trend.
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.grid(alpha=0.3)
    if others:
        axes[0][-1].legend(fontsize=8)
    fig.suptitle(f"Across seeds (mean, error bars: one standard deviation) by {x_name}")
    return fig


def _designs(results, swept):
    """Each metric per design; bars for the other swept combinations."""
    others = [p for p in swept if p != "design"]
    designs = list(dict.fromkeys(results["param_design"]))
    combos = _combinations(results, others)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), layout="constrained")
    width = 0.8 / max(len(combos), 1)
    for ax, metric in zip(axes.flat, DESIGN_PANELS, strict=True):
        for i, (label, part) in enumerate(combos):
            stats = part.groupby("param_design")[metric].agg(["mean", "std"])
            stats = stats.reindex(designs)
            ax.bar(
                np.arange(len(designs)) + (i - (len(combos) - 1) / 2) * width,
                stats["mean"],
                width=width,
                yerr=stats["std"].fillna(0.0),
                capsize=2,
                label=label,
            )
        ax.set_xticks(range(len(designs)), designs)
        ax.set_ylabel(METRICS[metric])
        ax.grid(axis="y", alpha=0.3)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=2, fontsize=8)
    fig.suptitle("Market designs side by side (mean across seeds, bars: one std)")
    return fig


def _bars(results, swept):
    keys = [f"param_{p}" for p in swept]
    stats = results.groupby(keys, dropna=False, sort=False)[list(PLOTTED)].agg(
        ["mean", "std"]
    )
    labels = [_label(dict(zip(swept, _tuple(v), strict=True))) for v in stats.index]
    height = max(4.5, 1.5 + 0.35 * len(labels))
    fig, axes = plt.subplots(
        1, len(PLOTTED), figsize=(13, height), layout="constrained", sharey=True
    )
    wrapped = [textwrap.fill(label, 40) for label in labels]
    for ax, metric in zip(axes, PLOTTED, strict=True):
        ax.barh(wrapped, stats[(metric, "mean")], xerr=stats[(metric, "std")].fillna(0))
        ax.set_xlabel(METRICS[metric])
        ax.tick_params(axis="y", labelsize=8)
        ax.invert_yaxis()
    fig.suptitle("Runs by parameter set (mean across seeds, bars: one std)")
    return fig


def _markdown(manifest, results, swept, failures, figures) -> str:
    stats = _groups(results, swept)
    lines = [
        f"# Sweep report: {manifest['name']}",
        "",
        f"Runs in the sweep: {len(manifest['runs'])}; finished: {len(results)}; "
        f"failed: {len(failures)}. Swept: {', '.join(swept) or 'nothing'}. "
        "Each cell: mean across seeds, then one standard deviation and the "
        "range (min to max). Money in USD over each run.",
        "",
    ]
    header = [*swept, "seeds", *METRICS.values()]
    lines += ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for key, row in stats.iterrows():
        key = key if isinstance(key, tuple) else (key,)
        cells = [str(v) for v in key][: len(swept)]
        cells.append(str(int(row[("seeds", "")])))
        for metric in METRICS:
            cells.append(
                _cell(
                    row[(metric, "mean")],
                    row[(metric, "std")],
                    row[(metric, "min")],
                    row[(metric, "max")],
                )
            )
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Figures", ""]
    lines += [f"![{name}](figures/{name})" for name in figures] or ["(none)"]
    if failures:
        lines += ["", "## Failed runs", ""]
        lines += [
            f"- {f['run_id']} (seed {f['seed']}, {json.dumps(f['params'])}): "
            f"{f['error']}"
            for f in failures
        ]
    return "\n".join(lines) + "\n"


def _cell(mean, std, low, high) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    spread = "" if std is None or math.isnan(std) else f" ± {_num(std)}"
    return f"{_num(mean)}{spread} [{_num(low)}, {_num(high)}]"


def _num(value: float) -> str:
    if abs(value) < 1e-6:
        # Below the LP's tie-break precision: zero.
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.4g}"
