"""Unit conversions between scenario units and the LP's internal units.

Inside the LP: flows in Mtok/s (million tokens per second), compute in GPUs,
bandwidth in Gbps, the objective in USD per hour. Every conversion the
clearing needs is a named constant here, so that no factor is written twice.
"""

TOKENS_PER_MTOK = 1e6
SECONDS_PER_HOUR = 3600.0
BITS_PER_GBIT = 1e9
BITS_PER_GB = 8e9

# A flow of 1 Mtok/s for one hour is 3600 Mtok, so a price in USD/Mtok times a
# flow in Mtok/s gives USD/h after multiplying by this.
MTOK_PER_MTOK_S_HOUR = SECONDS_PER_HOUR


def tokens_to_mtok_s(tokens_per_s: float) -> float:
    """Tokens per second to the LP's Mtok/s."""
    return tokens_per_s / TOKENS_PER_MTOK


def mtok_s_to_tokens(mtok_per_s: float) -> float:
    """The LP's Mtok/s back to tokens per second."""
    return mtok_per_s * TOKENS_PER_MTOK


def usd_per_mtok_to_lp(usd_per_mtok: float) -> float:
    """A price per million tokens to an LP cost in USD/h per Mtok/s."""
    return usd_per_mtok * MTOK_PER_MTOK_S_HOUR


def lp_to_usd_per_mtok(usd_per_h_per_mtok_s: float) -> float:
    """An LP marginal cost in USD/h per Mtok/s to USD per million tokens."""
    return usd_per_h_per_mtok_s / MTOK_PER_MTOK_S_HOUR


def gpus_per_mtok_s(tokens_per_s_per_gpu: float) -> float:
    """GPUs needed to serve 1 Mtok/s at a throughput in tokens/s per GPU."""
    return TOKENS_PER_MTOK / tokens_per_s_per_gpu


def gbps_per_mtok_s(bits_per_token: float) -> float:
    """Link bandwidth in Gbps used by 1 Mtok/s of a payload in bits per token."""
    return bits_per_token * TOKENS_PER_MTOK / BITS_PER_GBIT


def gb_per_hour_per_mtok_s(bits_per_token: float) -> float:
    """Gigabytes moved per hour by 1 Mtok/s of a payload in bits per token."""
    return bits_per_token * TOKENS_PER_MTOK * SECONDS_PER_HOUR / BITS_PER_GB


def usd_per_h(tokens_per_s_times_usd_per_mtok: float) -> float:
    """Tokens/s served at a price in USD per million tokens, in USD per hour."""
    return tokens_per_s_times_usd_per_mtok * SECONDS_PER_HOUR / TOKENS_PER_MTOK
