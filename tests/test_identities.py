"""The identities of MODEL.md, checked on us5 and on random networks.

Every clearing must satisfy them whatever the data:
1. strong duality (the cost, the LP objective, the product's dual objective,
   and the dual objective recomputed from the reported prices agree);
2. the marginal meaning of the LMP (finite differences of fresh clearings;
   where prices are not unique, the reported ones are the next token's);
3. the price decomposition on every used route;
4. revenue adequacy, with payments and revenues recomputed from the tables;
5. complementary slackness for links, offer blocks and bids, and LMP >= 0
   when no offer is negative;
6. an infeasibility report that says which demand is short and by how much.
Also checked: the reported schedule is feasible; a warm-started `Clearing`
gives what a fresh build gives; the order of assets and demand entries in the
file does not change the result; and a few small markets on which the random
tests once found a failure (section "edge cases").

Expected values are recomputed from the scenario and the result's tables with
the conversions of tests/builders.py, never read back from the product.

Tolerances. GLOP solves these LPs to ~1e-9 relative, but the product adds tiny
tie-break offsets to the costs so that the optimum is unique (per GPU and rank
among equally priced offer blocks; per token and ms of route latency; per token
and route rank; the sizes are read from markets.lp). The LP objective and the
duals may include them; `total_cost_usd_per_h` does not. Each comparison across
that line is allowed the largest effect the offsets can have, computed from
the scenario (`tie_usd_per_h`, `tie_gpu_h`, `price_tol`), plus a named numeric
slack.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest
from builders import (
    asset_dict,
    demand_changed,
    demand_dict,
    gpus_used,
    link_dict,
    link_flows,
    lmps,
    markets,
    merit_fill,
    min_latency_ms,
    node_dicts,
    offered_blocks,
    offered_gpus,
    processed,
    route_link_choices,
    scenario_dict,
    served,
    unserved_by_pair,
    usd_per_h,
    usd_per_mtok_of_gpu_hour,
    usd_per_mtok_of_link,
    usd_per_mtok_of_transfer,
    with_demand,
    with_offers,
)
from builders import compute_prices as compute_price_table
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from markets import Clearing, ClearingError, clear
from markets import lp as lp_module
from scenarios import (
    BidBlock,
    Demand,
    OfferBlock,
    load_scenario,
    scenario_from_dict,
    with_overrides,
)

REL = 1e-6  # relative tolerance of every comparison
ABS_PRICE = 1e-6  # USD/Mtok (and USD/GPU-h, USD/Gbps-h) numeric slack
ABS_USD = 1e-3  # USD/h numeric slack
ABS_TOK = 1e-2  # tokens/s numeric slack (the LP works in Mtok/s)
ABS_GPU = 1e-5  # GPUs numeric slack
ABS_GBPS = 1e-9  # Gbps numeric slack
FD_TOKENS_PER_S = 10.0  # finite-difference step of the marginal tests
SPARE = 1e-6  # a link or block with more than this share left is not binding
# Demand taken off a short pair beyond its reported shortfall before checking
# that the rest is feasible: keeps the check away from the exact capacity edge.
SHORT_MARGIN_TOKENS_PER_S = 100.0
MODELS = ("transfer", "token")


# The tie-break offsets: per GPU-hour and rank among equally priced blocks,
# and a bound on the route offset of one Mtok/s (both USD/h).
OFFER_TIE = lp_module.OFFER_TIE_USD_PER_GPU_HOUR


EXAMPLES = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,
    database=None,
    print_blob=True,
    report_multiple_bugs=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


# ---------------------------------------------------------------- tolerances


def n_blocks(sc) -> int:
    return sum(len(offered_blocks(a)) for a in sc.assets)


def tie_gpu_h(sc) -> float:
    """Largest offer tie offset in a compute price, USD/GPU-h."""
    return OFFER_TIE * n_blocks(sc) + ABS_PRICE


def route_tie_per_mtok_s(sc) -> float:
    """Largest route tie offset of one Mtok/s, USD/h."""
    return lp_module.max_route_tie_usd_per_h(sc)


def price_tol(sc) -> float:
    """Largest tie offset in a price per million tokens, plus numeric slack."""
    min_thr = min(
        t for at in sc.asset_types.values() for t in at.tokens_per_s_per_gpu.values()
    )
    offer = usd_per_mtok_of_gpu_hour(tie_gpu_h(sc), min_thr)
    route = route_tie_per_mtok_s(sc) / 3600.0
    return offer + route + ABS_PRICE


def demand_offered(d: Demand) -> float:
    return d.tokens_per_s + sum(b.tokens_per_s for b in d.bids)


def tie_usd_per_h(sc) -> float:
    """Largest tie-offset part of the LP objective, USD/h."""
    gpus = sum(offered_gpus(a) for a in sc.assets)
    mtok_s = sum(demand_offered(d) for d in sc.demand) / 1e6
    offer = OFFER_TIE * n_blocks(sc) * gpus
    return offer + route_tie_per_mtok_s(sc) * mtok_s


def cost_tol(sc, cost: float) -> float:
    return REL * max(1.0, abs(cost)) + tie_usd_per_h(sc) + ABS_USD


def close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol + REL * max(abs(a), abs(b))


# ---------------------------------------------------------------- table helpers


def demand_of(sc) -> dict[tuple[str, str], Demand]:
    return {(d.workload, d.node): d for d in sc.demand}


def shadow_prices(sc, r) -> list[float]:
    """Link shadow prices in scenario order (the table must follow it)."""
    assert list(r.links["link"]) == [link.id for link in sc.links]
    return [float(x) for x in r.links["shadow_price_usd_per_gbps_h"]]


def route_costs(sc, r, workload: str, route: str) -> list[float]:
    """Link prices + transfer costs (USD/Mtok) for each reading of a route label."""
    bits = sc.link_bits_per_token(workload)
    shadow = shadow_prices(sc, r)
    return [
        sum(
            usd_per_mtok_of_link(shadow[i], bits)
            + usd_per_mtok_of_transfer(sc.links[i].transfer_usd_per_gb, bits)
            for i in links
        )
        for links in route_link_choices(sc, route)
    ]


def transfer_bounds(sc, r) -> tuple[float, float]:
    """Transfer charges of the dispatch, USD/h (a range if parallel links differ)."""
    lo = hi = 0.0
    for row in r.dispatch.itertuples(index=False):
        bits = sc.link_bits_per_token(row.workload)
        charges = [
            sum(
                usd_per_h(
                    usd_per_mtok_of_transfer(sc.links[i].transfer_usd_per_gb, bits),
                    row.tokens_per_s,
                )
                for i in links
            )
            for links in route_link_choices(sc, row.route)
        ]
        assert charges, f"route {row.route} uses no open link"
        lo += min(charges)
        hi += max(charges)
    return lo, hi


def accepted_bids(sc, r) -> dict[tuple[str, str], float]:
    """Tokens/s of bids accepted per pair: served minus hard demand."""
    got = served(r)
    return {pair: got[pair] - d.tokens_per_s for pair, d in demand_of(sc).items()}


def bid_value_usd_per_h(sc, r) -> float:
    """Value of the accepted bids, the most valuable blocks first."""
    total = 0.0
    accepted = accepted_bids(sc, r)
    for pair, d in demand_of(sc).items():
        left = accepted[pair]
        for bid in sorted(d.bids, key=lambda b: -b.value_usd_per_mtok):
            take = min(max(left, 0.0), bid.tokens_per_s)
            total += usd_per_h(bid.value_usd_per_mtok, take)
            left -= take
    return total


def primal_cost_bounds(sc, r) -> tuple[float, float]:
    """Offer cost + transfer cost - bid value, recomputed from the tables."""
    used = gpus_used(r)
    offers = sum(
        take * block.price_usd_per_gpu_hour
        for a in sc.assets
        for block, take in merit_fill(offered_blocks(a), used[a.id])
    )
    lo, hi = transfer_bounds(sc, r)
    value = bid_value_usd_per_h(sc, r)
    return offers + lo - value, offers + hi - value


def dual_objective_from_prices(sc, r) -> float:
    """The LP dual's objective evaluated at the reported prices, USD/h.

    sum LMP * hard demand - sum link price * capacity
    - sum over offer blocks of (compute price - offer price)+ * block GPUs
    - sum over bids of (value - LMP)+ * block tokens.
    """
    lmp = lmps(r)
    price = compute_price_table(r)
    total = 0.0
    for pair, d in demand_of(sc).items():
        if d.tokens_per_s > 0:
            assert math.isfinite(lmp[pair]), f"{pair} has demand but no price"
            total += usd_per_h(lmp[pair], d.tokens_per_s)
        for bid in d.bids:
            if math.isfinite(lmp[pair]):
                gain = max(0.0, bid.value_usd_per_mtok - lmp[pair])
                total -= usd_per_h(gain, bid.tokens_per_s)
    shadow = shadow_prices(sc, r)
    total -= sum(
        s * link.capacity_gbps for s, link in zip(shadow, sc.links, strict=True)
    )
    for a in sc.assets:
        blocks = [b for b in offered_blocks(a) if b.gpus > 0]
        if not blocks:
            continue
        assert math.isfinite(price[a.id]), f"{a.id} offers GPUs but has no price"
        total -= sum(
            max(0.0, price[a.id] - b.price_usd_per_gpu_hour) * b.gpus for b in blocks
        )
    return total


# ---------------------------------------------------------------- identity checks


def check_primal_feasibility(sc, r) -> None:
    """The reported schedule serves the demand within every limit."""
    demand = demand_of(sc)
    got = served(r)
    for pair, amount in got.items():
        d = demand.get(pair)
        hard = d.tokens_per_s if d else 0.0
        most = demand_offered(d) if d else 0.0
        assert hard - ABS_TOK <= amount <= most + ABS_TOK, pair
    sent: dict[tuple[str, str], float] = {}
    arrived: dict[tuple[str, str], float] = {}
    pair_gbps: dict[frozenset, float] = {}
    for row in r.dispatch.itertuples(index=False):
        k = row.workload
        key = (k, row.from_node)
        sent[key] = sent.get(key, 0.0) + row.tokens_per_s
        arrived[k, row.to_node] = arrived.get((k, row.to_node), 0.0) + row.tokens_per_s
        hops = row.route.split("-")
        assert hops[0] == row.from_node and hops[-1] == row.to_node
        assert len(set(hops)) == len(hops), f"{row.route} is not a simple path"
        choices = route_link_choices(sc, row.route)
        assert choices, f"{row.route} uses no open link"
        latencies = [sum(sc.links[i].latency_ms for i in c) for c in choices]
        assert any(close(lat, row.latency_ms, 1e-9) for lat in latencies)
        assert row.latency_ms <= sc.workloads[k].latency_limit_ms + 1e-9
        bits = sc.link_bits_per_token(k)
        for a, b in zip(hops, hops[1:], strict=False):
            key2 = frozenset((a, b))
            pair_gbps[key2] = pair_gbps.get(key2, 0.0) + bits * row.tokens_per_s / 1e9
    for pair, amount in got.items():
        assert close(sent.get(pair, 0.0), amount, ABS_TOK), pair
    proc = processed(r)
    assets = {a.id: a for a in sc.assets}
    at_node: dict[tuple[str, str], float] = {}
    for (k, a), tokens in proc.items():
        key = (k, assets[a].node)
        at_node[key] = at_node.get(key, 0.0) + tokens
    for key in set(at_node) | set(arrived):
        assert close(at_node.get(key, 0.0), arrived.get(key, 0.0), ABS_TOK), key
    used = gpus_used(r)
    for a in sc.assets:
        gpus = sum(proc.get((k, a.id), 0.0) / sc.throughput(a, k) for k in sc.workloads)
        assert close(gpus, used[a.id], ABS_GPU), a.id
        assert used[a.id] <= offered_gpus(a) + ABS_GPU, a.id
    flows = link_flows(r)
    by_pair: dict[frozenset, float] = {}
    for link in sc.links:
        flow = flows[link.id]
        assert flow >= -ABS_GBPS
        assert flow <= link.capacity_gbps * (1 + REL) + ABS_GBPS, link.id
        key2 = frozenset((link.a, link.b))
        by_pair[key2] = by_pair.get(key2, 0.0) + flow
    for key2 in set(by_pair) | set(pair_gbps):
        assert close(by_pair.get(key2, 0.0), pair_gbps.get(key2, 0.0), ABS_GBPS)


def check_strong_duality(sc, r) -> None:
    """Identity 1: primal objective = dual objective."""
    cost = r.total_cost_usd_per_h
    lp = r.lp_objective_usd_per_h
    dual = r.dual_objective_usd_per_h
    tol = cost_tol(sc, cost)
    # Both sides include the tie offsets: they must agree to solver precision.
    assert close(lp, dual, REL * max(1.0, abs(lp)))
    assert close(cost, lp, tol)
    # The same, recomputed: cost from the dispatch, dual from the prices.
    lo, hi = primal_cost_bounds(sc, r)
    assert lo - tol <= cost <= hi + tol
    assert close(dual_objective_from_prices(sc, r), cost, tol)


def check_decomposition(sc, r) -> None:
    """Identity 3: LMP = compute price / throughput + (link price + transfer)."""
    lmp = lmps(r)
    price = compute_price_table(r)
    tol = price_tol(sc)
    proc = processed(r)
    assets = {a.id: a for a in sc.assets}
    processing_price = {
        (row.workload, row.node): float(row.processing_price_usd_per_mtok)
        for row in r.processing_prices.itertuples(index=False)
    }
    users: dict[tuple[str, str], list] = {}
    for (k, a_id), tokens in proc.items():
        if tokens > ABS_TOK:
            users.setdefault((k, assets[a_id].node), []).append(assets[a_id])
    for (k, n), pool in users.items():
        for a in pool:
            unit = usd_per_mtok_of_gpu_hour(price[a.id], sc.throughput(a, k))
            assert close(processing_price[k, n], unit, tol), (k, n, a.id)
        for a in sc.assets:
            if a.node == n and math.isfinite(price[a.id]):
                unit = usd_per_mtok_of_gpu_hour(price[a.id], sc.throughput(a, k))
                assert processing_price[k, n] <= unit + tol, (k, n, a.id)
    for row in r.dispatch.itertuples(index=False):
        if row.tokens_per_s <= ABS_TOK:
            continue
        k, s, n = row.workload, row.from_node, row.to_node
        costs = route_costs(sc, r, k, row.route)
        assert users.get((k, n)), f"{k} sent to {n} but not processed there"
        for a in users[k, n]:
            unit = usd_per_mtok_of_gpu_hour(price[a.id], sc.throughput(a, k))
            delivered = [unit + c for c in costs]
            assert any(close(lmp[k, s], x, tol) for x in delivered), (
                f"LMP[{k},{s}] = {lmp[k, s]} but route {row.route} via {a.id} "
                f"delivers at {delivered}"
            )


def check_revenue_adequacy(sc, r) -> None:
    """Identity 4: payments - revenues - transfer charges = rents >= 0."""
    s = r.settlement
    lmp, got = lmps(r), served(r)
    payments = 0.0
    for pair, amount in got.items():
        if amount > ABS_TOK:
            assert math.isfinite(lmp[pair]), f"{pair} is served but has no price"
            payments += usd_per_h(lmp[pair], amount)
    assert close(s.consumer_payments_usd_per_h, payments, ABS_USD)
    price, used = compute_price_table(r), gpus_used(r)
    revenues = 0.0
    for a in sc.assets:
        if used[a.id] > ABS_GPU:
            assert math.isfinite(price[a.id]), f"{a.id} runs but has no price"
            revenues += price[a.id] * used[a.id]
    assert close(s.provider_revenues_usd_per_h, revenues, ABS_USD)
    shadow = shadow_prices(sc, r)
    rents = 0.0
    for sp, link, row in zip(
        shadow, sc.links, r.links.itertuples(index=False), strict=True
    ):
        assert sp >= -ABS_PRICE, link.id
        rent = sp * link.capacity_gbps
        assert close(float(row.congestion_rent_usd_per_h), rent, ABS_USD), link.id
        rents += rent
    assert close(s.congestion_rents_usd_per_h, rents, ABS_USD)
    lo, hi = transfer_bounds(sc, r)
    charges = s.transfer_charges_usd_per_h
    assert lo - ABS_USD - REL * hi <= charges <= hi + ABS_USD + REL * hi
    surplus = payments - revenues - charges
    tol = ABS_USD + tie_usd_per_h(sc)
    assert close(surplus, rents, tol), (surplus, rents)
    assert rents >= -ABS_USD
    assert surplus >= -tol


def check_complementary_slackness(sc, r) -> None:
    """Identity 5, for links, offer blocks and bids."""
    shadow = shadow_prices(sc, r)
    flows = link_flows(r)
    for sp, link in zip(shadow, sc.links, strict=True):
        assert sp >= -ABS_PRICE, link.id
        if flows[link.id] < link.capacity_gbps * (1 - SPARE) - ABS_GBPS:
            assert abs(sp) <= ABS_PRICE, f"{link.id} has spare capacity, price {sp}"
    price, used = compute_price_table(r), gpus_used(r)
    tie = tie_gpu_h(sc)
    nonnegative_offers = True
    for a in sc.assets:
        blocks = [b for b in offered_blocks(a) if b.gpus > 0]
        nonnegative_offers &= all(b.price_usd_per_gpu_hour >= 0 for b in blocks)
        if not blocks:
            continue
        pi = price[a.id]
        assert math.isfinite(pi), a.id
        fill = merit_fill(blocks, used[a.id])
        if used[a.id] <= ABS_GPU:
            cheapest = min(b.price_usd_per_gpu_hour for b in blocks)
            assert close(pi, cheapest, tie), f"idle {a.id}: {pi} != {cheapest}"
        for block, take in fill:
            p = block.price_usd_per_gpu_hour
            if take > ABS_GPU:  # a block in use never earns less than its offer
                assert pi >= p - tie, f"{a.id}: {pi} below used offer {p}"
            if take < block.gpus * (1 - SPARE) - ABS_GPU:  # room left in it
                assert pi <= p + tie, f"{a.id}: {pi} above spare offer {p}"
            if ABS_GPU < take < block.gpus * (1 - SPARE) - ABS_GPU:  # marginal
                assert close(pi, p, tie), f"{a.id}: {pi} != marginal offer {p}"
    lmp = lmps(r)
    tol = price_tol(sc)
    if nonnegative_offers:
        for pair, value in lmp.items():
            assert math.isnan(value) or value >= -tol, pair
        for a in sc.assets:
            assert math.isnan(price[a.id]) or price[a.id] >= -tie, a.id
    accepted = accepted_bids(sc, r)
    for pair, d in demand_of(sc).items():
        if not d.bids or not math.isfinite(lmp[pair]):
            continue
        must = sum(
            b.tokens_per_s for b in d.bids if b.value_usd_per_mtok > lmp[pair] + tol
        )
        may = sum(
            b.tokens_per_s for b in d.bids if b.value_usd_per_mtok >= lmp[pair] - tol
        )
        assert must - ABS_TOK <= accepted[pair] <= may + ABS_TOK, (pair, lmp[pair])


def check_identities(sc, r) -> None:
    assert r.status == "optimal"
    assert len(r.unserved) == 0
    assert len(r.prices) == len(sc.workloads) * len(sc.nodes)
    check_primal_feasibility(sc, r)
    check_strong_duality(sc, r)
    check_decomposition(sc, r)
    check_revenue_adequacy(sc, r)
    check_complementary_slackness(sc, r)


# ---------------------------------------------------------------- marginal meaning


def cost_or_inf(sc) -> float:
    r = clear(sc)
    if r.status != "optimal":
        return math.inf
    return r.total_cost_usd_per_h


def check_marginal(sc, r, pairs, h: float = FD_TOKENS_PER_S) -> None:
    """Identity 2: finite differences of fresh clearings bracket the LMP.

    Cost is convex in demand, so (f(D) - f(D-h))/h <= LMP <= (f(D+h) - f(D))/h
    for any h when LMP is a subgradient. Without degeneracy the price is
    unique, so both differences equal it (h is far below the grid on which
    the data lie). With degeneracy the product reports the price of the next
    token, the right derivative. A pair without demand has the price of its
    next token too.
    """
    base = r.total_cost_usd_per_h
    demand = demand_of(sc)
    lmp = lmps(r)
    per_token = h * 3600 / 1e6  # USD/h per USD/Mtok for h tokens/s
    for k, s in pairs:
        price = lmp[k, s]
        up = cost_or_inf(demand_changed(sc, k, s, h))
        right = (up - base) / per_token
        if math.isnan(price):
            assert right == math.inf, f"{k}@{s} has no price but can be served"
            continue
        tol = price_tol(sc) + REL * abs(price)
        assert price <= right + tol, f"{k}@{s}: LMP {price} > right {right}"
        hard = demand[k, s].tokens_per_s if (k, s) in demand else 0.0
        left = None
        if hard >= h:
            down = cost_or_inf(demand_changed(sc, k, s, -h))
            assert down < math.inf, "less hard demand cannot be infeasible"
            left = (base - down) / per_token
            assert left - tol <= price, f"{k}@{s}: left {left} > LMP {price}"
        if math.isfinite(right) and (r.degenerate or (k, s) not in demand):
            assert close(price, right, tol), f"{k}@{s}: next token {right} != {price}"
        if not r.degenerate:
            assert close(price, right, tol), f"{k}@{s}: right {right} != {price}"
            if left is not None:
                assert close(price, left, tol), f"{k}@{s}: left {left} != {price}"


# ---------------------------------------------------------------- us5


def us5(model: str):
    return with_overrides(load_scenario("us5"), bandwidth_model=model)


@pytest.mark.parametrize("model", MODELS)
def test_us5_identities(model):
    sc = us5(model)
    check_identities(sc, clear(sc))


@pytest.mark.parametrize("model", MODELS)
def test_us5_marginal_prices(model):
    sc = us5(model)
    r = clear(sc)
    assert r.status == "optimal"
    check_marginal(sc, r, [(k, s) for k in sc.workloads for s in sc.nodes])


@pytest.mark.parametrize("model", MODELS)
def test_us5_tight_and_scaled_variants_keep_the_identities(model):
    # The source study's chatbot limit of 15 ms, and demand 1.3x the base.
    sc = with_overrides(us5(model), latency_limits_ms={"chat": 15}, demand_scale=1.3)
    r = clear(sc)
    assert r.status == "optimal"
    check_identities(sc, r)
    check_marginal(sc, r, [("chat", s) for s in sc.nodes])


@pytest.mark.parametrize("model", MODELS)
def test_us5_warm_start_equals_fresh_build(model):
    sc = us5(model)
    c = Clearing(sc)
    c.solve()
    first = sc.assets[0]
    steps = [
        (0.8, None),
        (
            1.25,
            {
                first.id: (
                    OfferBlock(first.gpus / 2, 1.0),
                    OfferBlock(first.gpus / 2, 2.0),
                )
            },
        ),
        (0.5, None),
        (1.1, {first.id: (OfferBlock(first.gpus, 1.5),)}),
        (1.0, None),
    ]
    offers: dict = {}
    for scale, new_offers in steps:
        demand = with_overrides(sc, demand_scale=scale).demand
        c.update(demand=demand, offers=new_offers)
        offers.update(new_offers or {})
        fresh_sc = with_offers(with_demand(sc, demand), offers)
        check_same_clearing(fresh_sc, c.solve(), clear(fresh_sc))


@pytest.mark.parametrize("model", MODELS)
def test_us5_order_independence(model):
    sc = us5(model)
    shuffled = dataclasses.replace(
        sc, assets=tuple(reversed(sc.assets)), demand=tuple(reversed(sc.demand))
    )
    check_same_clearing(sc, clear(sc), clear(shuffled))


@pytest.mark.parametrize("model", MODELS)
def test_us5_processing_split_does_not_depend_on_asset_order(model):
    # Tie-breaks are said to make the optimal flows unique, so the tokens of
    # each workload on each asset must not depend on where the asset is listed.
    sc = us5(model)
    shuffled = dataclasses.replace(sc, assets=tuple(reversed(sc.assets)))
    check_same_processing(clear(sc), clear(shuffled))


# ---------------------------------------------------------------- random networks


def record_features(r) -> None:
    """Hypothesis events: how many examples had each feature worth testing."""
    if isinstance(r, ClearingError):
        event("ClearingError")
        return
    event(f"status {r.status}")
    if r.status != "optimal":
        return
    event(f"degenerate {r.degenerate}")
    links = r.links
    event(f"saturated links {int(links['saturated'].sum()) if len(links) else 0}")
    priced = bool((links["shadow_price_usd_per_gbps_h"] > 0).any())
    event(f"priced links {priced}")
    event(f"transfer charges {r.settlement.transfer_charges_usd_per_h > 0}")
    bids = (r.prices["served_tokens_per_s"] < r.prices["demand_tokens_per_s"]).any()
    event(f"bids rejected {bool(bids)}")


def clear_dict(data):
    sc = scenario_from_dict(data, source="<hypothesis>")
    r = clear(sc)
    record_features(r)
    return sc, r


@EXAMPLES
@given(markets())
def test_strong_duality(data):
    sc, r = clear_dict(data)
    assume(r.status == "optimal")
    check_primal_feasibility(sc, r)
    check_strong_duality(sc, r)


@EXAMPLES
@given(markets(max_nodes=4))
def test_marginal_prices_by_finite_differences(data):
    sc, r = clear_dict(data)
    assume(r.status == "optimal")
    check_marginal(sc, r, [(k, s) for k in sc.workloads for s in sc.nodes])


@pytest.mark.parametrize(
    "check",
    [check_decomposition, check_revenue_adequacy, check_complementary_slackness],
    ids=["price_decomposition", "revenue_adequacy", "complementary_slackness"],
)
@EXAMPLES
@given(markets())
def test_identity_on_random_markets(check, data):
    sc, r = clear_dict(data)
    assume(r.status == "optimal")
    check(sc, r)


# ---------------------------------------------------------------- infeasibility


def capacity_tokens_per_s(sc, workload: str) -> float:
    """All offered GPUs serving one workload: an upper bound on its service."""
    return sum(offered_gpus(a) * sc.throughput(a, workload) for a in sc.assets)


def reachable(sc, workload: str, node: str) -> bool:
    """Whether some offered capacity lies within the workload's latency limit."""
    limit = sc.workloads[workload].latency_limit_ms
    dist = min_latency_ms(sc, node)
    return any(
        offered_gpus(a) > 0 and dist.get(a.node, math.inf) <= limit + 1e-9
        for a in sc.assets
    )


