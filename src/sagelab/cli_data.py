"""The data commands of the `sagelab` CLI: `profile` and `prepare` (flags here, work in their packages).

Both read `s3://` locations through the lake: with `--endpoint-url`, a running server's S3 API; without it,
the lake folder of `--home` (default ~/.sagelab), opened directly. Local paths work everywhere too.
"""

from __future__ import annotations

import argparse
import sys


def _add_lake_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--endpoint-url", help="reach s3:// through this server's S3 API (credentials: the AWS "
                        "chain, or --home's credentials file); default: open --home's lake folder directly")
    parser.add_argument("--home", help="sagelab home whose lake (or credentials) to use (default ~/.sagelab)")


def add_data_commands(sub) -> None:
    profile = sub.add_parser("profile", help="data-quality profile: statistics.json, constraints.json, report.html")
    profile.add_argument("source", help="s3://bucket/key-or-prefix, or a local file or folder (CSV, Parquet, JSON)")
    profile.add_argument("--target", help="the label column (class balance, colours, pairs with the target)")
    profile.add_argument("--output", help="s3:// prefix or local folder for the results (default ./sagelab-profile)")
    profile.add_argument("--format", dest="file_format", choices=["csv", "parquet", "json"],
                         help="data format (default: from the file names or contents)")
    profile.add_argument("--no-header", action="store_true", help="CSV without a header row (columns _c0, _c1, ...)")
    _add_lake_flags(profile)
    prepare = sub.add_parser("prepare", help="run a feature-processing recipe into SageMaker-ready channels")
    prepare.add_argument("--recipe", required=True, help="recipe JSON (local path or s3:// URI)")
    prepare.add_argument("--input", required=True, help="s3://bucket/key-or-prefix, or a local file or folder")
    prepare.add_argument("--output", required=True, help="s3:// prefix or local folder for the channels")
    _add_lake_flags(prepare)


def run_data_command(args: argparse.Namespace) -> int:
    from sagelab.errors import SagelabError

    try:
        if args.command == "profile":
            from sagelab.profiling.command import run_profile

            written = run_profile(args.source, target=args.target, output=args.output, file_format=args.file_format,
                                  header=not args.no_header, endpoint_url=args.endpoint_url, home=args.home)
            print("\n".join(written))
            return 0
        from sagelab.recipes.command import run_prepare

        rows, written = run_prepare(args.recipe, args.input, args.output, endpoint_url=args.endpoint_url,
                                    home=args.home)
        print(", ".join(f"{channel}: {n} rows" for channel, n in rows.items()))
        print("\n".join(written))
        return 0
    except SagelabError as exc:
        print(f"sagelab {args.command}: {exc.message}", file=sys.stderr)
        return 2
