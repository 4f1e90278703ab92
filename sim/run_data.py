"""Reading a run folder: summary.json and the Parquet tables of the run.

Required tables and columns missing, or a file that cannot be read, raise
``ReportError`` naming the file; the optional nodes table, when missing or
without coordinates, is read as None with a logged note.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from pyarrow import ArrowException

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = {
    "steps": ("step", "status"),
    "prices": ("step", "workload", "node", "lmp_usd_per_mtok", "served_tokens_per_s"),
    "links": ("step", "link", "a", "b", "utilisation", "saturated"),
    "providers": ("step", "provider", "revenue_usd", "cost_usd", "profit_usd"),
}
OPTIONAL_COLUMNS = {"nodes": ("node", "lat", "lon")}


class ReportError(ValueError):
    """A run folder, or a file in it, that cannot be reported on."""

    def __init__(self, path: str | Path, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class RunData:
    """The tables and summary of one run folder."""

    run_dir: Path
    summary: dict
    steps: pd.DataFrame
    prices: pd.DataFrame
    links: pd.DataFrame
    providers: pd.DataFrame
    nodes: pd.DataFrame | None


def read_run(run_dir: str | Path) -> RunData:
    """Read a run folder; ReportError names the first file that cannot be used."""
    folder = Path(run_dir)
    if not folder.exists():
        raise ReportError(folder, "run folder does not exist")
    if not folder.is_dir():
        raise ReportError(folder, "is not a folder; name a run folder")
    summary = _read_summary(folder / "summary.json")
    tables = {
        name: _read_table(folder, name, columns, required=True)
        for name, columns in REQUIRED_COLUMNS.items()
    }
    for name in ("steps", "prices"):
        if tables[name].empty:
            raise ReportError(folder / f"{name}.parquet", "has no rows")
    tables.update(
        (name, _read_table(folder, name, columns, required=False))
        for name, columns in OPTIONAL_COLUMNS.items()
    )
    tables["providers"] = _with_time(tables["providers"], tables["steps"])
    return RunData(run_dir=folder, summary=summary, **tables)


def _read_summary(path: Path) -> dict:
    if not path.is_file():
        raise ReportError(path, "is missing; is this a tokenflow run folder?")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ReportError(path, f"cannot be read as JSON: {err}") from None
    if not isinstance(summary, dict):
        raise ReportError(path, "must hold one JSON object")
    return summary


def _read_table(
    folder: Path, name: str, columns: tuple[str, ...], required: bool
) -> pd.DataFrame | None:
    path = folder / f"{name}.parquet"
    if not path.is_file():
        if required:
            raise ReportError(path, "is missing; the report needs this table")
        logger.info("report: %s is missing; what needs it is left out", path)
        return None
    try:
        frame = pd.read_parquet(path)
    except (OSError, ValueError, ArrowException) as err:
        raise ReportError(path, f"cannot be read as Parquet: {err}") from None
    missing = [c for c in columns if c not in frame.columns]
    if missing and required:
        raise ReportError(path, f"lacks the column(s) {', '.join(missing)}")
    if missing:
        logger.info("report: %s lacks %s; left out", path, ", ".join(missing))
        return None
    return frame


def _with_time(frame: pd.DataFrame, steps: pd.DataFrame) -> pd.DataFrame:
    """Add the steps' time_utc to a table that has only step numbers."""
    if "time_utc" in frame.columns or "time_utc" not in steps.columns:
        return frame
    times = steps.drop_duplicates("step").set_index("step")["time_utc"]
    return frame.assign(time_utc=frame["step"].map(times))
