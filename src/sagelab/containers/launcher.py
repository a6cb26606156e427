"""Runs a user script the way `python3 <script> <args>` would in a SageMaker container.

`python -m sagelab.containers.launcher <opt-ml folder> <script | -m module | -c code> [args...]`: the script
process dies with its job process, `/opt/ml/...` paths in its own code are mapped onto the job's folder
(see `sagelab.containers.paths`), and then the script runs as `__main__` with the arguments as `sys.argv`.
"""

from __future__ import annotations

import os
import runpy
import sys
import traceback

from sagelab.compute.lifetime import die_with_parent


def _run(command: list[str]) -> None:
    if command[0] == "-m":
        sys.argv = [command[1], *command[2:]]
        runpy.run_module(command[1], run_name="__main__", alter_sys=True)
    elif command[0] == "-c":
        sys.argv = ["-c", *command[2:]]
        exec(compile(command[1], "<string>", "exec"), {"__name__": "__main__"})  # noqa: S102 - the user's code
    else:
        script = command[0]
        sys.argv = [script, *command[1:]]
        sys.path[0] = os.path.dirname(os.path.abspath(script))
        runpy.run_path(script, run_name="__main__")


def main(argv: list[str]) -> int:
    parent = os.getppid()
    die_with_parent()
    if os.getppid() != parent:  # the job process died before the signal was armed
        return 1
    root, command = argv[0], argv[1:]
    from sagelab.containers import paths

    paths.install(root)
    try:
        _run(command)
    except SystemExit:
        raise
    except BaseException as exc:  # noqa: BLE001 - printed like Python does, without the launcher's frames
        tb = exc.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename in (__file__, runpy.__file__):
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
