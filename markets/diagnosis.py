"""Why a hard-demand market is infeasible, and by how much.

The feasibility LP keeps every capacity and latency limit and minimises the
hard demand left unserved (in Mtok/s). Its solution gives each (workload,
node) shortfall; its duals tell which limits bind: a link with a positive
dual is full, an asset with a positive dual has no GPU to spare.

The total shortfall is exact (no schedule serves more); how it is split among
nodes that compete for the same scarce capacity is one of several equally
short schedules.
"""

# TODO: Split a shared shortfall by a stated rationing rule (pro rata to demand,
# as in load shedding); today the split is whichever schedule GLOP reaches, so
# per-node shortfalls can move between nodes when unrelated data changes.

from __future__ import annotations

import numpy as np
import pandas as pd

from markets import units

NO_ROUTE = "no eligible route"
NO_OFFER = "no GPUs offered within reach"
LINK = "link bandwidth"
COMPUTE = "compute capacity"
BOTH = "link bandwidth and compute capacity"
_BINDING = 1e-9
_SHORT_TOKENS_PER_S = 1e-3


def diagnose(model, raw) -> pd.DataFrame:
    """One row per short (workload, node): tokens/s, reason, binding limits."""
    sc = model.scenario
    link_dual = dict(zip(model.used_links, -raw.dual_link, strict=True))
    asset_dual = -raw.dual_compute
    offered = _offered_nodes(model)
    rows = []
    for p, (k, s) in enumerate(model.pairs):
        short = units.mtok_s_to_tokens(raw.q[p])
        if short <= _SHORT_TOKENS_PER_S:
            continue
        limit = sc.workloads[k].latency_limit_ms
        routes = [r for n in offered for r in model.routes_for(s, n, limit)]
        if not routes:
            reach = [n for n in model.compute_nodes if model.routes_for(s, n, limit)]
            reason = NO_OFFER if reach else NO_ROUTE
            rows.append((k, s, short, reason, ", ".join(reach)))
            continue
        links = sorted(
            {i for r in routes for i in r.links if link_dual.get(i, 0.0) > _BINDING}
        )
        reach = {r.compute_node for r in routes}
        assets = [
            a
            for a, asset in enumerate(sc.assets)
            if asset.node in reach and asset_dual[a] > _BINDING
        ]
        reason = {(True, False): LINK, (False, True): COMPUTE}.get(
            (bool(links), bool(assets)), BOTH if links else COMPUTE
        )
        binding = [sc.links[i].id for i in links] + [sc.assets[a].id for a in assets]
        rows.append((k, s, short, reason, ", ".join(binding)))
    columns = ["workload", "node", "tokens_per_s", "reason", "binding"]
    return pd.DataFrame(rows, columns=columns)


def _offered_nodes(model) -> list[str]:
    """Compute nodes with at least one GPU on offer."""
    nodes = set()
    for (a, _), var in zip(model.u_index, model.u_vars, strict=True):
        if var.ub() > 0:
            nodes.add(model.scenario.assets[a].node)
    return [n for n in model.compute_nodes if n in nodes]


def is_short(raw) -> bool:
    """True when the feasibility LP leaves some hard demand unserved."""
    return bool(np.any(units.mtok_s_to_tokens(raw.q) > _SHORT_TOKENS_PER_S))
