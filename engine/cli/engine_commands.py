"""The service side of `perpguard`: `--engine-only`, `init`, and the thin clients of the gateway
(`kill`, `resume`, `status`, `policy list|add|rm`, `token create|revoke`; `bot add|list|rm` in
`engine.cli.bot_commands`) plus `audit verify`, which reads the database itself (a verifier
should not trust the server it checks).

Credentials for the thin clients: `--token` or `PERPGUARD_TOKEN`; the master password from
`PERPGUARD_MASTER_PASSWORD`, else asked on the terminal when the command needs it.

No mode drops a global option silently: `engine.cli.modes` refuses (exit 2, saying why) every
option the mode would not use, and each `--help` says which ones those are.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import getpass
import json
import logging
import os
import signal
import sys
from pathlib import Path

from engine.api.client import Client
from engine.api.errors import ApiError
from engine.cli.modes import REFUSED, refused_by, refuses
from engine.config import Config, ConfigError, load_config, split_listen, write_private, xdg_config_dir

EXIT_OK, EXIT_FAIL, EXIT_BAD_INPUT = 0, 1, 2
PASSWORD_ENV = "PERPGUARD_MASTER_PASSWORD"


def config_from(args: argparse.Namespace) -> Config:
    overrides = {"engine.db": getattr(args, "db", None), "engine.listen": getattr(args, "listen", None)}
    if getattr(args, "allow_remote", False):
        overrides["engine.allow_remote"] = True
    return load_config(getattr(args, "config", None), **overrides)


def master_password(confirm: bool = False) -> str:
    """From the environment, else asked on the terminal (twice when setting it)."""
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV]
    if not sys.stdin.isatty():
        raise ConfigError(PASSWORD_ENV, "no terminal to ask the master password on: set the environment variable")
    first = getpass.getpass("master password: ")
    if confirm and getpass.getpass("again: ") != first:
        raise ConfigError("master password", "the two entries differ")
    return first


# ---- engine-only ---------------------------------------------------------------------------


def run_engine_only(args: argparse.Namespace) -> int:
    from engine.domain.events import EventKind
    from engine.gateway import RefusedBind
    from engine.live.notify import NOTIFY_KINDS
    from engine.node import build
    from engine.store import AuditKeyError
    from engine.venues.connector import ConnectorError

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from(args)

    async def main() -> None:
        service = build(config)
        await service.start()
        # headless, the log is where an operator reads what a webhook is told, and the holds
        events = logging.getLogger("perpguard.events")
        logged = NOTIFY_KINDS | {EventKind.PENDING_ADDED, EventKind.PENDING_CLOSED, EventKind.ORDER_NOT_SENT,
                                 EventKind.ENGINE_ERROR}
        service.service.subscribe(lambda event: events.info("%s: %s", event.kind.value, event.message)
                                  if event.kind in logged else None)
        print(f"perpguard engine listening on {service.url} (database {config.db_url.split('://')[0]})", file=sys.stderr)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        logging.getLogger("perpguard").info("signal received: draining and stopping")
        await service.stop()

    try:
        asyncio.run(main())
    except RefusedBind as exc:
        print(f"perpguard: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except AuditKeyError as exc:  # the audit key of an anchored database is missing or open to others
        print(f"perpguard: {exc}", file=sys.stderr)
        return EXIT_FAIL
    except ConnectorError as exc:  # the venue will not let us trade this account (an expired agent...)
        print(f"perpguard: cannot start on the exchange ({exc.code}): {exc.message}", file=sys.stderr)
        return EXIT_FAIL
    except OSError as exc:
        print(f"perpguard: cannot start the gateway on {config.engine.listen}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


# ---- init ------------------------------------------------------------------------------------

CONFIG_TEMPLATE = """# perpguard configuration (written by `perpguard init`)
[engine]
listen = "{listen}"
allow_remote = {allow_remote}
db = "{db}"

[paper]
equity = 100000

