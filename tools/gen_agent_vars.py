#!/usr/bin/env python3
"""Generate the table of environment variables the ECS agent reads.

Reads the agent's source at a named tag with `git show` (no work tree needed) and writes
two files with the same names, so that both ends check `extra` against one list:

- tools/src/nixecs/agent_vars.py  (the fleet loader and the host's `nixecs apply`)
- modules/agent-vars.json          (modules/ecs-host.nix, `lib.importJSON`)

Which names count as "read by the agent" (aws/amazon-ecs-agent at AGENT_REF):
- every `ECS_*`, `NON_ECS_*` and `NONECS_*` string literal in agent/config/*.go, the package
  that turns the environment into the agent's Config (config.go `environmentConfig`,
  parse.go, config_unix.go, parse_linux.go ...), without tests and without the files built
  only for other systems (`*_windows.go`, `*_unsupported.go`, `*_unknown.go`);
- the `*_ENV_VAR` constants of ecs-agent/logger/log.go (ECS_LOGLEVEL, ECS_LOGFILE, ...),
  which the logger reads itself;
- every other `os.Getenv(X)` / `os.LookupEnv(X)` of the agent's own Linux code (agent/ and
  ecs-agent/, without vendor/, tests, integration-test helpers and agent/version/gen, a
  build-time program), X a string literal or a constant of the same file: e.g.
  agent/api/task/task.go `pauseLabelsEnvVar` (ECS_PAUSE_LABELS), agent/app/run.go
  (ECS_AGENT_HEALTHCHECK_HOST), ecs-agent/credentials/providers (ECS_ALTERNATE_CREDENTIAL_PROFILE).

Which of them this host honours: every one but those of NEEDS below, which name a feature
the ECS-optimized AMI provides around the agent (ecs-init, its packages, its paths) and a
nixecs host does not. Each entry says what is missing, what the agent then does, and the
supported way; the generator fails when an entry names a variable the agent no longer reads.

Usage: gen_agent_vars.py [--check] AGENT_GIT_DIR
  (e.g. the mirror the `fetch` tool made: /work/.mirror/aws+amazon-ecs-agent/repo).
  --check compares instead of writing and exits 1 when the committed files differ.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

AGENT_REPO = "aws/amazon-ecs-agent"
AGENT_REF = "v1.105.0"
ROOT = Path(__file__).resolve().parents[1]
PY_OUT = ROOT / "tools" / "src" / "nixecs" / "agent_vars.py"
JSON_OUT = ROOT / "modules" / "agent-vars.json"

# Variables whose feature a nixecs host does not provide: name -> (what it needs, message).
# Read at AGENT_REF; paths are aws/amazon-ecs-agent's. The message is the one both ends
# show (settings.py check_extra, modules/lib/agent-environment.nix), so it says the way out.
_AWSVPC = (
    "task networking (awsvpc)",
    "needs the pause image tarball /images/amazon-ecs-pause.tar and the ECS CNI plugins in "
    "/amazon-ecs-cni-plugins (agent/config/config.go pauseContainerTarballPath, "
    "defaultCNIPluginsPath), which this host does not have: with ECS_ENABLE_TASK_ENI the "
    "agent exits 5 at start (agent/app/agent.go doInit); use network_mode bridge or host",
)
_GPU = (
    "NVIDIA GPUs",
    "needs the NVIDIA driver, Docker's nvidia runtime and /var/lib/ecs/gpu/nvidia-gpu-info.json "
    "(the agent reads it at start, agent/gpu/nvidia_gpu_manager_unix.go Initialize: without "
    "it no GPUs, and one it cannot parse stops the agent, agent/app/agent.go doInit), which a "
    "host has only with nixecs.ecs.gpu.enable, and that option sets this variable itself: "
    "enable it on the host and give the group `gpu: true` instead",
)
NEEDS: dict[str, tuple[str, str]] = {
    "ECS_ENABLE_TASK_ENI": _AWSVPC,
    "ECS_ENABLE_HIGH_DENSITY_ENI": _AWSVPC,
    "ECS_AWSVPC_BLOCK_IMDS": _AWSVPC,
    "ECS_AWSVPC_ADDITIONAL_LOCAL_ROUTES": _AWSVPC,
    "ECS_CNI_PLUGINS_PATH": _AWSVPC,
    "ECS_ENABLE_GPU_SUPPORT": _GPU,
    "ECS_NVIDIA_RUNTIME": _GPU,
    "ECS_ENABLE_INF_SUPPORT": (
        "AWS Inferentia",
        "needs the Neuron driver and runtime (agent/api/task/task.go RequireNeuronRuntime), "
        "which this host does not install; run Inferentia tasks on an ECS-optimized "
        "Inferentia AMI",
    ),
    "ECS_VOLUME_PLUGIN_CAPABILITIES": (
        "the ECS volume plugin",
        "advertises volume plugin capabilities (efsAuth: agent/app/agent_capability.go) that "
        "need ecs-init's amazon-ecs-volume-plugin (ecs-init/docker/docker.go sets "
        "'[\"efsAuth\"]' beside it), which this host does not run; EFS volumes with IAM "
        "authorization or transit encryption are not available here",
    ),
    "ECS_GMSA_SUPPORTED": (
        "gMSA (credentials-fetcher)",
        "needs the credentials-fetcher daemon and its socket (agent/config/parse_linux.go "
        "parseGMSACapability), which this host does not run; gMSA is not available here",
    ),
    "ECS_DOMAIN_JOINED_LINUX_INSTANCE": (
        "gMSA (credentials-fetcher)",
        "only matters with gMSA, which needs the credentials-fetcher daemon "
        "(agent/config/parse_linux.go parseGMSACapability); gMSA is not available here",
    ),
    "ECS_SELINUX_CAPABLE": (
        "SELinux",
        "advertises SELinux labels to ECS (agent/app/agent_capability.go), and NixOS has no "
        "SELinux: tasks with SELinux docker_security_options would be placed here and fail",
    ),
    "ECS_APPARMOR_CAPABLE": (
        "AppArmor",
        "advertises AppArmor profiles to ECS (agent/app/agent_capability.go), and nixecs does "
        "not load Docker's AppArmor profiles: tasks asking for one would be placed here and fail",
    ),
    "ECS_EXTERNAL": (
        "ECS Anywhere",
        "registers the host as an external (ECS Anywhere) instance with SSM credentials "
        "(agent/app/agent.go), which a nixecs EC2 instance is not; leave it unset",
    ),
    "ECS_ALTERNATE_CREDENTIAL_PROFILE": (
        "ECS Anywhere",
        "selects the profile of the rotating shared credentials an external (ECS Anywhere) "
        "instance gets from SSM (ecs-agent/credentials/providers/"
        "rotating_shared_credentials_provider_v2.go), and a nixecs EC2 instance uses its "
        "instance role; leave it unset",
    ),
    "ECS_PAUSE_LABELS": (
        "the ECS pause container image",
        "labels the pause containers of awsvpc tasks and Service Connect (agent/api/task/task.go "
        "dockerConfig), which need the pause image tarball /images/amazon-ecs-pause.tar "
        "(agent/config/config.go pauseContainerTarballPath) this host does not have; use "
        "network_mode bridge or host",
    ),
    "ECS_AGENT_HEALTHCHECK_HOST": (
        "ecs-init's agent container",
        "is read only by `agent --healthcheck` (agent/app/run.go), the Docker health check of "
        "the agent's container on the ECS-optimized AMI; here the agent is a systemd unit "
        "(Restart=on-failure) and nothing runs that check; leave it unset",
    ),
}

NAME_RE = re.compile(r'"((?:ECS|NON_ECS|NONECS)_[A-Z0-9_]+)"')
LOGGER_RE = re.compile(r'^\s*[A-Z_]+_ENV_VAR\s*=\s*"([A-Z0-9_]+)"', re.MULTILINE)
OTHER_SYSTEMS = ("_windows.go", "_unsupported.go", "_unknown.go", "_test.go")
GETENV_RE = re.compile(r"os\.(?:Getenv|LookupEnv)\(\s*([A-Za-z_][A-Za-z0-9_]*|\"[^\"]*\")\s*\)")
# Not the agent at run time: test helpers built with the integration tag, a go:generate program.
NOT_THE_AGENT = re.compile(r"(^|/)(vendor|version/gen)/|integ|_testutil\.go$")


def git(git_dir: str, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", git_dir, *args], capture_output=True, text=True, check=True, timeout=60
    ).stdout


def extract(git_dir: str, ref: str = AGENT_REF) -> tuple[str, list[str], list[str]]:
    """(commit, source files read, sorted variable names)."""
    commit = git(git_dir, "rev-parse", f"{ref}^{{commit}}").strip()
    files = [
        f
        for f in git(git_dir, "ls-tree", "--name-only", commit, "agent/config/").split()
        if f.endswith(".go") and not f.endswith(OTHER_SYSTEMS)
    ]
    names: set[str] = set()
    for path in files:
        names.update(NAME_RE.findall(git(git_dir, "show", f"{commit}:{path}")))
    logger = "ecs-agent/logger/log.go"
    names.update(LOGGER_RE.findall(git(git_dir, "show", f"{commit}:{logger}")))
    elsewhere: list[str] = []
    for path in getenv_files(git_dir, commit):
        found = {
            n
            for n in getenv_names(git(git_dir, "show", f"{commit}:{path}"))
            if NAME_RE.fullmatch(f'"{n}"')
        }
        if path not in files and path != logger and found - names:
            elsewhere.append(path)
        names.update(found)
    gone = sorted(set(NEEDS) - names)
    if gone:
        # An entry for a variable the agent no longer reads would hide a renamed one.
        raise SystemExit(f"NEEDS names variables {AGENT_REF} does not read: {', '.join(gone)}")
    return commit, [*files, logger, *elsewhere], sorted(names)


def getenv_files(git_dir: str, commit: str) -> list[str]:
    """The agent's own Linux Go files that read the environment (agent/, ecs-agent/)."""
    listed = git(
        git_dir,
        "grep",
        "-l",
        "-E",
        r"os\.(Getenv|LookupEnv)\(",
        commit,
        "--",
        "agent/*.go",
        "ecs-agent/*.go",
        ":!*/vendor/*",
    )
    paths = sorted(line.split(":", 1)[1] for line in listed.splitlines())
    return [p for p in paths if not p.endswith(OTHER_SYSTEMS) and not NOT_THE_AGENT.search(p)]


