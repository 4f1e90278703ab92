"""Hand-solved clearings: every expected number is worked out on paper.

Each test builds a tiny scenario whose optimum can be found by hand (merit
order, one binding constraint at a time), writes the solution as arithmetic
with the reasoning in comments, and checks the clearing against it: status,
prices at every node, flows per route, link rents, asset revenues, settlement
and the identities of MODEL.md (price decomposition, revenue adequacy).

Units used throughout the arithmetic (the product's conventions):
- a pool at c USD/GPU-h with throughput thr tokens/s/GPU prices a token at
  c / (thr * 3600) * 1e6 USD per million tokens (USD/Mtok);
- x tokens/s for one hour at p USD/Mtok costs p * x * 3600 / 1e6 USD/h;
- y tokens/s of a workload with b bits per token use b * y / 1e9 Gbps;
- a link shadow price of s USD/Gbps-h adds s * b / 1e9 / 3600 * 1e6 USD/Mtok;
- a transfer charge of t USD/GB adds t * b / 8 / 1e9 * 1e6 USD/Mtok.

The scenarios avoid dual degeneracy on purpose: whenever a link saturates,
the asset behind it keeps spare GPUs, so exactly one constraint sets each
price and the expected prices are unique.
"""

import itertools
import math

import pytest
from builders import scenario_dict

from markets import clear
from scenarios import scenario_from_dict

REL = 1e-6  # relative tolerance for every hand-solved number
ABS_PRICE = 1e-6  # absolute slack for prices that must be zero
ABS_USD = 1e-3  # absolute slack for USD/h amounts that must be zero
ABS_TOK = 1e-2  # absolute slack in tokens/s (the LP works in Mtok/s)
ABS_GPU = 1e-5  # absolute slack in GPUs for idle assets
S_PER_H = 3600.0  # seconds per hour
TOK_PER_MTOK = 1e6  # tokens per million tokens
BITS_PER_GBIT = 1e9  # bits per gigabit (and per gigabyte, before / 8)


# ---------------------------------------------------------------- builders


def _nodes(*ids):
    """Nodes on the equator, one degree apart, all on UTC."""
    return {
        n: {"name": f"node {n}", "lat": 0.0, "lon": float(i), "utc_offset_h": 0}
        for i, n in enumerate(ids)
    }


def _asset(node, gpus, cost):
    """A pool of type "g" owned by a provider named after its node."""
    return {
        "node": node,
        "type": "g",
        "gpus": gpus,
        "cost_usd_per_gpu_hour": cost,
        "owner": f"owner-{node}",
    }


def _link(a, b, capacity_gbps, latency_ms, transfer_usd_per_gb=None):
    link = {"a": a, "b": b, "capacity_gbps": capacity_gbps, "latency_ms": latency_ms}
    if transfer_usd_per_gb is not None:
        link["transfer_usd_per_gb"] = transfer_usd_per_gb
    return link


def _demand(node, tokens_per_s=None, workload="chat", bids=None):
    entry = {"node": node, "workload": workload}
    if tokens_per_s is not None:
        entry["tokens_per_s"] = tokens_per_s
    if bids is not None:
        entry["bids"] = [{"tokens_per_s": q, "value_usd_per_mtok": v} for q, v in bids]
    return entry


def _scenario(name, nodes, assets, links, workloads, thr, demand, **extra):
    """A scenario dict of one asset type `g`; workloads maps id ->
    (latency_limit_ms, bits_per_token)."""
    return scenario_dict(
        name, nodes, {"g": thr}, assets, links, workloads, demand, **extra
    )


def _clear(data):
    return clear(scenario_from_dict(data, source=f"<{data['name']}>"))


# ---------------------------------------------------------------- accessors


def _approx(value, abs_=ABS_PRICE):
    return pytest.approx(value, rel=REL, abs=abs_)


def _one(df, **match):
    sel = df
    for col, val in match.items():
        sel = sel[sel[col] == val]
    assert len(sel) == 1, f"expected one row for {match}, got {len(sel)}"
    return sel.iloc[0]


def _lmp(r, node, workload="chat"):
    return float(_one(r.prices, workload=workload, node=node)["lmp_usd_per_mtok"])


def _served(r, node, workload="chat"):
    row = _one(r.prices, workload=workload, node=node)
    return float(row["served_tokens_per_s"])


def _flows(r):
    """{(workload, from_node, to_node, route): tokens/s} of the positive flows."""
    out = {}
    for row in r.dispatch.itertuples(index=False):
        if row.tokens_per_s > ABS_TOK:
            key = (row.workload, row.from_node, row.to_node, row.route)
            out[key] = out.get(key, 0.0) + float(row.tokens_per_s)
    return out


