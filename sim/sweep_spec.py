"""Sweep files: a base scenario, the parameters to vary, seeds and hours.

```yaml
name: markup                    # required, text
scenario: us5                   # required: bundled name or a path (relative
                                #   to this file)
hours: 168                      # required, whole number >= 1
seeds: [1, 2, 3]                # required: explicit replications
start: 2026-01-05T00:00Z        # optional, like simulate --start
elastic: true                   # optional, default true
benchmark: true                 # optional, default true
grid:                           # optional: every combination of the values
  strategy: ["markup:markup=0", "markup:markup=0.2"]
runs:                           # optional: a list of parameter sets; each is
  - {design: nodal}             #   combined with every grid point
  - {design: zonal}
```

Parameters: ``strategy`` (all providers), ``provider_strategies`` (owner ->
strategy text), ``owners`` (deal the assets round robin to that many
providers p1..pN: ownership concentration), ``demand_scale``,
``link_capacity_scale``, ``bandwidth_model``, ``latency_limits`` (workload ->
ms), ``design``, ``settlement``, ``price_cap_usd_per_gpu_hour``.

Each run (a parameter set and a seed) has an id that hashes everything that
determines its result, including the scenario file's text, so that a changed
scenario or parameter is a new run and an unchanged one is never run twice.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from agents.strategies import StrategyError, parse_strategy
from markets.designs import DesignError, MarketDesign
from scenarios import ScenarioError, bundled_scenarios, load_scenario, with_overrides
from scenarios.schema import Scenario
from sim.model import MAX_HOURS, parse_start

PARAMETERS = (
    "strategy",
    "provider_strategies",
    "owners",
    "demand_scale",
    "link_capacity_scale",
    "bandwidth_model",
    "latency_limits",
    "design",
    "settlement",
    "price_cap_usd_per_gpu_hour",
)
_FIELDS = {
    "name",
    "description",
    "scenario",
    "hours",
    "seeds",
    "start",
    "elastic",
    "benchmark",
    "grid",
    "runs",
}


class SweepError(ValueError):
    """A sweep file that cannot be used, with the file, field and reason."""

    def __init__(self, source: str, field: str, reason: str):
        self.source, self.field, self.reason = source, field, reason
        super().__init__(f"{source}: {field}: {reason}")


@dataclass(frozen=True)
class RunSpec:
    """One run of a sweep, as plain data that can cross process boundaries."""

    run_id: str
    scenario: str
    scenario_sha: str
    hours: int
    seed: int
    start: str
    elastic: bool
    benchmark: bool
    params: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Sweep:
    name: str
    source: str
    scenario: str
    scenario_sha: str
    hours: int
    seeds: tuple[int, ...]
    start: str
    elastic: bool
    benchmark: bool
    points: tuple[dict, ...]

    def runs(self) -> list[RunSpec]:
        """Every (parameter set, seed), in file order."""
        specs = []
        for params, seed in itertools.product(self.points, self.seeds):
            body = {
                "scenario_sha": self.scenario_sha,
                "hours": self.hours,
                "seed": seed,
                "start": self.start,
                "elastic": self.elastic,
                "benchmark": self.benchmark,
                "params": params,
            }
            digest = hashlib.sha1(_canonical(body).encode()).hexdigest()[:16]
            specs.append(RunSpec(digest, self.scenario, **body))
        return specs

    @property
    def swept(self) -> list[str]:
        """Parameters that take more than one value across the points."""
        names = sorted({k for p in self.points for k in p}, key=PARAMETERS.index)
        return [
            k for k in names if len({_canonical(p.get(k)) for p in self.points}) > 1
        ]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file, checking every run can be built."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise SweepError(source, "file", "no such sweep file")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as err:
        raise SweepError(source, "file", f"cannot be read as YAML: {err}") from err
    return sweep_from_dict(data, source, base=path.parent)


def sweep_from_dict(data: Any, source: str = "<dict>", base: Path = Path()) -> Sweep:
    check = _Checker(source)
    top = check.mapping(data, "sweep")
    unknown = sorted(set(top) - _FIELDS)
    check.that(not unknown, unknown[0] if unknown else "", "unknown field")
    name = check.text(top.get("name"), "name")
    ref, text = _scenario_ref(check, top.get("scenario"), base)
    hours = check.whole(top.get("hours"), "hours")
    check.that(hours <= MAX_HOURS, "hours", f"must be at most {MAX_HOURS}")
    seeds = top.get("seeds")
    check.that(isinstance(seeds, list) and seeds, "seeds", "must be a non-empty list")
    seeds = tuple(check.whole(s, f"seeds[{i}]", minimum=0) for i, s in enumerate(seeds))
    check.that(max(seeds) < 2**32, "seeds", "each seed must be below 2**32")
    check.that(len(set(seeds)) == len(seeds), "seeds", "lists a seed twice")
    start = str(top.get("start", "2026-01-05T00:00Z"))
    try:
        parse_start(start)
    except (ValueError, TypeError):
        check.that(False, "start", f"not an ISO 8601 time: {start!r}")
    flags = {key: top.get(key, True) for key in ("elastic", "benchmark")}
    for key, value in flags.items():
        check.that(
            isinstance(value, bool), key, f"must be true or false, got {value!r}"
        )
    points = _points(check, top)
    sweep = Sweep(
        name=name,
        source=source,
        scenario=ref,
        scenario_sha=hashlib.sha1(text.encode()).hexdigest(),
        hours=hours,
        seeds=seeds,
        start=start,
        points=points,
        **flags,
    )
    scenario = _load(check, ref)
    for i, params in enumerate(points):
        try:
            build(scenario, params)
        except (ScenarioError, StrategyError, DesignError, ValueError) as err:
            check.that(False, f"run {i + 1} {_canonical(params)}", str(err))
    return sweep


def _scenario_ref(check, value, base: Path) -> tuple[str, str]:
    ref = check.text(value, "scenario")
    if ref in bundled_scenarios():
        text = (resources.files("scenarios.data") / f"{ref}.yaml").read_text("utf-8")
        return ref, text
    path = (base / ref).resolve()
    check.that(path.is_file(), "scenario", f"no such file or bundled scenario: {ref}")
    return str(path), path.read_text(encoding="utf-8")


def _load(check, ref: str) -> Scenario:
    try:
        return load_scenario(ref)
    except ScenarioError as err:
        check.that(False, "scenario", str(err))


def _points(check, top: dict) -> tuple[dict, ...]:
    grid = check.mapping(top.get("grid") or {}, "grid")
    for key, values in grid.items():
        check.that(key in PARAMETERS, f"grid.{key}", _unknown_parameter())
        check.that(
            isinstance(values, list) and values,
            f"grid.{key}",
            "must be a non-empty list of values",
        )
    runs = top.get("runs") or [{}]
    check.that(isinstance(runs, list), "runs", "must be a list of parameter sets")
    for i, run in enumerate(runs):
        check.mapping(run, f"runs[{i}]")
        for key in run:
            check.that(key in PARAMETERS, f"runs[{i}].{key}", _unknown_parameter())
    keys = list(grid)
    points = []
    for run in runs:
        for combo in itertools.product(*(grid[k] for k in keys)):
            point = {**run, **dict(zip(keys, combo, strict=True))}
            clash = set(run) & set(keys)
            check.that(not clash, "runs", f"sets {sorted(clash)} also in grid")
            points.append(_normal(check, point))
    seen = [_canonical(p) for p in points]
    check.that(len(set(seen)) == len(seen), "grid", "gives the same run twice")
    return tuple(points)


_NUMBERS = ("demand_scale", "link_capacity_scale", "price_cap_usd_per_gpu_hour")
_DEFAULTS = {"design": "nodal", "settlement": "pay-as-clear"}


def _normal(check, point: dict) -> dict:
    """One spelling per run: numbers as floats, defaults left out, types checked."""
    normal = {}
    for key, value in point.items():
        where = f"{key} {value!r}"
        if key in _NUMBERS:
            check.that(
                isinstance(value, int | float) and not isinstance(value, bool),
                where,
                "must be a number",
            )
            value = float(value)
        elif key == "owners":
            check.that(
                isinstance(value, int) and not isinstance(value, bool),
                where,
                "must be a whole number",
            )
        elif key in ("latency_limits", "provider_strategies"):
            check.that(isinstance(value, dict), where, "must be a mapping")
        elif value is not None:
            check.that(isinstance(value, str), where, "must be text")
        if _DEFAULTS.get(key) == value:
            continue
        normal[key] = value
    return normal


def _unknown_parameter() -> str:
    return f"unknown parameter (known: {', '.join(PARAMETERS)})"


def build(scenario: Scenario, params: dict) -> tuple[Scenario, dict]:
    """The run's scenario and TokenFlowModel options from its parameters."""
    overrides = {
        "demand_scale": params.get("demand_scale"),
        "bandwidth_model": params.get("bandwidth_model"),
        "latency_limits_ms": params.get("latency_limits"),
    }
    scenario = with_overrides(scenario, **overrides)
    if "link_capacity_scale" in params:
        scale = params["link_capacity_scale"]
        if not isinstance(scale, int | float) or not 0 <= scale < float("inf"):
            raise ValueError(f"link_capacity_scale: must be >= 0, got {scale!r}")
        scenario = dataclasses.replace(
            scenario,
            links=tuple(
                dataclasses.replace(x, capacity_gbps=x.capacity_gbps * scale)
                for x in scenario.links
            ),
        )
    if "owners" in params:
        scenario = _deal_owners(scenario, params["owners"])
    if "provider_strategies" in params:
        scenario = _provider_strategies(scenario, params["provider_strategies"])
    options = {}
    if "strategy" in params:
        options["strategy"] = parse_strategy(str(params["strategy"]))
    design = MarketDesign(
        params.get("design", "nodal"),
        params.get("settlement", "pay-as-clear"),
        params.get("price_cap_usd_per_gpu_hour"),
    )
    design.zones_of(scenario)
    options["design"] = design
    return scenario, options