@EXAMPLES
@given(markets(bids=False))
def test_infeasible_market_reports_the_shortfall(data):
    sc = scenario_from_dict(data, source="<hypothesis>")
    r = clear(sc)
    demand = demand_of(sc)
    excess = {
        k: sum(d.tokens_per_s for d in sc.demand if d.workload == k)
        - capacity_tokens_per_s(sc, k)
        for k in sc.workloads
    }
    stranded = {
        pair: d.tokens_per_s
        for pair, d in demand.items()
        if d.tokens_per_s > 0 and not reachable(sc, *pair)
    }
    if any(x > ABS_TOK for x in excess.values()) or stranded:
        assert r.status == "infeasible"
    if r.status == "optimal":
        assert len(r.unserved) == 0
        return
    assert r.status == "infeasible"
    assert r.total_cost_usd_per_h is None
    short = unserved_by_pair(r)
    assert sum(short.values()) > 0
    for pair, amount in short.items():
        assert amount <= demand[pair].tokens_per_s + ABS_TOK, pair
    for k, x in excess.items():
        mine = sum(v for (w, _), v in short.items() if w == k)
        assert mine >= x - ABS_TOK * len(sc.nodes), (k, mine, x)
    for pair, amount in stranded.items():
        assert short.get(pair, 0.0) >= amount * (1 - REL) - ABS_TOK, pair
    # "By how much": without the reported shortfall the market clears.
    less = [
        dataclasses.replace(
            d,
            tokens_per_s=max(
                0.0,
                d.tokens_per_s - short[pair] * (1 + REL) - SHORT_MARGIN_TOKENS_PER_S,
            ),
        )
        if (pair := (d.workload, d.node)) in short
        else d
        for d in sc.demand
    ]
    assert clear(with_demand(sc, less)).status == "optimal"