def _latency(r, workload, route):
    return float(_one(r.dispatch, workload=workload, route=route)["latency_ms"])


def _unserved(r):
    """{(workload, node): (tokens/s, reason)} of the demand that cannot be met."""
    return {
        (row.workload, row.node): (float(row.tokens_per_s), row.reason)
        for row in r.unserved.itertuples(index=False)
    }


def _bits(data):
    """bits[k] of every workload under the scenario's bandwidth model."""
    if data["bandwidth_model"] == "token":
        return {k: data["token_equivalent_bits"] for k in data["workloads"]}
    return {k: w["bits_per_token"] for k, w in data["workloads"].items()}


# ---------------------------------------------------------------- checks


def _assert_asset(r, asset, gpus_used, price):
    row = _one(r.assets, asset=asset)
    assert float(row["gpus_used"]) == _approx(gpus_used, ABS_GPU)
    assert float(row["compute_price_usd_per_gpu_hour"]) == _approx(price)
    # an asset is paid its compute price for every GPU it runs
    assert float(row["revenue_usd_per_h"]) == _approx(price * gpus_used, ABS_USD)


def _assert_link(r, link, flow_gbps, capacity_gbps, shadow, saturated):
    row = _one(r.links, link=link)
    assert float(row["flow_gbps"]) == _approx(flow_gbps)
    assert float(row["capacity_gbps"]) == _approx(capacity_gbps)
    assert float(row["utilisation"]) == _approx(flow_gbps / capacity_gbps)
    assert float(row["shadow_price_usd_per_gbps_h"]) == _approx(shadow)
    # congestion rent = shadow price * capacity
    rent = float(row["congestion_rent_usd_per_h"])
    assert rent == _approx(shadow * capacity_gbps, ABS_USD)
    assert bool(row["saturated"]) is saturated


def _assert_settlement(r, payments, revenues, transfers, rents):
    s = r.settlement
    assert float(s.consumer_payments_usd_per_h) == _approx(payments, ABS_USD)
    assert float(s.provider_revenues_usd_per_h) == _approx(revenues, ABS_USD)
    assert float(s.transfer_charges_usd_per_h) == _approx(transfers, ABS_USD)
    assert float(s.congestion_rents_usd_per_h) == _approx(rents, ABS_USD)


def _assert_revenue_adequacy(r):
    """Consumer payments - provider revenues - transfer charges = rents >= 0."""
    s = r.settlement
    surplus = (
        float(s.consumer_payments_usd_per_h)
        - float(s.provider_revenues_usd_per_h)
        - float(s.transfer_charges_usd_per_h)
    )
    rents = float(s.congestion_rents_usd_per_h)
    assert surplus == _approx(rents, ABS_USD)
    assert rents >= -ABS_USD
    link_rents = 0.0
    if len(r.links):
        link_rents = float(r.links["congestion_rent_usd_per_h"].sum())
    assert rents == _approx(link_rents, ABS_USD)


def _assert_decomposition(r, data):
    """On every used route: LMP = compute + link prices + transfer costs.

    Every scenario here has at most one asset per node, so the compute node
    of a dispatch row names its asset.
    """
    thr = data["asset_types"]["g"]["tokens_per_s_per_gpu"]
    bits = _bits(data)
    spec = {frozenset((x["a"], x["b"])): x for x in data["links"]}
    shadow = {
        frozenset((x.a, x.b)): float(x.shadow_price_usd_per_gbps_h)
        for x in r.links.itertuples(index=False)
    }
    for row in r.dispatch.itertuples(index=False):
        if row.tokens_per_s <= ABS_TOK:
            continue
        k = row.workload
        c = float(_one(r.assets, node=row.to_node)["compute_price_usd_per_gpu_hour"])
        price = c / (thr[k] * S_PER_H) * TOK_PER_MTOK
        hops = row.route.split("-")
        for pair in itertools.pairwise(hops):
            key = frozenset(pair)
            price += shadow[key] * bits[k] / BITS_PER_GBIT / S_PER_H * TOK_PER_MTOK
            t = spec[key].get("transfer_usd_per_gb", 0.0)
            price += t * bits[k] / 8 / BITS_PER_GBIT * TOK_PER_MTOK
        assert _lmp(r, row.from_node, k) == _approx(price)


def _assert_identities(r, data):
    _assert_revenue_adequacy(r)
    _assert_decomposition(r, data)
    assert len(r.unserved) == 0
    n_rows = len(data["workloads"]) * len(data["nodes"])
    assert len(r.prices) == n_rows  # every workload at every node


