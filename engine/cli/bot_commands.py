"""`perpguard bot add|list|rm`: bot identities for the Hyperliquid-compatible API, thin clients of
the gateway's `/v1/bots` (master password).

`bot add NAME` without `--address` has perpguard make the key: its private key is printed this
once (perpguard keeps only the address). `--policies FILE` (a policy file as `perpguard check`
reads it) adds each policy scoped to the bot (`"bot": NAME`), before the bot exists, so it never
signs an order its own limits do not judge; if the bot cannot be registered they are removed
again. `bot rm` forgets the bot and removes its scoped policies.
"""

from __future__ import annotations

import argparse
import sys

from engine.api.client import Client
from engine.api.errors import ApiError
from engine.cli.engine_commands import EXIT_BAD_INPUT, EXIT_FAIL, EXIT_OK, _client, _client_options, _print, common
from engine.config import ConfigError
from engine.risk.policies import PolicyError, parse_policies
from engine.risk.policy_file import read_policy_bodies


def _scopes(text: str | None) -> list[str] | None:
    return [s.strip() for s in text.split(",") if s.strip()] if text else None


def _scoped_bodies(path: str | None, name: str) -> list[dict]:
    """The file's policy bodies with `"bot": NAME`, checked here before anything is sent."""
    if path is None:
        return []
    try:
        bodies = [{**body, "bot": name} if isinstance(body, dict) else body for body in read_policy_bodies(path)]
        parse_policies(bodies)
    except PolicyError as exc:
        raise ConfigError(f"--policies {path}", str(exc)) from None
    return bodies


def _add(client: Client, args: argparse.Namespace) -> dict:
    bodies = _scoped_bodies(args.policies, args.name)
    taken = [b for b in client.list_bots()
             if b["name"] == args.name or (args.address and b["address"] == args.address.lower())]
    if taken:  # before any policy is touched: the bot already there keeps its own
        field = "name" if taken[0]["name"] == args.name else "address"
        raise ApiError(409, "CONFLICT", f"{field}: already registered as bot {taken[0]['name']}", field)
    existing = {p["id"] for p in client.policies()}
    added = [client.add_policy(body) for body in bodies]
    try:
        bot = client.add_bot(args.name, args.address, _scopes(args.scopes))
    except ApiError:
        for policy in added:  # the bot was not registered: nor are its limits
            if policy["id"] not in existing:
                client.remove_policy(policy["id"])
        raise
    return {**bot, "policies": added}


def cmd_bot(args: argparse.Namespace) -> int:
    try:
        with _client(args, master=True) as client:
            if args.bot_command == "add":
                bot = _add(client, args)
                _print(bot)
                print(f"bot {bot['name']} registered: it signs as {bot['address']} (scopes "
                      f"{', '.join(bot['scopes'])}); {len(bot['policies'])} policies scoped to it", file=sys.stderr)
                if "private_key" in bot:
                    print(f"private key of {bot['name']} ({bot['address']}): {bot['private_key']}\n"
                          "It is shown only once: perpguard keeps only the address. Store it now.", file=sys.stderr)
            elif args.bot_command == "list":
                _print(client.list_bots())
            else:
                removed = client.remove_bot(args.name)["policies_removed"]
                scoped = f" and its {len(removed)} scoped policies ({', '.join(removed)})" if removed else \
                    " (it had no scoped policies)"
                print(f"removed bot {args.name}{scoped}", file=sys.stderr)
    except ApiError as exc:
        print(f"perpguard bot {args.bot_command}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT if 400 <= exc.status < 500 else EXIT_FAIL
    return EXIT_OK


def add_arguments(sub, thin: str) -> None:
    bot = sub.add_parser("bot", help=f"bot identities for the Hyperliquid-compatible API /hl: add, list, rm, master "
                                     f"password ({thin})")
    bot_sub = bot.add_subparsers(dest="bot_command", required=True)
    client = common("client")
    add = _client_options(bot_sub.add_parser("add", parents=[client],
                                             help="register a bot (its address, or a new key)"))
    add.add_argument("name", metavar="NAME", help="letters, digits, '.', '_', '-'")
    add.add_argument("--address", metavar="0x...", help="the address the bot signs with; without it perpguard makes "
                                                        "a key and prints its private key once")
    add.add_argument("--scopes", default="trade,read", help="comma-separated: trade, read (default both)")
    add.add_argument("--policies", metavar="FILE", help="a policy file (JSON or TOML): each policy scoped to the bot")
    _client_options(bot_sub.add_parser("list", parents=[client], help="the registered bots"))
    rm = _client_options(bot_sub.add_parser("rm", parents=[client], help="forget a bot and remove its scoped policies"))
    rm.add_argument("name", metavar="NAME")
    for parser in (add, bot_sub.choices["list"], rm):
        parser.set_defaults(func=cmd_bot)