[exchange]
kind = "{kind}"
{exchange_extra}
"""

HYPERLIQUID_TEMPLATE = """network = "testnet"          # or "mainnet"
account_address = "0x..."     # your account (the master wallet's address; its key is never needed)
agent_key_env = "PERPGUARD_AGENT_KEY"   # or agent_key_file = "/path/to/key" (mode 0600)
"""


def cmd_init(args: argparse.Namespace) -> int:
    from engine.store.auth import set_master_password
    from engine.store import Store

    path = Path(args.config) if args.config else xdg_config_dir() / "perpguard.toml"
    if args.listen:
        try:
            split_listen(args.listen)  # refuse before anything is written
        except ValueError as exc:
            raise ConfigError("--listen", str(exc)) from None
    if path.exists() and not args.force:
        print(f"{path} exists; keeping it (use --force to rewrite it)", file=sys.stderr)
    else:
        db = args.db or Store.default_url()
        extra = HYPERLIQUID_TEMPLATE if args.exchange == "hyperliquid" else ""
        write_private(path, CONFIG_TEMPLATE.format(listen=args.listen or "127.0.0.1:8710", db=db, kind=args.exchange,
                                               allow_remote="true" if args.allow_remote else "false",
                                               exchange_extra=extra))
        print(f"wrote {path}", file=sys.stderr)
    if args.exchange == "hyperliquid":
        from engine.venues.hyperliquid.config import API_WALLET_HELP

        print(API_WALLET_HELP, file=sys.stderr)
    config = load_config(str(path), **{"engine.db": args.db})
    with Store(config.db_url) as store:
        try:
            set_master_password(store, master_password(confirm=True))
        except ValueError as exc:
            raise ConfigError("master password", str(exc)) from None
    print(f"master password set (argon2id) in {config.db_url}", file=sys.stderr)
    return EXIT_OK


# ---- thin clients ------------------------------------------------------------------------------


def _client(args: argparse.Namespace, master: bool = False) -> Client:
    url = args.url or f"http://{config_from(args).engine.listen}"
    token = args.token or os.environ.get("PERPGUARD_TOKEN")
    password = master_password() if master or not token else None
    try:
        return Client(url, token=token, master_password=password)
    except ValueError as exc:
        raise ConfigError("--url", str(exc)) from None


def _policy_bodies(text: str) -> list[dict]:
    """BODY of `policy add`: inline JSON (an object or a list) or a file holding it."""
    source = text.strip()
    if not source.startswith(("{", "[")):
        path = Path(source)
        if not path.is_file():
            raise ConfigError("BODY", f"{source!r} is neither a JSON policy body nor a file")
        try:
            source = path.read_text()
        except OSError as exc:
            raise ConfigError("BODY", f"cannot read {path}: {exc}") from None
    try:
        bodies = json.loads(source)
    except json.JSONDecodeError as exc:
        raise ConfigError("BODY", f"not valid JSON: {exc}") from None
    return bodies if isinstance(bodies, list) else [bodies]


def _print(value) -> None:
    print(json.dumps(value, indent=2))


def cmd_client(args: argparse.Namespace) -> int:
    """kill, resume, status, policy list|add|rm, token create|revoke."""
    command = args.command
    sub = getattr(args, "policy_command", None) or getattr(args, "token_command", None)
    admin = command in ("resume", "token") or (command == "policy" and sub in ("add", "rm"))
    try:
        with _client(args, master=admin) as client:
            if command == "kill":
                result = client.kill(args.reason)
                print(f"KILLED: trading {result['trading_state']}, {result['positions']} positions and "
                      f"{result['open_orders']} open orders left", file=sys.stderr)
            elif command == "resume":
                print(f"trading {client.resume()['trading_state']}", file=sys.stderr)
            elif command == "status":
                state = client.state()
                _print(state)
                print(f"account {state['account'].get('address') or 'unknown'}: trading {state['trading_state']}",
                      file=sys.stderr)
            elif command == "policy":
                if sub == "list":
                    _print(client.policies())
                elif sub == "add":
                    for body in _policy_bodies(args.body):
                        _print(client.add_policy(body))
                else:
                    client.remove_policy(args.id)
                    print(f"removed policy {args.id}", file=sys.stderr)
            elif command == "token":
                if sub == "create":
                    _print(client.create_token(args.name, args.scopes.split(","), args.expires_in))
                else:
                    client.revoke_token(args.id)
                    print(f"revoked token {args.id}", file=sys.stderr)
    except ApiError as exc:  # a refusal (4xx: exit 2), or no engine to ask (status 0) or its failure: exit 1
        print(f"perpguard {command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if 400 <= exc.status < 500 else EXIT_FAIL
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    """Verify the database itself with the audit key and checkpoints in the config dir (the
    same folder the engine uses); never the key's content, only where it is."""
    from engine.store import AuditKeyError, Store

    try:
        store = Store(config_from(args).db_url, audit_dir=xdg_config_dir())
    except AuditKeyError as exc:  # anchored, and its key is missing or open to others
        print(f"audit chain BROKEN at audit_anchor (0 rows checked): {exc}")
        return EXIT_FAIL
    with store:
        report = store.verify_chain()
        key_file = store.audit_dir / "audit.key"
    counts = ", ".join(f"{n} {table}" for table, n in report.rows.items())
    if not report.ok:
        print(f"audit chain BROKEN at {report.first_bad} ({report.checked} rows checked): {report.problem}")
        return EXIT_FAIL
    if report.anchored:
        legacy = f"; {report.legacy_rows} legacy sha256 rows before the anchor" if report.legacy_rows else ""
        print(f"audit chain intact: {report.checked} rows verified ({counts}{legacy}), keyed with {key_file}; "
              f"policies, tokens and settings match the chain's record; {report.checkpoints} checkpoints matched")
    else:
        print(f"audit chain intact but NOT anchored: {report.checked} plain sha256 rows verified ({counts})")
    for note in report.notes:
        print(f"note: {note}")
    return EXIT_OK


