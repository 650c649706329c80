"""The options each mode of `perpguard` refuses: no mode drops a global option silently.
`refuse_ignored_options` refuses (exit 2, saying why) every option the mode would not use, and
each `--help` says which ones those are (`refuses`)."""

from __future__ import annotations

import argparse

from engine.config import ConfigError

# The kind of every mode: the three without a command, then each command (with its subcommand).
MODE_KINDS = {
    "console": "console", "demo": "demo", "engine-only": "engine-only", "attach": "attach", "init": "init",
    "kill": "client", "resume": "client", "status": "client", "policy list": "client", "policy add": "client",
    "policy rm": "client", "token create": "client", "token revoke": "client", "bot add": "client",
    "bot list": "client", "bot rm": "client", "audit verify": "audit",
    "check": "offline", "report": "offline", "replay": "offline", "policy defaults": "offline",
}
_NOT_AN_OPTION = {"--demo": "--demo is a mode of its own (`perpguard --demo`), not an option of a command",
                  "--engine-only": "--engine-only is a mode of its own (`perpguard --engine-only`), not an option of a command"}
_URL_INSTEAD = {"--listen": "nothing is served from here; the running engine's address is --url "
                            "(default: the config's listen address)",
                "--allow-remote": "no address is bound here; a remote engine's address is --url"}
# kind -> {option: why that mode refuses it}. A global option not named is one the mode uses.
REFUSED: dict[str, dict[str, str]] = {
    "console": {},
    "demo": {"--db": "the demo runs on a throwaway database of its own, never on yours",
             "--config": "the demo brings its own paper account, demo policies and master password; "
                         "`perpguard --config FILE` runs yours"},
    "engine-only": {"--demo": "the demo needs the console; headless it is `python -m engine.demo`"},
    "attach": {"--db": "the console attaches to a running engine, which keeps its own database", **_URL_INSTEAD,
               **_NOT_AN_OPTION},
    "client": {"--db": "the command asks the running engine, which keeps its own database", **_URL_INSTEAD,
               **_NOT_AN_OPTION},
    "audit": {"--listen": "audit verify reads the database (--db or the config's) and starts no gateway",
              "--allow-remote": "audit verify starts no gateway", **_NOT_AN_OPTION},
    "init": dict(_NOT_AN_OPTION),
    "offline": {"--config": "the command is offline and reads no config: give policies with --policies FILE",
                "--db": "the command is offline and reads no database",
                "--listen": "the command is offline and starts no gateway",
                "--allow-remote": "the command is offline and starts no gateway", **_NOT_AN_OPTION},
}
_KIND_NAMES = {"demo": "--demo", "engine-only": "--engine-only", "attach": "attach", "init": "init",
               "client": "the thin clients", "audit": "audit verify", "offline": "check, report, replay, policy defaults"}
_ATTRIBUTES = {"--listen": "listen", "--allow-remote": "allow_remote", "--config": "config", "--db": "db",
               "--demo": "demo", "--engine-only": "engine_only"}


def mode_of(args: argparse.Namespace) -> str:
    """The mode `args` run: "console" (`perpguard`), "demo", "engine-only", or the command
    ("attach", "status", "policy add", "audit verify", ...)."""
    if args.command is None:
        return "engine-only" if args.engine_only else "demo" if args.demo else "console"
    given = vars(args)
    sub = (given.get("policy_command") or given.get("token_command") or given.get("bot_command")
           or given.get("audit_command"))
    return f"{args.command} {sub}" if sub else args.command


def mode_name(args: argparse.Namespace) -> str:
    """How a message names the mode: `perpguard --demo`, `perpguard attach`, ..."""
    mode = mode_of(args)
    return "perpguard" if mode == "console" else f"perpguard --{mode}" if args.command is None else f"perpguard {mode}"


def refuse_ignored_options(args: argparse.Namespace) -> None:
    """ConfigError naming every global option the mode of `args` would not use, and why."""
    given = vars(args)
    refused = [(option, why) for option, why in REFUSED[MODE_KINDS[mode_of(args)]].items()
               if given.get(_ATTRIBUTES[option]) not in (None, False)]
    if refused:
        (option, why), rest = refused[0], refused[1:]
        raise ConfigError(option, why + "".join(f"; {other}: {reason}" for other, reason in rest))


def refused_by(option: str) -> str:
    """For an option's help text: which modes refuse it."""
    kinds = [name for kind, name in _KIND_NAMES.items() if option in REFUSED[kind]]
    return f". Refused by {'; '.join(kinds)}" if kinds else ""


def refuses(kind: str) -> str:
    """`refuses --db, --config` for a help text ('' when the mode takes every global option)."""
    options = [o for o in REFUSED[kind] if o not in _NOT_AN_OPTION]
    return f"refuses {', '.join(options)}" if options else "takes every global option"
