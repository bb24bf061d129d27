"""Entry point of the `nixecs` console script.

`nixecs apply` runs at every boot on the smallest instances, so it must not pay for click,
the YAML loader or boto3 (DESIGN §11, invariant 1): it is dispatched here, before anything
else is imported, to the lean `nixecs.host.boot` module. `nixecs validate`, an editor's command
run on every save, skips click the same way (nixecs.fast, issue 18 item 4) unless its command
line needs click (`--help`, `--aws`, a usage error). Everything else goes to the click CLI.
"""

from __future__ import annotations

import sys

# Global options that take a value (cli.py's; tests/test_cli_lazy.py holds the two together);
# used only to find the subcommand's name.
_VALUE_OPTIONS = frozenset({"--region", "--profile", "--endpoint-url", "--output", "--env"})


def _subcommand(argv: list[str]) -> str | None:
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in _VALUE_OPTIONS:
            skip = True
            continue
        if arg.startswith("-"):
            continue
        return arg
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    command = _subcommand(args)
    if argv is None and command == "render":
        # A one-shot process that builds acyclic data (nixecs.collector): the cyclic
        # collector stays off until it exits. Re-enabled after the render, its first
        # collection would walk everything the render built, once, just before the exit
        # (~5% of a 1,000-group render's CPU). In-process callers (tests) keep theirs.
        import gc

        gc.disable()
    if command == "apply":
        from .host.boot import main as boot_main

        return boot_main(args)
    if "validate" in args:  # nixecs.fast reads the command line itself (--env too)
        from .fast import run as run_fast

        done = run_fast(args)
        if done is not None:
            return done
    from .cli import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
