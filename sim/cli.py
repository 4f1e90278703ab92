"""The ``tokenflow`` command: clear a scenario, simulate it, benchmark it."""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys

import pandas as pd

from markets import ClearingError, ClearingResult, clear
from scenarios import ScenarioError, load_scenario, with_overrides
from sim.output import OutputError, check_out_dir, json_safe

logger = logging.getLogger(__name__)


class UsageError(ValueError):
    """A command-line value that cannot be used."""


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.handler(args)
    except (ScenarioError, OutputError, UsageError) as err:
        print(f"tokenflow: error: {err}", file=sys.stderr)
        return 2
    except ClearingError as err:
        print(f"tokenflow: solver error: {err}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        print("tokenflow: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `head`) went away; stop quietly like other tools.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tokenflow",
        description="Clear and simulate a network-constrained market for "
        "generative-AI workloads.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("clear", help="clear one hour of a scenario and show prices")
    _scenario_args(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(handler=_cmd_clear)

    p = sub.add_parser("simulate", help="run the agent simulation hour by hour")
    _scenario_args(p)
    p.add_argument("--hours", type=int, default=24, help="steps of one hour")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--out", required=True, help="folder for the run's tables")
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an existing --out folder that holds a previous run",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=_cmd_simulate)

    p = sub.add_parser("experiment", help="run one of the source study's experiments")
    exp = p.add_subparsers(required=True, metavar="EXPERIMENT")
    e = exp.add_parser("transfer-vs-token", help="both bandwidth models side by side")
    _scenario_args(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    _out_args(e)
    e.set_defaults(handler=_cmd_transfer_vs_token)
    e = exp.add_parser("latency-sweep", help="tighten one workload's latency limit")
    _scenario_args(e)
    e.add_argument("--workload", required=True, help="the workload whose limit moves")
    e.add_argument(
        "--limits", default="100,75,50,30,20,15", help="comma-separated limits in ms"
    )
    e.add_argument("--json", action="store_true", help="print one JSON object")
    _out_args(e)
    e.set_defaults(handler=_cmd_latency_sweep)

    e = exp.add_parser("scale-up", help="scale all demand to beyond capacity")
    _scenario_args(e)
    e.add_argument("--from", dest="start", type=float, default=0.1)
    e.add_argument("--to", dest="stop", type=float, default=1.3)
    e.add_argument("--points", type=int, default=25)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    _out_args(e)
    e.set_defaults(handler=_cmd_scale_up)
    e = exp.add_parser("all", help="all three experiments and report.md")
    e.add_argument("--out", required=True, help="folder for JSON, figures, report")
    e.add_argument("--overwrite", action="store_true", help="replace those files")
    e.set_defaults(handler=_cmd_all)

    p = sub.add_parser("bench", help="time clearings and simulated hours")
    p.add_argument("scenario", nargs="?", default="us5")
    p.add_argument("--repeats", type=int, default=200, help="clearings per variant")
    p.add_argument("--hours", type=int, default=168, help="simulated hours to time")
    p.set_defaults(handler=_cmd_bench)
    return parser


def _out_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", help="also write JSON and figures into this folder")
    p.add_argument("--overwrite", action="store_true", help="replace those files")


def _scenario_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="bundled scenario name (us5) or a YAML path")
    p.add_argument("--bandwidth-model", choices=("transfer", "token"))
    p.add_argument(
        "--latency-limit",
        action="append",
        default=[],
        metavar="WORKLOAD=MS",
        help="override a workload's latency limit (repeatable)",
    )
    p.add_argument("--demand-scale", type=float, help="multiply every demand")


def _load(args):
    limits = {}
    for item in args.latency_limit:
        name, sep, value = item.partition("=")
        try:
            limits[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise UsageError(f"--latency-limit: expected WORKLOAD=MS, got {item!r}")
    scenario = load_scenario(args.scenario)
    return with_overrides(
        scenario,
        bandwidth_model=args.bandwidth_model,
        latency_limits_ms=limits,
        demand_scale=args.demand_scale,
    )


def _cmd_clear(args) -> int:
    result = clear(_load(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        print(format_result(result))
    return 0


def _cmd_simulate(args) -> int:
    from sim.output import save_run
    from sim.run import simulate

    if args.hours < 1:
        raise UsageError(f"--hours must be >= 1, got {args.hours}")
    scenario = _load(args)
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    check_out_dir(args.out, args.overwrite)
    model = simulate(
        scenario, args.hours, seed=args.seed, progress=not args.no_progress
    )
    summary = save_run(model, args.out, overwrite=args.overwrite)
    print(json.dumps(json_safe(summary), indent=2))
    print(f"tables and summary.json written to {args.out}")
    return 0


def _cmd_transfer_vs_token(args) -> int:
    from sim.experiments import transfer_vs_token

    if args.bandwidth_model:
        raise UsageError("--bandwidth-model: transfer-vs-token always runs both")
    scenario = _load(args)
    if args.out:
        from sim.study import StudyWriter, save_transfer_vs_token

        report = save_transfer_vs_token(StudyWriter(args.out, args.overwrite), scenario)
    else:
        report = transfer_vs_token(scenario).to_dict()
    print(
        json.dumps(report, indent=2, allow_nan=False)
        if args.json
        else _format_tvt(report)
    )
    return 0


def _format_tvt(r: dict) -> str:
    def cost(value):
        return "infeasible" if value is None else f"{value:,.2f} USD/h"

    lines = [
        f"transfer-vs-token on {r['scenario']}",
        f"  token model     total cost {cost(r['token_total_cost_usd_per_h'])}, "
        f"saturated links: {', '.join(r['saturated_links_token']) or 'none'}",
        f"  transfer model  total cost {cost(r['transfer_total_cost_usd_per_h'])}, "
        f"saturated links: {', '.join(r['saturated_links_transfer']) or 'none'}",
    ]
    if r["cost_change_pct"] is not None:
        lines.append(f"  cost change (transfer vs token): {r['cost_change_pct']:+.2f}%")
    moves = pd.DataFrame(r["price_moves"])
    lines += ["", "Prices that move most (USD per million tokens):"]
    lines.append("  none" if moves.empty else _table(moves, significant=True))
    return "\n".join(lines)


def _cmd_latency_sweep(args) -> int:
    from sim.experiments import latency_sweep

    try:
        limits = [float(x) for x in args.limits.split(",") if x.strip()]
    except ValueError as err:
        raise UsageError(f"--limits: expected numbers like 100,50,15: {err}") from err
    if not limits or min(limits) < 0 or not all(map(math.isfinite, limits)):
        raise UsageError(f"--limits: expected limits >= 0 ms, got {args.limits!r}")
    scenario = _load(args)
    if args.workload not in scenario.workloads:
        known = ", ".join(scenario.workloads)
        raise UsageError(f"--workload: unknown workload {args.workload!r} ({known})")
    if args.out:
        from sim.study import StudyWriter, save_latency_sweep

        writer = StudyWriter(args.out, args.overwrite)
        report = save_latency_sweep(writer, scenario, args.workload, limits)
    else:
        report = latency_sweep(scenario, args.workload, limits).to_dict()
    print(
        json.dumps(report, indent=2, allow_nan=False)
        if args.json
        else _format_sweep(report)
    )
    return 0


def _format_sweep(r: dict) -> str:
    lines = [f"latency-sweep of {r['workload']} on {r['scenario']}"]
    rows = []
    for point in r["points"]:
        row = {"limit_ms": point["limit_ms"], "status": point["status"]}
        row["total_cost_usd_per_h"] = point["total_cost_usd_per_h"]
        row.update({p["node"]: p["lmp_usd_per_mtok"] for p in point["prices"]})
        rows.append(row)
    lines.append(_table(pd.DataFrame(rows), significant=True))
    rise = r["largest_rise"]
    if rise is None:
        lines.append("no price rises as the limit tightens")
    else:
        lines.append(
            f"largest rise: {rise['node']} {rise['change_pct']:+.1f}% at "
            f"{rise['limit_ms']:g} ms ({rise['from_lmp_usd_per_mtok']:.4g} -> "
            f"{rise['to_lmp_usd_per_mtok']:.4g} USD/Mtok)"
        )
    for point in r["points"]:
        for u in point["unserved"]:
            lines.append(
                f"  at {point['limit_ms']:g} ms: {u['workload']} at {u['node']} short "
                f"{u['tokens_per_s']:,.6g} tokens/s ({u['reason']})"
            )
    return "\n".join(lines)


def _cmd_scale_up(args) -> int:
    import numpy as np

    from sim.experiments import scale_up

    if (
        args.points < 2
        or not math.isfinite(args.stop)
        or not 0 <= args.start < args.stop
    ):
        raise UsageError("--from, --to, --points: need 0 <= from < to and points >= 2")
    scales = [float(x) for x in np.linspace(args.start, args.stop, args.points)]
    scenario = _load(args)
    if args.out:
        from sim.study import StudyWriter, save_scale_up

        writer = StudyWriter(args.out, args.overwrite)
        report = save_scale_up(writer, scenario, scales, progress=not args.json)
    else:
        report = scale_up(scenario, scales, progress=not args.json).to_dict()
    print(
        json.dumps(report, indent=2, allow_nan=False)
        if args.json
        else _format_scale_up(report)
    )
    return 0


def _format_scale_up(r: dict) -> str:
    rows = [
        {
            "scale": p["scale"],
            "status": p["status"],
            "total_cost_usd_per_h": p["total_cost_usd_per_h"],
            "mean_lmp_usd_per_mtok": p["mean_lmp_usd_per_mtok"],
            "marginal_assets": ", ".join(p["marginal_assets"]),
        }
        for p in r["points"]
    ]
    threshold, plate = r["infeasible_above_scale"], r["copper_plate_scale"]
    lines = [f"scale-up of {r['scenario']}", _table(pd.DataFrame(rows), True), ""]
    if threshold is None or plate is None:
        lines.append(
            "the market never becomes infeasible (demand is shed or elastic): "
            f"threshold {threshold}, copper plate {plate}"
        )
        return "\n".join(lines)
    lines.append(f"infeasible above demand scale {threshold:.6f} (bisection to 1e-6)")
    lines.append(
        f"aggregate capacity alone (one node, no links) allows {plate:.6f}; "
        + (
            "the network and latency limits bind before capacity runs out"
            if threshold < plate * (1 - 1e-6)
            else "the network does not bind: capacity runs out first"
        )
    )
    return "\n".join(lines)


def _cmd_all(args) -> int:
    from sim.study import run_all

    path = run_all(args.out, args.overwrite)
    print(f"report written to {path}")
    return 0


def _cmd_bench(args) -> int:
    from sim.bench import run_bench

    if args.repeats < 1 or args.hours < 1:
        raise UsageError("--repeats and --hours must be >= 1")
    print(run_bench(load_scenario(args.scenario), args.repeats, args.hours))
    return 0


def format_result(result: ClearingResult) -> str:
    """The readable report printed by ``tokenflow clear``."""
    lines = [
        f"scenario {result.scenario_name}: {result.status} "
        f"({result.bandwidth_model} bandwidth model)"
    ]
    if result.status != "optimal":
        lines += ["", "Demand that cannot be served (tokens/s):"]
        unserved = result.unserved.copy()
        unserved["binding"] = unserved["binding"].map(_short_list)
        lines.append(_table(unserved, significant=True))
        return "\n".join(lines)

    lines.append(f"total cost: {result.total_cost_usd_per_h:,.2f} USD/h")
    if result.degenerate:
        lines.append(
            "prices are not unique here (degenerate optimum); shown: the price "
            "of the next token, or of the last one where no next token can be served"
        )
    prices = result.prices.pivot(
        index="workload", columns="node", values="lmp_usd_per_mtok"
    )
    lines += ["", "Locational marginal prices (USD per million tokens):"]
    lines.append(prices.round(4).to_string())

    links = result.links[result.links["saturated"]]
    lines += ["", "Saturated links:"]
    if links.empty:
        lines.append("  none")
    else:
        cols = ["link", "flow_gbps", "shadow_price_usd_per_gbps_h"]
        lines.append(_table(links[cols + ["congestion_rent_usd_per_h"]]))

    if not result.unserved.empty:
        lines += ["", "Demand shed at the penalty price (tokens/s):"]
        shed = result.unserved[["workload", "node", "tokens_per_s"]]
        lines.append(_table(shed, significant=True))

    s = result.settlement
    lines += [
        "",
        "Settlement (USD/h):",
        f"  consumer payments  {s.consumer_payments_usd_per_h:14,.2f}",
        f"  provider revenues  {s.provider_revenues_usd_per_h:14,.2f}",
        f"  transfer charges   {s.transfer_charges_usd_per_h:14,.2f}",
        f"  congestion rents   {s.congestion_rents_usd_per_h:14,.2f}",
    ]
    return "\n".join(lines)


def _short_list(text: str, keep: int = 3) -> str:
    """'a, b, c, d, e' -> 'a, b, c (+2 more)'; the JSON keeps the full list."""
    items = [item for item in text.split(", ") if item]
    if len(items) <= keep:
        return ", ".join(items)
    return f"{', '.join(items[:keep])} (+{len(items) - keep} more)"


def _table(frame: pd.DataFrame, significant: bool = False) -> str:
    """Money-like columns to cents; shortfalls to six significant figures."""
    if significant:
        return frame.to_string(index=False, float_format=lambda x: f"{x:,.6g}")
    return frame.to_string(index=False, float_format=lambda x: f"{x:,.2f}")


if __name__ == "__main__":
    sys.exit(main())
