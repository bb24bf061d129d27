"""`nixecs apply`: the boot-time entry point, dispatched by `nixecs.__main__` before click.

It runs on every boot of the smallest instances, so it imports only the standard library
(`os`, `_json`, `_socket`, `time`) and nixecs.settings/formats/atomic — never click, yaml,
jinja2, boto3, dataclasses or typing (DESIGN §10/§11; a test checks the import list). Hence
the small hand-written option parser: argparse alone costs more than the rest of the run.

Exit codes (DESIGN §6): 0 applied or nothing to do; 1 operational failure (IMDS, rebuild,
script, file system); 2 invalid userdata or usage. Log lines and the one-line error go to
stderr, which systemd sends to the journal.
"""

from __future__ import annotations

import os
import sys

EXIT_OK = 0  # the same values as nixecs.diagnostics, which imports dataclasses
EXIT_FAILURE = 1
EXIT_INVALID = 2
# --userdata FILE is read up to the bound of an IMDS reply (imds.MAX_RESPONSE; a test keeps
# the two equal): /dev/zero must not fill the memory. Gzip is bounded by formats.MAX_INFLATED.
MAX_INPUT = 2 * 1024 * 1024

USAGE = """\
usage: nixecs apply [--imds URL] [--userdata FILE] [--root DIR] [--rebuild-command CMD]
                    [--run-scripts] [--state-dir DIR] [--attempts N] [--backoff SECONDS] [--timeout SECONDS]
                    [--deadline SECONDS] [--rebuild-timeout SECONDS]

Apply this instance's EC2 userdata (settings, nix or script) at boot.

  --imds URL              IMDSv2 endpoint (default http://169.254.169.254)
  --userdata FILE         read the userdata from FILE instead of IMDS
  --root DIR              re-root every path written (tests, `make demo`)
  --rebuild-command CMD   run after a changed nix configuration (default `nixos-rebuild switch`;
                          with --root, nix userdata is refused unless this is given)
  --run-scripts           with --root, run script userdata anyway (it runs on this machine)
  --state-dir DIR         where the applied state lives (default /var/lib/nixecs, re-rooted)
  --attempts N            IMDS attempts before giving up (default 6)
  --backoff SECONDS       first retry delay, doubled each retry up to 4s (default 0.25)
  --timeout SECONDS       IMDS timeout per request as a whole: connect, send, every read (default 2)
  --deadline SECONDS      total time for everything but a nix rebuild, script userdata included;
                          then exit 1 naming the step (default 120)
  --rebuild-timeout SECONDS
                          time for the nix rebuild, then it is killed (default 1800)

exit status: 0 applied or nothing to do, 1 operational failure, 2 invalid userdata or usage
"""

_GLOBAL_VALUE_OPTIONS = frozenset({"--region", "--profile", "--endpoint-url", "--output"})
_VALUE_OPTIONS = frozenset(
    {
        "--imds",
        "--userdata",
        "--root",
        "--rebuild-command",
        "--state-dir",
        "--attempts",
        "--backoff",
        "--timeout",
        "--deadline",
        "--rebuild-timeout",
    }
)


class UsageError(Exception):
    pass


def log(line: str) -> None:
    print(f"nixecs apply: {line}", file=sys.stderr, flush=True)


def parse_args(argv: list[str]) -> dict[str, str]:
    """Options after the `apply` word (global options before it are skipped)."""
    args = list(argv)
    # Skip `nixecs`'s global options and the subcommand word itself.
    if "apply" in args:
        while args[0] != "apply":
            if args.pop(0) in _GLOBAL_VALUE_OPTIONS and args and args[0] != "apply":
                args.pop(0)
        args.pop(0)
    options: dict[str, str] = {}
    while args:
        arg = args.pop(0)
        if arg in ("-h", "--help"):
            options["help"] = "1"
            continue
        if arg == "--run-scripts":
            options["run-scripts"] = "1"
            continue
        name, eq, value = arg.partition("=")
        if name not in _VALUE_OPTIONS:
            raise UsageError(f"unknown option or argument {arg!r}")
        if not eq:
            if not args:
                raise UsageError(f"{name} needs a value")
            value = args.pop(0)
        options[name[2:]] = value
    return options


