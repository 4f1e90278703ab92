"""The scenario's entities as frozen dataclasses, with units in field names."""

from __future__ import annotations

from dataclasses import dataclass, field

BANDWIDTH_MODELS = ("transfer", "token")
DEMAND_PROFILES = ("diurnal", "flat")
DEFAULT_MAX_ROUTES = 4


@dataclass(frozen=True)
class Node:
    """A metro region: it can consume workloads, host compute, or both."""

    id: str
    name: str
    lat: float
    lon: float
    utc_offset_h: float


@dataclass(frozen=True)
class AssetType:
    """A class of accelerator and its serving throughput per workload."""

    id: str
    tokens_per_s_per_gpu: dict[str, float]
    power_kw_per_gpu: float | None = None


@dataclass(frozen=True)
class OfferBlock:
    """One price-quantity step of a capacity offer."""

    gpus: float
    price_usd_per_gpu_hour: float


@dataclass(frozen=True)
class Asset:
    """A pool of accelerators of one type at one node, owned by a provider."""

    id: str
    node: str
    type: str
    gpus: float
    cost_usd_per_gpu_hour: float
    owner: str
    offers: tuple[OfferBlock, ...] = ()

    def cost_offer(self) -> tuple[OfferBlock, ...]:
        """The truthful offer: every GPU at true cost."""
        return (OfferBlock(self.gpus, self.cost_usd_per_gpu_hour),)

    def stated_offers(self) -> tuple[OfferBlock, ...]:
        """The offer written in the scenario, or else all GPUs at true cost."""
        return self.offers or self.cost_offer()


@dataclass(frozen=True)
class Link:
    """An undirected backbone link; both directions share its capacity."""

    id: str
    a: str
    b: str
    capacity_gbps: float
    latency_ms: float
    transfer_usd_per_gb: float = 0.0


@dataclass(frozen=True)
class Workload:
    """A class of AI service."""

    id: str
    latency_limit_ms: float
    bits_per_token: float
    profile: str = "diurnal"


@dataclass(frozen=True)
class BidBlock:
    """An elastic demand block: accepted when its value covers its cost."""

    tokens_per_s: float
    value_usd_per_mtok: float


@dataclass(frozen=True)
class Demand:
    """A region's need for a workload: a hard part and optional bid blocks."""

    node: str
    workload: str
    tokens_per_s: float
    bids: tuple[BidBlock, ...] = ()


@dataclass(frozen=True)
class ElectricityPrice:
    """A node's hourly electricity price: an annual mean shaped by day and season.

    The daily shape is a cosine peaking at ``daily_peak_hour_local`` with a
    relative swing, less an optional midday solar dip (a bell three hours wide
    around 13:00 local); the shape is scaled so that its daily mean is one.
    The season is a cosine over the year peaking on ``seasonal_peak_day``.
    """

    mean_usd_per_kwh: float
    daily_swing: float = 0.0
    daily_peak_hour_local: float = 18.0
    solar_dip: float = 0.0
    seasonal_swing: float = 0.0
    seasonal_peak_day: float = 200.0


@dataclass(frozen=True)
class WillingnessBlock:
    """A share of a demand entry bid at one value (its willingness to pay)."""

    share: float
    value_usd_per_mtok: float


@dataclass(frozen=True)
class ConsumerBehaviour:
    """How consumer agents turn the scenario's demand into hourly bids.

    Empty mappings mean: no weekend change, hard demand, nothing deferrable.
    """

    weekend_factor: dict[str, float] = field(default_factory=dict)
    growth_per_year: float = 0.0
    willingness_to_pay: dict[str, tuple[WillingnessBlock, ...]] = field(
        default_factory=dict
    )
    deferrable_window_h: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Scenario:
    """A validated market: topology, assets, workloads and demand."""

    name: str
    bandwidth_model: str
    token_equivalent_bits: float
    nodes: dict[str, Node]
    asset_types: dict[str, AssetType]
    assets: tuple[Asset, ...]
    links: tuple[Link, ...]
    workloads: dict[str, Workload]
    demand: tuple[Demand, ...]
    max_routes: int = DEFAULT_MAX_ROUTES
    shed_penalty_usd_per_mtok: float | None = None
    provider_strategies: dict[str, str] = field(default_factory=dict)
    electricity: dict[str, ElectricityPrice] = field(default_factory=dict)
    consumers: ConsumerBehaviour = field(default_factory=ConsumerBehaviour)
    zones: dict[str, str] = field(default_factory=dict)
    source: str = "<dict>"
    extra: dict = field(default_factory=dict, compare=False)

    def link_bits_per_token(self, workload: str) -> float:
        """Bits one token of a workload occupies on a link (bits[k] of the LP)."""
        if self.bandwidth_model == "token":
            return self.token_equivalent_bits
        return self.workloads[workload].bits_per_token

    def throughput(self, asset: Asset, workload: str) -> float:
        """Tokens per second one GPU of the asset serves for a workload."""
        return self.asset_types[asset.type].tokens_per_s_per_gpu[workload]