@EXAMPLES
@given(
    st.lists(
        st.tuples(
            st.sampled_from(("h", "a")),
            st.integers(0, 40).map(lambda x: 25 * x),
            st.lists(
                st.tuples(st.integers(0, 20), st.integers(1, 60)),
                max_size=3,
            ),
        ),
        min_size=1,
        max_size=3,
    ),
    st.integers(1, 50).map(lambda x: 1000 * x),
)
def test_single_node_shortfall_is_exact(pools, excess):
    thr = {"h": 2400, "a": 600}
    assets = []
    for i, (kind, gpus, blocks) in enumerate(pools):
        offers, left = [], gpus
        for g, p in blocks:  # blocks in whole 25-GPU steps, within the pool
            size = min(25 * g, left)
            offers.append((size, p / 10))
            left -= size
        assets.append(asset_dict(f"a{i}", "A", kind, gpus, 2.0, offers=offers or None))
    sc0 = scenario_from_dict(
        scenario_dict(
            "one-node",
            node_dicts(["A"]),
            {"h": {"chat": thr["h"]}, "a": {"chat": thr["a"]}},
            assets,
            [],
            {"chat": (100, 100)},
            [],
        )
    )
    capacity = capacity_tokens_per_s(sc0, "chat")
    assume(capacity > 0)  # without any capacity the reason is "no eligible route"
    sc = with_demand(sc0, [Demand("A", "chat", capacity + excess)])
    r = clear(sc)
    assert r.status == "infeasible"
    short = unserved_by_pair(r)
    assert set(short) == {("chat", "A")}
    assert short["chat", "A"] == pytest.approx(excess, rel=REL, abs=ABS_TOK)
    assert set(r.unserved["reason"]) == {"compute capacity"}


