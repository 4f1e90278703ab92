"""The source study's experiments, each one command: compare bandwidth models,
sweep a latency limit.

Every experiment clears the scenario several times with one thing changed
and reports the differences as plain data (``to_dict``) for the CLI's text
and JSON output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from markets import ClearingResult, clear
from scenarios import Demand, Scenario, with_overrides

MIN_MOVE_PCT = 1e-3


def _saturated(result: ClearingResult) -> list[str]:
    links = result.links[result.links["saturated"]]
    return [f"{a}-{b}" for a, b in zip(links["a"], links["b"], strict=True)]


def _lmps(result: ClearingResult) -> pd.Series:
    return result.prices.set_index(["workload", "node"])["lmp_usd_per_mtok"]


def _pct(new: float, old: float) -> float:
    """Change in percent of |old|, so a rise is positive even from below zero.

    NaN where there is no base to compare with (missing or zero).
    """
    if old is None or new is None or not math.isfinite(old) or old == 0:
        return math.nan
    return 100.0 * (new - old) / abs(old)


@dataclass
class TransferVsToken:
    """The same hour cleared under both bandwidth models."""

    scenario: str
    token: ClearingResult
    transfer: ClearingResult

    @property
    def cost_change_pct(self) -> float:
        return _pct(self.transfer.total_cost_usd_per_h, self.token.total_cost_usd_per_h)

    def price_moves(self, top: int = 10) -> pd.DataFrame:
        """Prices that change most between the models, largest first."""
        frame = pd.DataFrame(
            {
                "token_lmp_usd_per_mtok": _lmps(self.token),
                "transfer_lmp_usd_per_mtok": _lmps(self.transfer),
            }
        )
        old, new = frame["token_lmp_usd_per_mtok"], frame["transfer_lmp_usd_per_mtok"]
        frame["change_pct"] = 100.0 * (new - old) / old.abs().where(old != 0)
        # Changes below 1e-3 % are tie-break noise, not price moves.
        frame = frame[frame["change_pct"].abs() > MIN_MOVE_PCT]
        frame = frame.reindex(
            frame["change_pct"].abs().sort_values(ascending=False).index
        )
        return frame.head(top).reset_index()

    def to_dict(self) -> dict:
        def side(r: ClearingResult) -> dict:
            return {
                "status": r.status,
                "total_cost_usd_per_h": r.total_cost_usd_per_h,
                "congestion_rents_usd_per_h": r.settlement.congestion_rents_usd_per_h,
                "unserved": _records(r.unserved),
            }

        return _plain_tree(
            {
                "experiment": "transfer-vs-token",
                "scenario": self.scenario,
                "token_total_cost_usd_per_h": self.token.total_cost_usd_per_h,
                "transfer_total_cost_usd_per_h": self.transfer.total_cost_usd_per_h,
                "cost_change_pct": self.cost_change_pct,
                "saturated_links_token": _saturated(self.token),
                "saturated_links_transfer": _saturated(self.transfer),
                "token": side(self.token),
                "transfer": side(self.transfer),
                "price_moves": _records(self.price_moves()),
            }
        )


def transfer_vs_token(scenario: Scenario) -> TransferVsToken:
    """Clear the scenario under the token and the transfer bandwidth model."""
    return TransferVsToken(
        scenario.name,
        token=clear(with_overrides(scenario, bandwidth_model="token")),
        transfer=clear(with_overrides(scenario, bandwidth_model="transfer")),
    )


@dataclass
class LatencySweep:
    """One workload's latency limit tightened step by step."""

    scenario: str
    workload: str
    limits_ms: list[float]
    results: list[ClearingResult]

    def prices(self) -> pd.DataFrame:
        """The workload's LMP at every node for every limit (tidy)."""
        rows = []
        for limit, result in zip(self.limits_ms, self.results, strict=True):
            lmp = _lmps(result)
            for node in result.prices["node"].unique():
                rows.append((limit, node, float(lmp[self.workload, node])))
        return pd.DataFrame(rows, columns=["limit_ms", "node", "lmp_usd_per_mtok"])

    def largest_rise(self) -> dict | None:
        """The node whose price rises most from the loosest limit, in percent."""
        loose = max(range(len(self.limits_ms)), key=lambda i: self.limits_ms[i])
        prices = self.prices()
        base = prices[prices["limit_ms"] == self.limits_ms[loose]].set_index("node")
        best = None
        for row in prices.itertuples(index=False):
            change = _pct(row.lmp_usd_per_mtok, base.loc[row.node, "lmp_usd_per_mtok"])
            if not math.isfinite(change) or change <= MIN_MOVE_PCT:
                continue
            # Rounded so that tie-break noise does not pick a tighter limit
            # for the same rise.
            if best is None or round(change, 4) > round(best["change_pct"], 4):
                best = {
                    "node": row.node,
                    "limit_ms": row.limit_ms,
                    "change_pct": change,
                    "from_lmp_usd_per_mtok": base.loc[row.node, "lmp_usd_per_mtok"],
                    "to_lmp_usd_per_mtok": row.lmp_usd_per_mtok,
                }
        return best

    def to_dict(self) -> dict:
        points = []
        prices = self.prices()
        for limit, result in zip(self.limits_ms, self.results, strict=True):
            at = prices[prices["limit_ms"] == limit]
            points.append(
                {
                    "limit_ms": limit,
                    "status": result.status,
                    "total_cost_usd_per_h": result.total_cost_usd_per_h,
                    "prices": _records(at[["node", "lmp_usd_per_mtok"]]),
                    "unserved": _records(result.unserved),
                }
            )
        return _plain_tree(
            {
                "experiment": "latency-sweep",
                "scenario": self.scenario,
                "workload": self.workload,
                "points": points,
                "largest_rise": self.largest_rise(),
            }
        )


