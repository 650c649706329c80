"""The `perpguard` command. The console modes run here: `perpguard` (engine + gateway + console
in one process), `perpguard --demo` (the same with the demo market and bot) and `perpguard
attach` (a console for an engine running on its own). Everything else is the engine's own CLI
(`engine.cli.main`), which never imports the console or textual, so `--engine-only` stays headless.

In the console modes the log goes to `$XDG_STATE_HOME/perpguard/perpguard.log`: the terminal
belongs to the console. Like every mode, they refuse the global options they would not use
(`--demo` its `--db` and `--config`, `attach` the engine's `--db`, `--listen`, `--allow-remote`):
exit 2, the message naming the option and why.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path

from engine.cli import engine_commands, main as cli, modes
from engine.config import ConfigError
from engine.venues.connector import ConnectorError

CONSOLE_COMMANDS = (None, "attach")


def _log_to_file() -> Path:
    path = Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "perpguard" / "perpguard.log"
    path.parent.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(filename=path, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return path


async def _one_process(config, demo: bool) -> str | None:
    from console.app import run_console
    from console.link import InProcessLink
    from engine.demo.scenario import DEMO_MASTER_PASSWORD, demo_service, start_demo_bot
    from engine.node import build

    service = demo_service(config) if demo else build(config)
    await service.start()
    bot = start_demo_bot(service) if demo else None
    kind = "demo paper" if demo else config.exchange.kind
    link = InProcessLink(service.service, f"{kind} engine in this process · gateway {service.url}")
    if demo:
        print(f"demo master password (for r and approvals over the API): {DEMO_MASTER_PASSWORD}", file=sys.stderr)
    try:
        return await run_console(link, owns_engine=True, keymap=config.console.keymap, theme=config.console.theme)
    finally:
        if bot is not None:
            bot.cancel()
            await asyncio.gather(bot, return_exceptions=True)
        await service.stop()


async def _attach(config, url: str | None, token: str | None) -> str | None:
    from console.app import run_console
    from console.remote import RemoteLink

    link = RemoteLink(url or f"http://{config.engine.listen}", token=token or os.environ.get("PERPGUARD_TOKEN"))
    return await run_console(link, owns_engine=False, keymap=config.console.keymap, theme=config.console.theme)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = cli.build_parser().parse_args(argv)
    if args.engine_only or args.command not in CONSOLE_COMMANDS:
        return cli.main(argv)
    try:
        modes.refuse_ignored_options(args)
        config = engine_commands.config_from(args)
    except ConfigError as exc:
        print(f"{modes.mode_name(args)}: error: {exc}", file=sys.stderr)
        return cli.EXIT_BAD_INPUT
    log_path = _log_to_file()
    try:
        if args.command == "attach":
            asyncio.run(_attach(config, args.url, args.token))
        else:
            asyncio.run(_one_process(config, demo=args.demo))
    except ConnectorError as exc:  # the venue will not let us trade this account (an expired agent...)
        print(f"perpguard: cannot start on the exchange ({exc.code}): {exc.message}", file=sys.stderr)
        return cli.EXIT_FAIL
    except OSError as exc:
        print(f"perpguard: {exc} (log: {log_path})", file=sys.stderr)
        return cli.EXIT_FAIL
    return cli.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