def _deal_owners(scenario: Scenario, owners) -> Scenario:
    if isinstance(owners, bool) or not isinstance(owners, int) or owners < 1:
        raise ValueError(f"owners: must be a whole number >= 1, got {owners!r}")
    if owners > len(scenario.assets):
        raise ValueError(
            f"owners: {owners} is more than the {len(scenario.assets)} assets"
        )
    assets = tuple(
        dataclasses.replace(a, owner=f"p{i % owners + 1}")
        for i, a in enumerate(scenario.assets)
    )
    return dataclasses.replace(scenario, assets=assets, provider_strategies={})


def _provider_strategies(scenario: Scenario, strategies) -> Scenario:
    if not isinstance(strategies, dict):
        raise ValueError("provider_strategies: must map providers to strategies")
    owners = {a.owner for a in scenario.assets}
    for owner, text in strategies.items():
        if owner not in owners:
            raise ValueError(
                f"provider_strategies.{owner}: unknown provider "
                f"(providers: {', '.join(sorted(owners))})"
            )
        parse_strategy(str(text))
    merged = {
        **scenario.provider_strategies,
        **{k: str(v) for k, v in strategies.items()},
    }
    return dataclasses.replace(scenario, provider_strategies=merged)


class _Checker:
    def __init__(self, source: str):
        self.source = source

    def that(self, ok: bool, field: str, reason: str) -> None:
        if not ok:
            raise SweepError(self.source, field or "sweep", reason)

    def mapping(self, value, field: str) -> dict:
        self.that(isinstance(value, dict), field, "must be a mapping")
        return value

    def text(self, value, field: str) -> str:
        self.that(isinstance(value, str) and bool(value.strip()), field, "must be text")
        return value

    def whole(self, value, field: str, minimum: int = 1) -> int:
        self.that(
            isinstance(value, int) and not isinstance(value, bool) and value >= minimum,
            field,
            f"must be a whole number >= {minimum}, got {value!r}",
        )
        return value
