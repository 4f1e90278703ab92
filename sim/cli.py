"""The ``tokenflow`` command: clear a scenario, simulate it, benchmark it."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys

from agents.strategies import StrategyError, parse_strategy
from markets import ClearingError, ClearingResult, clear
from markets.designs import DESIGNS, SETTLEMENTS, DesignError, MarketDesign
from scenarios import ScenarioError, load_scenario
from sim import cli_experiments as experiments_cli
from sim import cli_report, cli_sweep
from sim.cli_support import UsageError, load_args, table
from sim.model import MAX_HOURS, DemandError
from sim.output import OutputError, check_out_dir, json_safe

logger = logging.getLogger(__name__)


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
    except (ScenarioError, OutputError, UsageError, DemandError) as err:
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
    p.add_argument(
        "--strategy",
        metavar="NAME[:PARAM=VALUE,...]",
        help="bidding strategy of every provider, overriding the scenario's "
        "providers section: truthful, stated, markup:markup=0.3[,blocks=3], "
        "withholding:share=0.8, roth-erev[:levels=11,max_markup=1,recency=0.1,"
        "experimentation=0.2,initial=1,blocks=1]",
    )
    p.add_argument(
        "--start",
        default="2026-01-05T00:00Z",
        help="UTC start of the first step, ISO 8601 (default 2026-01-05T00:00Z, "
        "a Monday)",
    )
    p.add_argument(
        "--inelastic",
        action="store_true",
        help="consumers bid all demand as hard demand, served at once "
        "(ignore the scenario's willingness to pay and deferrable work)",
    )
    p.add_argument(
        "--no-benchmark",
        action="store_true",
        help="skip the competitive re-clearing with truthful offers",
    )
    p.add_argument(
        "--design",
        choices=DESIGNS,
        default="nodal",
        help="market design: a price per node (default), per zone of the "
        "scenario's zones section, or one national price, then redispatch",
    )
    p.add_argument(
        "--settlement",
        choices=SETTLEMENTS,
        default="pay-as-clear",
        help="sellers paid the clearing price (default) or their offer prices",
    )
    p.add_argument(
        "--price-cap",
        type=float,
        metavar="USD_PER_GPU_HOUR",
        help="cap on every offer price",
    )
    p.set_defaults(handler=_cmd_simulate)

    p = sub.add_parser("experiment", help="run one of the source study's experiments")
    exp = p.add_subparsers(required=True, metavar="EXPERIMENT")
    e = exp.add_parser("transfer-vs-token", help="both bandwidth models side by side")
    _scenario_args(e)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    _out_args(e)
    e.set_defaults(handler=experiments_cli.transfer_vs_token)
    e = exp.add_parser("latency-sweep", help="tighten one workload's latency limit")
    _scenario_args(e)
    e.add_argument("--workload", required=True, help="the workload whose limit moves")
    e.add_argument(
        "--limits", default="100,75,50,30,20,15", help="comma-separated limits in ms"
    )
    e.add_argument("--json", action="store_true", help="print one JSON object")
    _out_args(e)
    e.set_defaults(handler=experiments_cli.latency_sweep)

    e = exp.add_parser("scale-up", help="scale all demand to beyond capacity")
    _scenario_args(e)
    e.add_argument("--from", dest="start", type=float, default=0.1)
    e.add_argument("--to", dest="stop", type=float, default=1.3)
    e.add_argument("--points", type=int, default=25)
    e.add_argument("--json", action="store_true", help="print one JSON object")
    _out_args(e)
    e.set_defaults(handler=experiments_cli.scale_up)
    e = exp.add_parser("all", help="all three experiments and report.md")
    e.add_argument("--out", required=True, help="folder for JSON, figures, report")
    e.add_argument("--overwrite", action="store_true", help="replace those files")
    e.set_defaults(handler=experiments_cli.run_all)

    p = sub.add_parser("bench", help="time clearings and simulated hours")
    p.add_argument("scenario", nargs="?", default="us5")
    p.add_argument("--repeats", type=int, default=200, help="clearings per variant")
    p.add_argument("--hours", type=int, default=168, help="simulated hours to time")
    p.add_argument(
        "--strategy",
        metavar="NAME[:PARAM=VALUE,...]",
        help="providers' strategy in the timed simulation (default: scenario's)",
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.set_defaults(handler=_cmd_bench)
    cli_report.add_parser(sub)
    cli_sweep.add_parsers(sub)
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


def _cmd_clear(args) -> int:
    result = clear(load_args(args))
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, allow_nan=False))
    else:
        print(format_result(result))
    return 0


def _cmd_simulate(args) -> int:
    from sim.model import parse_start
    from sim.output import save_run
    from sim.run import simulate

    if not 1 <= args.hours <= MAX_HOURS:
        raise UsageError(f"--hours must be from 1 to {MAX_HOURS}, got {args.hours}")
    scenario = load_args(args)
    if args.seed < 0:
        raise UsageError(f"--seed must be >= 0, got {args.seed}")
    check_out_dir(args.out, args.overwrite)
    try:
        strategy = parse_strategy(args.strategy) if args.strategy else None
    except StrategyError as err:
        raise UsageError(str(err)) from None
    try:
        start = parse_start(args.start)
    except ValueError as err:
        raise UsageError(f"--start: {err}") from None
    try:
        design = MarketDesign(args.design, args.settlement, args.price_cap)
        design.zones_of(scenario)
    except DesignError as err:
        raise UsageError(f"--design/--settlement/--price-cap: {err}") from None
    model = simulate(
        scenario,
        args.hours,
        seed=args.seed,
        progress=not args.no_progress,
        strategy=strategy,
        start=start,
        elastic=not args.inelastic,
        benchmark=not args.no_benchmark,
        design=design,
    )
    summary = save_run(model, args.out, overwrite=args.overwrite)
    print(json.dumps(json_safe(summary), indent=2))
    print(f"tables and summary.json written to {args.out}")
    return 0


def _cmd_bench(args) -> int:
    from sim.bench import run_bench

    if args.repeats < 1 or args.hours < 1:
        raise UsageError("--repeats and --hours must be >= 1")
    try:
        strategy = parse_strategy(args.strategy) if args.strategy else None
    except StrategyError as err:
        raise UsageError(str(err)) from None
    report = run_bench(
        load_scenario(args.scenario),
        args.repeats,
        args.hours,
        strategy=strategy,
        progress=not args.no_progress,
    )
    print(report)
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
        lines.append(table(unserved, significant=True))
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
        lines.append(table(links[cols + ["congestion_rent_usd_per_h"]]))

    if not result.unserved.empty:
        lines += ["", "Demand shed at the penalty price (tokens/s):"]
        shed = result.unserved[["workload", "node", "tokens_per_s"]]
        lines.append(table(shed, significant=True))

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


if __name__ == "__main__":
    sys.exit(main())
