"""The `sagelab` command: parse flags, call into the platform, print."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence

from sagelab import __version__
from sagelab.cli_data import add_data_commands, run_data_command
from sagelab.settings import load_settings


def _add_server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--home", help="sagelab home folder (default ~/.sagelab, or $SAGELAB_HOME)")
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default 8080)")
    parser.add_argument("--engine", choices=["local", "inline"], help="compute engine for jobs")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagelab", description="The AWS ML stack on your own machine.")
    sub = parser.add_subparsers(dest="command", required=True)
    server = sub.add_parser("server", help="run the sagelab server (AWS APIs on one port)")
    _add_server_flags(server)
    server.add_argument("--no-auth", action="store_true", help="accept unsigned requests (explicit opt-out)")
    demo = sub.add_parser("demo", help="run the whole pipeline on the embedded default")
    demo.add_argument("--home", help="home folder for the demo's server (default: a temporary folder)")
    sub.add_parser("version", help="print the version")
    env = sub.add_parser("env", help="print the environment variables that point AWS tools at a server")
    env.add_argument("--home", help="the server's home folder (default ~/.sagelab, or $SAGELAB_HOME)")
    env.add_argument("--host", help="the address the server listens on")
    env.add_argument("--port", type=int, help="the port the server listens on")
    table = sub.add_parser("support-table", help="print what is supported (operations, algorithms, SDK calls)")
    table.add_argument("--write", metavar="FILE", help="replace the generated block in FILE (e.g. README.md)")
    interrupt = sub.add_parser("spot-interrupt", help="interrupt a running managed spot training job, as if its "
                               "capacity were reclaimed: it restarts from its last checkpoint")
    interrupt.add_argument("job", help="the training job's name")
    interrupt.add_argument("--home", help="the server's home folder (default ~/.sagelab, or $SAGELAB_HOME)")
    add_data_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(f"sagelab {__version__}")
        return 0
    if args.command == "server":
        from sagelab.server import serve

        flags = {"home": args.home, "host": args.host, "port": args.port, "engine": args.engine}
        if args.no_auth:
            flags["auth"] = False
        serve(load_settings(flags))
        return 0
    if args.command == "env":
        from sagelab.client_setup import client_environment

        flags = {"home": args.home, "host": args.host, "port": args.port}
        for name, value in client_environment(load_settings(flags)).items():
            print(f"export {name}={shlex.quote(value)}")
        return 0
    if args.command == "support-table":
        from pathlib import Path

        from sagelab import support_table

        if args.write:
            changed = support_table.write_into(Path(args.write))
            print(f"{args.write}: {'updated' if changed else 'already up to date'}")
        else:
            print(support_table.markdown(), end="")
        return 0
    if args.command == "demo":
        from sagelab.demo import run_demo

        return run_demo(home=args.home)
    if args.command == "spot-interrupt":
        from sagelab.errors import SagelabError
        from sagelab.process_parts import attach
        from sagelab.training.spot import request_interruption

        parts = attach(load_settings({"home": args.home}))
        try:
            request_interruption(parts.resources, args.job)
        except SagelabError as exc:
            print(f"sagelab: {exc.message}", file=sys.stderr)
            return 1
        finally:
            parts.close()
        print(f"{args.job}: interruption requested; the job restarts from its last checkpoint")
        return 0
    if args.command in ("profile", "prepare"):
        return run_data_command(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
