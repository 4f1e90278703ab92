"""The clearing LP: built once per topology, updated and re-solved each step.

Variables (all >= 0, flows in Mtok/s):
    y  tokens of workload k from demand node s to compute node n on route r
    z  tokens of workload k processed on asset a
    u  GPUs of asset a dispatched from offer block o (upper bound: block size)
    d  tokens of elastic bid block b accepted (upper bound: block size)
    q  tokens of hard demand shed at the penalty (only when shedding is on,
       or in the feasibility LP that diagnoses an infeasible market)

Rows: demand balance (k,s), processing balance (k,n), compute balance (a),
link capacity (l). See `markets.prices` for how their duals become prices.

Tie-breaks: among dispatches of equal cost the one that keeps the least data
in flight is chosen (tokens x bits per token x route latency; then the fewest
links, local service first; then candidate order), and identical offer prices
at different places are dispatched in order of asset id. Both are done with
tiny cost offsets (`route_tie_usd_per_h`, `OFFER_TIE_USD_PER_GPU_HOUR`), so
that the optimal flows do not depend on input order; reported costs and LMPs
leave the offsets out, and `max_route_tie_usd_per_h` bounds their effect.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from ortools.linear_solver import pywraplp

from markets import units
from markets.lp_solve import (
    _GLOP_PARAMS,
    ClearingError,
    RawSolution,
    SolvingMixin,
)
from markets.routes import Route, candidate_routes, eligible_routes
from scenarios.schema import BidBlock, Demand, OfferBlock, Scenario

logger = logging.getLogger(__name__)

OFFER_TIE_USD_PER_GPU_HOUR = 1e-9
ROUTE_TIE_USD_PER_H_MS = 1e-5  # per ms of latency, for a 1000-bit token
ROUTE_HOP_TIE_USD_PER_H = 1e-6
ROUTE_RANK_TIE_USD_PER_H = 1e-7
_WORKLOAD_TIE = 1e-3  # separates workloads of equal bits, in workload order


@dataclass(frozen=True)
class PriceRoutes:
    """Every eligible (workload, node, compute node, route), as arrays.

    Used to price each workload at each node at its cheapest delivered cost:
    row r costs processing[workload[r], compute[r]] plus its links' prices
    times `gbps_per_mtok_s[r]` plus `transfer_usd_per_h[r]` (per Mtok/s).
    """

    workload: np.ndarray
    node: np.ndarray
    compute: np.ndarray
    gbps_per_mtok_s: np.ndarray
    transfer_usd_per_h: np.ndarray


@dataclass(frozen=True)
class YIndex:
    """What one routing variable stands for."""

    workload: str
    demand_node: str
    compute_node: str
    route: Route
    gbps_per_mtok_s: float
    transfer_usd_per_h: float


class ClearingModel(SolvingMixin):
    """The GLOP model of one market topology; demands and offers are data."""

    def __init__(
        self,
        scenario: Scenario,
        demand: dict[tuple[str, str], Demand],
        offers: dict[str, tuple[OfferBlock, ...]],
        *,
        feasibility: bool = False,
    ):
        self.scenario = scenario
        self.feasibility = feasibility
        self.params = pywraplp.MPSolverParameters()
        self.params.SetIntegerParam(
            pywraplp.MPSolverParameters.PRESOLVE,
            pywraplp.MPSolverParameters.PRESOLVE_OFF,
        )
        self.shedding = feasibility or scenario.shed_penalty_usd_per_mtok is not None
        self._topology()
        self._index(demand, offers)
        self._build_solver(demand, offers)

    def _build_solver(self, demand, offers, *, glop_params: str = _GLOP_PARAMS):
        """A new GLOP instance holding the model, with no basis to start from."""
        self.solver = pywraplp.Solver.CreateSolver("GLOP")
        self.solver.SetSolverSpecificParametersAsString(glop_params)
        self._build_variables()
        self._build_rows()
        self.set_data(demand, offers)

    # -- structure -----------------------------------------------------------

    def shape_of(self, demand, offers) -> tuple:
        """What must match for `set_data` to reuse this model."""
        pairs = self._pairs_of(demand)
        bids = tuple(len(demand[p].bids) if p in demand else 0 for p in pairs)
        blocks = tuple(len(offers[a.id]) for a in self.scenario.assets)
        return pairs, bids, blocks

    def _pairs_of(self, demand) -> tuple[tuple[str, str], ...]:
        """Demand pairs given plus every pair that reaches compute, in order."""
        return tuple(sorted(set(demand) | self.reachable_pairs, key=self._pair_order))

    def _pair_order(self, pair):
        workload, node = pair
        return self.workload_ids.index(workload), self.node_ids.index(node)

    def _topology(self) -> None:
        """Nodes, compute nodes, candidate routes and who reaches compute.

        Every (workload, node) that reaches a compute node gets a demand row,
        demand or not, so that its next token can be priced.
        """
        sc = self.scenario
        self.workload_ids = list(sc.workloads)
        self.node_ids = list(sc.nodes)
        self.compute_nodes = [
            n for n in self.node_ids if any(a.node == n for a in sc.assets)
        ]
        self.candidates = candidate_routes(sc, self.node_ids, self.compute_nodes)
        self.reachable_pairs = {
            (k, s)
            for k, workload in sc.workloads.items()
            for s in self.node_ids
            if any(
                self.routes_for(s, n, workload.latency_limit_ms)
                for n in self.compute_nodes
            )
        }

    def _index(self, demand, offers) -> None:
        sc = self.scenario
        demand = self._complete(demand)
        self.shape = self.shape_of(demand, offers)
        self.pairs = list(self.shape[0])
        self.pair_workload = np.array(
            [self.workload_ids.index(k) for k, _ in self.pairs], dtype=int
        )
        self.pair_node = np.array(
            [self.node_ids.index(s) for _, s in self.pairs], dtype=int
        )
        self.y_index: list[YIndex] = []
        for k, s in self.pairs:
            bits = sc.link_bits_per_token(k)
            limit = sc.workloads[k].latency_limit_ms
            for n in self.compute_nodes:
                for route in self.routes_for(s, n, limit):
                    transfer = sum(sc.links[i].transfer_usd_per_gb for i in route.links)
                    self.y_index.append(
                        YIndex(
                            k,
                            s,
                            n,
                            route,
                            units.gbps_per_mtok_s(bits),
                            transfer * units.gb_per_hour_per_mtok_s(bits),
                        )
                    )
        # Fixed per shape, read after every solve: which pair each routing
        # variable serves, its transfer cost, and which asset each block is.
        pair_pos = {pair: p for p, pair in enumerate(self.pairs)}
        self.y_pair = np.array(
            [pair_pos[yi.workload, yi.demand_node] for yi in self.y_index], dtype=int
        )
        self.y_transfer_usd_per_h = np.array(
            [yi.transfer_usd_per_h for yi in self.y_index], dtype=float
        )
        self.pair_compute_nodes = [set() for _ in self.pairs]
        for p, yi in zip(self.y_pair, self.y_index, strict=True):
            self.pair_compute_nodes[p].add(yi.compute_node)
        self.price_routes = self._price_routes()
        self.z_index = [
            (k, a) for a in range(len(sc.assets)) for k in self.workload_ids
        ]
        self.u_index = [
            (a, o)
            for a, asset in enumerate(sc.assets)
            for o in range(len(offers[asset.id]))
        ]
        self.u_asset = np.array([a for a, _ in self.u_index], dtype=int)
        self.d_index = [
            (p, b)
            for p, pair in enumerate(self.pairs)
            for b in range(len(demand[pair].bids))
        ]
        self.used_links = sorted({i for y in self.y_index for i in y.route.links})

    def _price_routes(self) -> PriceRoutes:
        sc = self.scenario
        rows = []
        for i, k in enumerate(self.workload_ids):
            bits = sc.link_bits_per_token(k)
            limit = sc.workloads[k].latency_limit_ms
            for s_col, s in enumerate(self.node_ids):
                for j, n in enumerate(self.compute_nodes):
                    for route in self.routes_for(s, n, limit):
                        rows.append((i, s_col, j, route, bits))
        matrix = np.zeros((len(rows), len(sc.links)))
        transfer = np.zeros(len(rows))
        for r, (_, _, _, route, bits) in enumerate(rows):
            for link in route.links:
                matrix[r, link] = units.gbps_per_mtok_s(bits)
                transfer[r] += sc.links[link].transfer_usd_per_gb
            transfer[r] *= units.gb_per_hour_per_mtok_s(bits)
        return PriceRoutes(
            workload=np.array([row[0] for row in rows], dtype=int),
            node=np.array([row[1] for row in rows], dtype=int),
            compute=np.array([row[2] for row in rows], dtype=int),
            gbps_per_mtok_s=matrix,
            transfer_usd_per_h=transfer,
        )

    def routes_for(self, s: str, n: str, latency_limit_ms: float) -> list[Route]:
        """Eligible routes from node s to compute node n under a latency limit."""
        candidates = self.candidates[s, n]
        return eligible_routes(candidates, latency_limit_ms, self.scenario.max_routes)

    def _build_variables(self) -> None:
        solver, inf = self.solver, self.solver.infinity()
        self.y_vars = [solver.NumVar(0, inf, f"y{i}") for i in range(len(self.y_index))]
        self.z_vars = [solver.NumVar(0, inf, f"z{i}") for i in range(len(self.z_index))]
        self.u_vars = [solver.NumVar(0, 0, f"u{i}") for i in range(len(self.u_index))]
        self.d_vars = [solver.NumVar(0, 0, f"d{i}") for i in range(len(self.d_index))]
        n_shed = len(self.pairs) if self.shedding else 0
        self.q_vars = [solver.NumVar(0, inf, f"q{i}") for i in range(n_shed)]

        objective = solver.Objective()
        objective.SetMinimization()
        if self.feasibility:
            for q in self.q_vars:
                objective.SetCoefficient(q, 1.0)
            return
        ranks = self._route_ranks()
        for yi, var, route_rank in zip(self.y_index, self.y_vars, ranks, strict=True):
            bits = self.scenario.link_bits_per_token(yi.workload)
            rank = self.workload_ids.index(yi.workload)
            tie = route_tie_usd_per_h(yi.route, bits, rank, route_rank)
            cost = yi.transfer_usd_per_h + tie
            objective.SetCoefficient(var, cost)
        penalty = self.scenario.shed_penalty_usd_per_mtok
        for q in self.q_vars:
            objective.SetCoefficient(q, units.usd_per_mtok_to_lp(penalty))

    def _route_ranks(self) -> list[int]:
        ranks, previous, rank = [], None, 0
        for yi in self.y_index:
            key = (yi.workload, yi.demand_node, yi.compute_node)
            rank = rank + 1 if key == previous else 0
            ranks.append(rank)
            previous = key
        return ranks

    def _build_rows(self) -> None:
        solver, sc = self.solver, self.scenario
        self.demand_rows = [
            solver.Constraint(0, 0, f"demand{p}") for p in range(len(self.pairs))
        ]
        pair_row = {pair: p for p, pair in enumerate(self.pairs)}
        proc_key = [(k, n) for k in self.workload_ids for n in self.compute_nodes]
        proc_row = {key: r for r, key in enumerate(proc_key)}
        self.processing_keys = proc_key
        self.processing_rows = [
            solver.Constraint(0, 0, f"proc{r}") for r in range(len(proc_key))
        ]
        self.compute_rows = [
            solver.Constraint(0, 0, f"gpu{a}") for a in range(len(sc.assets))
        ]
        self.link_rows = {
            i: solver.Constraint(
                -solver.infinity(), sc.links[i].capacity_gbps, f"link{i}"
            )
            for i in self.used_links
        }

        link_pos = {i: j for j, i in enumerate(self.used_links)}
        self.link_matrix = np.zeros((len(self.used_links), len(self.y_index)))
        for col, (yi, var) in enumerate(zip(self.y_index, self.y_vars, strict=True)):
            for i in yi.route.links:
                self.link_matrix[link_pos[i], col] = yi.gbps_per_mtok_s
            self.demand_rows[pair_row[yi.workload, yi.demand_node]].SetCoefficient(
                var, 1.0
            )
            self.processing_rows[proc_row[yi.workload, yi.compute_node]].SetCoefficient(
                var, 1.0
            )
            for i in yi.route.links:
                self.link_rows[i].SetCoefficient(var, yi.gbps_per_mtok_s)
        for (k, a), var in zip(self.z_index, self.z_vars, strict=True):
            asset = sc.assets[a]
            self.processing_rows[proc_row[k, asset.node]].SetCoefficient(var, -1.0)
            gpus = units.gpus_per_mtok_s(sc.throughput(asset, k))
            self.compute_rows[a].SetCoefficient(var, gpus)
        for (a, _), var in zip(self.u_index, self.u_vars, strict=True):
            self.compute_rows[a].SetCoefficient(var, -1.0)
        for (p, _), var in zip(self.d_index, self.d_vars, strict=True):
            self.demand_rows[p].SetCoefficient(var, -1.0)
        for p, var in enumerate(self.q_vars):
            self.demand_rows[p].SetCoefficient(var, 1.0)

    # -- data ------------------------------------------------------------------

    def _complete(self, demand) -> dict[tuple[str, str], Demand]:
        """The demand of every pair of the model, zero where none is given."""
        return {
            pair: demand.get(pair) or Demand(pair[1], pair[0], 0.0)
            for pair in self._pairs_of(demand)
        }

    def set_data(self, demand, offers) -> None:
        """Write demands and offers into the built model (same shape only)."""
        demand = self._complete(demand)
        self.demand = demand
        self.offers = offers
        objective = self.solver.Objective()
        for p, pair in enumerate(self.pairs):
            hard = units.tokens_to_mtok_s(demand[pair].tokens_per_s)
            self.demand_rows[p].SetBounds(hard, hard)
        for (p, b), var in zip(self.d_index, self.d_vars, strict=True):
            bid: BidBlock = demand[self.pairs[p]].bids[b]
            var.SetUb(units.tokens_to_mtok_s(bid.tokens_per_s))
            if not self.feasibility:
                value = units.usd_per_mtok_to_lp(bid.value_usd_per_mtok)
                objective.SetCoefficient(var, -value)

        assets = self.scenario.assets
        blocks = [offers[assets[a].id][o] for a, o in self.u_index]
        offered = {
            assets[a].node
            for (a, _), b in zip(self.u_index, blocks, strict=True)
            if b.gpus > 0
        }
        self.pair_reaches_offer = [
            bool(nodes & offered) for nodes in self.pair_compute_nodes
        ]
        ties = _tie_ranks(blocks, [assets[a].id for a, _ in self.u_index])
        self.offer_prices = np.array([b.price_usd_per_gpu_hour for b in blocks])
        for var, block, tie in zip(self.u_vars, blocks, ties, strict=True):
            var.SetUb(block.gpus)
            if not self.feasibility:
                price = block.price_usd_per_gpu_hour + OFFER_TIE_USD_PER_GPU_HOUR * tie
                objective.SetCoefficient(var, price)

    def demand_offered_tokens_per_s(self, pair: tuple[str, str]) -> float:
        """Hard demand plus all bid blocks of a (workload, node) pair."""
        entry = self.demand[pair]
        return entry.tokens_per_s + sum(b.tokens_per_s for b in entry.bids)

    def gpus_used(self, raw: RawSolution) -> np.ndarray:
        """GPUs running per asset (scenario order) in a solution."""
        used = np.zeros(len(self.scenario.assets))
        if len(raw.u):
            np.add.at(used, self.u_asset, raw.u)
        return used


def route_tie_usd_per_h(
    route: Route, bits_per_token: float, workload_rank: int, route_rank: int
) -> float:
    """Tie-break cost of 1 Mtok/s on a route, USD/h: least data in flight first."""
    weight = bits_per_token / 1000 * (1 + _WORKLOAD_TIE * workload_rank)
    return (
        ROUTE_TIE_USD_PER_H_MS * route.latency_ms * weight
        + ROUTE_HOP_TIE_USD_PER_H * len(route.links)
        + ROUTE_RANK_TIE_USD_PER_H * route_rank
    )


def max_route_tie_usd_per_h(scenario: Scenario) -> float:
    """An upper bound on `route_tie_usd_per_h` over the scenario's routes."""
    bits = max(scenario.link_bits_per_token(k) for k in scenario.workloads)
    latency = max(w.latency_limit_ms for w in scenario.workloads.values())
    longest = Route("", "", (), tuple(range(len(scenario.nodes))), latency)
    return route_tie_usd_per_h(
        longest, bits, len(scenario.workloads), scenario.max_routes
    )


def _tie_ranks(blocks: list[OfferBlock], asset_ids: list[str]) -> list[int]:
    """Rank of each block among blocks of the same price, by asset id."""
    order = sorted(
        range(len(blocks)),
        key=lambda i: (blocks[i].price_usd_per_gpu_hour, asset_ids[i], i),
    )
    ranks = [0] * len(blocks)
    previous, rank = None, 0
    for i in order:
        price = blocks[i].price_usd_per_gpu_hour
        rank = rank + 1 if price == previous else 0
        ranks[i] = rank
        previous = price
    return ranks


__all__ = ["ClearingError", "ClearingModel", "RawSolution", "max_route_tie_usd_per_h"]