def _number(options: dict[str, str], name: str, default: float, integer: bool = False) -> float:
    text = options.get(name)
    if text is None:
        return default
    try:
        value = int(text) if integer else float(text)
    except ValueError:
        raise UsageError(f"--{name} must be a number, got {text!r}") from None
    # `not (0 <= value < 1e6)` also refuses NaN and infinity.
    if not (0 <= value < 1e6) or (integer and value < 1):
        raise UsageError(f"--{name} is out of range: {text}")
    return value


def read_bounded(path: str) -> bytes:
    """At most MAX_INPUT bytes of `path` ("-": stdin); UsageError when there is more."""
    if path == "-":
        data = sys.stdin.buffer.read(MAX_INPUT + 1)
    else:
        with open(path, "rb") as handle:
            data = handle.read(MAX_INPUT + 1)
    if len(data) > MAX_INPUT:
        raise UsageError(f"{path} is larger than {MAX_INPUT} bytes: not userdata")
    return data


def run(options: dict[str, str]) -> int:
    from .apply import DEFAULT_REBUILD_COMMAND, Applier, ApplyFailed, ApplyInvalid, Layout
    from .deadline import APPLY_SECONDS, REBUILD_SECONDS, Deadline, DeadlineExceeded

    attempts = int(_number(options, "attempts", 6, integer=True))
    backoff = _number(options, "backoff", 0.25)
    timeout = _number(options, "timeout", 2.0)
    deadline = Deadline("nixecs apply", _number(options, "deadline", APPLY_SECONDS))
    rebuild_timeout = _number(options, "rebuild-timeout", REBUILD_SECONDS)
    root = options.get("root", "/")
    layout = Layout(root, options.get("state-dir"))
    # Re-rooted runs (tests, `make demo`) must not switch or script the real machine: nix
    # userdata needs an explicit --rebuild-command there, script userdata --run-scripts.
    rerooted = os.path.realpath(root) != "/"
    applier = Applier(
        layout,
        rebuild_command=options.get(
            "rebuild-command", None if rerooted else DEFAULT_REBUILD_COMMAND
        ),
        run_scripts=not rerooted or "run-scripts" in options,
        log=log,
        deadline=deadline,
        rebuild_timeout=rebuild_timeout,
    )

    userdata_file = options.get("userdata")
    if userdata_file is not None:
        source = userdata_file
        try:
            data: bytes | None = read_bounded(userdata_file)
        except OSError as error:
            raise UsageError(f"cannot read {userdata_file}: {error.strerror}") from None
    else:
        from .imds import DEFAULT_ENDPOINT, ImdsClient, ImdsError, ImdsInvalid

        endpoint = options.get("imds", DEFAULT_ENDPOINT)
        try:
            client = ImdsClient(
                endpoint,
                attempts=attempts,
                backoff=backoff,
                timeout=timeout,
                log=log,
                deadline=deadline,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        source = f"{endpoint.rstrip('/')}/latest/user-data"
        try:
            data = client.userdata()
        except ImdsInvalid as error:  # a retry would not mend it: like invalid userdata
            log(f"error: cannot get userdata: {error}; nothing changed")
            return EXIT_INVALID
        except (ImdsError, DeadlineExceeded) as error:
            log(f"error: cannot get userdata: {error}; nothing changed")
            return EXIT_FAILURE

    try:
        summary = applier.apply(data, source)
    except ApplyInvalid as error:
        log(f"error: {error}; nothing changed")
        return EXIT_INVALID
    except ApplyFailed as error:
        log(f"error: {error}")
        return EXIT_FAILURE
    except OSError as error:
        where = f" {error.filename}" if error.filename else ""
        log(f"error: cannot write{where}: {error.strerror or error}")
        return EXIT_FAILURE
    log(summary)
    return EXIT_OK


def main(argv: list[str]) -> int:
    try:
        options = parse_args(argv)
        if "help" in options:
            sys.stdout.write(USAGE)
            return EXIT_OK
        return run(options)
    except UsageError as error:
        log(f"error: {error} (see nixecs apply --help)")
        return EXIT_INVALID
    except KeyboardInterrupt:
        log("interrupted")
        return 130
    except Exception as error:  # a bug: one line in the journal, never a traceback
        log(f"internal error: {type(error).__name__}: {error}")
        return EXIT_FAILURE
