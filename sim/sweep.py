"""Running a sweep: local processes or a Dask cluster, resumable on disk.

The results dataset is a folder:

    OUT/sweep.json            the sweep's name and every run's id and parameters
    OUT/runs/<run_id>.parquet one row per finished run (Parquet, one file per run)
    OUT/failed/<run_id>.json  the error of a run that failed

A finished run is written to a hidden temporary file and renamed into
``runs/`` in one step, so a run is either there whole or not at all. Running
the same sweep again skips every run whose file exists and redoes the rest
(failed runs included), so an interruption loses at most the runs in flight
and never duplicates a row. Only a bounded number of runs is in flight at a
time, so the sweep process's memory does not grow with the number of runs.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from sim.sweep_run import METRICS, execute
from sim.sweep_spec import PARAMETERS, RunSpec, Sweep

logger = logging.getLogger(__name__)

IN_FLIGHT_PER_WORKER = 2
ROW_SCHEMA = pa.schema(
    [("run_id", pa.string()), ("seed", pa.int64()), ("hours", pa.int64())]
    + [(f"param_{p}", pa.string()) for p in PARAMETERS]
    + [(m, pa.float64()) for m in METRICS]
    + [
        ("strategy_described", pa.string()),
        ("provider_profits_by_provider_usd", pa.string()),
        ("lerner_index_by_provider", pa.string()),
    ]
)


class SweepOutputError(ValueError):
    """An output folder that cannot hold this sweep."""

    def __init__(self, path: Path, reason: str):
        self.path = path
        super().__init__(f"{path}: --out {reason}")


@dataclass
class SweepCounts:
    runs_total: int
    runs_done: int = 0
    runs_skipped: int = 0
    runs_failed: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def prepare_out(out: Path, sweep: Sweep) -> None:
    """Create the dataset folder, or check an existing one holds this sweep."""
    manifest = out / "sweep.json"
    if out.exists() and not out.is_dir():
        raise SweepOutputError(out, "is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        if not manifest.is_file():
            raise SweepOutputError(
                out, "is not empty and holds no sweep.json; choose another folder"
            )
        try:
            name = json.loads(manifest.read_text(encoding="utf-8")).get("name")
        except (OSError, ValueError) as err:
            raise SweepOutputError(out, f"has an unreadable sweep.json: {err}") from err
        if name != sweep.name:
            raise SweepOutputError(
                out, f"holds sweep {name!r}, not {sweep.name!r}; choose another folder"
            )
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "failed").mkdir(exist_ok=True)
    for stale in (out / "runs").glob(".*.tmp"):
        stale.unlink()
    runs = [
        {"run_id": r.run_id, "seed": r.seed, "params": r.params} for r in sweep.runs()
    ]
    body = {"name": sweep.name, "source": sweep.source, "runs": runs}
    _write_atomic(manifest, json.dumps(body, indent=1).encode())


def finished_ids(out: Path) -> set[str]:
    return {p.stem for p in (out / "runs").glob("*.parquet")}


def run_sweep(
    sweep: Sweep,
    out: str | Path,
    *,
    workers: int | None = None,
    scheduler: str | None = None,
    progress: bool = True,
    monitor=None,
) -> SweepCounts:
    """Run every unfinished run of the sweep and write each as it finishes.

    ``monitor``, if given, is called with the counts after every run.
    """
    out = Path(out)
    prepare_out(out, sweep)
    specs = sweep.runs()
    done = finished_ids(out)
    todo = [s for s in specs if s.run_id not in done]
    counts = SweepCounts(len(specs), runs_skipped=len(specs) - len(todo))
    logger.info(
        "sweep %s: %d runs, %d finished before, %d to run",
        sweep.name,
        len(specs),
        counts.runs_skipped,
        len(todo),
    )
    if not todo:
        return counts
    workers = workers or os.cpu_count() or 1
    bar = tqdm(total=len(todo), unit="run", desc=sweep.name, disable=not progress)
    bar.monitor = monitor
    try:
        if scheduler is None:
            _run_local(todo, out, workers, counts, bar)
        else:
            _run_dask(todo, out, workers, scheduler, counts, bar)
    finally:
        bar.close()
    return counts


def _record(out: Path, spec: RunSpec, outcome, counts: SweepCounts, bar) -> None:
    """Write a finished run's row, or its error; never stop the sweep."""
    failed = out / "failed" / f"{spec.run_id}.json"
    status, payload = outcome
    if status == "error":
        counts.runs_failed += 1
        body = {"run_id": spec.run_id, "seed": spec.seed, "params": spec.params}
        body.update(payload)
        _write_atomic(failed, json.dumps(body, indent=1).encode())
        logger.warning("run %s failed: %s", spec.run_id, body["error"])
    else:
        table = pa.Table.from_pylist([payload], schema=ROW_SCHEMA)
        target = out / "runs" / f"{spec.run_id}.parquet"
        temporary = target.with_name(f".{spec.run_id}.tmp")
        pq.write_table(table, temporary)
        os.replace(temporary, target)
        failed.unlink(missing_ok=True)
        counts.runs_done += 1
    bar.update(1)
    if getattr(bar, "monitor", None) is not None:
        bar.monitor(counts)


