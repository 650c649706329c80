"""`perpguard` command line. Exit codes: 0 ok/ALLOW, 1 failure (replay: liquidated),
2 bad input (the message names what is wrong), 3 DENY."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from pydantic import ValidationError

from engine.cli import engine_commands, modes
from engine.domain.clock import ManualClock
from engine.config import ConfigError
from engine.risk.counters import RiskCounters
from engine.risk.gate import RiskGate
from engine.domain.model import OrderIntent
from engine.risk.policies import Policy, PolicyError
from engine.risk.policies.base import fmt
from engine.risk.policy_file import DEFAULT_POLICY_BODIES, default_policies, load_policy_file
from engine.cli.report import build_report, render_report
from engine.venues.hyperliquid.snapshot import SnapshotError, parse_clearinghouse_state, parse_meta, read_json, read_marks

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT, EXIT_DENY = 0, 1, 2, 3


class BadInput(Exception):
    """Input a trader must fix; the message names the field or file."""


def _policies(path: str | None) -> list[Policy]:
    if path is None:
        return default_policies()
    try:
        return load_policy_file(path)
    except PolicyError as exc:
        raise BadInput(f"--policies {path}: {exc}") from None


def _state(path: str, marks_path: str | None, meta_path: str | None):
    try:
        marks = read_marks(marks_path) if marks_path else None
        state = parse_clearinghouse_state(read_json(path, "state"), marks)
        markets = parse_meta(read_json(meta_path, "meta")) if meta_path else None
    except SnapshotError as exc:
        raise BadInput(str(exc)) from None
    return state, markets


def _intent(text: str) -> OrderIntent:
    source = text.strip()
    if not source.startswith("{"):
        path = Path(source)
        if not path.is_file():
            raise BadInput(f"ORDER_JSON: {source!r} is neither a JSON object nor a file")
        source = path.read_text()
    try:
        data = json.loads(source)
    except json.JSONDecodeError as exc:
        raise BadInput(f"ORDER_JSON is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput("ORDER_JSON must be a JSON object")
    try:
        return OrderIntent.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(x) for x in err["loc"]) or "order"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"].removeprefix("Value error, ")
        raise BadInput(f"ORDER_JSON.{where}: {message}") from None


def cmd_check(args: argparse.Namespace) -> int:
    intent = _intent(args.order)
    state, markets = _state(args.state, args.marks, args.meta)
    policies = _policies(args.policies)
    book = state.book(markets)
    at = state.time or 0.0
    counters = RiskCounters()
    counters.on_equity(book.equity, at)  # offline: the snapshot starts every period
    decision = RiskGate(policies, book, counters, ManualClock(at)).evaluate(intent)
    if args.json:
        print(json.dumps(decision.as_dict(), indent=2))
    else:
        print(_render_decision(decision))
    if not decision.allowed:
        print(json.dumps(decision.error_body()), file=sys.stderr)
        return EXIT_DENY
    return EXIT_OK


def _render_decision(decision) -> str:
    d = decision.as_dict()
    pr = d["projected"]
    amount = f"{fmt(d['size'])} {d['market']} (~{fmt(d['notional'])} USD)" if d["size"] is not None else f"~{fmt(d['notional'])} USD of {d['market']}"
    lines = [f"{d['verdict']}  tier {d['tier']}  {decision.intent.side} {amount}{'  reducing' if d['reducing'] else ''}"]
    for r in d["reasons"]:
        lines.append(f"  {'x' if r['effect'] == 'DENY' else '~'} {r['type']} [{r['code']}]: {r['message']}")
    lev = "unknown" if pr["account_leverage"] is None else f"{pr['account_leverage']:.2f}x"
    buffer = "unknown" if pr["margin_buffer"] is None else f"{pr['margin_buffer'] * 100:.1f}%"
    liq = ("none" if pr["position_size"] == 0 else "unknown") if pr["liquidation_px"] is None else fmt(pr["liquidation_px"])
    lines.append(
        f"  after a full fill: position {fmt(pr['position_notional'])} USD, gross {fmt(pr['gross_notional'])} USD, "
        f"account leverage {lev}, margin buffer {buffer}, liquidation {liq}")
    return "\n".join(lines)


def cmd_report(args: argparse.Namespace) -> int:
    state, markets = _state(args.file, args.marks, args.meta)
    report = build_report(state, _policies(args.policies), markets)
    print(json.dumps(report, indent=2) if args.json else render_report(report))
    return EXIT_OK


def cmd_replay(args: argparse.Namespace) -> int:
    from engine.replay.run import replay
    from engine.replay.output import render_chart, render_timeline

    if args.leverage <= 0 or args.equity <= 0:
        raise BadInput("--leverage and --equity must be positive")
    try:
        result = replay(args.csv, args.market, args.side, args.leverage, args.equity, _policies(args.policies),
                        engine_dies_at=args.engine_dies_at)
    except (OSError, ValueError) as exc:
        raise BadInput(str(exc)) from None
    if args.json:
        print(json.dumps(result.as_dict(), indent=2))
    else:
        print(render_timeline(result))
        print()
        print(render_chart(result))
    return EXIT_FAIL if result.liquidated else EXIT_OK


def cmd_policy(args: argparse.Namespace) -> int:
    if args.policy_command == "defaults":
        print(json.dumps(DEFAULT_POLICY_BODIES, indent=2))
        return EXIT_OK
    raise BadInput(f"unknown policy command {args.policy_command!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="perpguard", description="Pre-trade risk gate and risk console for perpetual-futures bots.")
    sub = parser.add_subparsers(dest="command")

    check = sub.add_parser("check", help="offline dry run: one order against an account snapshot and a policy file "
                                            f"({modes.refuses('offline')})")
    check.add_argument("order", metavar="ORDER_JSON", help="an OrderIntent as inline JSON, or a file holding one")
    check.add_argument("--state", required=True, metavar="FILE", help="Hyperliquid clearinghouseState JSON")
    check.add_argument("--policies", metavar="FILE", help="policy file (JSON list or TOML); default: the default set")
    check.add_argument("--marks", metavar="FILE", help='marks {"BTC": 65000, ...}; default: positionValue / |szi|')
    check.add_argument("--meta", metavar="FILE", help="Hyperliquid meta JSON (margin tables); default: each position's maxLeverage")
    check.add_argument("--json", action="store_true", help="print the Decision as JSON")
    check.set_defaults(func=cmd_check)

    report = sub.add_parser("report", help="offline audit of a clearinghouseState snapshot "
                                              f"({modes.refuses('offline')})")
    report.add_argument("file", metavar="FILE")
    report.add_argument("--policies", metavar="FILE")
    report.add_argument("--marks", metavar="FILE")
    report.add_argument("--meta", metavar="FILE")
    report.add_argument("--json", action="store_true")
    report.set_defaults(func=cmd_report)

    replay = sub.add_parser("replay", help="stress pass over a candle file through the paper exchange and the engine "
                                              f"({modes.refuses('offline')})")
    replay.add_argument("csv", metavar="CSV", help="Binance kline CSV: open_time_ms,open,high,low,close,volume")
    replay.add_argument("--market", required=True)
    replay.add_argument("--side", required=True, choices=["long", "short"])
    replay.add_argument("--leverage", required=True, type=float)
    replay.add_argument("--equity", type=float, default=100_000.0, help="starting equity, USD (default 100000)")
    replay.add_argument("--policies", metavar="FILE")
    replay.add_argument("--engine-dies-at", metavar="HH:MM[:SS]",
                        help="the engine dies at this UTC time (on the first bar's date): from then on only what "
                             "rests on the venue acts (venue stops, bracket children, resting orders)")
    replay.add_argument("--json", action="store_true")
    replay.set_defaults(func=cmd_replay)

    policy = sub.add_parser("policy", help="policies: defaults (offline), list, add, rm (thin clients of the gateway)")
    policy_sub = policy.add_subparsers(dest="policy_command", required=True)
    policy_sub.add_parser("defaults", help="print the default policy set").set_defaults(func=cmd_policy)
    engine_commands.add_policy_commands(policy_sub)
    engine_commands.add_arguments(parser, sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        modes.refuse_ignored_options(args)  # no mode drops an option silently
        if args.engine_only:
            func = engine_commands.run_engine_only
        elif getattr(args, "func", None):
            func = args.func
        else:  # the console modes live in console.launcher, which the `perpguard` script runs
            parser.print_help()
            return EXIT_BAD_INPUT
        return func(args)
    except (BadInput, ConfigError) as exc:
        print(f"{modes.mode_name(args)}: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
