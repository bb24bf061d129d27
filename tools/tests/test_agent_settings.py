"""Agent settings are what the ECS agent (and ECS) accept, on all three ends.

The fleet loader refuses a bad `ecs:` value with a located error, the host schema
(`nixecs apply`) refuses the same document, and modules/lib/agent-environment.nix — the
file modules/ecs-host.nix takes its checks and its environment from — is evaluated with
real Nix and must agree with tools/src/nixecs/settings.py. The environment files of both
ends are parsed by systemd's own env-file parser. The rules themselves are cited in
settings.py and agent-environment.nix (aws/amazon-ecs-agent v1.105.0, ECS API reference).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from conftest import EXAMPLES, REPO, require
from nixecs import agent_vars, settings
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import Fleet, load_fleet, parse

AGENT_ENV_NIX = REPO / "modules" / "lib" / "agent-environment.nix"
AGENT_VARS_JSON = REPO / "modules" / "agent-vars.json"
GENERATOR = REPO / "tools" / "gen_agent_vars.py"

FLEET = """\
version: 1
region: us-east-1
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {{min: 1, max: 3}}
        ecs: {ecs}
"""
ECS_LINE = 12  # the line of `ecs:` above

MANY_TAGS = {f"k{i}": "v" for i in range(51)}
# A docker-type ECS_ENGINE_AUTH_DATA (agent/dockerclient/dockerauth/doc.go); the password is
# looked for in every message.
REGISTRY_PASSWORD = "s3cr3t-registry-pass"
REGISTRY_AUTH = json.dumps(
    {"https://registry.example.com": {"username": "u", "password": REGISTRY_PASSWORD}}
)

# (ecs mapping, code, the offending key's path under ecs, whether the key is located)
INVALID: list[tuple[dict[str, object], str, tuple[str, ...], bool]] = [
    ({"reserved_memory_mib": 65536}, "E107", ("reserved_memory_mib",), False),
    ({"task_cleanup_wait": "0s"}, "E107", ("task_cleanup_wait",), False),
    ({"container_stop_timeout": "0m"}, "E107", ("container_stop_timeout",), False),
    ({"task_cleanup_wait": "999999999h"}, "E107", ("task_cleanup_wait",), False),
    ({"attributes": {"a@b": "x"}}, "E116", ("attributes", "a@b"), True),
    ({"attributes": {"a b": "x"}}, "E116", ("attributes", "a b"), True),
    ({"attributes": {"ok": " lead"}}, "E117", ("attributes", "ok"), False),
    ({"attributes": {"ok": "trail "}}, "E117", ("attributes", "ok"), False),
    ({"attributes": {"ok": "a$b"}}, "E117", ("attributes", "ok"), False),
    ({"attributes": {"ok": ""}}, "E117", ("attributes", "ok"), False),
    ({"attributes": {"x" * 129: "v"}}, "E116", ("attributes", "x" * 129), True),
    ({"tags": {"aws:team": "x"}}, "E116", ("tags", "aws:team"), True),
    ({"tags": {"AwS:team": "x"}}, "E116", ("tags", "AwS:team"), True),
    ({"tags": {"team": "AWS:x"}}, "E117", ("tags", "team"), False),
    ({"tags": {"team": "a$b"}}, "E117", ("tags", "team"), False),
    ({"tags": {"te{am": "x"}}, "E116", ("tags", "te{am"), True),
    ({"tags": {"": "x"}}, "E116", ("tags", ""), True),
    ({"tags": {"k" * 129: "x"}}, "E116", ("tags", "k" * 129), True),
    ({"tags": {"team": "v" * 257}}, "E117", ("tags", "team"), False),
    ({"tags": MANY_TAGS}, "E116", ("tags",), True),
    ({"extra": {"ECS_CLUSTER": "other"}}, "E119", ("extra", "ECS_CLUSTER"), True),
    ({"extra": {"ECS_RESERVED_MEMORY": "1"}}, "E119", ("extra", "ECS_RESERVED_MEMORY"), True),
    ({"extra": {"ECS_DATADIR": "/x"}}, "E119", ("extra", "ECS_DATADIR"), True),
    ({"extra": {"ECS_NOT_A_VARIABLE": "1"}}, "E118", ("extra", "ECS_NOT_A_VARIABLE"), True),
    ({"extra": {"PATH": "/bin"}}, "E118", ("extra", "PATH"), True),
    (
        {"extra": {"ECS_ENABLE_CONTAINER_METADATA": "true"}},
        "E107",
        ("extra", "ECS_ENABLE_CONTAINER_METADATA"),
        False,
    ),
    ({"extra": {"ECS_POLL_METRICS": True}}, "E103", ("extra", "ECS_POLL_METRICS"), False),
    # Features the host does not provide: any value, since the name alone is meaningless here.
    (
        {"extra": {"ECS_ENABLE_GPU_SUPPORT": "true"}},
        "E165",
        ("extra", "ECS_ENABLE_GPU_SUPPORT"),
        True,
    ),
    ({"extra": {"ECS_ENABLE_TASK_ENI": "false"}}, "E165", ("extra", "ECS_ENABLE_TASK_ENI"), True),
    (
        {"extra": {"ECS_VOLUME_PLUGIN_CAPABILITIES": '["efsAuth"]'}},
        "E165",
        ("extra", "ECS_VOLUME_PLUGIN_CAPABILITIES"),
        True,
    ),
    ({"extra": {"ECS_BACKEND_HOST": "a\nb"}}, "E107", ("extra", "ECS_BACKEND_HOST"), False),
    # Credentials never go in userdata: refused whatever the value's type (located, as
    # every E107, at the value).
    (
        {"extra": {"ECS_ENGINE_AUTH_DATA": REGISTRY_AUTH}},
        "E107",
        ("extra", "ECS_ENGINE_AUTH_DATA"),
        False,
    ),
    ({"extra": {"ECS_ENGINE_AUTH_DATA": 1}}, "E107", ("extra", "ECS_ENGINE_AUTH_DATA"), False),
]

VALID: list[dict[str, object]] = [
    {"reserved_memory_mib": 65535, "task_cleanup_wait": "1s", "container_stop_timeout": "1s"},
    {"task_cleanup_wait": "2562047h", "container_stop_timeout": "153722867m"},
    {"attributes": {"a\\b/c.d-e_f": "x@y:z w\\v", "A" * 128: "B" * 128}},
    {"tags": {"日本 key": "é ünï 値 ５", "a+b=c": "x@y:z/w", "empty": "", "k" * 128: "v" * 256}},
    {"tags": {f"k{i}": "v" for i in range(50)}},
    {"extra": {"ECS_IMAGE_CLEANUP_INTERVAL": "10m", "ECS_ENABLE_CONTAINER_METADATA": "false"}},
]


def fleet_text(ecs: dict[str, object]) -> str:
    # JSON is YAML 1.2 flow syntax: one line, so every location is on ECS_LINE.
    return FLEET.format(ecs=json.dumps(ecs, ensure_ascii=False))


def host_document(ecs: dict[str, object]) -> dict[str, object]:
    return {"version": 1, "cluster": "prod", "group": "web", "ecs": ecs}


@pytest.mark.parametrize(("ecs", "code", "where", "at_key"), INVALID)
def test_the_fleet_refuses_with_a_located_error(
    ecs: dict[str, object], code: str, where: tuple[str, ...], at_key: bool
) -> None:
    text = fleet_text(ecs)
    with pytest.raises(InvalidInput) as caught:
        parse(text, "fleet.yml")
    found = [d for d in caught.value.report.sorted() if d.code == code]
    assert found, caught.value.report.sorted()
    location = found[0].location
    assert (location.path, location.line) == ("fleet.yml", ECS_LINE)
    # The column points at the offending key (or its value) in the JSON flow mapping.
    rest = text.splitlines()[ECS_LINE - 1][location.column - 1 :]
    node: object = ecs
    for key in where:
        node = node[key]  # type: ignore[index]
    target = json.dumps(where[-1] if at_key else node, ensure_ascii=False)
    assert rest.startswith(target), (rest[:40], target)


@pytest.mark.parametrize(("ecs", "code", "where", "at_key"), INVALID)
def test_the_host_schema_refuses_the_same(
    ecs: dict[str, object], code: str, where: tuple[str, ...], at_key: bool
) -> None:
    with pytest.raises(settings.SettingsError) as caught:
        settings.parse_settings_object(host_document(ecs))
    assert [(i.code, i.path) for i in caught.value.issues] == [(code, ("ecs", *where))]


@pytest.mark.parametrize("ecs", VALID)
def test_values_the_agent_accepts_pass_both_ends(ecs: dict[str, object]) -> None:
    fleet = parse(fleet_text(ecs), "fleet.yml")
    group = fleet.group("prod/web")
    host = settings.parse_settings_object(host_document(ecs))
    assert host.ecs == group.ecs


def test_messages_say_what_the_agent_accepts() -> None:
    def message(ecs: dict[str, object]) -> str:
        with pytest.raises(InvalidInput) as caught:
            parse(fleet_text(ecs), "fleet.yml")
        return caught.value.report.sorted()[0].format()

    assert "at least 1s" in message({"task_cleanup_wait": "0s"})
    assert "default 3h" in message({"task_cleanup_wait": "0s"})
    assert "between 0 and 65535" in message({"reserved_memory_mib": 70000})
    assert "ecs.reserved_memory_mib" in message({"extra": {"ECS_RESERVED_MEMORY": "1"}})
    assert "the group's cluster" in message({"extra": {"ECS_CLUSTER": "x"}})
    assert "task metadata endpoint v4" in message(
        {"extra": {"ECS_ENABLE_CONTAINER_METADATA": "TRUE"}}
    )
    task_eni = message({"extra": {"ECS_ENABLE_TASK_ENI": "true"}})
    assert "/images/amazon-ecs-pause.tar" in task_eni and "exits 5" in task_eni
    assert "network_mode bridge or host" in task_eni
    assert "nvidia-gpu-info.json" in message({"extra": {"ECS_ENABLE_GPU_SUPPORT": "true"}})
    auth = message({"extra": {"ECS_ENGINE_AUTH_DATA": REGISTRY_AUTH}})
    assert "userdata" in auth and "ECS_AGENT_CONFIG_FILE_PATH" in auth and "secrets:" in auth
    assert REGISTRY_PASSWORD not in auth
    # The type of credentials alone is no secret.
    assert parse(fleet_text({"extra": {"ECS_ENGINE_AUTH_TYPE": "docker"}}), "fleet.yml")
    assert 'quote it, e.g. ECS_POLL_METRICS: "true"' in message(
        {"extra": {"ECS_POLL_METRICS": True}}
    )


def test_extra_reaches_the_agent_environment_and_typed_keys_win() -> None:
    host = settings.parse_settings_object(
        host_document({"log_level": "warn", "extra": {"ECS_IMAGE_CLEANUP_INTERVAL": "10m"}})
    )
    env = settings.agent_environment(host)
    assert env["ECS_IMAGE_CLEANUP_INTERVAL"] == "10m" and env["ECS_LOGLEVEL"] == "warn"
    # Even a record built around the schema cannot override a typed key.
    forced = settings.EcsSettings(log_level="warn", extra={"ECS_LOGLEVEL": "debug"})
    forced_env = settings.agent_environment(
        settings.HostSettings(cluster="c", group="g", ecs=forced)
    )
    assert forced_env["ECS_LOGLEVEL"] == "warn"
    # Settings userdata without `extra` stays as it was (no empty key).
    assert "extra" not in settings.EcsSettings().to_json()


# --- the Nix side: modules/lib/agent-environment.nix, evaluated with real Nix ------------


def nix_eval(nix_instantiate: str, expression: str) -> object:
    result = subprocess.run(
        [nix_instantiate, "--store", "dummy://", "--eval", "--strict", "--json", "-E", expression],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def nix_string(value: str) -> str:
    # JSON string syntax is valid Nix once `$` cannot start an interpolation.
    return json.dumps(value, ensure_ascii=False).replace("${", "\\${")


def nix_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return nix_string(value)
    if isinstance(value, list):
        return "[ " + " ".join(nix_value(v) for v in value) + " ]"
    assert isinstance(value, dict)
    return "{ " + " ".join(f"{nix_string(k)} = {nix_value(v)};" for k, v in value.items()) + " }"


def nix_cfg(host: settings.HostSettings) -> dict[str, object]:
    """The nixecs.ecs option values the nix userdata template sets for these settings."""
    ecs = host.ecs
    return {
        "cluster": host.cluster,
        "attributes": settings.instance_attributes(host.group, ecs),  # with nixecs.group
        "tags": ecs.tags,
        "spotDraining": ecs.spot_draining,
        "reservedMemoryMiB": ecs.reserved_memory_mib,
        "logLevel": ecs.log_level,
        "imagePullBehavior": ecs.image_pull_behavior,
        "taskCleanupWait": ecs.task_cleanup_wait,
        "containerStopTimeout": ecs.container_stop_timeout,
        "privileged": ecs.privileged,
        "extraEnvironment": ecs.extra,
        # Host options with their defaults (ecs-host.nix).
        "loggingDrivers": ["json-file", "syslog", "awslogs", "fluentd", "none"],
        "taskIamRole": True,
        "introspection": {"allowOffhost": False},
    }


def example_settings() -> list[settings.HostSettings]:
    fleets: list[Fleet] = [load_fleet(EXAMPLES / "fleet.yml"), load_fleet(EXAMPLES / "blog.yml")]
    tricky = {
        "attributes": {"a\\b": "x@y:z w", "tier": "web"},
        "tags": {"日本 key": "é ünï 値", "team": "payments", "empty": ""},
        "extra": {"ECS_BACKEND_HOST": 'quote" back\\slash `tick` ${x} $y é'},
        "reserved_memory_mib": 65535,
    }
    fleets.append(parse(fleet_text(tricky), "tricky.yml"))
    return [
        fleet.host_settings(group)
        for fleet in fleets
        for cluster in fleet.clusters.values()
        for group in cluster.groups.values()
    ]


JSON_VALUED = ("ECS_INSTANCE_ATTRIBUTES", "ECS_CONTAINER_INSTANCE_TAGS")


def comparable(env: dict[str, str]) -> dict[str, object]:
    # The two JSON encoders differ in escaping non-ASCII text only; the agent decodes both.
    return {k: json.loads(v) if k in JSON_VALUED else v for k, v in env.items()}


@pytest.mark.nix
def test_nix_module_environment_equals_the_settings_environment(nix_instantiate: str) -> None:
    hosts = example_settings()
    cfgs = "[ " + " ".join(nix_value(nix_cfg(h)) for h in hosts) + " ]"
    expression = (
        f"let e = import {AGENT_ENV_NIX}; in map (cfg: {{ "
        "settings = e.settingsEnvironment cfg // cfg.extraEnvironment; "
        "all = e.environment cfg; text = e.text cfg; }) " + cfgs
    )
    results = nix_eval(nix_instantiate, expression)
    assert isinstance(results, list) and len(results) == len(hosts)
    for host, result in zip(hosts, results, strict=True):
        python_env = settings.agent_environment(host)
        assert comparable(result["settings"]) == comparable(python_env), host.group
        # The baked file: the same values plus what the host adds, none of them overridden.
        host_only = set(result["all"]) - set(python_env)
        # ecs-init's JSON configuration path, a default `extra` may change.
        assert result["all"]["ECS_AGENT_CONFIG_FILE_PATH"] == python_env.get(
            "ECS_AGENT_CONFIG_FILE_PATH", "/etc/ecs/ecs.config.json"
        )
        host_only.discard("ECS_AGENT_CONFIG_FILE_PATH")
        assert host_only == {
            "ECS_DATADIR",
            "ECS_HOST_DATA_DIR",
            "ECS_LOGFILE",
            "ECS_AUDIT_LOGFILE",
            "ECS_UPDATE_DOWNLOAD_DIR",
            "ECS_UPDATES_ENABLED",
            "ECS_AVAILABLE_LOGGING_DRIVERS",
            "ECS_ENABLE_TASK_IAM_ROLE",
            "ECS_ENABLE_TASK_IAM_ROLE_NETWORK_HOST",
            "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS",
            "ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE",
        }
        # awslogs uses the execution role as on the ECS-optimized AMI (ecs-init sets it).
        assert result["all"]["ECS_ENABLE_AWSLOGS_EXECUTIONROLE_OVERRIDE"] == "true"
        assert result["all"]["ECS_AUDIT_LOGFILE"].startswith("/var/log/ecs/")
        # FireLens: ECS_HOST_DATA_DIR + "/data" must be the directory the agent writes to.
        assert result["all"]["ECS_HOST_DATA_DIR"] + "/data" == result["all"]["ECS_DATADIR"]
        assert set(host_only).isdisjoint(python_env)
        assert set(host_only) <= {
            *settings.HOST_VARIABLES,
            "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS",
        }


SYSTEMD_ENV_GENERATOR = Path(
    "/usr/lib/systemd/user-environment-generators/30-systemd-environment-d-generator"
)


def systemd_parse(tmp_path: Path, texts: list[str]) -> dict[str, str]:
    """Parse env files in order, later ones winning, with systemd's own parser.

    The environment.d generator reads `*.conf` files with the same parser as a unit's
    EnvironmentFile= (systemd src/basic/env-file.c load_env_file_pairs) and prints the
    merged result with double-quoted, backslash-escaped values. Unlike EnvironmentFile=
    it then expands `$X`, so callers keep `$` out of the values they compare.
    """
    require(SYSTEMD_ENV_GENERATOR.exists(), f"{SYSTEMD_ENV_GENERATOR} (Debian: systemd)")
    directory = tmp_path / "environment.d"
    directory.mkdir(parents=True)
    for index, text in enumerate(texts):
        (directory / f"{index:02d}.conf").write_text(text, encoding="utf-8")
    out = subprocess.run(
        [str(SYSTEMD_ENV_GENERATOR)],
        env={"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    result: dict[str, str] = {}
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if len(value) >= 2 and value[0] == value[-1] == '"':
            chars, index = [], 1
            while index < len(value) - 1:
                if value[index] == "\\":
                    index += 1
                chars.append(value[index])
                index += 1
            value = "".join(chars)
        result[key] = value
    # The system's own environment.d files add PATH and the like: keep the agent's.
    return {k: v for k, v in result.items() if k.startswith("ECS_")}


@pytest.mark.nix
def test_systemd_reads_both_env_files_as_meant(nix_instantiate: str, tmp_path: Path) -> None:
    hosts = [h for h in example_settings() if "$" not in json.dumps(h.to_json())]
    hosts.append(
        settings.parse_settings_object(
            host_document(
                {
                    "attributes": {"q": "a\\b c"},
                    "tags": {"t": "x y=z"},
                    "extra": {"ECS_BACKEND_HOST": 'q"uote `tick` back\\slash'},
                }
            )
        )
    )
    cfgs = "[ " + " ".join(nix_value(nix_cfg(h)) for h in hosts) + " ]"
    texts = nix_eval(nix_instantiate, f"let e = import {AGENT_ENV_NIX}; in map e.text {cfgs}")
    assert isinstance(texts, list)
    for index, (host, baked) in enumerate(zip(hosts, texts, strict=True)):
        python_env = settings.agent_environment(host)
        runtime = settings.format_env_file(python_env)
        case = tmp_path / str(index)
        # Each file alone parses to exactly the values meant.
        assert systemd_parse(case / "py", [runtime]) == python_env
        nix_env = systemd_parse(case / "nix", [baked])
        assert {k: nix_env[k] for k in python_env} == python_env
        # In the unit's order: baked, then appended lines, then the runtime file.
        # ECS_UPDATE_DOWNLOAD_DIR is baked only; ECS_LOGLEVEL is in all three files.
        appended = "ECS_LOGLEVEL=crit\nECS_UPDATE_DOWNLOAD_DIR=/appended\n"
        assert "ECS_UPDATE_DOWNLOAD_DIR" not in python_env
        merged = systemd_parse(case / "all", [baked, appended, runtime])
        assert merged["ECS_UPDATE_DOWNLOAD_DIR"] == "/appended"  # appended over baked
        assert merged["ECS_LOGLEVEL"] == python_env["ECS_LOGLEVEL"]  # runtime over appended
        assert merged["ECS_DATADIR"] == "/var/lib/ecs/data"  # baked host values survive


ATTRIBUTE_NAMES = ["a", "a.b", "a\\b", "a/b", "a-b_c", "a@b", "a b", "a:b", "", "x" * 128]
ATTRIBUTE_VALUES = ["a b", "x@y:z", "a\\b", " a", "a ", "a$b", "a]b", "", "v" * 129, "é"]
TAG_TEXTS = ["team", "日本 key", "a+b=c", "x@y:z/w", "a$b", 'a"b', "x{", "a\\b", "a\tb", "aws:x"]


@pytest.mark.nix
def test_the_agents_json_configuration_is_where_ecs_init_puts_it(nix_instantiate: str) -> None:
    # ecs-init: ECS_AGENT_CONFIG_FILE_PATH=/etc/ecs/ecs.config.json; the native agent's own
    # default is /etc/ecs_container_agent/config.json. A default: extra may point elsewhere
    # (e.g. at a secret holding registry credentials), at both ends.
    own = "/run/nixecs/secrets/registry-auth"
    cfgs = [
        {**nix_cfg(example_settings()[0]), "extraEnvironment": extra}
        for extra in ({}, {"ECS_AGENT_CONFIG_FILE_PATH": own})
    ]
    paths = nix_eval(
        nix_instantiate,
        f"let e = import {AGENT_ENV_NIX}; in map (cfg: let x = e.environment cfg; in "
        f"[ x.ECS_AGENT_CONFIG_FILE_PATH (e.overriddenExtra cfg.extraEnvironment) ]) "
        f"{nix_value(cfgs)}",
    )
    assert paths == [["/etc/ecs/ecs.config.json", []], [own, []]]
    host = settings.parse_settings_object(
        host_document({"extra": {"ECS_AGENT_CONFIG_FILE_PATH": own}})
    )
    assert settings.agent_environment(host)["ECS_AGENT_CONFIG_FILE_PATH"] == own


@pytest.mark.nix
def test_nix_and_python_checks_agree(nix_instantiate: str) -> None:
    extras = [
        {"ECS_CLUSTER": "x"},
        {"ECS_DATADIR": "/x"},
        {"ECS_ENGINE_AUTH_TYPE": "docker"},
        {"ECS_NOT_A_VARIABLE": "1"},
        {"ECS_ENABLE_CONTAINER_METADATA": "True"},
        {"ECS_ENABLE_CONTAINER_METADATA": "false"},
        {"ECS_ENABLE_GPU_SUPPORT": "true"},
        {"ECS_NVIDIA_RUNTIME": "nvidia"},
        {"ECS_ENABLE_TASK_ENI": "false"},
        {"ECS_EXTERNAL": "true"},
        {"ECS_ENGINE_AUTH_DATA": REGISTRY_AUTH},
    ]
    durations = ["0s", "1s", "0001s", "3h", "2562047h", "2562048h", "999999999m", "153722867m"]
    expression = (
        f"let e = import {AGENT_ENV_NIX}; in {{ "
        f"names = map e.validAttributeName {nix_value(ATTRIBUTE_NAMES)}; "
        f"values = map e.validAttributeValue {nix_value(ATTRIBUTE_VALUES)}; "
        f"tags = map (t: e.validTag t t) {nix_value(TAG_TEXTS)}; "
        f"durations = map e.agentHonoursDuration {nix_value(durations)}; "
        f"extras = map (x: e.overriddenExtra x != [ ] || e.unknownExtra x != [ ] "
        f"|| e.neededExtra x != [ ] || e.secretExtra x != [ ] || e.containerMetadataEnabled x) "
        f"{nix_value(extras)}; secrets = e.secretVariables; "
        "drivers = e.amiLoggingDrivers; known = e.knownLoggingDrivers; "
        "typed = builtins.attrNames e.typedVariables; }"
    )
    nix = nix_eval(nix_instantiate, expression)
    assert isinstance(nix, dict)

    def ok(ecs: dict[str, object]) -> bool:
        issues: list[settings.Issue] = []
        return settings.parse_ecs(ecs, ("ecs",), issues) is not None

    assert nix["names"] == [ok({"attributes": {n: "v"}}) for n in ATTRIBUTE_NAMES]
    assert nix["values"] == [ok({"attributes": {"n": v}}) for v in ATTRIBUTE_VALUES]
    assert nix["tags"] == [ok({"tags": {t: t}}) for t in TAG_TEXTS]
    assert nix["durations"] == [
        ok({"task_cleanup_wait": d, "container_stop_timeout": d}) for d in durations
    ]
    assert nix["extras"] == [not ok({"extra": x}) for x in extras]
    assert nix["secrets"] == sorted(settings.SECRET_VARIABLES)
    # Sanity: the corpus has both outcomes for every check.
    for key in ("names", "values", "tags", "durations", "extras"):
        assert set(nix[key]) == {True, False}, key
    assert nix["drivers"] == ["json-file", "syslog", "awslogs", "fluentd", "none"]
    # Docker 28 has no logentries (removed in 25.0) and no built-in sumologic driver: the
    # host option cannot advertise them; the AMI's list stays offered.
    assert set(nix["drivers"]) <= set(nix["known"])
    assert {"logentries", "sumologic"}.isdisjoint(nix["known"])
    # The same variables are closed to `extra` on both ends (ecs-init's introspection
    # variable is not the agent's, so the fleet refuses it as unknown instead).
    assert set(nix["typed"]) == {
        *settings.TYPED_VARIABLES,
        *settings.HOST_VARIABLES,
        "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS",
    }
    assert "ECS_ALLOW_OFFHOST_INTROSPECTION_ACCESS" not in agent_vars.AGENT_VARIABLES


# --- the generated table of agent variables ----------------------------------------------


def agent_source() -> str | None:
    """A git clone of aws/amazon-ecs-agent, if this machine has one."""
    for candidate in (
        os.environ.get("NIXECS_AGENT_SOURCE", ""),
        "/work/.mirror/aws+amazon-ecs-agent/repo",
    ):
        if candidate and Path(candidate).is_dir():
            return candidate
    return None


# `nix`: these read modules/agent-vars.json and tools/gen_agent_vars.py, which the
# package's source set (pkgs/nixecs/package.nix) does not carry; its check phase skips them.
@pytest.mark.nix
def test_generated_table_matches_its_generator() -> None:
    source = agent_source()
    if source is None:
        # The agent's source is not part of the repository (nor of CI): the committed
        # output is checked for consistency below; this one needs the source.
        pytest.skip("no aws/amazon-ecs-agent clone (set NIXECS_AGENT_SOURCE)")
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--check", source],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.nix
def test_generated_outputs_are_committed_and_consistent() -> None:
    tracked = subprocess.run(
        ["git", "ls-files", "--error-unmatch", str(AGENT_VARS_JSON), agent_vars.__file__],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tracked.returncode == 0, tracked.stderr
    document = json.loads(AGENT_VARS_JSON.read_text())
    assert document["commit"] == agent_vars.AGENT_COMMIT
    assert document["ref"] == agent_vars.AGENT_REF == "v1.105.0"
    assert sorted(agent_vars.AGENT_VARIABLES) == document["variables"]
    # Re-rendering from the recorded data reproduces both files byte for byte.
    py, js = _generator().render(document["commit"], document["sources"], document["variables"])
    assert Path(agent_vars.__file__).read_text() == py
    assert AGENT_VARS_JSON.read_text() == js
    # Every typed and host variable is one the agent reads (or ecs-init's introspection one).
    for name in [*settings.TYPED_VARIABLES, *settings.HOST_VARIABLES]:
        assert name in agent_vars.AGENT_VARIABLES, name
    # The split: "needs X" are variables the agent reads, and none is one the host sets.
    assert document["needs"] == {
        n: {"feature": f, "message": m} for n, (f, m) in agent_vars.AGENT_NEEDS.items()
    }
    assert set(agent_vars.AGENT_NEEDS) <= agent_vars.AGENT_VARIABLES
    assert set(document["honoured"]) == agent_vars.AGENT_VARIABLES - set(agent_vars.AGENT_NEEDS)
    assert set(agent_vars.AGENT_NEEDS).isdisjoint(
        {*settings.TYPED_VARIABLES, *settings.HOST_VARIABLES}
    )


def _generator() -> ModuleType:
    sys.path.insert(0, str(GENERATOR.parent))
    try:
        import gen_agent_vars
    finally:
        sys.path.remove(str(GENERATOR.parent))
    return gen_agent_vars


@pytest.mark.nix  # reads tools/gen_agent_vars.py, outside the package's source set
def test_generator_reads_getenv_calls_outside_agent_config() -> None:
    # The forms the agent's own code uses (agent/api/task/task.go, agent/app/run.go,
    # ecs-agent/gmsacredclient): a constant of the file, a literal, a typed constant.
    go = """
