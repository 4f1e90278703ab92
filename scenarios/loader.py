"""Reading and validating scenario files.

Every problem is reported as a `ScenarioError` naming the file, the field path
(``links[2].capacity_gbps``) and the reason, with the bad value.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from scenarios import behaviour
from scenarios.schema import (
    BANDWIDTH_MODELS,
    DEFAULT_MAX_ROUTES,
    DEMAND_PROFILES,
    Asset,
    AssetType,
    BidBlock,
    Demand,
    Link,
    Node,
    OfferBlock,
    Scenario,
    Workload,
)
from scenarios.validation import ScenarioError, Validator

# Demands beyond this leave GLOP's double-precision arithmetic unreliable.
MAX_TOKENS_PER_S = 1e15


# YAML 1.1 reads 2.5e6 and 1e6 as strings; scenario authors mean numbers.
_FLOAT_RE = re.compile(r"^[-+]?(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)[eE][-+]?\d+$")


class _ScenarioYamlLoader(yaml.SafeLoader):
    """A safe loader that rejects duplicate keys and reads 1e6 as a number."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    None, None, "a list or mapping cannot be a key", key_node.start_mark
                ) from None
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


_ScenarioYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", _FLOAT_RE, list("-+0123456789.")
)

_TOP_FIELDS = {
    "name",
    "bandwidth_model",
    "token_equivalent_bits",
    "max_routes",
    "shed_penalty_usd_per_mtok",
    "nodes",
    "asset_types",
    "assets",
    "links",
    "workloads",
    "demand",
    "description",
    "providers",
    "electricity",
    "consumers",
    "zones",
}


