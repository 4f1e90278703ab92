"""Scenario builders, unit conversions and table readers for the identity tests.

Everything here is written from the scenario format (docs/scenario-format.md)
and the units of MODEL.md, not from the product's code: the conversions are
spelled out again so that a wrong factor in `markets.units` cannot cancel out.

- a pool at c USD/GPU-h with throughput thr tokens/s/GPU prices a token at
  c * 1e6 / (thr * 3600) USD per million tokens (USD/Mtok);
- x tokens/s for one hour at p USD/Mtok cost p * x * 3600 / 1e6 USD/h;
- y tokens/s of a payload of b bits per token use b * y / 1e9 Gbps;
- a link price of s USD/Gbps-h adds s * b / 1e9 * 1e6 / 3600 USD/Mtok;
- a transfer charge of t USD/GB adds t * b / 8 / 1e9 * 1e6 USD/Mtok.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterable

import networkx as nx
from hypothesis import strategies as st

from scenarios import Demand, OfferBlock, Scenario

S_PER_H = 3600.0
TOK_PER_MTOK = 1e6
BITS_PER_GBIT = 1e9
BITS_PER_GB = 8e9

# ---------------------------------------------------------------- units


def usd_per_mtok_of_gpu_hour(price_usd_per_gpu_hour: float, thr: float) -> float:
    """A compute price per GPU-hour as a price per million tokens."""
    return price_usd_per_gpu_hour * TOK_PER_MTOK / (thr * S_PER_H)


def usd_per_mtok_of_link(shadow_usd_per_gbps_h: float, bits: float) -> float:
    """A link shadow price as a price per million tokens of a payload."""
    return shadow_usd_per_gbps_h * bits / BITS_PER_GBIT * TOK_PER_MTOK / S_PER_H


def usd_per_mtok_of_transfer(transfer_usd_per_gb: float, bits: float) -> float:
    """A transfer charge per GB as a price per million tokens of a payload."""
    return transfer_usd_per_gb * bits / BITS_PER_GB * TOK_PER_MTOK


def usd_per_h(price_usd_per_mtok: float, tokens_per_s: float) -> float:
    """What a flow of tokens/s costs in an hour at a price per million tokens."""
    return price_usd_per_mtok * tokens_per_s * S_PER_H / TOK_PER_MTOK


# ---------------------------------------------------------------- dicts


def node_dicts(ids: Iterable[str]) -> dict:
    """Nodes on the equator, one degree apart, all on UTC."""
    return {
        n: {"name": f"node {n}", "lat": 0.0, "lon": float(i), "utc_offset_h": 0}
        for i, n in enumerate(ids)
    }


def asset_dict(asset_id, node, kind, gpus, cost, owner="p0", offers=None) -> dict:
    entry = {
        "id": asset_id,
        "node": node,
        "type": kind,
        "gpus": gpus,
        "cost_usd_per_gpu_hour": cost,
        "owner": owner,
    }
    if offers is not None:
        entry["offers"] = [{"gpus": g, "price_usd_per_gpu_hour": p} for g, p in offers]
    return entry


def link_dict(a, b, capacity_gbps, latency_ms, transfer_usd_per_gb=None) -> dict:
    entry = {"a": a, "b": b, "capacity_gbps": capacity_gbps, "latency_ms": latency_ms}
    if transfer_usd_per_gb is not None:
        entry["transfer_usd_per_gb"] = transfer_usd_per_gb
    return entry


def demand_dict(node, workload, tokens_per_s=None, bids=None) -> dict:
    entry = {"node": node, "workload": workload}
    if tokens_per_s is not None:
        entry["tokens_per_s"] = tokens_per_s
    if bids:
        entry["bids"] = [{"tokens_per_s": q, "value_usd_per_mtok": v} for q, v in bids]
    return entry


def scenario_dict(
    name, nodes, asset_types, assets, links, workloads, demand, **extra
) -> dict:
    """workloads maps id -> (latency_limit_ms, bits_per_token)."""
    data = {
        "name": name,
        "bandwidth_model": "transfer",
        "token_equivalent_bits": 400,
        "nodes": nodes,
        "asset_types": {
            t: {"tokens_per_s_per_gpu": dict(thr)} for t, thr in asset_types.items()
        },
        "assets": assets,
        "links": links,
        "workloads": {
            k: {"latency_limit_ms": lim, "bits_per_token": bits}
            for k, (lim, bits) in workloads.items()
        },
        "demand": demand,
    }
    data.update(extra)
    return data


# ---------------------------------------------------------------- scenario data


def offered_blocks(asset) -> tuple[OfferBlock, ...]:
    """The asset's offer as the scenario states it (default: all GPUs at cost)."""
    if asset.offers:
        return tuple(asset.offers)
    return (OfferBlock(asset.gpus, asset.cost_usd_per_gpu_hour),)


