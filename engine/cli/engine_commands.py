"""The service side of `perpguard`: `--engine-only`, `init`, and the thin clients of the gateway
(`kill`, `resume`, `status`, `policy list|add|rm`, `token create|revoke`) plus `audit
verify`, which reads the database itself (a verifier should not trust the server it checks).

Credentials for the thin clients: `--token` or `PERPGUARD_TOKEN`; the master password from
`PERPGUARD_MASTER_PASSWORD`, else asked on the terminal when the command needs it.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import logging
import os
import signal
import sys
from pathlib import Path

import httpx

from engine.api.client import Client, GatewayError
from engine.config import Config, ConfigError, load_config, split_listen, xdg_config_dir

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
    from engine.gateway import RefusedBind
    from engine.node import build

    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = config_from(args)

    async def main() -> None:
        service = build(config)
        await service.start()
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
    except OSError as exc:
        print(f"perpguard: cannot start the gateway on {config.engine.listen}: {exc}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


# ---- init ------------------------------------------------------------------------------------

CONFIG_TEMPLATE = """# perpguard configuration (written by `perpguard init`)
[engine]
listen = "{listen}"
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
        path.parent.mkdir(parents=True, exist_ok=True)
        db = args.db or Store.default_url()
        extra = HYPERLIQUID_TEMPLATE if args.exchange == "hyperliquid" else ""
        path.write_text(CONFIG_TEMPLATE.format(listen=args.listen or "127.0.0.1:8710", db=db, kind=args.exchange,
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
    return Client(url, token=token, master_password=password)


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
                _print(client.state())
            elif command == "policy":
                if sub == "list":
                    _print(client.policies())
                elif sub == "add":
                    source = Path(args.body).read_text() if Path(args.body).is_file() else args.body
                    bodies = json.loads(source)
                    for body in bodies if isinstance(bodies, list) else [bodies]:
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
    except GatewayError as exc:
        print(f"perpguard {command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if exc.status < 500 else EXIT_FAIL
    except (OSError, httpx.TransportError) as exc:
        print(f"perpguard {command}: cannot reach the engine: {exc}", file=sys.stderr)
        return EXIT_FAIL
    return EXIT_OK


def cmd_audit(args: argparse.Namespace) -> int:
    from engine.store import Store

    with Store(config_from(args).db_url) as store:
        report = store.verify_chain()
    if report.ok:
        print(f"audit chain intact: {report.checked} rows verified")
        return EXIT_OK
    print(f"audit chain BROKEN at {report.first_bad} ({report.checked} rows checked)")
    return EXIT_FAIL


# ---- the parser ----------------------------------------------------------------------------------


def _global_options(parser: argparse.ArgumentParser, default) -> argparse.ArgumentParser:
    parser.add_argument("--listen", metavar="HOST:PORT", default=default, help="gateway address (default 127.0.0.1:8710)")
    parser.add_argument("--allow-remote", action="store_true", default=default or False,
                        help="allow a non-loopback --listen address")
    parser.add_argument("--config", metavar="FILE", default=default,
                        help="TOML config (default ./perpguard.toml, then the XDG config dir)")
    parser.add_argument("--db", metavar="URL", default=default,
                        help="database URL (default SQLite under the XDG data dir; postgresql+psycopg://...)")
    return parser


# The global options are accepted after a subcommand too (`perpguard init --db URL`).
COMMON = _global_options(argparse.ArgumentParser(add_help=False), argparse.SUPPRESS)


def add_arguments(parser: argparse.ArgumentParser, sub) -> None:
    """The engine modes' global options and the service subcommands."""
    parser.add_argument("--engine-only", action="store_true", help="headless engine + gateway; logs to stderr; SIGTERM stops it")
    parser.add_argument("--demo", action="store_true", help="engine + gateway + console with a demo bot on the paper exchange")
    _global_options(parser, None)

    def client_options(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--url", help="the engine's gateway (default: the config's listen address)")
        p.add_argument("--token", help="a bot token pg_... (default $PERPGUARD_TOKEN; else the master password)")
        p.set_defaults(func=cmd_client)
        return p

    init = sub.add_parser("init", parents=[COMMON], help="write a config and set the master password")
    init.add_argument("--exchange", choices=["paper", "hyperliquid"], default="paper")
    init.add_argument("--force", action="store_true", help="rewrite an existing config file")
    init.set_defaults(func=cmd_init)

    attach = sub.add_parser("attach", parents=[COMMON], help="console for a running engine")
    attach.add_argument("--url", help="the engine's gateway (default: the config's listen address)")
    attach.add_argument("--token", help="a bot token with read (and trade, kill) scope")

    kill = client_options(sub.add_parser("kill", parents=[COMMON], help="kill switch: flatten everything and HALT"))
    kill.add_argument("--reason", help="recorded with the HALT")
    client_options(sub.add_parser("resume", parents=[COMMON], help="lift HALTED (master password)"))
    client_options(sub.add_parser("status", parents=[COMMON], help="the engine's state as JSON"))

    token = sub.add_parser("token", help="bot tokens: create, revoke (master password)")
    token_sub = token.add_subparsers(dest="token_command", required=True)
    create = client_options(token_sub.add_parser("create", parents=[COMMON]))
    create.add_argument("name")
    create.add_argument("--scopes", default="trade,read", help="comma-separated: trade, read, kill")
    create.add_argument("--expires-in", type=float, metavar="SECONDS")
    client_options(token_sub.add_parser("revoke", parents=[COMMON])).add_argument("id")

    audit = sub.add_parser("audit", parents=[COMMON], help="audit trail: verify the hash chain")
    audit.add_argument("audit_command", choices=["verify"])
    audit.set_defaults(func=cmd_audit)


def add_policy_commands(policy_sub) -> None:
    for name, helptext in (("list", "the engine's policies"), ("add", "add policies (master password)"),
                           ("rm", "remove a policy (master password)")):
        p = policy_sub.add_parser(name, parents=[COMMON], help=helptext)
        p.add_argument("--url")
        p.add_argument("--token")
        p.set_defaults(func=cmd_client)
        if name == "add":
            p.add_argument("body", metavar="BODY", help="a policy body or list, as JSON or a file")
        if name == "rm":
            p.add_argument("id")
