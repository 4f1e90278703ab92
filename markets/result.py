"""The result of one clearing: tidy DataFrames with units in column names."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from markets import units

SATURATED = 1e-6
SHED = "shed at the penalty price"


@dataclass(frozen=True)
class Settlement:
    """Money flows of one clearing, in USD per hour."""

    consumer_payments_usd_per_h: float
    provider_revenues_usd_per_h: float
    transfer_charges_usd_per_h: float
    congestion_rents_usd_per_h: float

    @property
    def merchandising_surplus_usd_per_h(self) -> float:
        """What the operator keeps: payments less revenues and transfer charges."""
        return (
            self.consumer_payments_usd_per_h
            - self.provider_revenues_usd_per_h
            - self.transfer_charges_usd_per_h
        )


class ClearingResult:
    """Flows, prices and settlement of one clearing.

    Arrays are kept as the solver produced them; the DataFrames are built on
    first access, so that a simulation can record the arrays without paying
    for tables it does not read.
    """

    def __init__(self, model, raw, prices, unserved: pd.DataFrame | None = None):
        self._model = model
        self._raw = raw
        self._prices = prices
        self._unserved = unserved
        self.status: str = "infeasible" if unserved is not None else "optimal"
        self.bandwidth_model: str = model.scenario.bandwidth_model
        self.scenario_name: str = model.scenario.name
        self.degenerate: bool = bool(raw.degenerate) and unserved is None
        self.iterations: int = raw.iterations
        self.shedding: bool = model.shedding and unserved is None
        self.lp_objective_usd_per_h: float = raw.lp_objective
        self.dual_objective_usd_per_h: float = raw.dual_objective

    # -- arrays ------------------------------------------------------------

    @cached_property
    def gpus_used(self) -> np.ndarray:
        """GPUs running per asset (scenario order)."""
        return self._model.gpus_used(self._raw)

    @cached_property
    def link_flow_gbps(self) -> np.ndarray:
        """Flow per link (scenario order), both directions together."""
        flow = np.zeros(len(self._model.scenario.links))
        if len(self._raw.y):
            flow[self._model.used_links] = self._model.link_matrix @ self._raw.y
        return flow

    @cached_property
    def served_tokens_per_s(self) -> np.ndarray:
        """Served tokens/s per demand pair (model.pairs order)."""
        served = np.zeros(len(self._model.pairs))
        if len(self._raw.y):
            np.add.at(served, self._model.y_pair, self._raw.y)
        return units.mtok_s_to_tokens(served)

    @cached_property
    def asset_revenue_usd_per_h(self) -> np.ndarray:
        """Compute price times GPUs used; an idle asset earns 0 (even at NaN).

        NaN for every asset when the market is infeasible.
        """
        price = self.compute_price_usd_per_gpu_hour
        used = self.gpus_used
        if self._prices is None:
            return price.copy()
        return np.where(used > 0, np.nan_to_num(price) * used, 0.0)

    @property
    def retained_usd_per_h(self) -> float:
        """Pay-as-clear keeps nothing back from sellers."""
        return 0.0 if self.status == "optimal" else math.nan

    @property
    def redispatch_cost_usd_per_h(self) -> float:
        """A nodal market is dispatched as cleared: no redispatch."""
        return 0.0 if self.status == "optimal" else math.nan

    @cached_property
    def asset_offer_cost_usd_per_h(self) -> np.ndarray:
        """What each asset's dispatched blocks cost at their offer prices
        (its pay-as-bid revenue); NaN for every asset when infeasible."""
        model = self._model
        if self._prices is None:
            return np.full(len(model.scenario.assets), np.nan)
        cost = np.zeros(len(model.scenario.assets))
        if len(self._raw.u):
            np.add.at(cost, model.u_asset, model.offer_prices * self._raw.u)
        return cost

    @cached_property
    def transfer_charges_usd_per_h(self) -> float:
        costs = self._model.y_transfer_usd_per_h
        return float(costs @ self._raw.y) if len(self._raw.y) else 0.0

    @cached_property
    def total_cost_usd_per_h(self) -> float | None:
        """Offer cost + transfer cost - value of accepted bids (+ shed penalty).

        The tie-break offsets of the LP are left out; None when infeasible.
        """
        if self.status != "optimal":
            return None
        model, raw = self._model, self._raw
        cost = float(model.offer_prices @ raw.u) + self.transfer_charges_usd_per_h
        values = [model_bid.value_usd_per_mtok for model_bid in _bids_in_order(model)]
        cost -= units.usd_per_mtok_to_lp(1.0) * float(np.dot(values, raw.d))
        penalty = model.scenario.shed_penalty_usd_per_mtok
        if penalty is not None and len(raw.q):
            cost += units.usd_per_mtok_to_lp(penalty) * float(raw.q.sum())
        return cost

    @cached_property
    def served_value_usd_per_h(self) -> float:
        """Stated value of the demand served, in USD per hour.

        Accepted bid blocks count at their values; served hard demand at the
        scenario's shed penalty (its value of lost load), or at zero when the
        scenario has none. NaN when infeasible.
        """
        if self.status != "optimal":
            return math.nan
        model, raw = self._model, self._raw
        values = [bid.value_usd_per_mtok for bid in _bids_in_order(model)]
        value = float(np.dot(values, raw.d)) if len(raw.d) else 0.0
        penalty = model.scenario.shed_penalty_usd_per_mtok
        if penalty is not None:
            hard = float(raw.y.sum()) - (float(raw.d.sum()) if len(raw.d) else 0.0)
            value += penalty * hard
        return units.usd_per_mtok_to_lp(value)

    # -- settlement ----------------------------------------------------------

    @cached_property
    def settlement(self) -> Settlement:
        if self.status != "optimal":
            nan = math.nan
            return Settlement(nan, nan, nan, nan)
        served = self.served_tokens_per_s
        model = self._model
        lmp = self._prices.lmp_usd_per_mtok[model.pair_workload, model.pair_node]
        payments = units.usd_per_h(float(np.nansum(lmp * served)))
        revenue = float(self.asset_revenue_usd_per_h.sum())
        capacity = np.array([link.capacity_gbps for link in self._model.scenario.links])
        rents = float(np.dot(self._prices.link_usd_per_gbps_h, capacity))
        return Settlement(payments, revenue, self.transfer_charges_usd_per_h, rents)

    # -- tables ------------------------------------------------------------

    @cached_property
    def lmp_grid(self) -> np.ndarray:
        """LMP in USD/Mtok as an array [workload, node] (NaN: no price)."""
        model = self._model
        if self._prices is None:
            return np.full((len(model.workload_ids), len(model.node_ids)), math.nan)
        return self._prices.lmp_usd_per_mtok

    @cached_property
    def demand_grid(self) -> tuple[np.ndarray, np.ndarray]:
        """(demanded, served) tokens/s as arrays [workload, node]."""
        model = self._model
        shape = (len(model.workload_ids), len(model.node_ids))
        demand, served = np.zeros(shape), np.zeros(shape)
        where = (model.pair_workload, model.pair_node)
        demand[where] = [model.demand_offered_tokens_per_s(p) for p in model.pairs]
        served[where] = self.served_tokens_per_s
        return demand, served

    @cached_property
    def prices(self) -> pd.DataFrame:
        """LMP of every workload at every node, with demand and service."""
        model = self._model
        n_nodes = len(model.node_ids)
        demand, served = self.demand_grid
        return pd.DataFrame(
            {
                "workload": np.repeat(model.workload_ids, n_nodes),
                "node": np.tile(model.node_ids, len(model.workload_ids)),
                "lmp_usd_per_mtok": self.lmp_grid.ravel(),
                "demand_tokens_per_s": demand.ravel(),
                "served_tokens_per_s": served.ravel(),
            }
        )

    @cached_property
    def processing_prices(self) -> pd.DataFrame:
        model = self._model
        rows = [
            (
                k,
                n,
                math.nan
                if self._prices is None
                else self._prices.processing_usd_per_mtok[i, j],
            )
            for i, k in enumerate(model.workload_ids)
            for j, n in enumerate(model.compute_nodes)
        ]
        return pd.DataFrame(
            rows, columns=["workload", "node", "processing_price_usd_per_mtok"]
        )

    @cached_property
    def compute_price_usd_per_gpu_hour(self) -> np.ndarray:
        """Compute price per asset (scenario order); NaN when infeasible."""
        if self._prices is None:
            return np.full(len(self._model.scenario.assets), math.nan)
        return self._prices.compute_usd_per_gpu_hour

    @cached_property
    def link_price_usd_per_gbps_h(self) -> np.ndarray:
        """Shadow price per link (scenario order); NaN when infeasible."""
        if self._prices is None:
            return np.full(len(self._model.scenario.links), math.nan)
        return self._prices.link_usd_per_gbps_h

    @cached_property
    def asset_cost_usd_per_h(self) -> np.ndarray:
        """True cost of the GPUs each asset runs (scenario order)."""
        costs = [a.cost_usd_per_gpu_hour for a in self._model.scenario.assets]
        return np.array(costs) * self.gpus_used

    @cached_property
    def assets(self) -> pd.DataFrame:
        sc = self._model.scenario
        price = self.compute_price_usd_per_gpu_hour
        used = self.gpus_used
        return pd.DataFrame(
            {
                "asset": [a.id for a in sc.assets],
                "node": [a.node for a in sc.assets],
                "type": [a.type for a in sc.assets],
                "owner": [a.owner for a in sc.assets],
                "gpus": [a.gpus for a in sc.assets],
                "gpus_used": used,
                "compute_price_usd_per_gpu_hour": price,
                "revenue_usd_per_h": self.asset_revenue_usd_per_h,
                "cost_usd_per_h": self.asset_cost_usd_per_h,
            }
        )

    @cached_property
    def links(self) -> pd.DataFrame:
        sc = self._model.scenario
        capacity = np.array([link.capacity_gbps for link in sc.links])
        flow = self.link_flow_gbps
        price = self.link_price_usd_per_gbps_h
        with np.errstate(divide="ignore", invalid="ignore"):
            utilisation = np.where(capacity > 0, flow / capacity, 0.0)
        return pd.DataFrame(
            {
                "link": [link.id for link in sc.links],
                "a": [link.a for link in sc.links],
                "b": [link.b for link in sc.links],
                "flow_gbps": flow,
                "capacity_gbps": capacity,
                "utilisation": utilisation,
                "shadow_price_usd_per_gbps_h": price,
                "congestion_rent_usd_per_h": price * capacity,
                "saturated": (capacity > 0) & (flow >= capacity * (1 - SATURATED)),
            }
        )

    @cached_property
    def dispatch(self) -> pd.DataFrame:
        """Routed flows; `links` names the route's link ids (parallel links)."""
        links = self._model.scenario.links
        rows = [
            (
                yi.workload,
                yi.demand_node,
                yi.compute_node,
                yi.route.label,
                " ".join(links[i].id for i in yi.route.links),
                yi.route.latency_ms,
                units.mtok_s_to_tokens(value),
            )
            for yi, value in zip(self._model.y_index, self._raw.y, strict=True)
            if value > 1e-12
        ]
        columns = [
            "workload",
            "from_node",
            "to_node",
            "route",
            "links",
            "latency_ms",
            "tokens_per_s",
        ]
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def processing(self) -> pd.DataFrame:
        """Tokens/s of each workload processed on each asset (nonzero rows).

        Assets of one type at one node are interchangeable: the LP fixes how
        many GPUs each runs, not which workload runs on which. Each workload's
        tokens are therefore split among such assets in proportion to their
        GPUs used, so the table does not depend on input order.
        """
        model = self._model
        assets = model.scenario.assets
        used = self.gpus_used
        z = dict(zip(model.z_index, self._raw.z, strict=True))
        groups: dict[tuple[str, str], list[int]] = {}
        for a, asset in enumerate(assets):
            groups.setdefault((asset.node, asset.type), []).append(a)
        rows = []
        for members in groups.values():
            group_gpus = sum(used[a] for a in members)
            for k in model.workload_ids:
                total = sum(z[k, a] for a in members)
                for a in members:
                    share = used[a] / group_gpus if group_gpus > 0 else 0.0
                    value = total * share
                    if value > 1e-12:
                        tokens = units.mtok_s_to_tokens(value)
                        rows.append((k, assets[a].id, assets[a].node, tokens))
        return pd.DataFrame(rows, columns=["workload", "asset", "node", "tokens_per_s"])

    @cached_property
    def unserved(self) -> pd.DataFrame:
        """Demand not served: the shortfall of an infeasible market, or the
        demand shed at the penalty price when shedding is on."""
        if self._unserved is not None:
            return self._unserved
        columns = ["workload", "node", "tokens_per_s", "reason", "binding"]
        rows = [
            (k, s, units.mtok_s_to_tokens(q), SHED, "")
            for (k, s), q in zip(self._model.pairs, self._raw.q, strict=False)
            if units.mtok_s_to_tokens(q) > 1e-3
        ]
        return pd.DataFrame(rows, columns=columns)

    @cached_property
    def unserved_total_tokens_per_s(self) -> float:
        """Sum of the `unserved` table, without building it when nothing is shed."""
        if self._unserved is not None or self.shedding:
            return float(self.unserved["tokens_per_s"].sum())
        return 0.0

    # -- export --------------------------------------------------------------

    def to_dict(self) -> dict:
        """The JSON form printed by ``tokenflow clear --json``."""
        return {
            "scenario": self.scenario_name,
            "status": self.status,
            "bandwidth_model": self.bandwidth_model,
            "total_cost_usd_per_h": self.total_cost_usd_per_h,
            "degenerate": self.degenerate,
            "prices": _records(self.prices),
            "processing_prices": _records(self.processing_prices),
            "links": _records(self.links),
            "assets": _records(self.assets),
            "dispatch": _records(self.dispatch),
            "settlement": {k: _plain(v) for k, v in asdict(self.settlement).items()},
            "unserved": _records(self.unserved),
        }


def _bids_in_order(model):
    return [model.demand[model.pairs[p]].bids[b] for p, b in model.d_index]


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain JSON values: NaN becomes null, numpy scalars Python ones."""
    out = []
    for row in frame.to_dict(orient="records"):
        out.append({key: _plain(value) for key, value in row.items()})
    return out


def _plain(value):
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        value = float(value)
        return None if math.isnan(value) else value + 0.0
    return value