def offered_gpus(asset) -> float:
    return sum(b.gpus for b in offered_blocks(asset))


def merit_fill(blocks, gpus_used: float) -> list[tuple[OfferBlock, float]]:
    """Each block with the GPUs it runs when the cheapest blocks run first.

    A least-cost dispatch never runs a dearer block of an asset while a
    cheaper one of the same asset has room, so this is how `gpus_used` splits.
    """
    left = gpus_used
    out = []
    for block in sorted(blocks, key=lambda b: b.price_usd_per_gpu_hour):
        take = min(max(left, 0.0), block.gpus)
        out.append((block, take))
        left -= take
    return out


def with_demand(sc: Scenario, demand: Iterable[Demand]) -> Scenario:
    return dataclasses.replace(sc, demand=tuple(demand))


def with_offers(sc: Scenario, offers: dict) -> Scenario:
    assets = tuple(
        dataclasses.replace(a, offers=tuple(offers[a.id])) if a.id in offers else a
        for a in sc.assets
    )
    return dataclasses.replace(sc, assets=assets)


def demand_changed(sc: Scenario, workload: str, node: str, delta: float) -> Scenario:
    """The scenario with the hard demand of (workload, node) moved by delta.

    A pair without a demand entry gets one with `delta` tokens/s.
    """
    out, found = [], False
    for d in sc.demand:
        if (d.workload, d.node) == (workload, node):
            d = dataclasses.replace(d, tokens_per_s=d.tokens_per_s + delta)
            found = True
        out.append(d)
    if not found:
        assert delta >= 0
        out.append(Demand(node, workload, delta))
    return with_demand(sc, out)


def links_between(sc: Scenario, a: str, b: str) -> list[int]:
    """Indices of the open links joining a and b (several if parallel)."""
    return [
        i
        for i, link in enumerate(sc.links)
        if {link.a, link.b} == {a, b} and link.capacity_gbps > 0
    ]


def route_link_choices(sc: Scenario, route: str) -> list[tuple[int, ...]]:
    """Every tuple of link indices a route label "A-B-C" can stand for."""
    hops = route.split("-")
    options = [links_between(sc, a, b) for a, b in itertools.pairwise(hops)]
    return list(itertools.product(*options))


def min_latency_ms(sc: Scenario, source: str) -> dict[str, float]:
    """Least latency from a node to every node it reaches over open links."""
    graph = nx.Graph()
    graph.add_nodes_from(sc.nodes)
    for link in sc.links:
        if link.capacity_gbps <= 0:
            continue
        old = graph.get_edge_data(link.a, link.b, {}).get("w", math.inf)
        graph.add_edge(link.a, link.b, w=min(old, link.latency_ms))
    return nx.single_source_dijkstra_path_length(graph, source, weight="w")


# ---------------------------------------------------------------- result tables


def lmps(r) -> dict[tuple[str, str], float]:
    return {
        (row.workload, row.node): float(row.lmp_usd_per_mtok)
        for row in r.prices.itertuples(index=False)
    }


def served(r) -> dict[tuple[str, str], float]:
    return {
        (row.workload, row.node): float(row.served_tokens_per_s)
        for row in r.prices.itertuples(index=False)
    }


def compute_prices(r) -> dict[str, float]:
    return {
        row.asset: float(row.compute_price_usd_per_gpu_hour)
        for row in r.assets.itertuples(index=False)
    }


