"""Figures of the experiments. Each function draws on an optional Axes, labels
its axes with units and returns the Axes; none calls ``plt.show()``."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from markets import units  # noqa: E402
from scenarios import Scenario  # noqa: E402


def _axes(ax):
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    return ax


def mix_throughput(scenario: Scenario, asset) -> float:
    """Tokens/s per GPU of the scenario's demand mix on an asset's type.

    The mix is the share of each workload in total demand; a GPU serving it
    spends 1/throughput seconds per token of each workload in proportion.
    """
    amount = {k: 0.0 for k in scenario.workloads}
    for d in scenario.demand:
        amount[d.workload] += d.tokens_per_s + sum(b.tokens_per_s for b in d.bids)
    total = sum(amount.values())
    if total <= 0:  # no demand: weigh workloads equally
        amount, total = dict.fromkeys(amount, 1.0), float(len(amount))
    seconds = sum(
        tokens / total / scenario.throughput(asset, k) for k, tokens in amount.items()
    )
    return 1.0 / seconds


def merit_order(scenario: Scenario, scales=(), marginal=(), ax=None):
    """Supply staircase: assets by cost per million tokens of the demand mix.

    Vertical lines mark the demand at the given scales; assets named in
    ``marginal`` are drawn in a second colour.
    """
    ax = _axes(ax)
    steps = []
    for asset in scenario.assets:
        thr = mix_throughput(scenario, asset)
        price = units.lp_to_usd_per_mtok(
            asset.cost_usd_per_gpu_hour * units.gpus_per_mtok_s(thr)
        )
        steps.append((price, asset.id, asset.gpus * thr / 1e6))
    # Same order as the clearing's tie-break: price, then asset id.
    steps.sort()
    left = 0.0
    for price, asset_id, width in steps:
        colour = "tab:red" if asset_id in marginal else "tab:blue"
        ax.bar(
            left,
            price,
            width=width,
            align="edge",
            color=colour,
            alpha=0.75,
            edgecolor="white",
            linewidth=0.5,
        )
        left += width
    total = (
        sum(
            d.tokens_per_s + sum(b.tokens_per_s for b in d.bids)
            for d in scenario.demand
        )
        / 1e6
    )
    for scale in scales:
        ax.axvline(scale * total, color="black", linestyle="--", linewidth=1)
        ax.annotate(
            f"demand x{scale:g}",
            (scale * total, ax.get_ylim()[1] * 0.95),
            rotation=90,
            ha="right",
            va="top",
            fontsize=8,
        )
    ax.set_xlabel("cumulative capacity for the demand mix (million tokens/s)")
    ax.set_ylabel("offer price (USD per million tokens of the mix)")
    ax.set_title(f"{scenario.name}: merit order (red: marginal)")
    return ax


def scale_up_costs(report: dict, ax=None):
    """Total cost against the demand scale, with the infeasibility threshold."""
    ax = _axes(ax)
    points = [p for p in report["points"] if p["status"] == "optimal"]
    ax.plot(
        [p["scale"] for p in points],
        [p["total_cost_usd_per_h"] / 1e3 for p in points],
        marker="o",
    )
    threshold = report["infeasible_above_scale"]
    if threshold is not None and np.isfinite(threshold):
        ax.axvline(
            threshold,
            color="tab:red",
            linestyle="--",
            label=f"infeasible above x{threshold:.4f}",
        )
        ax.legend()
    ax.set_xlabel("demand scale (x base demand)")
    ax.set_ylabel("total cost (thousand USD per hour)")
    ax.set_title(f"{report['scenario']}: cost as demand grows")
    return ax


def latency_sweep_prices(report: dict, ax=None):
    """The swept workload's LMP at every node against its latency limit."""
    ax = _axes(ax)
    by_node: dict[str, list[tuple[float, float]]] = {}
    for point in report["points"]:
        for price in point["prices"]:
            if price["lmp_usd_per_mtok"] is not None:
                by_node.setdefault(price["node"], []).append(
                    (point["limit_ms"], price["lmp_usd_per_mtok"])
                )
    for node, values in by_node.items():
        values.sort()
        ax.plot(*zip(*values, strict=True), marker="o", label=node)
    ax.invert_xaxis()
    # From zero (or below, for negative prices) and without an offset, so that
    # tie-break noise of 1e-9 does not look like a price move.
    low, high = ax.get_ylim()
    ax.set_ylim(bottom=min(0.0, low), top=high + 0.15 * abs(high))
    ax.ticklabel_format(axis="y", useOffset=False)
    ax.set_xlabel(f"latency limit of {report['workload']} (ms, one way)")
    ax.set_ylabel(f"LMP of {report['workload']} (USD per million tokens)")
    ax.set_title(f"{report['scenario']}: tightening the {report['workload']} limit")
    ax.legend(title="node", ncols=3, fontsize=8, loc="lower left")
    return ax


def transfer_vs_token_prices(report: dict, result_token, result_transfer, ax=None):
    """Mean LMP per node under both bandwidth models."""
    ax = _axes(ax)
    token = result_token.prices.groupby("node", sort=False)["lmp_usd_per_mtok"].mean()
    transfer = result_transfer.prices.groupby("node", sort=False)[
        "lmp_usd_per_mtok"
    ].mean()
    x = np.arange(len(token))
    ax.bar(x - 0.2, token.to_numpy(), width=0.4, label="token model")
    ax.bar(
        x + 0.2,
        transfer.reindex(token.index).to_numpy(),
        width=0.4,
        label="transfer model",
    )
    ax.set_xticks(x, token.index)
    values = np.concatenate([token.to_numpy(), transfer.to_numpy()])
    values = values[np.isfinite(values)]
    if len(values):  # room for the legend above the bars
        ax.set_ylim(min(0.0, values.min()), max(0.0, values.max()) * 1.3 + 1e-12)
    ax.set_xlabel("node")
    ax.set_ylabel("mean LMP over workloads (USD per million tokens)")
    ax.set_title(f"{report['scenario']}: token vs transfer bandwidth model")
    ax.legend(loc="upper right", ncols=2)
    return ax
