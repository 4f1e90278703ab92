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
import re
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
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
# More processes than this per core only add memory: each holds its solvers.
MAX_WORKERS_PER_CORE = 4
_ADDRESS = re.compile(r"^(tcp|tls)://[^\s:/]+:\d{1,5}$")
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


class SchedulerError(ValueError):
    """A --scheduler that cannot be used."""


@dataclass
class SweepCounts:
    runs_total: int
    runs_done: int = 0
    runs_skipped: int = 0
    runs_failed: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def prepare_out(out: Path, sweep: Sweep) -> None:
    """Create the dataset folder, or check an existing one holds this sweep.

    A sweep of the same name may have changed (a seed added, hours changed):
    its manifest is replaced, and finished runs that are no longer part of it
    stay on disk but are left out of results and reports. A damaged run file
    is moved to ``damaged/`` so that the run is done again.
    """
    try:
        _prepare_out(out, sweep)
    except OSError as err:
        raise SweepOutputError(out, f"cannot be used: {err}") from None


def _prepare_out(out: Path, sweep: Sweep) -> None:
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
    for folder in ("runs", "failed"):
        if (out / folder).exists() and not (out / folder).is_dir():
            raise SweepOutputError(out, f"holds a file named {folder}; not a sweep")
    (out / "runs").mkdir(parents=True, exist_ok=True)
    (out / "failed").mkdir(exist_ok=True)
    for stale in (out / "runs").glob(".*.tmp"):
        stale.unlink()
    runs = [
        {"run_id": r.run_id, "seed": r.seed, "params": r.params} for r in sweep.runs()
    ]
    ids = {r["run_id"] for r in runs}
    _set_aside_damaged(out, ids)
    others = [p for p in (out / "runs").glob("*.parquet") if p.stem not in ids]
    if others:
        logger.warning(
            "%s: %d finished runs are not part of this sweep (it changed); they "
            "stay in runs/ but are left out of results and reports",
            out,
            len(others),
        )
    body = {"name": sweep.name, "source": sweep.source, "runs": runs}
    _write_atomic(manifest, json.dumps(body, indent=1).encode())


def _set_aside_damaged(out: Path, ids: set[str]) -> None:
    """Move unreadable run files to damaged/ so that their runs are redone."""
    for path in (out / "runs").glob("*.parquet"):
        if path.stem not in ids:
            continue
        try:
            metadata = pq.read_metadata(path)
            ok = metadata.num_rows == 1
        except (OSError, pa.ArrowException):
            ok = False
        if not ok:
            (out / "damaged").mkdir(exist_ok=True)
            os.replace(path, out / "damaged" / path.name)
            logger.warning("%s is damaged; moved to damaged/ and run again", path)


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
    in_process: bool = True,
) -> SweepCounts:
    """Run every unfinished run of the sweep and write each as it finishes.

    ``monitor``, if given, is called with the counts after every run;
    ``in_process`` False runs even a single worker in its own process.
    """
    out = Path(out)
    check_scheduler(scheduler)
    client = None if scheduler in (None, "local") else _connect(scheduler)
    try:
        return _run(
            sweep, out, workers, scheduler, client, progress, monitor, in_process
        )
    finally:
        if client is not None:
            client.close()


def _run(sweep, out, workers, scheduler, client, progress, monitor, in_process):
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
    cores = os.cpu_count() or 1
    workers = min(workers or cores, len(todo), MAX_WORKERS_PER_CORE * cores)
    bar = tqdm(total=len(todo), unit="run", desc=sweep.name, disable=not progress)

    def tick() -> None:
        bar.update(1)
        if monitor is not None:
            monitor(counts)

    try:
        if scheduler is None:
            _run_local(todo, out, workers, counts, tick, in_process)
        else:
            _run_dask(todo, out, workers, client, counts, tick)
    finally:
        bar.close()
    return counts


def check_scheduler(scheduler: str | None) -> None:
    """``local``, a Dask address such as tcp://HOST:8786, or None."""
    if scheduler is None or scheduler == "local" or _ADDRESS.match(scheduler):
        return
    raise SchedulerError(
        f"--scheduler {scheduler!r}: must be 'local' or a Dask address such as "
        "tcp://HOST:8786"
    )


def _dask():
    """The distributed package, its cluster start/stop logs kept for -v."""
    try:
        import distributed
    except ImportError:
        raise SchedulerError(
            "--scheduler needs Dask: pip install 'tokenflow[dask]'"
        ) from None
    if not logging.getLogger().isEnabledFor(logging.INFO):
        logging.getLogger("distributed").setLevel(logging.WARNING)
    return distributed