# ---- the parser ----------------------------------------------------------------------------------

_GLOBAL_HELP = {
    "--listen": "gateway address (default 127.0.0.1:8710)",
    "--allow-remote": "allow a non-loopback --listen address",
    "--config": "TOML config (default ./perpguard.toml, then the XDG config dir)",
    "--db": "database URL (default SQLite under the XDG data dir; postgresql+psycopg://...)",
}


def _global_options(parser: argparse.ArgumentParser, default, kind: str | None) -> argparse.ArgumentParser:
    """The global options on `parser`: the top level (`kind` None: each help names the modes
    that refuse it), or a command of that kind (a refused option's help says why)."""

    def helptext(option: str) -> str:
        if kind is None:
            return _GLOBAL_HELP[option] + refused_by(option)
        return f"refused: {REFUSED[kind][option]}" if option in REFUSED[kind] else _GLOBAL_HELP[option]

    parser.add_argument("--listen", metavar="HOST:PORT", default=default, help=helptext("--listen"))
    parser.add_argument("--allow-remote", action="store_true", default=default or False, help=helptext("--allow-remote"))
    parser.add_argument("--config", metavar="FILE", default=default, help=helptext("--config"))
    parser.add_argument("--db", metavar="URL", default=default, help=helptext("--db"))
    return parser


@functools.cache
def common(kind: str) -> argparse.ArgumentParser:
    """The global options after a command of `kind` too (`perpguard init --db URL`): a parent parser."""
    return _global_options(argparse.ArgumentParser(add_help=False), argparse.SUPPRESS, kind)


def _client_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p.add_argument("--url", help="the engine's gateway (default: the config's listen address)")
    p.add_argument("--token", help="a bot token pg_... (default $PERPGUARD_TOKEN; else the master password)")
    p.set_defaults(func=cmd_client)
    return p


def add_arguments(parser: argparse.ArgumentParser, sub) -> None:
    """The engine modes' global options and the service subcommands."""
    parser.add_argument("--engine-only", action="store_true",
                        help="headless engine + gateway; logs to stderr; SIGTERM stops it. Takes every global "
                             "option; refuses --demo and any command")
    parser.add_argument("--demo", action="store_true",
                        help="engine + gateway + console with a demo bot on the paper exchange, on a throwaway "
                             f"database with its own policies and master password: {refuses('demo')}")
    _global_options(parser, None, None)
    client = common("client")

    init = sub.add_parser("init", parents=[common("init")],
                          help=f"write a config and set the master password ({refuses('init')})")
    init.add_argument("--exchange", choices=["paper", "hyperliquid"], default="paper")
    init.add_argument("--force", action="store_true", help="rewrite an existing config file")
    init.set_defaults(func=cmd_init)

    attach = sub.add_parser("attach", parents=[common("attach")],
                            help=f"console for a running engine at --url; --config gives its console settings "
                                 f"({refuses('attach')})")
    attach.add_argument("--url", help="the engine's gateway (default: the config's listen address)")
    attach.add_argument("--token", help="a bot token with read (and trade, kill) scope")

    thin = f"a thin client of the gateway at --url: {refuses('client')}"
    kill = _client_options(sub.add_parser("kill", parents=[client], help=f"kill switch: flatten everything and HALT ({thin})"))
    kill.add_argument("--reason", help="recorded with the HALT")
    _client_options(sub.add_parser("resume", parents=[client], help=f"lift HALTED, master password ({thin})"))
    _client_options(sub.add_parser("status", parents=[client], help=f"the engine's state as JSON ({thin})"))

    token = sub.add_parser("token", help=f"bot tokens: create, revoke, master password ({thin})")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = _client_options(token_sub.add_parser("create", parents=[client]))
    create.add_argument("name")
    create.add_argument("--scopes", default="trade,read", help="comma-separated: trade, read, kill")
    create.add_argument("--expires-in", type=float, metavar="SECONDS")
    _client_options(token_sub.add_parser("revoke", parents=[client])).add_argument("id")

    from engine.cli import bot_commands  # its own module; it builds on the helpers here

    bot_commands.add_arguments(sub, thin)

    audit = sub.add_parser("audit", parents=[common("audit")],
                           help=f"audit trail: verify the hash chain in the database ({refuses('audit')})")
    audit.add_argument("audit_command", choices=["verify"])
    audit.set_defaults(func=cmd_audit)


def add_policy_commands(policy_sub) -> None:
    for name, helptext in (("list", "the engine's policies"), ("add", "add policies (master password)"),
                           ("rm", "remove a policy (master password)")):
        p = _client_options(policy_sub.add_parser(name, parents=[common("client")], help=helptext))
        if name == "add":
            p.add_argument("body", metavar="BODY", help="a policy body or list, as JSON or a file")
        if name == "rm":
            p.add_argument("id")