def latency_sweep(
    scenario: Scenario, workload: str, limits_ms: list[float]
) -> LatencySweep:
    """Clear the scenario at each latency limit of one workload."""
    limits_ms = list(dict.fromkeys(float(x) for x in limits_ms))
    results = [
        clear(with_overrides(scenario, latency_limits_ms={workload: limit}))
        for limit in limits_ms
    ]
    return LatencySweep(scenario.name, workload, limits_ms, results)


def _records(frame: pd.DataFrame) -> list[dict]:
    return frame.to_dict(orient="records")


def _plain_tree(value):
    """NaN to None and numpy scalars to Python, all the way down."""
    if isinstance(value, dict):
        return {k: _plain_tree(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_tree(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, str):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


@dataclass
class ScaleUp:
    """Demand scaled uniformly over the given scales, with the exact scale at
    which the market becomes infeasible."""

    scenario: str
    scales: list[float]
    results: list[ClearingResult]
    infeasible_above_scale: float | None
    copper_plate_scale: float | None

    def merit_order(self) -> pd.DataFrame:
        """Per scale, each asset's GPUs used and whether it is marginal.

        An asset is marginal when it runs some but not all of its GPUs: its
        offer then sets its compute price, and through it the LMPs it serves.
        """
        rows = []
        for scale, result in zip(self.scales, self.results, strict=True):
            if result.status != "optimal":
                continue
            assets = result.assets
            for row in assets.itertuples(index=False):
                share = row.gpus_used / row.gpus if row.gpus > 0 else 0.0
                rows.append(
                    (
                        scale,
                        row.asset,
                        row.node,
                        row.type,
                        row.gpus,
                        row.gpus_used,
                        row.compute_price_usd_per_gpu_hour,
                        bool(MARGINAL_SHARE < share < 1 - MARGINAL_SHARE),
                    )
                )
        columns = [
            "scale",
            "asset",
            "node",
            "type",
            "gpus",
            "gpus_used",
            "compute_price_usd_per_gpu_hour",
            "marginal",
        ]
        return pd.DataFrame(rows, columns=columns)

    def to_dict(self) -> dict:
        merit = self.merit_order()
        points = []
        for scale, result in zip(self.scales, self.results, strict=True):
            marginal = merit[(merit["scale"] == scale) & merit["marginal"]]
            lmp = result.prices["lmp_usd_per_mtok"]
            points.append(
                {
                    "scale": scale,
                    "status": result.status,
                    "total_cost_usd_per_h": result.total_cost_usd_per_h,
                    "mean_lmp_usd_per_mtok": float(lmp.mean())
                    if lmp.notna().any()
                    else None,
                    "marginal_assets": list(marginal["asset"]),
                }
            )
        return _plain_tree(
            {
                "experiment": "scale-up",
                "scenario": self.scenario,
                "infeasible_above_scale": self.infeasible_above_scale,
                "copper_plate_scale": self.copper_plate_scale,
                "points": points,
            }
        )


MARGINAL_SHARE = 1e-6
BISECTION_TOL = 1e-6


def feasible_at(scenario: Scenario, scale: float) -> bool:
    """Whether the hard demand, scaled, can be served."""
    return clear(with_overrides(scenario, demand_scale=scale)).status == "optimal"


def infeasibility_threshold(scenario: Scenario, high: float = 2.0) -> float | None:
    """The largest feasible demand scale, by bisection to `BISECTION_TOL`.

    0 when the market is infeasible at any positive scale; infinity (null in
    JSON) when it never becomes infeasible, as with shedding or bids only. The
    search doubles `high` (up to 1e6) until the market is infeasible there.
    """
    if not feasible_at(scenario, BISECTION_TOL):
        return 0.0
    low = BISECTION_TOL
    while feasible_at(scenario, high):
        low, high = high, high * 2
        if high > 1e6:
            return math.inf
    while high - low > BISECTION_TOL * max(1.0, low):
        middle = (low + high) / 2
        low, high = (middle, high) if feasible_at(scenario, middle) else (low, middle)
    return low


def copper_plate(scenario: Scenario) -> Scenario:
    """The same assets and demand at one node: no network, no latency limit.

    Its infeasibility threshold is what aggregate capacity alone allows; the
    gap to the real network's threshold is due to links and latency limits.
    """
    import dataclasses

    node = next(iter(scenario.nodes.values()))
    hub = dataclasses.replace(node, id="ALL", name="all regions")
    demand: dict[str, Demand] = {}
    for d in scenario.demand:
        previous = demand.get(d.workload)
        total = d.tokens_per_s + (previous.tokens_per_s if previous else 0.0)
        bids = (previous.bids if previous else ()) + d.bids
        demand[d.workload] = Demand("ALL", d.workload, total, bids)
    assets = tuple(
        dataclasses.replace(a, node="ALL", id=f"{a.id}") for a in scenario.assets
    )
    return dataclasses.replace(
        scenario,
        nodes={"ALL": hub},
        assets=assets,
        links=(),
        demand=tuple(demand.values()),
    )


def scale_up(
    scenario: Scenario, scales: list[float], *, progress: bool = False
) -> ScaleUp:
    """Clear at each demand scale and find the exact infeasibility threshold."""
    from tqdm import tqdm

    scales = [round(float(x), 9) for x in scales]
    results = [
        clear(with_overrides(scenario, demand_scale=scale))
        for scale in tqdm(scales, desc="scale-up", disable=not progress)
    ]
    return ScaleUp(
        scenario.name,
        list(scales),
        results,
        infeasibility_threshold(scenario),
        infeasibility_threshold(copper_plate(scenario)),
    )