# ---------------------------------------------------------------- edge cases
#
# Small markets on which the identities above once failed (found by the
# random tests), kept as fixed cases so that they are checked on every run.


def two_node_market(assets, links, demand, **extra):
    """Nodes A and B, one GPU type "g" serving chat at 1000 tokens/s/GPU."""
    return scenario_dict(
        "edge",
        node_dicts(["A", "B"]),
        {"g": {"chat": 1000}},
        assets,
        links,
        {"chat": (100, 100)},
        demand,
        **extra,
    )


@pytest.mark.parametrize("limit", ["compute", "link"])
def test_demand_exactly_at_capacity_clears(limit):
    # compute: B's pool has 1000 GPUs * 1000 tokens/s/GPU = 1e6 tokens/s and B
    # wants exactly 1e6. link: A's big pool reaches B over 0.1 Gbps = 0.1e9 /
    # 100 bits = 1e6 tokens/s, and B (no GPUs) wants exactly 1e6. Both markets
    # are feasible, so they must clear; there is no next token (the right
    # derivative is infinite), the last one costs 1.0 USD/Mtok at B's pool
    # (3.6 / (1000 * 3600) * 1e6) or 0.5 at A's (1.8 / ...).
    if limit == "compute":
        assets = [asset_dict("B/g", "B", "g", 1000, 3.6)]
        links, cost = [], 1000 * 3.6
    else:
        assets = [asset_dict("A/g", "A", "g", 10_000, 1.8)]
        links, cost = [link_dict("A", "B", 0.1, 5)], 1000 * 1.8
    data = two_node_market(assets, links, [demand_dict("B", "chat", 1e6)])
    sc = scenario_from_dict(data)
    r = clear(sc)
    assert r.status == "optimal"
    assert r.total_cost_usd_per_h == pytest.approx(cost, rel=REL)
    check_identities(sc, r)
    check_marginal(sc, r, [("chat", "B")])


