"""`getResolvedOptions(sys.argv, ["JOB_NAME", "input"])`: the job's `--name value` arguments as a dict."""

from __future__ import annotations


class GlueArgumentError(Exception):
    pass


def getResolvedOptions(args: list[str], options: list[str]) -> dict[str, str]:  # noqa: N802 - Glue's name
    values: dict[str, str] = {}
    i = 1
    while i < len(args):
        token = args[i]
        if token.startswith("--"):
            key, eq, inline = token[2:].partition("=")
            if eq:
                values[key] = inline
            elif i + 1 < len(args):
                values[key] = args[i + 1]
                i += 1
        i += 1
    missing = [o for o in options if o not in values]
    if missing:
        raise GlueArgumentError(f"the following arguments are required: {', '.join('--' + m for m in missing)}")
    return {o: values[o] for o in options} | ({"job_bookmark_option": values["job-bookmark-option"]}
                                              if "job-bookmark-option" in values else {})