def gpus_used(r) -> dict[str, float]:
    return {row.asset: float(row.gpus_used) for row in r.assets.itertuples(index=False)}


def link_flows(r) -> dict[str, float]:
    return {row.link: float(row.flow_gbps) for row in r.links.itertuples(index=False)}


def processed(r) -> dict[tuple[str, str], float]:
    """{(workload, asset id): tokens/s}."""
    out: dict[tuple[str, str], float] = {}
    for row in r.processing.itertuples(index=False):
        key = (row.workload, row.asset)
        out[key] = out.get(key, 0.0) + float(row.tokens_per_s)
    return out


def unserved_by_pair(r) -> dict[tuple[str, str], float]:
    out: dict[tuple[str, str], float] = {}
    for row in r.unserved.itertuples(index=False):
        key = (row.workload, row.node)
        out[key] = out.get(key, 0.0) + float(row.tokens_per_s)
    return out


# ---------------------------------------------------------------- strategies

BITS = (100, 160, 400, 1600, 8000)
LIMITS_MS = (0, 15, 40, 100, 1000)
THROUGHPUTS = (250, 500, 1000, 2000, 4000)
COSTS_USD_PER_GPU_H = (0.5, 1.0, 1.5, 2.0, 3.0)  # shared prices make ties
BACKSTOP_USD_PER_GPU_H = 6.0  # dearer than any other offer
CAPACITIES_GBPS = (0, 0.01, 0.05, 0.2, 1, 5, 50)
LATENCIES_MS = (0, 3, 10, 25, 60)
TRANSFER_USD_PER_GB = (0, 0, 0, 0.01, 0.05)
DEMAND_STEP_TOKENS_PER_S = 50_000
GPU_STEP = 50


