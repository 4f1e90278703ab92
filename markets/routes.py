"""Candidate routes: latency-eligible simple paths from demand to compute.

A route is a simple path over links. Parallel links are distinct routes. For
each (demand node, compute node) pair the candidates are the simple paths in
order of latency (ties: the path whose link indices come first in the
scenario, among the first ``2 * max_routes`` equally fast paths found), at
most ``max_routes`` of them; a workload may use the first
``max_routes`` candidates whose latency is within its limit. Closed links
(capacity 0) carry no route. Local service is a route with no links.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import networkx as nx

from scenarios.schema import Scenario

_LATENCY_TIE_MS = 1e-9
_TIE_CAP = 2


@dataclass(frozen=True)
class Route:
    """A simple path from a demand node to a compute node."""

    demand_node: str
    compute_node: str
    nodes: tuple[str, ...]
    links: tuple[int, ...]
    latency_ms: float

    @property
    def label(self) -> str:
        return "-".join(self.nodes)


def candidate_routes(
    scenario: Scenario, demand_nodes, compute_nodes
) -> dict[tuple[str, str], list[Route]]:
    """Routes per (demand node, compute node), sorted by latency.

    Only routes within the loosest workload latency limit are kept; per
    workload, use `eligible_routes` to cut at its own limit.
    """
    max_limit = max(w.latency_limit_ms for w in scenario.workloads.values())
    graph = _link_graph(scenario)
    routes = {}
    for s, n in itertools.product(demand_nodes, compute_nodes):
        if s == n:
            routes[s, n] = [Route(s, n, (s,), (), 0.0)]
        else:
            routes[s, n] = _paths(graph, scenario, s, n, max_limit)
    return routes


def eligible_routes(
    candidates: list[Route], latency_limit_ms: float, max_routes: int
) -> list[Route]:
    """The first `max_routes` candidates within a workload's latency limit."""
    within = [r for r in candidates if r.latency_ms <= latency_limit_ms + 1e-9]
    return within[:max_routes]


def _link_graph(scenario: Scenario) -> nx.Graph:
    """Nodes plus one vertex per open link, so parallel links stay distinct."""
    graph = nx.Graph()
    graph.add_nodes_from(scenario.nodes)
    for i, link in enumerate(scenario.links):
        if link.capacity_gbps <= 0:
            continue
        half = link.latency_ms / 2
        graph.add_edge(link.a, ("link", i), latency_ms=half)
        graph.add_edge(("link", i), link.b, latency_ms=half)
    return graph


def _paths(graph, scenario, s, n, max_limit) -> list[Route]:
    if s not in graph or n not in graph or not nx.has_path(graph, s, n):
        return []
    max_routes = scenario.max_routes
    found: list[Route] = []
    for path in nx.shortest_simple_paths(graph, s, n, weight="latency_ms"):
        nodes = tuple(p for p in path[::2])
        links = tuple(p[1] for p in path[1::2])
        latency = sum(scenario.links[i].latency_ms for i in links)
        if latency > max_limit + 1e-9:
            break
        # Keep going past max_routes only while latencies tie, so that the
        # tie-break below sees every path of the last latency.
        if (
            len(found) >= max_routes
            and latency > found[-1].latency_ms + _LATENCY_TIE_MS
        ):
            break
        found.append(Route(s, n, nodes, links, latency))
    found.sort(key=lambda r: (round(r.latency_ms, 9), r.links))
    return found[:max_routes]