def _connect(scheduler: str):
    """A client of a running Dask scheduler, before anything is written."""
    try:
        return _dask().Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as err:
        raise SchedulerError(
            f"--scheduler {scheduler}: no Dask scheduler answers there ({err})"
        ) from None


def _record(out: Path, spec: RunSpec, outcome, counts: SweepCounts, tick) -> None:
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
    tick()


def _run_local(
    todo: list[RunSpec], out, workers: int, counts, tick, in_process: bool = True
) -> None:
    if workers == 1 and in_process:
        for spec in todo:
            _record(out, spec, _attempt(spec.to_dict()), counts, tick)
        return
    queue = list(reversed(todo))
    while queue:
        queue = _pool_pass(queue, out, workers, counts, tick)


def _pool_pass(queue: list[RunSpec], out, workers: int, counts, tick) -> list:
    """Run the queue on one process pool; if a worker process dies, record its
    runs as failed and return what was not started, for a fresh pool."""
    context = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_watch_parent,
        initargs=(os.getpid(),),
    )
    running = {}
    try:
        while queue or running:
            while queue and len(running) < workers * IN_FLIGHT_PER_WORKER:
                spec = queue.pop()
                running[pool.submit(_attempt, spec.to_dict())] = spec
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                spec = running.pop(future)
                try:
                    outcome = future.result()
                except BrokenProcessPool:
                    logger.warning("a worker process died; restarting the pool")
                    lost = [spec, *running.values()]
                    for run in lost:
                        error = "the worker process running it died"
                        _record(out, run, ("error", {"error": error}), counts, tick)
                    return queue
                _record(out, spec, outcome, counts, tick)
    except BaseException:
        for future in running:
            future.cancel()
        raise
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return queue


def _watch_parent(parent: int) -> None:
    """In a worker: exit as soon as the sweep process is gone (even if it was
    killed), so that no worker outlives it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def _run_dask(todo: list[RunSpec], out, workers: int, client, counts, tick):
    """Run on the connected client's cluster, or on a local one if None."""
    distributed = _dask()
    cluster = None
    if client is None:
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            host="127.0.0.1",
        )
        client = distributed.Client(cluster)
    as_completed = distributed.as_completed
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
            _record(out, spec, future.result(), counts, tick)
            future.release()
            if queue:
                spec = queue.pop()
                nxt = client.submit(_attempt, spec.to_dict(), pure=False)
                specs[nxt.key] = spec
                running.add(nxt)
    finally:
        # A client given by the caller is closed by the caller.
        if cluster is not None:
            client.close()
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


def manifest_ids(out: str | Path) -> list[str] | None:
    """Run ids of the sweep in the folder, in file order (None if unreadable)."""
    try:
        body = json.loads((Path(out) / "sweep.json").read_text(encoding="utf-8"))
        return [run["run_id"] for run in body["runs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_results(out: str | Path) -> pd.DataFrame:
    """The finished runs of the folder's sweep, one row per run, by run id.

    Runs of an earlier version of the sweep that are no longer part of it are
    left out.
    """
    runs = Path(out) / "runs"
    ids = manifest_ids(out)
    keep = None if ids is None else set(ids)
    files = sorted(p for p in runs.glob("*.parquet") if keep is None or p.stem in keep)
    if not files:
        return pd.DataFrame({f.name: pd.Series(dtype=object) for f in ROW_SCHEMA})
    table = pa.concat_tables(pq.read_table(f, schema=ROW_SCHEMA) for f in files)
    return table.to_pandas().sort_values("run_id").reset_index(drop=True)


def read_failures(out: str | Path) -> list[dict]:
    """Errors of the sweep's runs that failed the last time they ran."""
    ids = manifest_ids(out)
    keep = None if ids is None else set(ids)
    failures = []
    for path in sorted((Path(out) / "failed").glob("*.json")):
        if keep is not None and path.stem not in keep:
            continue
        try:
            failures.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            logger.warning("%s cannot be read; left out", path)
    return failures


def timed_sweep(sweep: Sweep, out, workers: int, **kwargs) -> tuple[SweepCounts, float]:
    """Run a sweep and return its counts and wall time in seconds."""
    start = time.perf_counter()
    counts = run_sweep(sweep, out, workers=workers, **kwargs)
    return counts, time.perf_counter() - start
