"""`nixecs validate` without click (issue 18, item 4).

`validate` is an editor's command, run on every save: importing click costs it more than
checking a small fleet does. `__main__` hands the command line here first. A command line
this module reads exactly as click would (the global options before or after `validate`,
and one fleet file) runs `validate.validate_fleet`, the function the click command calls;
anything else — `--help`, `--version`, `--aws`, an unknown or repeated-style option, a usage
error, a directory — returns None, and click handles it, its messages and exit codes.
Standard library only (and what `validate` itself imports).
"""

from __future__ import annotations

import gc
import os
import stat

from .globals import Globals

# The group's options that take a value (cli.cli), and the environment variable each reads
# when not given (click ignores an empty one).
_VALUED = {
    "--region": "AWS_REGION",
    "--profile": "AWS_PROFILE",
    "--endpoint-url": "NIXECS_ENDPOINT_URL",
    "--output": None,
    "--env": "NIXECS_ENV",
}
_OUTPUTS = ("text", "json")


def parse(argv: list[str]) -> tuple[Globals, str] | None:
    """The globals and the fleet file of `validate` as click would read them, or None when
    the command line is anything but a plain `validate FLEET` with global options."""
    given: dict[str, str] = {}
    verbose = 0
    positional: list[str] = []
    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        name, eq, inline = arg.partition("=")
        if name in _VALUED:
            if eq:
                value = inline
            elif index < len(argv):
                value = argv[index]
                index += 1
            else:
                return None  # click: "Option '--env' requires an argument."
            if value.startswith("-") and not eq:
                return None  # click's reading of a value like this is its own business
            given[name] = value  # the last one wins, as in click
        elif arg == "--verbose" or (len(arg) > 1 and arg.strip("v") == "-"):
            verbose += 1 if arg == "--verbose" else len(arg) - 1
        elif arg.startswith("-"):
            return None  # --help, --version, --aws, `--`, `-`, a typo: click's
        else:
            positional.append(arg)
    if positional[:1] != ["validate"] or len(positional) != 2:
        return None
    if given.get("--output", "text") not in _OUTPUTS:
        return None  # click: "Invalid value for '--output'"
    fleet = positional[1]
    try:
        if stat.S_ISDIR(os.stat(fleet).st_mode):
            return None  # click.Path(dir_okay=False): "… is a directory."
    except (OSError, ValueError):
        pass  # a missing file is the loader's located error, as under click

    def option(name: str) -> str | None:
        if name in given:
            return given[name]
        variable = _VALUED[name]
        return (os.environ.get(variable) or None) if variable else None

    g = Globals(
        region=option("--region"),
        profile=option("--profile"),
        endpoint_url=option("--endpoint-url"),
        output=given.get("--output", "text"),
        verbose=verbose,
        region_explicit="--region" in given,
        env=option("--env"),
    )
    return g, fleet


def run(argv: list[str]) -> int | None:
    """Run `validate` when `parse` reads the command line; None: not ours, ask click."""
    parsed = parse(argv)
    if parsed is None:
        return None
    g, fleet = parsed
    from .diagnostics import DeadlineReached, Terminated
    from .outcome import exit_status
    from .validate import validate_fleet

    # as cli.run: a short-lived process building large acyclic structures
    thresholds = gc.get_threshold()
    gc.set_threshold(200_000, 20, 100)
    try:
        return validate_fleet(g, fleet, against_aws=False, create_roles=False)
    except (Exception, KeyboardInterrupt, Terminated, DeadlineReached) as error:
        return exit_status(error, verbose=g.verbose > 0)
    finally:
        gc.set_threshold(*thresholds)
