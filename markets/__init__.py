"""The token-flow market clearing (OR-Tools GLOP) and its prices."""

from markets.clearing import Clearing, clear
from markets.lp import ClearingError
from markets.result import ClearingResult, Settlement

__all__ = ["Clearing", "ClearingError", "ClearingResult", "Settlement", "clear"]
