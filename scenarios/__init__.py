"""Scenario files: the market's topology, assets, workloads and demand."""

from scenarios.loader import (
    ScenarioError,
    bundled_scenarios,
    load_scenario,
    scenario_from_dict,
    with_overrides,
)
from scenarios.schema import (
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

__all__ = [
    "Asset",
    "AssetType",
    "BidBlock",
    "Demand",
    "Link",
    "Node",
    "OfferBlock",
    "Scenario",
    "ScenarioError",
    "Workload",
    "bundled_scenarios",
    "load_scenario",
    "scenario_from_dict",
    "with_overrides",
]
