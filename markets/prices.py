"""From raw LP duals to prices: signs, units and the rules outside the optimum.

GLOP reports, for a minimisation, dual = d(objective)/d(right-hand side), in
the LP's units (USD/h per unit of the row). The sign table, written once:

| row (LP form) | raw dual | price reported (unit) |
| --- | --- | --- |
| demand (k,s): sum y + q - sum d = D | +dCost/dD | lmp = dual/3600 (USD/Mtok) |
| processing (k,n): sum y - sum z = 0 | -cost | -dual/3600 (USD/Mtok) |
| compute (a): sum z*gpus - sum u = 0 | -price | -dual (USD/GPU-h) |
| link (l): sum bits*y <= capacity | <= 0 | -dual (USD/Gbps-h) |

Perturbation meaning: one more token/s of demand of k at s for one hour raises
the cost by lmp * 3600 / 1e6 USD; one more Gbps of link capacity for an hour
lowers it by the link's shadow price.

Rules that make the prices unique where the LP leaves them open:
- an asset with no GPUs running is priced at its marginal offer: the cheapest
  block it offers (NaN when it offers nothing);
- the processing price of (k,n) is the cheapest compute price at n divided by
  throughput, which is the dual wherever n processes k;
- the LMP of (k,s) is the cheapest delivered cost over the eligible routes
  (processing price plus link prices and transfer costs along the route);
  wherever s is served this equals the demand-balance dual, and elsewhere it
  is the cost of the next token. A node that reaches no offered capacity has
  no price (NaN). With shedding on, no LMP exceeds the shed penalty.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from markets import units

_USED_GPUS = 1e-9


@dataclass
class Prices:
    """Prices of one clearing in reporting units."""

    compute_usd_per_gpu_hour: np.ndarray
    link_usd_per_gbps_h: np.ndarray
    processing_usd_per_mtok: np.ndarray
    lmp_usd_per_mtok: np.ndarray


def derive_prices(model, raw, gpus_used: np.ndarray) -> Prices:
    """Prices for every asset, link, (workload, compute node) and (workload, node)."""
    sc = model.scenario
    compute = _compute_prices(model, raw, gpus_used)
    links = np.zeros(len(sc.links))
    links[model.used_links] = np.maximum(0.0, -raw.dual_link) + 0.0
    processing = _processing_prices(model, compute)
    lmp = _lmps(model, processing, links)
    return Prices(compute, links, processing, lmp)


def _compute_prices(model, raw, gpus_used) -> np.ndarray:
    assets = model.scenario.assets
    marginal = np.full(len(assets), np.nan)
    for (a, _), ub, price in zip(
        model.u_index, (v.ub() for v in model.u_vars), model.offer_prices, strict=True
    ):
        if ub > 0 and not price >= marginal[a]:
            marginal[a] = price
    return np.where(gpus_used > _USED_GPUS, -raw.dual_compute, marginal)


def _processing_prices(model, compute: np.ndarray) -> np.ndarray:
    """Array [workload, compute node] in USD/Mtok, NaN without offered capacity."""
    sc = model.scenario
    out = np.full((len(model.workload_ids), len(model.compute_nodes)), np.nan)
    node_col = {n: j for j, n in enumerate(model.compute_nodes)}
    for a, asset in enumerate(sc.assets):
        if np.isnan(compute[a]):
            continue
        j = node_col[asset.node]
        for i, k in enumerate(model.workload_ids):
            per_mtok_s = compute[a] * units.gpus_per_mtok_s(sc.throughput(asset, k))
            price = units.lp_to_usd_per_mtok(per_mtok_s)
            if not price >= out[i, j]:
                out[i, j] = price
    return out


def _lmps(model, processing: np.ndarray, links: np.ndarray) -> np.ndarray:
    """Array [workload, node]: cheapest delivered cost, NaN if unreachable."""
    table = model.price_routes
    out = np.full((len(model.workload_ids), len(model.node_ids)), np.nan)
    if len(table.workload):
        per_mtok_s = table.gbps_per_mtok_s @ links + table.transfer_usd_per_h
        cost = processing[table.workload, table.compute] + units.lp_to_usd_per_mtok(
            per_mtok_s
        )
        # fmin skips NaN: routes to nodes without offered capacity do not count.
        np.fmin.at(out, (table.workload, table.node), cost)
    penalty = model.scenario.shed_penalty_usd_per_mtok
    if penalty is not None:
        out = np.fmin(out, np.where(np.isnan(out), np.nan, penalty))
    return out
