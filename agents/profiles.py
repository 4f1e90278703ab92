"""Hourly demand profiles in local time.

`diurnal` follows human activity: a cosine over the day with its peak at
15:00 local time and its trough at 03:00, swinging 45% either side of the
daily mean. This is a modelling assumption, not fitted data: interactive
internet traffic is commonly reported to be two to three times higher in the
afternoon and evening than before dawn (peak-to-trough 1.45 / 0.55 = 2.6).
`flat` suits batch work that runs whenever it is submitted.
"""

from __future__ import annotations

import math

PEAK_HOUR_LOCAL = 15.0
DIURNAL_SWING = 0.45


def local_hour(hour_utc: float, utc_offset_h: float) -> float:
    """Hour of the local day, in [0, 24)."""
    return (hour_utc + utc_offset_h) % 24.0


def multiplier(profile: str, hour_local: float) -> float:
    """Demand relative to the daily mean at a local hour."""
    if profile == "flat":
        return 1.0
    if profile == "diurnal":
        phase = 2.0 * math.pi * (hour_local - PEAK_HOUR_LOCAL) / 24.0
        return 1.0 + DIURNAL_SWING * math.cos(phase)
    raise ValueError(f"unknown demand profile {profile!r} (known: diurnal, flat)")