@st.composite
def markets(
    draw,
    *,
    min_nodes: int = 2,
    max_nodes: int = 6,
    bids: bool = True,
    parallel: bool = True,
    max_assets: int = 5,
) -> dict:
    """A random market as a scenario dict.

    Values come from coarse grids, so that two limits are either equal (a
    degenerate optimum) or clearly apart: demand in steps of 50,000 tokens/s
    and GPUs in steps of 50 make capacity and demand meet exactly now and
    then. Links may be missing (unconnected nodes), closed (capacity 0),
    small enough to congest, or parallel to another link. Some markets get a
    dear local backstop pool at every node, so that congested links and
    latency limits raise prices instead of making the market infeasible.
    Some get a pool that exactly fits one demand (see below).
    """
    n_nodes = draw(st.integers(min_nodes, max_nodes))
    node_ids = [f"N{i}" for i in range(n_nodes)]
    n_work = draw(st.integers(1, 3))
    workloads = {
        f"w{i}": (draw(st.sampled_from(LIMITS_MS)), draw(st.sampled_from(BITS)))
        for i in range(n_work)
    }
    n_types = draw(st.integers(1, 2))
    types = {
        f"t{j}": {k: draw(st.sampled_from(THROUGHPUTS)) for k in workloads}
        for j in range(n_types)
    }
    price = st.one_of(
        st.sampled_from(COSTS_USD_PER_GPU_H), st.integers(5, 50).map(lambda x: x / 10)
    )
    assets = []
    for i in range(draw(st.integers(1, max_assets))):
        gpus = GPU_STEP * draw(st.integers(0, 20))
        cost = draw(price)
        offers = None
        if draw(st.booleans()):
            offers, left = [], gpus
            for _ in range(draw(st.integers(1, 3))):
                size = GPU_STEP * draw(st.integers(0, left // GPU_STEP))
                offers.append((size, draw(price)))
                left -= size
        assets.append(
            asset_dict(
                f"a{i}",
                draw(st.sampled_from(node_ids)),
                draw(st.sampled_from(sorted(types))),
                gpus,
                cost,
                owner=f"p{i % 2}",
                offers=offers,
            )
        )
    if draw(st.booleans()):
        for n in node_ids:
            kind = draw(st.sampled_from(sorted(types)))
            assets.append(
                asset_dict(f"b{n}", n, kind, 2000, BACKSTOP_USD_PER_GPU_H, "backstop")
            )
    links, pairs_seen = [], set()
    if draw(st.booleans()):  # a chain through every node
        for a, b in itertools.pairwise(node_ids):
            links.append(
                link_dict(a, b, draw(st.sampled_from(CAPACITIES_GBPS[1:])), 10)
            )
            pairs_seen.add(frozenset((a, b)))
    for _ in range(draw(st.integers(0, 2 * n_nodes))):
        a = draw(st.sampled_from(node_ids))
        b = draw(st.sampled_from([n for n in node_ids if n != a]))
        if frozenset((a, b)) in pairs_seen and not parallel:
            continue
        pairs_seen.add(frozenset((a, b)))
        transfer = draw(st.sampled_from(TRANSFER_USD_PER_GB))
        links.append(
            link_dict(
                a,
                b,
                draw(st.sampled_from(CAPACITIES_GBPS)),
                draw(st.sampled_from(LATENCIES_MS)),
                transfer or None,
            )
        )
    demand = []
    for k in workloads:
        for n in node_ids:
            if not draw(st.booleans()):
                continue
            hard = DEMAND_STEP_TOKENS_PER_S * draw(st.integers(0, 8))
            blocks = []
            if bids and draw(st.integers(0, 3)) == 0:
                blocks = [
                    (
                        DEMAND_STEP_TOKENS_PER_S * draw(st.integers(1, 4)),
                        draw(st.integers(1, 80)) / 10,
                    )
                    for _ in range(draw(st.integers(1, 2)))
                ]
            demand.append(demand_dict(n, k, hard, blocks))
    hard_pairs = [d for d in demand if d["tokens_per_s"] > 0]
    if hard_pairs and draw(st.booleans()):
        # A cheap local pool that exactly fits one demand, backed by a dear
        # pool: the demand sits on a block boundary, so its price jumps there
        # (a degenerate optimum whose next token is still servable).
        d = draw(st.sampled_from(hard_pairs))
        kind = draw(st.sampled_from(sorted(types)))
        gpus = d["tokens_per_s"] / types[kind][d["workload"]]
        assets.append(asset_dict("fit", d["node"], kind, gpus, 0.25, "fit"))
        assets.append(
            asset_dict("fit-backstop", d["node"], kind, 4000, 5.5, "backstop")
        )
    return scenario_dict(
        "random",
        node_dicts(node_ids),
        types,
        assets,
        links,
        workloads,
        demand,
        bandwidth_model=draw(st.sampled_from(("transfer", "token"))),
        token_equivalent_bits=draw(st.sampled_from((100, 400, 1000))),
        max_routes=draw(st.sampled_from((1, 2, 4))),
    )


def one_node_market(pools, demand_tokens_per_s: float, value=None) -> Scenario:
    """One node A, one workload `bulk` (1000 tokens/s per GPU, flat profile).

    pools: (asset id, GPUs, cost USD/GPU-h, owner). With ``value`` the demand
    is one elastic bid block at that value (USD/Mtok) instead of hard demand.
    """
    from scenarios import scenario_from_dict

    entry = {"node": "A", "workload": "bulk", "tokens_per_s": demand_tokens_per_s}
    if value is not None:
        block = {"tokens_per_s": demand_tokens_per_s, "value_usd_per_mtok": value}
        entry = {"node": "A", "workload": "bulk", "tokens_per_s": 0, "bids": [block]}
    bulk = {"latency_limit_ms": 100, "bits_per_token": 100, "profile": "flat"}
    return scenario_from_dict(
        {
            "name": "one",
            "bandwidth_model": "transfer",
            "token_equivalent_bits": 400,
            "nodes": {"A": {"lat": 0, "lon": 0}},
            "asset_types": {"g": {"tokens_per_s_per_gpu": {"bulk": 1000}}},
            "assets": [asset_dict(i, "A", "g", g, c, owner=o) for i, g, c, o in pools],
            "workloads": {"bulk": bulk},
            "demand": [entry],
        }
    )