# ------------------------------------------- case 1: two nodes, one link


def _two_node(model, token_equivalent_bits):
    # A: 2000 GPUs at 2.0 USD/GPU-h; B: 1000 GPUs at 3.0; both 1000 tok/s/GPU.
    # A has 2000 GPUs (not 1000) so that A keeps spare capacity when the link
    # saturates: with exactly 1000 GPUs both would bind at once and the split
    # of the price difference between A's scarcity rent and the link's shadow
    # price would not be unique.
    return _scenario(
        "two-node",
        _nodes("A", "B"),
        assets=[_asset("A", 2000, 2.0), _asset("B", 1000, 3.0)],
        links=[_link("A", "B", 0.1, 10)],
        workloads={"chat": (100, 100)},
        thr={"chat": 1000},
        demand=[_demand("B", 1.5e6)],
        bandwidth_model=model,
        token_equivalent_bits=token_equivalent_bits,
    )


def test_two_nodes_congested_link_transfer_model():
    data = _two_node("transfer", 400)
    r = _clear(data)
    assert r.status == "optimal"
    # Transfer model: bits[chat] = bits_per_token = 100. The link carries at
    # most 0.1 Gbps * 1e9 / 100 bits = 1e6 tok/s from A to B; B's remaining
    # 1.5e6 - 1e6 = 0.5e6 tok/s are served at B itself, at the higher cost.
    from_a = 0.1 * 1e9 / 100  # 1e6 tok/s, the link's limit
    local_b = 1.5e6 - from_a  # 0.5e6 tok/s
    assert _flows(r) == pytest.approx(
        {("chat", "B", "A", "B-A"): from_a, ("chat", "B", "B", "B"): local_b},
        rel=REL,
        abs=ABS_TOK,
    )
    assert _latency(r, "chat", "B-A") == _approx(10.0)
    # B's marginal token comes from B's own pool (spare GPUs): 0.8333 USD/Mtok.
    lmp_b = 3.0 / (1000 * 3600) * 1e6
    # A has no demand: its next token is served locally at 0.5556 USD/Mtok.
    lmp_a = 2.0 / (1000 * 3600) * 1e6
    assert _lmp(r, "B") == _approx(lmp_b)
    assert _lmp(r, "A") == _approx(lmp_a)
    # Link price: one more tok/s over the link saves (3.0 - 2.0) / 1000 USD/h
    # (1e-3 GPU at B replaced by 1e-3 GPU at A) and uses 100 / 1e9 Gbps, so
    # shadow = 1e-3 / 1e-7 = 1e4 USD/Gbps-h; rent = 1e4 * 0.1 = 1000 USD/h,
    # which is also the flow 1e6 tok/s times the 1e-3 USD/h price spread.
    shadow = (3.0 - 2.0) / 1000 / (100 / 1e9)
    _assert_link(r, "A-B", 0.1, 0.1, shadow, saturated=True)
    # GPUs: A runs 1e6 / 1000 = 1000 GPUs of 2000, B runs 0.5e6 / 1000 = 500.
    _assert_asset(r, "A/g", from_a / 1000, 2.0)
    _assert_asset(r, "B/g", local_b / 1000, 3.0)
    # Objective: 1000 GPUs * 2.0 + 500 GPUs * 3.0 = 3500 USD/h.
    assert r.total_cost_usd_per_h == _approx(1000 * 2.0 + 500 * 3.0)
    # B pays 1.5e6 tok/s * 3600 s / 1e6 * 0.8333 = 4500 USD/h; providers get
    # 2000 + 1500 = 3500; the 1000 USD/h difference is the link's rent.
    payments = 1.5e6 * 3600 / 1e6 * lmp_b
    _assert_settlement(r, payments, 1000 * 2.0 + 500 * 3.0, 0.0, shadow * 0.1)
    assert _served(r, "B") == _approx(1.5e6, ABS_TOK)
    assert _served(r, "A") == _approx(0.0, ABS_TOK)
    _assert_identities(r, data)