def _run_local(todo: list[RunSpec], out, workers: int, counts, bar) -> None:
    if workers == 1:
        for spec in todo:
            _record(out, spec, _attempt(spec.to_dict()), counts, bar)
        return
    context = multiprocessing.get_context("spawn")
    queue = list(reversed(todo))
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        running = {}
        try:
            while queue or running:
                while queue and len(running) < workers * IN_FLIGHT_PER_WORKER:
                    spec = queue.pop()
                    running[pool.submit(_attempt, spec.to_dict())] = spec
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    _record(out, running.pop(future), future.result(), counts, bar)
        except BaseException:
            for future in running:
                future.cancel()
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _run_dask(todo: list[RunSpec], out, workers: int, scheduler: str, counts, bar):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError as err:
        raise SweepOutputError(
            out, "--scheduler needs Dask: pip install 'tokenflow[dask]'"
        ) from err
    if not logging.getLogger().isEnabledFor(logging.INFO):
        # Dask logs its cluster's start and stop at INFO; keep them for -v.
        logging.getLogger("distributed").setLevel(logging.WARNING)
    cluster = None
    if scheduler == "local":
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        queue = list(reversed(todo))
        running = as_completed()
        specs = {}
        limit = max(workers, len(client.scheduler_info()["workers"])) * 2
        while queue and running.count() < limit:
            spec = queue.pop()
            future = client.submit(_attempt, spec.to_dict(), pure=False)
            specs[future.key] = spec
            running.add(future)
        for future in running:
            spec = specs.pop(future.key)
            _record(out, spec, future.result(), counts, bar)
            future.release()
            if queue:
                spec = queue.pop()
                nxt = client.submit(_attempt, spec.to_dict(), pure=False)
                specs[nxt.key] = spec
                running.add(nxt)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _attempt(spec: dict) -> tuple[str, dict]:
    """Run one spec: ("ok", row) or ("error", its message and traceback).

    A failure is returned as plain text, not raised, so that it is recorded
    with its run, crosses process boundaries safely and the sweep goes on.
    """
    try:
        return "ok", execute(spec)
    except Exception as err:  # noqa: BLE001 - any failure of a run is recorded
        text = "".join(traceback.format_exception(err)).strip()
        return "error", {"error": f"{type(err).__name__}: {err}", "traceback": text}


def _write_atomic(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def read_results(out: str | Path) -> pd.DataFrame:
    """All finished runs of a sweep folder, one row per run, by run id."""
    runs = Path(out) / "runs"
    files = sorted(runs.glob("*.parquet"))
    if not files:
        return pd.DataFrame({f.name: pd.Series(dtype=object) for f in ROW_SCHEMA})
    table = pa.concat_tables(pq.read_table(f, schema=ROW_SCHEMA) for f in files)
    return table.to_pandas().sort_values("run_id").reset_index(drop=True)


def read_failures(out: str | Path) -> list[dict]:
    failed = Path(out) / "failed"
    return [
        json.loads(p.read_text(encoding="utf-8")) for p in sorted(failed.glob("*.json"))
    ]


def timed_sweep(sweep: Sweep, out, workers: int, **kwargs) -> tuple[SweepCounts, float]:
    """Run a sweep and return its counts and wall time in seconds."""
    start = time.perf_counter()
    counts = run_sweep(sweep, out, workers=workers, **kwargs)
    return counts, time.perf_counter() - start