def test_zero_demand_at_a_node_without_route_clears():
    # B is isolated and asks for 0 tokens/s (a night-time profile, or demand
    # scaled to 0): nothing has to be served, so the market clears at zero
    # cost; B reaches no capacity and has no price.
    data = two_node_market(
        [asset_dict("A/g", "A", "g", 1000, 3.6)], [], [demand_dict("B", "chat", 0)]
    )
    sc = scenario_from_dict(data)
    r = clear(sc)
    assert r.status == "optimal"
    assert r.total_cost_usd_per_h == pytest.approx(0.0, abs=ABS_USD)
    assert math.isnan(lmps(r)["chat", "B"])
    check_identities(sc, r)


def test_asset_without_gpus_keeps_the_settlement_defined():
    # A retired pool (0 GPUs) offers nothing and runs nothing: it earns 0, and
    # the settlement is that of the one real pool: A serves 5e5 tokens/s on
    # 500 GPUs at 3.6 = 1800 USD/h, paid by A's consumers at 1.0 USD/Mtok.
    data = two_node_market(
        [asset_dict("A/g", "A", "g", 1000, 3.6), asset_dict("A/old", "A", "g", 0, 1.0)],
        [],
        [demand_dict("A", "chat", 5e5)],
    )
    sc = scenario_from_dict(data)
    r = clear(sc)
    assert r.status == "optimal"
    assert r.settlement.provider_revenues_usd_per_h == pytest.approx(500 * 3.6)
    assert r.settlement.consumer_payments_usd_per_h == pytest.approx(500 * 3.6)
    check_identities(sc, r)