def test_two_nodes_token_model_link_not_congested():
    # Same network in the token model with token_equivalent_bits = 40: every
    # token counts 40 bits whatever its bits_per_token, so the link carries up
    # to 0.1e9 / 40 = 2.5e6 tok/s and B's 1.5e6 tok/s all come from A.
    data = _two_node("token", 40)
    r = _clear(data)
    assert r.status == "optimal"
    assert _flows(r) == pytest.approx(
        {("chat", "B", "A", "B-A"): 1.5e6}, rel=REL, abs=ABS_TOK
    )
    # Link: 1.5e6 * 40 / 1e9 = 0.06 Gbps of 0.1 (60 %): spare, so price 0.
    _assert_link(r, "A-B", 1.5e6 * 40 / 1e9, 0.1, 0.0, saturated=False)
    # Prices equalise at A's cost, 2.0 / (1000 * 3600) * 1e6 = 0.5556 USD/Mtok.
    lmp = 2.0 / (1000 * 3600) * 1e6
    assert _lmp(r, "A") == _approx(lmp)
    assert _lmp(r, "B") == _approx(lmp)
    # A runs 1.5e6 / 1000 = 1500 GPUs of 2000; B idles and is priced at its
    # cheapest (truthful) offer, 3.0.
    _assert_asset(r, "A/g", 1500, 2.0)
    _assert_asset(r, "B/g", 0.0, 3.0)
    # Objective 1500 * 2.0 = 3000 USD/h = payments 1.5e6 * 3600 / 1e6 * lmp.
    assert r.total_cost_usd_per_h == _approx(1500 * 2.0)
    _assert_settlement(r, 1.5e6 * 3600 / 1e6 * lmp, 1500 * 2.0, 0.0, 0.0)
    _assert_identities(r, data)


# ------------------------------------------- case 2: a ring of four nodes


def _ring():
    # Ring A-B-C-D-A, 10 ms per link. "rag" carries 8000 bits per token.
    # A is cheap: 1.8 USD/GPU-h / (1000 * 3600) * 1e6 = 0.5 USD/Mtok.
    # C is dear:  3.6 USD/GPU-h -> 1.0 USD/Mtok. B and D host no compute.
    # A-B carries 8 Gbps * 1e9 / 8000 = 1e6 tok/s; the others 80 Gbps (1e7).
    # C-D charges 0.1 USD/GB: 8000 / 8 / 1e9 GB/token * 1e6 = 1 GB per Mtok,
    # so 0.1 USD/Mtok on the way round through D.
    return _scenario(
        "ring",
        _nodes("A", "B", "C", "D"),
        assets=[_asset("A", 10000, 1.8), _asset("C", 10000, 3.6)],
        links=[
            _link("A", "B", 8, 10),
            _link("B", "C", 80, 10),
            _link("C", "D", 80, 10, transfer_usd_per_gb=0.1),
            _link("D", "A", 80, 10),
        ],
        workloads={"rag": (100, 8000)},
        thr={"rag": 1000},
        demand=[_demand("C", 3e6, workload="rag")],
    )


def test_ring_cheap_node_feeds_over_two_paths_one_link_congests():
    data = _ring()
    r = _clear(data)
    assert r.status == "optimal"
    # C's 3e6 tok/s: route C-B-A is free (0.5 USD/Mtok) but A-B holds 1e6
    # tok/s; the rest takes C-D-A at 0.5 + 0.1 = 0.6 < 1.0 (C's own pool).
    # A runs 3e6 / 1000 = 3000 of its 10000 GPUs, C idles.
    assert _flows(r) == pytest.approx(
        {("rag", "C", "A", "C-B-A"): 1e6, ("rag", "C", "A", "C-D-A"): 2e6},
        rel=REL,
        abs=ABS_TOK,
    )
    assert _latency(r, "rag", "C-B-A") == _approx(10.0 + 10.0)
    assert _latency(r, "rag", "C-D-A") == _approx(10.0 + 10.0)
    transfer = 0.1 * 8000 / 8 / 1e9 * 1e6  # 0.1 USD/Mtok on C-D
    lmp_a = 1.8 / (1000 * 3600) * 1e6  # 0.5
    lmp_c = lmp_a + transfer  # 0.6: set by the marginal route C-D-A
    # A-B's price closes the gap on C-B-A: shadow * 8000 / 1e9 / 3600 * 1e6
    # = 0.1 USD/Mtok, so shadow = 0.1 * 1e9 * 3600 / (8000 * 1e6) = 45
    # USD/Gbps-h and rent = 45 * 8 = 360 USD/h (= 1e6 tok/s * 0.1 * 0.0036).
    shadow_ab = (lmp_c - lmp_a) * 1e9 * 3600 / (8000 * 1e6)
    assert _lmp(r, "C", "rag") == _approx(lmp_c)
    assert _lmp(r, "A", "rag") == _approx(lmp_a)  # no demand, local pool
    # B has no demand: its next token costs 0.6 via B-A (0.5 + A-B's 0.1) or
    # via B-C-D-A (0.5 + C-D's transfer 0.1); C's pool would cost 1.0.
    via_ab = shadow_ab * 8000 / 1e9 / 3600 * 1e6  # 0.1 USD/Mtok
    assert _lmp(r, "B", "rag") == _approx(lmp_a + via_ab)
    # D has no demand: its next token comes over D-A, uncongested: 0.5.
    assert _lmp(r, "D", "rag") == _approx(lmp_a)
    gbps = 8000 / 1e9  # Gbps per tok/s
    _assert_link(r, "A-B", 1e6 * gbps, 8, shadow_ab, saturated=True)
    _assert_link(r, "B-C", 1e6 * gbps, 80, 0.0, saturated=False)
    _assert_link(r, "C-D", 2e6 * gbps, 80, 0.0, saturated=False)
    _assert_link(r, "D-A", 2e6 * gbps, 80, 0.0, saturated=False)
    _assert_asset(r, "A/g", 3e6 / 1000, 1.8)
    _assert_asset(r, "C/g", 0.0, 3.6)
    # Transfer: 2e6 tok/s * 8000 bits * 3600 / 8 / 1e9 = 7200 GB/h * 0.1 =
    # 720 USD/h. Objective: 3000 GPUs * 1.8 = 5400, plus 720 = 6120 USD/h.
    charges = 2e6 * 8000 * 3600 / 8 / 1e9 * 0.1
    assert r.total_cost_usd_per_h == _approx(3000 * 1.8 + charges)
    # C pays 3e6 * 3600 / 1e6 * 0.6 = 6480 = 5400 + 720 + 360 (rent).
    payments = 3e6 * 3600 / 1e6 * lmp_c
    _assert_settlement(r, payments, 3000 * 1.8, charges, shadow_ab * 8)
    _assert_identities(r, data)


