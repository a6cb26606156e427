"""The `sagelab` command: parse flags, call into the platform, print."""

from __future__ import annotations

import argparse
import shlex
import sys
from collections.abc import Sequence
from typing import Any

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
    server.add_argument("--tls", action="store_true", default=None,
                        help="serve HTTPS (a self-signed certificate in <home>/tls unless --tls-cert is given)")
    server.add_argument("--tls-cert", help="PEM certificate (chain) to serve HTTPS with")
    server.add_argument("--tls-key", help="PEM private key of --tls-cert")
    demo = sub.add_parser("demo", help="run the whole pipeline on the embedded default")
    demo.add_argument("--home", help="home folder for the demo's server (default: a temporary folder)")
    sub.add_parser("version", help="print the version")
    env = sub.add_parser("env", help="print the environment variables that point AWS tools at a server")
    env.add_argument("--home", help="the server's home folder (default ~/.sagelab, or $SAGELAB_HOME)")
    env.add_argument("--host", help="the address the server listens on")
    env.add_argument("--port", type=int, help="the port the server listens on")
    env.add_argument("--tls", action="store_true", default=None, help="the server serves HTTPS (sagelab server --tls)")
    table = sub.add_parser("support-table", help="print what is supported (operations, algorithms, SDK calls)")
    table.add_argument("--write", metavar="FILE", help="replace the generated block in FILE (e.g. README.md)")
    interrupt = sub.add_parser("spot-interrupt", help="interrupt a running managed spot training job, as if its "
                               "capacity were reclaimed: it restarts from its last checkpoint")
    interrupt.add_argument("job", help="the training job's name")
    interrupt.add_argument("--home", help="the server's home folder (default ~/.sagelab, or $SAGELAB_HOME)")
    validate = sub.add_parser("validate-logs", help="check a trail's digest chain and log files, as "
                              "`aws cloudtrail validate-logs` does")
    validate.add_argument("--trail-arn", required=True, help="the trail whose files are checked")
    validate.add_argument("--start-time", required=True, help="check digests from this time (ISO 8601, UTC)")
    validate.add_argument("--end-time", help="check digests up to this time (default: now)")
    where = validate.add_mutually_exclusive_group()
    where.add_argument("--home", help="read the trail and its bucket straight from this home folder")
    where.add_argument("--endpoint-url", help="read them through this server's CloudTrail and S3 APIs")
    validate.add_argument("--verbose", action="store_true", help="also list every valid file")
    add_data_commands(sub)
    return parser


def _server_source(endpoint_url: str) -> Any:
    import boto3
    from botocore.config import Config

    from sagelab.cloudtrail.validation import ServerSource
    from sagelab.security.credentials import read_credentials_file

    settings = load_settings({})
    kwargs: dict[str, Any] = {}

    creds = read_credentials_file(settings.home / "credentials")
    session = boto3.session.Session()
    if session.get_credentials() is None and creds is not None:
        kwargs = {"aws_access_key_id": creds.access_key_id, "aws_secret_access_key": creds.secret_access_key}
    region = session.region_name or settings.region
    return ServerSource(
        session.client("cloudtrail", endpoint_url=endpoint_url, region_name=region, **kwargs),
        session.client("s3", endpoint_url=endpoint_url, region_name=region,
                       config=Config(s3={"addressing_style": "path"}), **kwargs))


def _validate_logs(args: argparse.Namespace) -> int:
    """`validate-logs`: through a server's APIs with --endpoint-url, else straight from the home."""
    import datetime as dt

    from sagelab.cloudtrail.validation import HomeSource, Validator, parse_time

    def out(text: str) -> None:
        sys.stdout.write(text + "\n")

    def err(text: str) -> None:
        sys.stderr.write(text + "\n")

    try:
        start = parse_time(args.start_time)
        end = parse_time(args.end_time) if args.end_time else dt.datetime.now(dt.UTC)
        if args.endpoint_url:
            report = Validator(_server_source(args.endpoint_url), out=out, err=err,
                               verbose=args.verbose).run(args.trail_arn, start, end)
        else:
            from sagelab.platform import Platform

            platform = Platform(load_settings({"home": args.home})).open()
            try:
                source = HomeSource(platform.trails, platform.blobs)
                report = Validator(source, out=out, err=err, verbose=args.verbose).run(args.trail_arn, start, end)
            finally:
                platform.close()
    except ValueError as exc:
        err(str(exc))
        return 255
    return 0 if report.ok else 1


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "version":
        print(f"sagelab {__version__}")
        return 0
    if args.command == "server":
        from sagelab.server import serve

        flags = {"home": args.home, "host": args.host, "port": args.port, "engine": args.engine,
                 "tls": args.tls or (True if args.tls_cert else None), "tls_cert": args.tls_cert,
                 "tls_key": args.tls_key}
        if args.no_auth:
            flags["auth"] = False
        serve(load_settings(flags))
        return 0
    if args.command == "env":
        from sagelab.client_setup import client_environment

        flags = {"home": args.home, "host": args.host, "port": args.port, "tls": args.tls}
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

    if args.command == "validate-logs":
        return _validate_logs(args)
    if args.command in ("profile", "prepare"):
        return run_data_command(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
