"""The local emulator's server process: moto's server (`python -m moto.server`'s own main and
arguments), with the stand-ins of local/refresh.py (instance refresh) and local/imports.py (import
snapshot) local/tasks.py (RunTask without instances) and local/schedules.py (Scheduler
schedules in CloudFormation) installed first in the same process. Run
as `python -m nixecs.local.server -H 127.0.0.1 -p PORT` by local/emulator.py."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from moto import server

    from . import imports, refresh, schedules, tasks

    refresh.install()
    imports.install()
    tasks.install()
    schedules.install()
    server.main(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