# ------------------------------------------- case 3: latency limits


def _latency_case(chat_limit_ms):
    # A is cheap (2.0 USD/GPU-h), B is dear (5.0); the A-B link takes 40 ms.
    # chat: 1000 tok/s/GPU, 100 bits; batch: 2000 tok/s/GPU, 400 bits, 200 ms.
    return _scenario(
        "latency",
        _nodes("A", "B"),
        assets=[_asset("A", 10000, 2.0), _asset("B", 10000, 5.0)],
        links=[_link("A", "B", 10, 40)],
        workloads={"chat": (chat_limit_ms, 100), "batch": (200, 400)},
        thr={"chat": 1000, "batch": 2000},
        demand=[_demand("B", 1e6), _demand("B", 2e6, workload="batch")],
    )


def test_tight_latency_limit_forces_local_service():
    data = _latency_case(15)
    r = _clear(data)
    assert r.status == "optimal"
    # chat may not use B-A (40 ms > 15 ms): B serves it locally (latency 0)
    # on 1e6 / 1000 = 1000 GPUs at 5.0. batch (200 ms) goes to A on
    # 2e6 / 2000 = 1000 GPUs at 2.0.
    assert _flows(r) == pytest.approx(
        {("chat", "B", "B", "B"): 1e6, ("batch", "B", "A", "B-A"): 2e6},
        rel=REL,
        abs=ABS_TOK,
    )
    assert _latency(r, "chat", "B") == _approx(0.0)
    assert _latency(r, "batch", "B-A") == _approx(40.0)
    chat_b = 5.0 / (1000 * 3600) * 1e6  # 1.3889 USD/Mtok, B's pool
    batch = 2.0 / (2000 * 3600) * 1e6  # 0.2778 USD/Mtok, A's pool
    chat_a = 2.0 / (1000 * 3600) * 1e6  # 0.5556: no chat demand at A
    assert _lmp(r, "B", "chat") == _approx(chat_b)
    assert _lmp(r, "B", "batch") == _approx(batch)
    assert _lmp(r, "A", "chat") == _approx(chat_a)
    assert _lmp(r, "A", "batch") == _approx(batch)
    # Link: 2e6 * 400 / 1e9 = 0.8 Gbps of 10, price 0.
    _assert_link(r, "A-B", 2e6 * 400 / 1e9, 10, 0.0, saturated=False)
    _assert_asset(r, "A/g", 1000, 2.0)
    _assert_asset(r, "B/g", 1000, 5.0)
    assert r.total_cost_usd_per_h == _approx(1000 * 2.0 + 1000 * 5.0)
    # Payments: 1e6 * 0.0036 * 1.3889 = 5000 + 2e6 * 0.0036 * 0.2778 = 2000.
    payments = 1e6 * 3600 / 1e6 * chat_b + 2e6 * 3600 / 1e6 * batch
    _assert_settlement(r, payments, 1000 * 2.0 + 1000 * 5.0, 0.0, 0.0)
    _assert_identities(r, data)


