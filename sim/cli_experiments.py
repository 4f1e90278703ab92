"""The ``tokenflow experiment`` commands: the source study's experiments."""

from __future__ import annotations

import json
import math

import pandas as pd

from sim.cli_support import UsageError, load_args, table


def _emit(report: dict, as_json: bool, formatter) -> None:
    """Print a report as strict JSON or as readable text."""
    if as_json:
        print(json.dumps(report, indent=2, allow_nan=False))
    else:
        print(formatter(report))


def transfer_vs_token(args) -> int:
    from sim.experiments import transfer_vs_token

    if args.bandwidth_model:
        raise UsageError("--bandwidth-model: transfer-vs-token always runs both")
    scenario = load_args(args)
    if args.out:
        from sim.study import StudyWriter, save_transfer_vs_token

        report = save_transfer_vs_token(StudyWriter(args.out, args.overwrite), scenario)
    else:
        report = transfer_vs_token(scenario).to_dict()
    _emit(report, args.json, _format_tvt)
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
    lines.append("  none" if moves.empty else table(moves, significant=True))
    return "\n".join(lines)


def latency_sweep(args) -> int:
    from sim.experiments import latency_sweep

    try:
        limits = [float(x) for x in args.limits.split(",") if x.strip()]
    except ValueError as err:
        raise UsageError(f"--limits: expected numbers like 100,50,15: {err}") from err
    if not limits or min(limits) < 0 or not all(map(math.isfinite, limits)):
        raise UsageError(f"--limits: expected limits >= 0 ms, got {args.limits!r}")
    scenario = load_args(args)
    if args.workload not in scenario.workloads:
        known = ", ".join(scenario.workloads)
        raise UsageError(f"--workload: unknown workload {args.workload!r} ({known})")
    if args.out:
        from sim.study import StudyWriter, save_latency_sweep

        writer = StudyWriter(args.out, args.overwrite)
        report = save_latency_sweep(writer, scenario, args.workload, limits)
    else:
        report = latency_sweep(scenario, args.workload, limits).to_dict()
    _emit(report, args.json, _format_sweep)
    return 0


def _format_sweep(r: dict) -> str:
    lines = [f"latency-sweep of {r['workload']} on {r['scenario']}"]
    rows = []
    for point in r["points"]:
        row = {"limit_ms": point["limit_ms"], "status": point["status"]}
        row["total_cost_usd_per_h"] = point["total_cost_usd_per_h"]
        row.update({p["node"]: p["lmp_usd_per_mtok"] for p in point["prices"]})
        rows.append(row)
    lines.append(table(pd.DataFrame(rows), significant=True))
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


def scale_up(args) -> int:
    import numpy as np

    from sim.experiments import scale_up

    if (
        args.points < 2
        or not math.isfinite(args.stop)
        or not 0 <= args.start < args.stop
    ):
        raise UsageError("--from, --to, --points: need 0 <= from < to and points >= 2")
    scales = [float(x) for x in np.linspace(args.start, args.stop, args.points)]
    scenario = load_args(args)
    if args.out:
        from sim.study import StudyWriter, save_scale_up

        writer = StudyWriter(args.out, args.overwrite)
        report = save_scale_up(writer, scenario, scales, progress=not args.json)
    else:
        report = scale_up(scenario, scales, progress=not args.json).to_dict()
    _emit(report, args.json, _format_scale_up)
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
    lines = [f"scale-up of {r['scenario']}", table(pd.DataFrame(rows), True), ""]
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


def run_all(args) -> int:
    from sim.study import run_all

    path = run_all(args.out, args.overwrite)
    print(f"report written to {path}")
    return 0