def test_next_token_price_at_a_node_without_demand():
    # A: 1000 GPUs at 2.0 USD/GPU-h (0.5556 USD/Mtok), B: 1000 at 4.0 (1.1111).
    # B wants 1e6 tokens/s; the A-B link carries exactly 0.1e9 / 100 = 1e6, and
    # A's pool serves exactly 1e6: both are full, the optimum is degenerate.
    # B's next token comes from B's pool: 1.1111. A's next token too: A's
    # pool is full, so serving one more token at A means sending one fewer to
    # B, which B then serves itself. The reported price at A must be 1.1111
    # (the next token's), not A's offer of 0.5556.
    data = two_node_market(
        [
            asset_dict("A/g", "A", "g", 1000, 2.0),
            asset_dict("B/g", "B", "g", 1000, 4.0),
        ],
        [link_dict("A", "B", 0.1, 5)],
        [demand_dict("B", "chat", 1e6)],
    )
    sc = scenario_from_dict(data)
    r = clear(sc)
    assert r.status == "optimal"
    check_identities(sc, r)
    check_marginal(sc, r, [("chat", "A"), ("chat", "B")])
    assert lmps(r)["chat", "A"] == pytest.approx(4.0 / (1000 * 3600) * 1e6, rel=REL)


@pytest.mark.parametrize("retired_pool_at_b", [False, True])
def test_next_token_price_at_a_block_boundary(retired_pool_at_b):
    # A's pool offers 150 GPUs at 0.5 and 50 more at 1.0 USD/GPU-h, 2000
    # tokens/s/GPU; A wants 3e5 tokens/s = exactly 150 GPUs. The last token
    # cost 0.5 / (2000 * 3600) * 1e6 = 0.0694 USD/Mtok, the next one comes
    # from the 1.0 block: 0.1389, and that is the price to report. An
    # unrelated pool without GPUs at the isolated node B changes nothing.
    assets = [asset_dict("A/g", "A", "g", 200, 0.5, offers=[(150, 0.5), (50, 1.0)])]
    if retired_pool_at_b:
        assets.append(asset_dict("B/old", "B", "g", 0, 0.5))
    data = scenario_dict(
        "block-boundary",
        node_dicts(["A", "B"]),
        {"g": {"chat": 2000}},
        assets,
        [],
        {"chat": (100, 100)},
        [demand_dict("A", "chat", 300_000)],
    )
    sc = scenario_from_dict(data)
    r = clear(sc)
    check_identities(sc, r)
    check_marginal(sc, r, [("chat", "A")])
    assert r.degenerate
    next_token = usd_per_mtok_of_gpu_hour(1.0, 2000)
    assert lmps(r)["chat", "A"] == pytest.approx(next_token, rel=REL)
    assert compute_price_table(r)["A/g"] == pytest.approx(1.0, abs=tie_gpu_h(sc))