def test_loose_latency_limit_lowers_the_price():
    data = _latency_case(100)
    r = _clear(data)
    assert r.status == "optimal"
    # With 100 ms, chat also goes to A: A runs 1000 + 1000 = 2000 GPUs, B idles.
    assert _flows(r) == pytest.approx(
        {("chat", "B", "A", "B-A"): 1e6, ("batch", "B", "A", "B-A"): 2e6},
        rel=REL,
        abs=ABS_TOK,
    )
    tight = 5.0 / (1000 * 3600) * 1e6
    loose = 2.0 / (1000 * 3600) * 1e6
    assert _lmp(r, "B", "chat") == _approx(loose)
    # Tightening 100 ms -> 15 ms raises chat's price at B by 5.0/2.0 - 1 = 150 %.
    assert tight / loose - 1 == pytest.approx(1.5, rel=REL)
    # Link: (1e6 * 100 + 2e6 * 400) / 1e9 = 0.9 Gbps of 10.
    _assert_link(r, "A-B", (1e6 * 100 + 2e6 * 400) / 1e9, 10, 0.0, False)
    _assert_asset(r, "A/g", 2000, 2.0)
    _assert_asset(r, "B/g", 0.0, 5.0)
    assert r.total_cost_usd_per_h == _approx(2000 * 2.0)
    _assert_identities(r, data)


# ------------------------------------------- case 4: elastic bids


def _one_pool(demand, nodes=("A",), links=()):
    # A: 1000 GPUs at 3.6 USD/GPU-h, 1000 tok/s/GPU: 1e6 tok/s of capacity
    # at 3.6 / (1000 * 3600) * 1e6 = 1.0 USD/Mtok.
    return _scenario(
        "elastic",
        _nodes(*nodes),
        assets=[_asset("A", 1000, 3.6)],
        links=list(links),
        workloads={"chat": (100, 100)},
        thr={"chat": 1000},
        demand=demand,
    )


def test_partially_accepted_bid_sets_the_price():
    # Hard 0.6e6 tok/s, then bids 0.3e6 @ 5.0 and 0.3e6 @ 3.0 USD/Mtok.
    data = _one_pool([_demand("A", 0.6e6, bids=[(0.3e6, 5.0), (0.3e6, 3.0)])])
    r = _clear(data)
    assert r.status == "optimal"
    # Merit order of demand: hard 0.6e6, the 5.0 block (0.3e6), then the 3.0
    # block, of which only 1e6 - 0.9e6 = 0.1e6 fit: the pool is full. The
    # partially accepted block is marginal, so LMP = its value, 3.0.
    assert _served(r, "A") == _approx(1e6, ABS_TOK)
    assert _lmp(r, "A") == _approx(3.0)
    # Compute price = 3.0 USD/Mtok * 1000 tok/s/GPU * 3600 / 1e6 = 10.8
    # USD/GPU-h: the 3.6 offer plus a 7.2 scarcity rent. All 1000 GPUs run.
    compute = 3.0 * 1000 * 3600 / 1e6
    _assert_asset(r, "A/g", 1000, compute)
    # Objective: 1000 * 3.6 - 0.3e6 * 5.0 * 0.0036 - 0.1e6 * 3.0 * 0.0036
    # = 3600 - 5400 - 1080 = -2880 USD/h.
    value = 0.3e6 * 5.0 * 3600 / 1e6 + 0.1e6 * 3.0 * 3600 / 1e6
    assert r.total_cost_usd_per_h == _approx(1000 * 3.6 - value)
    # Payments 1e6 * 3.0 * 0.0036 = 10800 = the pool's 1000 * 10.8.
    _assert_settlement(r, 1e6 * 3600 / 1e6 * 3.0, 1000 * compute, 0.0, 0.0)
    _assert_identities(r, data)


