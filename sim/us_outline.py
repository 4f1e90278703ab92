"""A coarse outline of the contiguous United States for map figures.

The vertices are approximate (longitude, latitude) points in degrees, read
from well-known border and coastline points: capes, river mouths, border
towns, the 49th and 45th parallels and the straight sections of the border
with Mexico. They are accurate to a few tenths of a degree, which is enough
to place data centres on a backdrop; the outline is not a survey. Lakes,
bays and islands are smoothed over, and the border with Canada runs through
the middle of the Great Lakes.

The ring runs clockwise from Cape Flattery: east along the border with
Canada, south along the Atlantic coast, west along the Gulf coast and the
border with Mexico, and north along the Pacific coast.
"""

from __future__ import annotations

CANADA_BORDER = (
    (-124.73, 48.38),  # Cape Flattery
    (-123.25, 48.25),  # Strait of Juan de Fuca
    (-123.15, 48.75),  # Haro Strait
    (-122.76, 49.00),  # 49th parallel reaches the mainland
    (-95.15, 49.00),  # Lake of the Woods
    (-95.15, 49.38),  # Northwest Angle
    (-94.80, 49.30),
    (-94.60, 48.72),  # Rainy River
    (-93.40, 48.60),  # International Falls
    (-91.00, 48.20),  # Boundary Waters
    (-89.58, 48.00),  # Pigeon River
    (-88.37, 48.30),  # Lake Superior, north of Isle Royale
    (-84.80, 46.90),
    (-84.35, 46.50),  # Sault Ste. Marie
    (-83.50, 45.95),  # Lake Huron
    (-82.50, 45.30),
    (-82.42, 43.00),  # Port Huron
    (-83.10, 42.05),  # Detroit River mouth
    (-82.70, 41.68),  # Lake Erie
    (-81.00, 42.25),
    (-79.00, 42.85),  # Buffalo
    (-79.05, 43.25),  # Niagara River mouth
    (-77.50, 43.62),  # Lake Ontario
    (-76.40, 44.10),
    (-74.75, 45.00),  # 45th parallel
    (-71.50, 45.01),
    (-71.08, 45.30),
    (-70.25, 46.10),
    (-70.05, 46.70),
    (-69.23, 47.46),  # northern tip of Maine
    (-68.33, 47.36),  # St. John River
    (-67.79, 47.07),
    (-67.78, 45.95),
    (-67.15, 45.16),
    (-66.98, 44.82),  # Passamaquoddy Bay
)

ATLANTIC_COAST = (
    (-68.20, 44.30),  # Mount Desert Island
    (-70.25, 43.60),  # Portland
    (-70.70, 43.08),  # Portsmouth
    (-70.60, 42.65),  # Cape Ann
    (-70.95, 42.35),  # Boston
    (-70.05, 42.05),  # Provincetown
    (-69.95, 41.67),  # Chatham
    (-71.40, 41.45),  # Point Judith
    (-72.10, 41.30),  # New London
    (-71.86, 41.07),  # Montauk Point
    (-73.95, 40.58),  # New York Harbor
    (-74.00, 40.45),  # Sandy Hook
    (-74.42, 39.36),  # Atlantic City
    (-74.96, 38.93),  # Cape May
    (-75.09, 38.78),  # Cape Henlopen
    (-75.05, 38.45),  # Ocean City
    (-75.97, 37.12),  # Cape Charles
    (-76.00, 36.93),  # Cape Henry
    (-75.55, 35.80),  # Outer Banks
    (-75.53, 35.23),  # Cape Hatteras
    (-76.53, 34.58),  # Cape Lookout
    (-77.96, 33.84),  # Cape Fear
    (-79.93, 32.70),  # Charleston
    (-80.85, 32.00),  # Savannah
    (-81.40, 30.40),  # Jacksonville
    (-80.60, 28.45),  # Cape Canaveral
    (-80.05, 26.70),  # West Palm Beach
    (-80.12, 25.77),  # Miami
    (-81.09, 25.12),  # Cape Sable
)

GULF_COAST = (
    (-82.00, 26.45),  # Fort Myers
    (-82.75, 27.60),  # Tampa Bay
    (-83.03, 29.14),  # Cedar Key
    (-84.30, 30.05),  # Apalachee Bay
    (-85.35, 29.68),  # Cape San Blas
    (-87.20, 30.33),  # Pensacola
    (-88.05, 30.23),  # Mobile Bay
    (-89.60, 30.20),  # Pearl River
    (-89.25, 29.00),  # Mississippi delta
    (-90.00, 29.20),  # Grand Isle
    (-92.30, 29.55),
    (-93.85, 29.70),  # Sabine Pass
    (-94.75, 29.35),  # Galveston
    (-96.40, 28.40),  # Matagorda Bay
    (-97.35, 27.00),  # Padre Island
    (-97.15, 25.96),  # mouth of the Rio Grande
)

MEXICO_BORDER = (
    (-97.50, 25.88),  # Brownsville
    (-98.30, 26.10),  # McAllen
    (-99.50, 27.50),  # Laredo
    (-100.50, 28.70),  # Eagle Pass
    (-100.90, 29.35),  # Del Rio
    (-102.35, 29.85),
    (-103.15, 28.97),  # Big Bend
    (-104.40, 29.57),  # Presidio
    (-105.00, 30.65),
    (-106.53, 31.78),  # El Paso
    (-108.21, 31.78),  # New Mexico bootheel
    (-108.21, 31.33),
    (-111.07, 31.33),  # Nogales
    (-114.81, 32.49),  # Colorado River
    (-114.72, 32.72),  # Yuma
    (-117.12, 32.53),  # Tijuana
)

PACIFIC_COAST = (
    (-117.24, 32.67),  # Point Loma
    (-117.70, 33.46),  # Dana Point
    (-118.41, 33.74),  # Palos Verdes
    (-118.50, 34.00),  # Santa Monica
    (-119.70, 34.40),  # Santa Barbara
    (-120.47, 34.45),  # Point Conception
    (-120.90, 35.40),  # Morro Bay
    (-121.90, 36.30),  # Big Sur
    (-121.95, 36.60),  # Monterey
    (-122.03, 36.96),  # Santa Cruz
    (-122.50, 37.78),  # San Francisco
    (-123.02, 38.00),  # Point Reyes
    (-123.71, 38.95),  # Point Arena
    (-124.40, 40.44),  # Cape Mendocino
    (-124.20, 41.75),  # Crescent City
    (-124.55, 42.84),  # Cape Blanco
    (-124.10, 44.60),  # Newport
    (-123.95, 45.50),  # Tillamook
    (-124.05, 46.25),  # mouth of the Columbia
    (-124.65, 47.90),
)

OUTLINE_LON_LAT = (
    CANADA_BORDER + ATLANTIC_COAST + GULF_COAST + MEXICO_BORDER + PACIFIC_COAST
)
"""The closed ring of (longitude, latitude) vertices in degrees; the last
vertex connects back to the first."""


def outline_lon_lat() -> tuple[list[float], list[float]]:
    """Longitudes and latitudes of the ring, closed (first vertex repeated)."""
    ring = OUTLINE_LON_LAT + OUTLINE_LON_LAT[:1]
    return [lon for lon, _ in ring], [lat for _, lat in ring]


def bounds_lon_lat() -> tuple[float, float, float, float]:
    """(west, south, east, north) of the outline in degrees."""
    lons = [lon for lon, _ in OUTLINE_LON_LAT]
    lats = [lat for _, lat in OUTLINE_LON_LAT]
    return min(lons), min(lats), max(lons), max(lats)