def test_zero_latency_link_flows_do_not_depend_on_asset_order():
    # Two identical pools, x at A and y at B (6.0 USD/GPU-h, 500,000 tokens/s
    # each), and a link of 0 ms. A wants 3e5 code, B 2.5e5 chat: x fills first
    # (the tie-break by asset id), y serves the rest. Which tokens cross the
    # link is a free choice at equal cost and equal latency, so the tie-breaks
    # must settle it; a third pool z (no GPUs) must not change the answer.
    workloads = {"chat": (0, 100), "code": (0, 100)}
    thr = {"g": {"chat": 250, "code": 250}}
    x = asset_dict("x", "A", "g", 2000, 6.0)
    y = asset_dict("y", "B", "g", 2000, 6.0)
    z = asset_dict("z", "A", "g", 0, 0.5)
    demand = [demand_dict("B", "chat", 250_000), demand_dict("A", "code", 300_000)]
    results = []
    for assets in ([x, y, z], [z, x, y]):
        data = scenario_dict(
            "zero-latency",
            node_dicts(["A", "B"]),
            thr,
            assets,
            [link_dict("A", "B", 0.05, 0)],
            workloads,
            demand,
        )
        sc = scenario_from_dict(data)
        results.append(clear(sc))
        check_identities(sc, results[-1])
    check_same_clearing(sc, *results)


def test_workload_mix_on_a_full_local_pool_does_not_depend_on_asset_order():
    # A wants 5e4 tokens/s of chat (160 bits) and 1e5 of code (100 bits). Its
    # own pool x (50 GPUs at 1.0, 1000 tokens/s/GPU) holds 5e4; the other 1e5
    # go to y at B (200 GPUs at 2.0) over a 10 ms link. Which workload stays
    # at A does not change the cost (250 USD/h) nor the tokens shipped, only
    # the bandwidth: chat at A puts 1e5 * 100 bits = 0.01 Gbps on the link,
    # code at A 5e4 * (160 + 100) bits = 0.013 Gbps. The tie-breaks must pick
    # one; listing the pools differently (z has no GPUs) must not change it.
    x = asset_dict("x", "A", "g", 50, 1.0)
    y = asset_dict("y", "B", "g", 200, 2.0)
    z = asset_dict("z", "B", "g", 0, 2.0)
    results = []
    for assets in ([x, y, z], [y, z, x]):
        data = scenario_dict(
            "workload-mix",
            node_dicts(["A", "B"]),
            {"g": {"chat": 1000, "code": 1000}},
            assets,
            [link_dict("A", "B", 10, 10)],
            {"chat": (100, 160), "code": (100, 100)},
            [demand_dict("A", "chat", 50_000), demand_dict("A", "code", 100_000)],
        )
        sc = scenario_from_dict(data)
        results.append(clear(sc))
        check_identities(sc, results[-1])
        assert results[-1].total_cost_usd_per_h == pytest.approx(250.0, rel=REL)
    check_same_clearing(sc, *results)
    check_same_processing(*results)


# ---------------------------------------------------------------- warm start


def clear_or_error(clearing: Clearing):
    try:
        return clearing.solve()
    except ClearingError as err:
        return err


def check_same_clearing(sc, a, b) -> None:
    """Two clearings of the same market: same cost, prices and flows."""
    if isinstance(a, ClearingError) or isinstance(b, ClearingError):
        assert type(a) is type(b), (a, b)
        return
    assert a.status == b.status
    if a.status != "optimal":
        ua, ub = unserved_by_pair(a), unserved_by_pair(b)
        assert sum(ua.values()) == pytest.approx(sum(ub.values()), rel=REL, abs=ABS_TOK)
        return
    tol = cost_tol(sc, a.total_cost_usd_per_h)
    assert close(a.total_cost_usd_per_h, b.total_cost_usd_per_h, tol)
    ptol = price_tol(sc)
    la, lb = lmps(a), lmps(b)
    assert la.keys() == lb.keys()
    for pair in la:
        x, y = la[pair], lb[pair]
        assert (math.isnan(x) and math.isnan(y)) or close(x, y, ptol), (pair, x, y)
    ca, cb = compute_price_table(a), compute_price_table(b)
    for asset in ca:
        x, y = ca[asset], cb[asset]
        assert (math.isnan(x) and math.isnan(y)) or close(x, y, tie_gpu_h(sc)), asset
    sa, sb = shadow_prices(sc, a), shadow_prices(sc, b)
    for link, x, y in zip(sc.links, sa, sb, strict=True):
        assert close(x, y, ABS_PRICE + REL), link.id
    ga, gb = gpus_used(a), gpus_used(b)
    for asset in ga:
        assert close(ga[asset], gb[asset], ABS_GPU), asset
    va, vb = served(a), served(b)
    for pair in va:
        assert close(va[pair], vb[pair], ABS_TOK), pair
    fa, fb = link_flows(a), link_flows(b)
    for link in fa:
        assert close(fa[link], fb[link], ABS_GBPS + REL), link


def check_same_processing(a, b) -> None:
    """Same tokens of every workload on every asset (the z flows)."""
    if isinstance(a, ClearingError) or isinstance(b, ClearingError):
        assert type(a) is type(b), (a, b)
        return
    assert a.status == b.status
    pa, pb = processed(a), processed(b)
    for key in set(pa) | set(pb):
        assert close(pa.get(key, 0.0), pb.get(key, 0.0), ABS_TOK), key


@st.composite
def warm_sequences(draw):
    data = draw(markets(max_nodes=5))
    sc = scenario_from_dict(data, source="<hypothesis>")
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        demand = []
        for d in sc.demand:
            if draw(st.integers(0, 5)) == 0:
                continue  # a pair drops out: the model is rebuilt
            scale = draw(st.sampled_from((0, 0.5, 0.9, 1, 1.1, 1.5)))
            bids = tuple(
                BidBlock(b.tokens_per_s * scale, b.value_usd_per_mtok) for b in d.bids
            )
            demand.append(Demand(d.node, d.workload, d.tokens_per_s * scale, bids))
        offers = {}
        for a in sc.assets:
            if draw(st.integers(0, 2)) == 0:
                blocks = offered_blocks(a)
                if draw(st.booleans()):  # same shape, new prices: warm update
                    offers[a.id] = tuple(
                        OfferBlock(b.gpus, draw(st.integers(0, 60)) / 10)
                        for b in blocks
                    )
                else:  # another number of blocks: rebuild
                    half = a.gpus / 2
                    offers[a.id] = (
                        OfferBlock(half, draw(st.integers(0, 60)) / 10),
                        OfferBlock(half, draw(st.integers(0, 60)) / 10),
                    )
        steps.append((demand, offers))
    return sc, steps