def test_bid_below_cost_is_rejected():
    # Hard 0.4e6, bids 0.2e6 @ 2.0 (above the 1.0 cost) and 0.3e6 @ 0.8
    # (below it): the first is accepted in full, the second not at all.
    data = _one_pool([_demand("A", 0.4e6, bids=[(0.2e6, 2.0), (0.3e6, 0.8)])])
    r = _clear(data)
    assert r.status == "optimal"
    assert _served(r, "A") == _approx(0.4e6 + 0.2e6, ABS_TOK)
    # 600 of 1000 GPUs run: the pool is marginal, LMP = 1.0 USD/Mtok.
    assert _lmp(r, "A") == _approx(3.6 / (1000 * 3600) * 1e6)
    _assert_asset(r, "A/g", 0.6e6 / 1000, 3.6)
    # Objective: 600 * 3.6 - 0.2e6 * 2.0 * 0.0036 = 2160 - 1440 = 720 USD/h.
    assert r.total_cost_usd_per_h == _approx(600 * 3.6 - 0.2e6 * 2.0 * 3600 / 1e6)
    _assert_settlement(r, 0.6e6 * 3600 / 1e6 * 1.0, 600 * 3.6, 0.0, 0.0)
    _assert_identities(r, data)


def test_node_whose_only_bid_is_rejected_pays_next_token_price():
    # B bids 0.5e6 @ 0.9 USD/Mtok (tokens_per_s omitted: 0 hard demand) but a
    # token delivered from A costs 1.0 (free, uncongested link): rejected.
    # Served 0 at B, and its price is that of its next token: 1.0 USD/Mtok.
    data = _one_pool(
        [_demand("A", 0.4e6), _demand("B", bids=[(0.5e6, 0.9)])],
        nodes=("A", "B"),
        links=[_link("A", "B", 10, 10)],
    )
    r = _clear(data)
    assert r.status == "optimal"
    assert _served(r, "B") == _approx(0.0, ABS_TOK)
    assert _flows(r) == pytest.approx(
        {("chat", "A", "A", "A"): 0.4e6}, rel=REL, abs=ABS_TOK
    )
    assert _lmp(r, "B") == _approx(1.0)
    assert _lmp(r, "A") == _approx(1.0)
    assert r.total_cost_usd_per_h == _approx(400 * 3.6)
    _assert_identities(r, data)


# ------------------------------------------- case 5: infeasible markets


def test_island_without_route_is_infeasible():
    # A hosts compute; B is linked to A; C has no link at all; D's only link
    # is closed (capacity 0). C and D can reach no compute.
    data = _scenario(
        "islands",
        _nodes("A", "B", "C", "D"),
        assets=[_asset("A", 10000, 2.0)],
        links=[_link("A", "B", 10, 10), _link("A", "D", 0, 10)],
        workloads={"chat": (100, 100)},
        thr={"chat": 1000},
        demand=[_demand("B", 0.5e6), _demand("C", 0.2e6), _demand("D", 0.3e6)],
    )
    r = _clear(data)
    assert r.status == "infeasible"
    assert r.total_cost_usd_per_h is None
    # B can be served; C and D are short by their whole demand.
    assert _unserved(r) == {
        ("chat", "C"): (pytest.approx(0.2e6, rel=REL), "no eligible route"),
        ("chat", "D"): (pytest.approx(0.3e6, rel=REL), "no eligible route"),
    }
    # The market has no optimum, so no price anywhere.
    assert len(r.prices) == 4
    assert r.prices["lmp_usd_per_mtok"].isna().all()


def test_compute_shortfall_is_infeasible():
    # A: 1000 GPUs, B: 200 GPUs, 1000 tok/s/GPU: (1000 + 200) * 1000 = 1.2e6
    # tok/s in all. B wants 1.5e6; the link (10 Gbps = 1e8 tok/s at 100 bits)
    # is no limit, so 1.5e6 - 1.2e6 = 0.3e6 tok/s are short for compute.
    data = _scenario(
        "compute-short",
        _nodes("A", "B"),
        assets=[_asset("A", 1000, 2.0), _asset("B", 200, 3.0)],
        links=[_link("A", "B", 10, 10)],
        workloads={"chat": (100, 100)},
        thr={"chat": 1000},
        demand=[_demand("B", 1.5e6)],
    )
    r = _clear(data)
    assert r.status == "infeasible"
    assert r.total_cost_usd_per_h is None
    shortfall = 1.5e6 - (1000 + 200) * 1000
    assert _unserved(r) == {
        ("chat", "B"): (pytest.approx(shortfall, rel=REL), "compute capacity"),
    }


def test_link_shortfall_is_infeasible():
    # A has 10000 GPUs (1e7 tok/s); B has none and reaches A over a link of
    # 0.1 Gbps = 0.1e9 / 100 = 1e6 tok/s. B wants 1.5e6: 0.5e6 short.
    data = _scenario(
        "link-short",
        _nodes("A", "B"),
        assets=[_asset("A", 10000, 2.0)],
        links=[_link("A", "B", 0.1, 10)],
        workloads={"chat": (100, 100)},
        thr={"chat": 1000},
        demand=[_demand("B", 1.5e6)],
    )
    r = _clear(data)
    assert r.status == "infeasible"
    shortfall = 1.5e6 - 0.1 * 1e9 / 100
    assert _unserved(r) == {
        ("chat", "B"): (pytest.approx(shortfall, rel=REL), "link bandwidth"),
    }