def bundled_scenarios() -> list[str]:
    """Names of the scenarios shipped with the package."""
    files = resources.files("scenarios.data").iterdir()
    return sorted(f.name[:-5] for f in files if f.name.endswith(".yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """Load a bundled scenario by name (``us5``) or any YAML file by path."""
    text_name = str(name_or_path)
    if text_name in bundled_scenarios():
        resource = resources.files("scenarios.data") / f"{text_name}.yaml"
        return _parse_text(resource.read_text(encoding="utf-8"), f"{text_name}.yaml")

    path = Path(name_or_path)
    if path.is_dir():
        raise ScenarioError(text_name, "file", "is a folder, not a scenario file")
    if not path.is_file():
        known = ", ".join(bundled_scenarios())
        raise ScenarioError(
            text_name, "file", f"no such file or bundled scenario (bundled: {known})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ScenarioError(str(path), "file", f"cannot be read: {err}") from err
    return _parse_text(text, str(path))


def _parse_text(text: str, source: str) -> Scenario:
    try:
        data = yaml.load(text, Loader=_ScenarioYamlLoader)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"line {mark.line + 1}" if mark else "yaml"
        problem = getattr(err, "problem", None) or str(err)
        raise ScenarioError(source, where, f"not valid YAML: {problem}") from err
    return scenario_from_dict(data, source)


def scenario_from_dict(data: Any, source: str = "<dict>") -> Scenario:
    """Validate a scenario given as plain data (as read from YAML)."""
    v = Validator(source)
    top = v.mapping(data, "scenario")
    v.no_unknown(top, _TOP_FIELDS, "")

    workloads = _workloads(v, top)
    nodes = _nodes(v, top)
    asset_types = _asset_types(v, top, workloads)
    scenario = Scenario(
        name=v.text(v.required(top, "name", ""), "name"),
        bandwidth_model=v.choice(
            v.required(top, "bandwidth_model", ""), "bandwidth_model", BANDWIDTH_MODELS
        ),
        token_equivalent_bits=v.number(
            v.required(top, "token_equivalent_bits", ""),
            "token_equivalent_bits",
            positive=True,
        ),
        nodes=nodes,
        asset_types=asset_types,
        assets=_assets(v, top, nodes, asset_types),
        links=_links(v, top, nodes),
        workloads=workloads,
        demand=_demand(v, top, nodes, workloads),
        max_routes=v.integer(top.get("max_routes", DEFAULT_MAX_ROUTES), "max_routes"),
        shed_penalty_usd_per_mtok=v.optional_number(
            top.get("shed_penalty_usd_per_mtok"), "shed_penalty_usd_per_mtok"
        ),
        source=source,
        provider_strategies=_providers(v, top),
        extra={k: top[k] for k in ("description",) if k in top},
    )
    return dataclasses.replace(
        scenario,
        electricity=behaviour.electricity(v, top, scenario),
        consumers=behaviour.consumers(v, top, workloads),
        zones=behaviour.zones(v, top, nodes),
    )


def with_overrides(
    scenario: Scenario,
    *,
    bandwidth_model: str | None = None,
    latency_limits_ms: Mapping[str, float] | None = None,
    demand_scale: float | None = None,
) -> Scenario:
    """A copy of the scenario with command-line style changes applied."""
    v = Validator(scenario.source)
    changes: dict[str, Any] = {}
    if bandwidth_model is not None:
        changes["bandwidth_model"] = v.choice(
            bandwidth_model, "--bandwidth-model", BANDWIDTH_MODELS
        )
    if latency_limits_ms:
        workloads = dict(scenario.workloads)
        for name, limit in latency_limits_ms.items():
            field = f"--latency-limit {name}"
            if name not in workloads:
                known = ", ".join(workloads)
                raise ScenarioError(
                    scenario.source, field, f"unknown workload (known: {known})"
                )
            limit = v.number(limit, field, minimum=0.0)
            workloads[name] = dataclasses.replace(
                workloads[name], latency_limit_ms=limit
            )
        changes["workloads"] = workloads
    if demand_scale is not None:
        scale = v.number(demand_scale, "--demand-scale", minimum=0.0)
        largest = max((_offered(d) for d in scenario.demand), default=0.0)
        v.check(
            largest * scale <= MAX_TOKENS_PER_S,
            "--demand-scale",
            f"{scale:g} makes demand {largest * scale:.3g} tokens/s, above the "
            f"{MAX_TOKENS_PER_S:.0e} tokens/s the solver handles reliably",
        )
        changes["demand"] = tuple(_scaled(d, scale) for d in scenario.demand)
    return dataclasses.replace(scenario, **changes)


def _offered(demand: Demand) -> float:
    return demand.tokens_per_s + sum(b.tokens_per_s for b in demand.bids)


def _scaled(demand: Demand, scale: float) -> Demand:
    bids = tuple(
        dataclasses.replace(b, tokens_per_s=b.tokens_per_s * scale) for b in demand.bids
    )
    return dataclasses.replace(
        demand, tokens_per_s=demand.tokens_per_s * scale, bids=bids
    )


def _workloads(v: Validator, top: dict) -> dict[str, Workload]:
    raw = v.mapping(v.required(top, "workloads", ""), "workloads", nonempty=True)
    result = {}
    for wid, entry in raw.items():
        path = f"workloads.{wid}"
        entry = v.mapping(entry, path)
        v.no_unknown(entry, {"latency_limit_ms", "bits_per_token", "profile"}, path)
        result[str(wid)] = Workload(
            id=str(wid),
            latency_limit_ms=v.number(
                v.required(entry, "latency_limit_ms", path),
                f"{path}.latency_limit_ms",
                minimum=0.0,
            ),
            bits_per_token=v.number(
                v.required(entry, "bits_per_token", path),
                f"{path}.bits_per_token",
                positive=True,
            ),
            profile=v.choice(
                entry.get("profile", "diurnal"), f"{path}.profile", DEMAND_PROFILES
            ),
        )
    return result


def _nodes(v: Validator, top: dict) -> dict[str, Node]:
    raw = v.mapping(v.required(top, "nodes", ""), "nodes", nonempty=True)
    result = {}
    for nid, entry in raw.items():
        path = f"nodes.{nid}"
        entry = v.mapping(entry, path)
        v.no_unknown(entry, {"name", "lat", "lon", "utc_offset_h"}, path)
        lat = v.number(v.required(entry, "lat", path), f"{path}.lat")
        lon = v.number(v.required(entry, "lon", path), f"{path}.lon")
        offset = v.number(entry.get("utc_offset_h", 0.0), f"{path}.utc_offset_h")
        v.check(-90 <= lat <= 90, f"{path}.lat", f"must be in [-90, 90], got {lat}")
        v.check(-180 <= lon <= 180, f"{path}.lon", f"must be in [-180, 180], got {lon}")
        v.check(
            -12 <= offset <= 14,
            f"{path}.utc_offset_h",
            f"must be in [-12, 14], got {offset}",
        )
        result[str(nid)] = Node(
            id=str(nid),
            name=v.text(entry.get("name", str(nid)), f"{path}.name"),
            lat=lat,
            lon=lon,
            utc_offset_h=offset,
        )
    return result


def _asset_types(
    v: Validator, top: dict, workloads: dict[str, Workload]
) -> dict[str, AssetType]:
    raw = v.mapping(v.required(top, "asset_types", ""), "asset_types", nonempty=True)
    result = {}
    for tid, entry in raw.items():
        path = f"asset_types.{tid}"
        entry = v.mapping(entry, path)
        v.no_unknown(entry, {"tokens_per_s_per_gpu", "power_kw_per_gpu"}, path)
        tput_path = f"{path}.tokens_per_s_per_gpu"
        tput = v.mapping(v.required(entry, "tokens_per_s_per_gpu", path), tput_path)
        for wid in tput:
            v.check(
                wid in workloads,
                f"{tput_path}.{wid}",
                f"unknown workload {wid!r} (known: {', '.join(workloads)})",
            )
        for wid in workloads:
            v.check(wid in tput, f"{tput_path}.{wid}", "missing throughput")
        result[str(tid)] = AssetType(
            id=str(tid),
            tokens_per_s_per_gpu={
                wid: v.number(tput[wid], f"{tput_path}.{wid}", positive=True)
                for wid in workloads
            },
            power_kw_per_gpu=v.optional_number(
                entry.get("power_kw_per_gpu"), f"{path}.power_kw_per_gpu"
            ),
        )
    return result


def _assets(
    v: Validator, top: dict, nodes: dict, asset_types: dict
) -> tuple[Asset, ...]:
    raw = v.sequence(v.required(top, "assets", ""), "assets")
    fields = {"id", "node", "type", "gpus", "cost_usd_per_gpu_hour", "owner", "offers"}
    result, seen = [], set()
    for i, entry in enumerate(raw):
        path = f"assets[{i}]"
        entry = v.mapping(entry, path)
        v.no_unknown(entry, fields, path)
        node = v.reference(v.required(entry, "node", path), f"{path}.node", nodes)
        kind = v.reference(v.required(entry, "type", path), f"{path}.type", asset_types)
        gpus = v.number(v.required(entry, "gpus", path), f"{path}.gpus", minimum=0.0)
        asset_id = v.text(entry.get("id", f"{node}/{kind}"), f"{path}.id")
        v.check(
            asset_id not in seen,
            f"{path}.id",
            f"duplicate asset id {asset_id!r} (give each asset an explicit id)",
        )
        seen.add(asset_id)
        result.append(
            Asset(
                id=asset_id,
                node=node,
                type=kind,
                gpus=gpus,
                cost_usd_per_gpu_hour=v.number(
                    v.required(entry, "cost_usd_per_gpu_hour", path),
                    f"{path}.cost_usd_per_gpu_hour",
                    minimum=0.0,
                ),
                owner=v.text(v.required(entry, "owner", path), f"{path}.owner"),
                offers=_offers(v, entry.get("offers"), f"{path}.offers", gpus),
            )
        )
    return tuple(result)


def _offers(v: Validator, raw: Any, path: str, gpus: float) -> tuple[OfferBlock, ...]:
    if raw is None:
        return ()
    blocks = []
    for i, entry in enumerate(v.sequence(raw, path)):
        bpath = f"{path}[{i}]"
        entry = v.mapping(entry, bpath)
        v.no_unknown(entry, {"gpus", "price_usd_per_gpu_hour"}, bpath)
        blocks.append(
            OfferBlock(
                gpus=v.number(
                    v.required(entry, "gpus", bpath), f"{bpath}.gpus", minimum=0.0
                ),
                price_usd_per_gpu_hour=v.number(
                    v.required(entry, "price_usd_per_gpu_hour", bpath),
                    f"{bpath}.price_usd_per_gpu_hour",
                ),
            )
        )
    total = sum(b.gpus for b in blocks)
    v.check(
        total <= gpus * (1 + 1e-12),
        path,
        f"offer blocks total {total:g} GPUs, more than the asset's {gpus:g}",
    )
    return tuple(blocks)


def _providers(v: Validator, top: dict) -> dict[str, str]:
    """Strategy text per provider (owner); parsed when the simulation starts."""
    raw = v.mapping(top.get("providers") or {}, "providers")
    owners = {
        str(a.get("owner")) for a in top.get("assets") or [] if isinstance(a, dict)
    }
    result = {}
    for owner, entry in raw.items():
        path = f"providers.{owner}"
        v.check(
            str(owner) in owners,
            path,
            f"unknown provider (asset owners: {', '.join(sorted(owners))})",
        )
        entry = v.mapping(entry, path)
        v.no_unknown(entry, {"strategy"}, path)
        result[str(owner)] = v.text(
            v.required(entry, "strategy", path), f"{path}.strategy"
        )
    return result


def _links(v: Validator, top: dict, nodes: dict) -> tuple[Link, ...]:
    raw = v.sequence(top.get("links") or [], "links")
    fields = {"id", "a", "b", "capacity_gbps", "latency_ms", "transfer_usd_per_gb"}
    result, seen = [], set()
    for i, entry in enumerate(raw):
        path = f"links[{i}]"
        entry = v.mapping(entry, path)
        v.no_unknown(entry, fields, path)
        a = v.reference(v.required(entry, "a", path), f"{path}.a", nodes)
        b = v.reference(v.required(entry, "b", path), f"{path}.b", nodes)
        v.check(a != b, f"{path}.b", f"a link must join two nodes, got {a}-{b}")
        link_id = entry.get("id")
        if link_id is None:
            link_id, n = f"{a}-{b}", 2
            while link_id in seen:
                link_id, n = f"{a}-{b}#{n}", n + 1
        link_id = v.text(link_id, f"{path}.id")
        v.check(link_id not in seen, f"{path}.id", f"duplicate link id {link_id!r}")
        seen.add(link_id)
        result.append(
            Link(
                id=link_id,
                a=a,
                b=b,
                capacity_gbps=v.number(
                    v.required(entry, "capacity_gbps", path),
                    f"{path}.capacity_gbps",
                    minimum=0.0,
                ),
                latency_ms=v.number(
                    v.required(entry, "latency_ms", path),
                    f"{path}.latency_ms",
                    minimum=0.0,
                ),
                transfer_usd_per_gb=v.number(
                    entry.get("transfer_usd_per_gb", 0.0),
                    f"{path}.transfer_usd_per_gb",
                    minimum=0.0,
                ),
            )
        )
    return tuple(result)


def _demand(v: Validator, top: dict, nodes: dict, workloads: dict) -> tuple:
    raw = v.sequence(top.get("demand") or [], "demand")
    result, seen = [], set()
    for i, entry in enumerate(raw):
        path = f"demand[{i}]"
        entry = v.mapping(entry, path)
        v.no_unknown(entry, {"node", "workload", "tokens_per_s", "bids"}, path)
        node = v.reference(v.required(entry, "node", path), f"{path}.node", nodes)
        wid = v.reference(
            v.required(entry, "workload", path), f"{path}.workload", workloads
        )
        v.check(
            (node, wid) not in seen,
            path,
            f"duplicate demand for workload {wid!r} at node {node!r}",
        )
        seen.add((node, wid))
        bids = _bids(v, entry.get("bids"), f"{path}.bids")
        hard = entry.get("tokens_per_s", 0.0 if bids else None)
        if hard is None:
            v.required(entry, "tokens_per_s", path)
        result.append(
            Demand(
                node=node,
                workload=wid,
                tokens_per_s=v.number(hard, f"{path}.tokens_per_s", minimum=0.0),
                bids=bids,
            )
        )
    return tuple(result)


def _bids(v: Validator, raw: Any, path: str) -> tuple[BidBlock, ...]:
    if raw is None:
        return ()
    blocks = []
    for i, entry in enumerate(v.sequence(raw, path)):
        bpath = f"{path}[{i}]"
        entry = v.mapping(entry, bpath)
        v.no_unknown(entry, {"tokens_per_s", "value_usd_per_mtok"}, bpath)
        blocks.append(
            BidBlock(
                tokens_per_s=v.number(
                    v.required(entry, "tokens_per_s", bpath),
                    f"{bpath}.tokens_per_s",
                    minimum=0.0,
                ),
                value_usd_per_mtok=v.number(
                    v.required(entry, "value_usd_per_mtok", bpath),
                    f"{bpath}.value_usd_per_mtok",
                ),
            )
        )
    return tuple(blocks)