const (
	pauseLabelsEnvVar = "ECS_PAUSE_LABELS"
	ECS_AGENT_HEALTHCHECK_HOST_ENV_VAR string = "ECS_AGENT_HEALTHCHECK_HOST"
)
func f() {
	if l := os.Getenv(pauseLabelsEnvVar); l != "" {}
	h := os.Getenv(ECS_AGENT_HEALTHCHECK_HOST_ENV_VAR)
	d := os.Getenv("CREDENTIALS_FETCHER_HOST_DIR")
	v, ok := os.LookupEnv( "ECS_X" )
	os.Getenv(notAConstantHere)
}
"""
    generator = _generator()
    names = generator.getenv_names(go)
    assert names == {
        "ECS_PAUSE_LABELS",
        "ECS_AGENT_HEALTHCHECK_HOST",
        "CREDENTIALS_FETCHER_HOST_DIR",
        "ECS_X",
    }
    not_the_agent = generator.NOT_THE_AGENT
    for path in (
        "agent/engine/common_integ_testutil.go",
        "agent/version/gen/version-gen.go",
        "agent/vendor/x/y.go",
    ):
        assert not_the_agent.search(path), path
    for path in ("agent/api/task/task.go", "agent/app/run.go"):
        assert not not_the_agent.search(path), path
    # What the committed table took from outside agent/config.
    sources = json.loads(AGENT_VARS_JSON.read_text())["sources"]
    assert {"agent/api/task/task.go", "agent/app/run.go"} <= set(sources)


# The variables issue 22 names as stopping the agent, or as features the host lacks: each is
# in the "needs" half of the table, and every needs message cites the agent's source and
# says what to do instead.
@pytest.mark.parametrize(
    "name",
    [
        "ECS_ENABLE_GPU_SUPPORT",
        "ECS_NVIDIA_RUNTIME",
        "ECS_ENABLE_TASK_ENI",
        "ECS_ENABLE_HIGH_DENSITY_ENI",
        "ECS_VOLUME_PLUGIN_CAPABILITIES",
        "ECS_ENABLE_INF_SUPPORT",
        "ECS_GMSA_SUPPORTED",
        "ECS_EXTERNAL",
        # Read outside agent/config (task.go, run.go, ecs-agent's credential providers).
        "ECS_PAUSE_LABELS",
        "ECS_AGENT_HEALTHCHECK_HOST",
        "ECS_ALTERNATE_CREDENTIAL_PROFILE",
    ],
)
def test_features_this_host_lacks_are_refused_at_both_ends(name: str) -> None:
    feature, message = agent_vars.AGENT_NEEDS[name]
    assert "agent/" in message or "ecs-init/" in message, message
    with pytest.raises(settings.SettingsError) as caught:
        settings.parse_settings_object(host_document({"extra": {name: "true"}}))
    [issue] = caught.value.issues
    assert issue.code == "E165" and feature in issue.message


# --- the agent the host runs is the one the table was read from ---------------------------

ECS_AGENT_PACKAGE = REPO / "pkgs" / "ecs-agent" / "package.nix"


@pytest.mark.nix
def test_the_host_runs_the_agent_release_the_table_was_generated_from(
    nix_instantiate: str,
) -> None:
    # Evaluate the package expression itself, with nixpkgs' two inputs stubbed: the
    # version it builds and the tag it fetches.
    built = nix_eval(
        nix_instantiate,
        f"let p = import {ECS_AGENT_PACKAGE} {{ "
        "ecs-agent = { overrideAttrs = f: f { }; }; fetchFromGitHub = a: a; }; "
        "in { inherit (p) version; inherit (p.src) owner repo rev; }",
    )
    assert built == {
        "version": agent_vars.AGENT_REF.removeprefix("v"),
        "owner": "aws",
        "repo": "amazon-ecs-agent",
        "rev": agent_vars.AGENT_REF,
    }
    assert f"{built['owner']}/{built['repo']}" == agent_vars.AGENT_REPO
    # And the host module installs exactly that package (by default).
    host = (REPO / "modules" / "ecs-host.nix").read_text()
    assert (
        "services.ecs-agent.package = lib.mkDefault (pkgs.callPackage "
        "../pkgs/ecs-agent/package.nix { });" in host
    )