def test_isolated_node_without_demand_has_no_price():
    # E has no link and no demand: the market is still optimal, but E reaches
    # no capacity, so its LMP is NaN. A serves its own 1e6 tok/s.
    data = _scenario(
        "isolated",
        _nodes("A", "E"),
        assets=[_asset("A", 10000, 2.0)],
        links=[],
        workloads={"chat": (100, 100)},
        thr={"chat": 1000},
        demand=[_demand("A", 1e6)],
    )
    r = _clear(data)
    assert r.status == "optimal"
    assert math.isnan(_lmp(r, "E"))
    assert _lmp(r, "A") == _approx(2.0 / (1000 * 3600) * 1e6)
    assert r.total_cost_usd_per_h == _approx(1e6 / 1000 * 2.0)
    _assert_identities(r, data)


# ------------------------------------------- case 6: transfer charges


def test_transfer_charges_on_an_uncongested_chain():
    # Chain A-B-C. "docs" carries 8000 bits = 1000 bytes per token, i.e.
    # 8000 / 8 / 1e9 * 1e6 = 1 GB per million tokens. A-B charges 0.1 USD/GB
    # (12 ms), B-C 0.05 USD/GB (7 ms); both 40 Gbps.
    # A: 1.8 USD/GPU-h -> 0.5 USD/Mtok; C: 3.6 -> 1.0 USD/Mtok.
    data = _scenario(
        "transfer-chain",
        _nodes("A", "B", "C"),
        assets=[_asset("A", 10000, 1.8), _asset("C", 10000, 3.6)],
        links=[_link("A", "B", 40, 12, 0.1), _link("B", "C", 40, 7, 0.05)],
        workloads={"docs": (100, 8000)},
        thr={"docs": 1000},
        demand=[_demand("B", 1e6, "docs"), _demand("C", 2e6, "docs")],
    )
    r = _clear(data)
    assert r.status == "optimal"
    gb_per_mtok = 8000 / 8 / 1e9 * 1e6  # 1.0
    lmp_a = 1.8 / (1000 * 3600) * 1e6  # 0.5, A has no demand
    lmp_b = lmp_a + 0.1 * gb_per_mtok  # 0.6
    lmp_c = lmp_a + (0.1 + 0.05) * gb_per_mtok  # 0.65 < 1.0 at C's own pool
    assert _lmp(r, "A", "docs") == _approx(lmp_a)
    assert _lmp(r, "B", "docs") == _approx(lmp_b)
    assert _lmp(r, "C", "docs") == _approx(lmp_c)
    assert _flows(r) == pytest.approx(
        {("docs", "B", "A", "B-A"): 1e6, ("docs", "C", "A", "C-B-A"): 2e6},
        rel=REL,
        abs=ABS_TOK,
    )
    assert _latency(r, "docs", "C-B-A") == _approx(7.0 + 12.0)
    # A-B carries 3e6 * 8000 / 1e9 = 24 Gbps (60 %), B-C 16 Gbps (40 %).
    _assert_link(r, "A-B", 3e6 * 8000 / 1e9, 40, 0.0, saturated=False)
    _assert_link(r, "B-C", 2e6 * 8000 / 1e9, 40, 0.0, saturated=False)
    _assert_asset(r, "A/g", 3e6 / 1000, 1.8)
    _assert_asset(r, "C/g", 0.0, 3.6)
    # GB/h = bits * tok/s * 3600 / 8 / 1e9: A-B 10800 GB/h * 0.1 = 1080,
    # B-C 7200 GB/h * 0.05 = 360; 1440 USD/h in all.
    charges = 8000 * 3e6 * 3600 / 8 / 1e9 * 0.1 + 8000 * 2e6 * 3600 / 8 / 1e9 * 0.05
    assert r.total_cost_usd_per_h == _approx(3000 * 1.8 + charges)
    # Payments 1e6 * 0.0036 * 0.6 + 2e6 * 0.0036 * 0.65 = 2160 + 4680 = 6840
    # = 5400 to A + 1440 in transfer charges; no congestion, no rent.
    payments = 1e6 * 3600 / 1e6 * lmp_b + 2e6 * 3600 / 1e6 * lmp_c
    _assert_settlement(r, payments, 3000 * 1.8, charges, 0.0)
    _assert_identities(r, data)