def getenv_names(text: str) -> set[str]:
    """Names a Go file passes to os.Getenv/os.LookupEnv: literals, or its own constants."""
    found: set[str] = set()
    for argument in GETENV_RE.findall(text):
        if argument.startswith('"'):
            found.add(argument.strip('"'))
            continue
        constant = re.search(rf'^\s*{argument}\s*(?:string\s*)?=\s*"([^"]*)"', text, re.MULTILINE)
        if constant:
            found.add(constant.group(1))
    return found


def render(commit: str, files: list[str], names: list[str]) -> tuple[str, str]:
    sources = "".join(f"#   {f}\n" for f in files)
    lines = "".join(f'        "{n}",\n' for n in names)
    needs = "".join(
        f"    {json.dumps(n)}: (\n        {json.dumps(NEEDS[n][0])},\n"
        f"        {json.dumps(NEEDS[n][1])},\n    ),\n"
        for n in sorted(NEEDS)
    )
    py = (
        "# Generated by tools/gen_agent_vars.py; do not edit.\n"
        f"# The environment variables the ECS agent reads: {AGENT_REPO} {AGENT_REF}\n"
        f"# (commit {commit}), from:\n{sources}"
        '"""Names of the environment variables the ECS agent reads (generated)."""\n\n'
        f'AGENT_REPO = "{AGENT_REPO}"\n'
        f'AGENT_REF = "{AGENT_REF}"\n'
        f'AGENT_COMMIT = "{commit}"\n\n'
        f"AGENT_VARIABLES = frozenset(\n    (\n{lines}    )\n)\n\n"
        "# Variables whose feature this host does not provide: name -> (what it needs, why and\n"
        "# the supported way). Every other variable of AGENT_VARIABLES is honoured here.\n"
        f"AGENT_NEEDS = {{\n{needs}}}\n"
    )
    document = {
        "generator": "tools/gen_agent_vars.py",
        "repository": AGENT_REPO,
        "ref": AGENT_REF,
        "commit": commit,
        "sources": files,
        "variables": names,
        "honoured": [n for n in names if n not in NEEDS],
        "needs": {n: {"feature": NEEDS[n][0], "message": NEEDS[n][1]} for n in sorted(NEEDS)},
    }
    return py, json.dumps(document, indent=2) + "\n"


def main(argv: list[str]) -> int:
    check = "--check" in argv
    args = [a for a in argv if a != "--check"]
    if len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    py, js = render(*extract(args[0]))
    if check:
        stale = [str(p) for p, text in ((PY_OUT, py), (JSON_OUT, js)) if p.read_text() != text]
        if stale:
            print("out of date (run tools/gen_agent_vars.py):", *stale, file=sys.stderr)
            return 1
        return 0
    for path, text in ((PY_OUT, py), (JSON_OUT, js)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)  # atomic: a reader never sees half a table
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