@EXAMPLES
@given(warm_sequences())
def test_warm_start_equals_fresh_build(case):
    sc, steps = case
    c = Clearing(sc)
    clear_or_error(c)
    offers: dict = {}
    for demand, new_offers in steps:
        c.update(demand=demand, offers=new_offers)
        offers.update(new_offers)
        fresh_sc = with_offers(with_demand(sc, demand), offers)
        warm, fresh = clear_or_error(c), clear_or_error(Clearing(fresh_sc))
        record_features(fresh)
        check_same_clearing(fresh_sc, warm, fresh)


@EXAMPLES
@given(warm_sequences())
def test_warm_start_processing_split_equals_fresh_build(case):
    sc, steps = case
    c = Clearing(sc)
    clear_or_error(c)
    offers: dict = {}
    for demand, new_offers in steps:
        c.update(demand=demand, offers=new_offers)
        offers.update(new_offers)
        fresh_sc = with_offers(with_demand(sc, demand), offers)
        check_same_processing(clear_or_error(c), clear_or_error(Clearing(fresh_sc)))


# ---------------------------------------------------------------- order


@EXAMPLES
@given(markets(), st.randoms(use_true_random=False))
def test_order_of_assets_and_demand_does_not_matter(data, rnd: random.Random):
    shuffled = dict(data)
    shuffled["assets"] = rnd.sample(data["assets"], len(data["assets"]))
    shuffled["demand"] = rnd.sample(data["demand"], len(data["demand"]))
    sc = scenario_from_dict(data, source="<hypothesis>")
    sc2 = scenario_from_dict(shuffled, source="<hypothesis shuffled>")
    check_same_clearing(sc, clear_or_error(Clearing(sc)), clear_or_error(Clearing(sc2)))


@EXAMPLES
@given(markets(), st.randoms(use_true_random=False))
def test_processing_split_does_not_depend_on_asset_order(data, rnd: random.Random):
    shuffled = dict(data, assets=rnd.sample(data["assets"], len(data["assets"])))
    a = clear_or_error(Clearing(scenario_from_dict(data)))
    b = clear_or_error(Clearing(scenario_from_dict(shuffled)))
    check_same_processing(a, b)


@pytest.mark.parametrize("order", ["listed", "reversed"])
def test_identical_offers_run_in_order_of_asset_id(order):
    # Two identical pools at A (1000 GPUs at 2.0 USD/GPU-h, 1000 tokens/s/GPU)
    # and 1.5e6 tokens/s of demand: 1500 GPUs run. The tie-break runs equal
    # offers in order of asset id, so "A/g1" is full (1000 GPUs) and "A/g2"
    # runs the other 500, wherever each is listed.
    assets = [
        asset_dict("A/g1", "A", "g", 1000, 2.0),
        asset_dict("A/g2", "A", "g", 1000, 2.0),
    ]
    if order == "reversed":
        assets.reverse()
    data = two_node_market(assets, [], [demand_dict("A", "chat", 1.5e6)])
    sc = scenario_from_dict(data)
    r = clear(sc)
    check_identities(sc, r)
    used = gpus_used(r)
    assert used["A/g1"] == pytest.approx(1000, abs=ABS_GPU)
    assert used["A/g2"] == pytest.approx(500, abs=ABS_GPU)
    price = compute_price_table(r)
    # The marginal pool sets both compute prices: 2.0, no scarcity rent.
    assert price["A/g1"] == pytest.approx(2.0, abs=tie_gpu_h(sc))
    assert price["A/g2"] == pytest.approx(2.0, abs=tie_gpu_h(sc))


@EXAMPLES
@given(markets(), st.data())
def test_twin_assets_are_cleared_alike_in_any_order(data, draw):
    running = [a for a in data["assets"] if a["gpus"] > 0]
    twin_of = draw.draw(st.sampled_from(running or data["assets"]))
    twin = {**twin_of, "id": "twin"}
    first = dict(data, assets=[twin, *data["assets"]])
    last = dict(data, assets=[*data["assets"], twin])
    sc = scenario_from_dict(first, source="<twin first>")
    check_same_clearing(
        sc,
        clear_or_error(Clearing(sc)),
        clear_or_error(Clearing(scenario_from_dict(last, source="<twin last>"))),
    )


def test_latency_outranks_asset_id_among_identical_offers():
    # A chain N0-N1-...-N5 of 10 ms links; every node has an identical pool
    # (1000 GPUs at 2.0 USD/GPU-h, 1000 tokens/s/GPU). N3 wants 0.5e6 tokens/s.
    # All pools cost the same, so the cheapest dispatch is not unique; the
    # tie-break must serve N3 locally (no data in flight) rather than at N0,
    # whose id sorts first. No link carries flow or earns rent.
    ids = [f"N{i}" for i in range(6)]
    assets = [asset_dict(f"{n}/g", n, "g", 1000, 2.0) for n in ids]
    links = [link_dict(a, b, 1.0, 10) for a, b in zip(ids, ids[1:], strict=False)]
    data = scenario_dict(
        "chain",
        node_dicts(ids),
        {"g": {"chat": 1000}},
        assets,
        links,
        {"chat": (100, 100)},
        [demand_dict("N3", "chat", 0.5e6)],
    )
    sc = scenario_from_dict(data)
    r = clear(sc)
    check_identities(sc, r)
    used = gpus_used(r)
    assert used["N3/g"] == pytest.approx(500, abs=ABS_GPU)
    assert sum(link_flows(r).values()) == pytest.approx(0.0, abs=1e-12)
    assert not r.links["saturated"].any()
    assert (r.links["congestion_rent_usd_per_h"] == 0).all()
