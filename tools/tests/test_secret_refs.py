"""Secrets from SSM parameter ARNs and AWS Secrets Manager (issue 20, item 2;
nixecs.fleet.secret_refs): the values ECS gets, the execution role granted exactly those
secrets, the checks at their places (E175, E176), the JSON Schema agreeing with the loader on
odd values, cfn-lint in the fleet's region, and preflight's DescribeSecret on the moto server
(E177)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import jsonschema
import pytest

from aws_fixtures import moto_client, run_cli
from nixecs.cloudformation import build_stack
from nixecs.cloudformation.dump import dump_template
from nixecs.diagnostics import CODES, FIXES, InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load
from stack_fixtures import assert_cfn_lint_clean, on_moto
from test_services import HEAD

SIGNING = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/signing-AbCdEf"
TOKEN = "arn:aws:ssm:eu-central-1:210987654321:parameter/shared/api/token"
KEY = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"

APP = textwrap.dedent(
    f"""\
    app:
      group: web
      image: nginx:1.27
      memory: 256
      secrets:
        DB_PASSWORD: /prod/db/password
        API_TOKEN: {TOKEN}
        SIGNING_KEY: {SIGNING}
        SIGNING_OLD: "{SIGNING}:private:AWSPREVIOUS:"  # quoted: a plain scalar cannot end in ":"
        DB_USER: {{secretsmanager: prod/db, json_key: username}}
        DB_HOST: {{secretsmanager: prod/db, json_key: host, version_stage: AWSCURRENT,
                  kms_key: {KEY}}}
    """
)


def fleet_text(services: str = APP) -> str:
    return HEAD + textwrap.indent(services, "      ")


def app_with(old: str, new: str) -> str:
    assert old in APP, old
    return fleet_text(APP.replace(old, new, 1))


def stack(text: str) -> dict:
    return build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})


def of_type(template: dict, kind: str, suffix: str = "") -> dict:
    (found,) = [
        r
        for name, r in template["Resources"].items()
        if r["Type"] == kind and name.endswith(suffix)
    ]
    return found


def located(text: str) -> list[tuple[str, str, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse(text, "fleet.yml")
    lines = text.split("\n")
    return [
        (d.code, lines[d.location.line - 1][d.location.column - 1 :], d.message)
        for d in caught.value.report.sorted()
    ]


# --- what ECS gets ------------------------------------------------------------------------------


def test_each_form_becomes_its_value_from() -> None:
    task = of_type(stack(fleet_text()), "AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    values = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
    assert [s["Name"] for s in container["Secrets"]] == sorted(values)
    assert values["API_TOKEN"] == TOKEN
    assert values["SIGNING_KEY"] == SIGNING
    # `ARN:json-key:version-stage:version-id` (ECS developer guide,
    # secrets-envvar-secrets-manager), empty parts kept.
    assert values["SIGNING_OLD"] == f"{SIGNING}:private:AWSPREVIOUS:"
    assert values["DB_USER"] == {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:prod/db:username::"
    }
    assert values["DB_HOST"]["Fn::Sub"].endswith(":secret:prod/db:host:AWSCURRENT:")
    assert values["DB_PASSWORD"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter/prod/db/password"
    }


def _agent_secret_id(value_from: str) -> tuple[str, str, str, str]:
    """The oracle: the ECS agent's reading of a Secrets Manager valueFrom (aws/amazon-ecs-agent
    agent/taskresource/asmsecret/asmsecret.go getASMParametersFromInput and
    reconstructASMARN): arn.Parse (6 colon-separated parts, `arn` first), the resource split
    on `:` — 2 parts: valueFrom is the SecretId; 5: `secret:NAME` rebuilt into the ARN, then
    json key, version stage, version id; any other count fails the task."""
    parts = value_from.split(":", 5)
    assert len(parts) == 6 and parts[0] == "arn" and parts[2] == "secretsmanager", value_from
    resource = parts[5].split(":")
    if len(resource) == 2:
        return value_from, "", "", ""
    assert len(resource) == 5, f"the agent refuses {value_from}"
    return ":".join([*parts[:5], *resource[:2]]), resource[2], resource[3], resource[4]


def test_a_secret_by_name_is_a_partial_arn_the_agent_reads() -> None:
    """Never the bare name (API_Secret: Secrets Manager by full ARN only; the agent's
    arn.Parse fails on a name): the partial ARN `…:secret:NAME`, whose SecretId
    GetSecretValue resolves by name (cloudformation/secret_refs.value_from)."""
    task = of_type(stack(fleet_text()), "AWS::ECS::TaskDefinition")
    (container,) = task["Properties"]["ContainerDefinitions"]
    values = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
    account = "arn:aws:secretsmanager:eu-west-1:123456789012"

    def rendered(name: str) -> str:
        value = values[name]
        text = value["Fn::Sub"] if isinstance(value, dict) else value
        return text.replace(
            "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}", account
        )

    assert _agent_secret_id(rendered("DB_USER")) == (
        f"{account}:secret:prod/db",
        "username",
        "",
        "",
    )
    assert _agent_secret_id(rendered("DB_HOST")) == (
        f"{account}:secret:prod/db",
        "host",
        "AWSCURRENT",
        "",
    )
    assert _agent_secret_id(rendered("SIGNING_OLD"))[1:] == ("private", "AWSPREVIOUS", "")
    assert _agent_secret_id(rendered("SIGNING_KEY")) == (SIGNING, "", "", "")


# --- the execution role ---------------------------------------------------------------------


def _policy(template: dict) -> list[dict]:
    role = of_type(template, "AWS::IAM::Role", "ExecutionRole")
    (policy,) = [
        p for p in role["Properties"]["Policies"] if p["PolicyName"] == "nixecs-task-secret-refs"
    ]
    return policy["PolicyDocument"]["Statement"]


def _matches(pattern: str, arn: str) -> bool:
    """IAM's wildcard matching of a Resource (`*` any run, `?` one character) — the oracle
    for what a grant covers (IAM user guide, reference_policies_elements_resource)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def test_the_execution_role_reads_exactly_those_secrets() -> None:
    statements = {s["Sid"]: s for s in _policy(stack(fleet_text()))}
    read = statements["ReadSecretsManagerSecrets"]
    assert read["Action"] == "secretsmanager:GetSecretValue"
    by_name = {
        "Fn::Sub": "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:prod/db-??????"
    }
    # One grant per secret (SIGNING twice and prod/db twice in the file).
    assert read["Resource"] == [SIGNING, by_name]
    # The name's grant covers its full ARN (Secrets Manager appends six characters), and not
    # another secret whose name starts the same.
    name_arn = by_name["Fn::Sub"].replace(
        "${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}",
        "aws:secretsmanager:eu-west-1:123456789012",
    )
    assert _matches(name_arn, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-Xy12Zw")
    assert not _matches(
        name_arn, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db2-Xy12Zw"
    )
    assert not _matches(
        name_arn, "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db/admin-Xy12Zw"
    )
    assert statements["ReadParameterArns"] == {
        "Sid": "ReadParameterArns",
        "Effect": "Allow",
        "Action": "ssm:GetParameters",
        "Resource": [TOKEN],
    }
    # The parameter of another region and account: decrypt through SSM there, for it only.
    ssm_decrypt = statements["DecryptParameterArnsViaSsmEucentral1"]
    assert ssm_decrypt["Resource"] == "arn:aws:kms:eu-central-1:210987654321:key/*"
    assert ssm_decrypt["Condition"]["StringEquals"]["kms:EncryptionContext:PARAMETER_ARN"] == [
        TOKEN
    ]
    assert ssm_decrypt["Condition"]["StringEquals"]["kms:ViaService"] == {
        "Fn::Sub": "ssm.eu-central-1.${AWS::URLSuffix}"
    }
    # The customer managed key: only via Secrets Manager, only for the secret it encrypts.
    (kms,) = [s for sid, s in statements.items() if sid.startswith("DecryptSecretsVia")]
    assert kms["Action"] == "kms:Decrypt" and kms["Resource"] == KEY
    assert kms["Condition"]["StringEquals"] == {
        "kms:ViaService": {"Fn::Sub": "secretsmanager.${AWS::Region}.${AWS::URLSuffix}"}
    }
    assert kms["Condition"]["StringLike"] == {"kms:EncryptionContext:SecretARN": [by_name]}
    assert not any(s["Resource"] == "*" for s in statements.values())


def test_no_references_no_policy() -> None:
    plain = fleet_text(
        "app:\n  group: web\n  image: nginx:1.27\n  memory: 64\n  secrets: {A: /x/y}\n"
    )
    role = of_type(stack(plain), "AWS::IAM::Role", "ExecutionRole")
    names = [p["PolicyName"] for p in role["Properties"].get("Policies", [])]
    assert names == ["nixecs-task-secrets"]


# --- the checks -----------------------------------------------------------------------------

CASES = [
    ("DB_PASSWORD: /prod/db/password", "DB_PASSWORD: prod-db-password", "E175", "prod-db"),
    (
        "DB_PASSWORD: /prod/db/password",
        "DB_PASSWORD: arn:aws:s3:::bucket/key",
        "E175",
        "arn:aws:s3",
    ),
    (
        f"API_TOKEN: {TOKEN}",
        "API_TOKEN: arn:aws:ssm:eu-west-1:123456789012:parameter/aws/x",
        "E175",
        "arn:aws:ssm",
    ),
    (f"SIGNING_KEY: {SIGNING}", f"SIGNING_KEY: {SIGNING[:-7]}", "E176", "arn:aws:secretsmanager"),
    (
        "{secretsmanager: prod/db, json_key: username}",
        "{secretsmanager: prod/db-AbCdEf}",
        "E176",
        "prod/db-AbCdEf",
    ),
    (
        "{secretsmanager: prod/db, json_key: username}",
        "{secretsmanager: 'prod db'}",
        "E175",
        "'prod db'",
    ),
    (
        "{secretsmanager: prod/db, json_key: username}",
        "{secretsmanager: prod/db, key: x}",
        "E101",
        "key",
    ),
    ("{secretsmanager: prod/db, json_key: username}", "{json_key: username}", "E104", "{json_key"),
    ("{secretsmanager: prod/db, json_key: username}", "{secretsmanager: 7}", "E103", "7}"),
    (
        "{secretsmanager: prod/db, json_key: username}",
        "{secretsmanager: prod/db, version_id: nope}",
        "E107",
        "nope",
    ),
    (
        "{secretsmanager: prod/db, json_key: username}",
        "{secretsmanager: prod/db, json_key: 'a:b'}",
        "E107",
        "'a:b'",
    ),
    (
        "{secretsmanager: prod/db, json_key: username}",
        "{secretsmanager: prod/db, kms_key: alias/x}",
        "E107",
        "alias/x",
    ),
    (
        "{secretsmanager: prod/db, json_key: username}",
        "{secretsmanager: prod/db, version_stage: AWSCURRENT, version_id: 0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f}",
        "E102",
        "0a1b2c3d",
    ),
    ("DB_PASSWORD: /prod/db/password", "DB_PASSWORD: 3", "E103", "3"),
]


@pytest.mark.parametrize(
    ("old", "new", "code", "where"), CASES, ids=[f"{c[2]}-{c[1]}" for c in CASES]
)
def test_each_check_is_located(old: str, new: str, code: str, where: str) -> None:
    found = located(app_with(old, new))
    assert [f[0] for f in found] == [code], found
    assert found[0][1].startswith(where), found
    assert code in CODES and code in FIXES


@pytest.mark.parametrize("value", ["prod-db-password", "arn:aws:s3:::bucket/key", "3"])
def test_a_value_that_is_neither_names_both_forms(value: str) -> None:
    ((_, _, message),) = located(
        app_with("DB_PASSWORD: /prod/db/password", f"DB_PASSWORD: {value}")
    )
    assert "SSM parameter" in message and "Secrets Manager" in message
    assert "arn:aws:ssm:" in message and "arn:aws:secretsmanager:" in message


def test_a_variable_in_environment_and_secrets_is_refused() -> None:
    text = app_with("  secrets:\n", "  environment: {DB_USER: admin}\n  secrets:\n")
    ((code, where, _),) = located(text)
    assert code == "E107" and where.startswith("{secretsmanager: prod/db, json_key: username}")


# --- the JSON Schema agrees -------------------------------------------------------------------

ODD = [
    ("not an SSM name or ARN", "DB_PASSWORD", "prod-db-password"),
    ("an S3 ARN", "DB_PASSWORD", "arn:aws:s3:::bucket/key"),
    ("a number", "DB_PASSWORD", 3),
    ("an unknown key", "DB_USER", {"secretsmanager": "prod/db", "key": "x"}),
    ("no secret", "DB_USER", {"json_key": "username"}),
    ("a bad version id", "DB_USER", {"secretsmanager": "prod/db", "version_id": "nope"}),
    ("a json key with a colon", "DB_USER", {"secretsmanager": "prod/db", "json_key": "a:b"}),
    ("a list", "DB_USER", ["prod/db"]),
    # E176 declared too: an ARN's name ends in Secrets Manager's suffix, a bare name does not
    ("a secret's ARN without its suffix", "SIGNING_KEY", SIGNING[:-7]),
    ("a name ending like a suffix", "DB_USER", {"secretsmanager": "prod/db-AbCdEf"}),
    ("an ARN without its suffix by name", "DB_USER", {"secretsmanager": SIGNING[:-7]}),
    ("an ARN with parameters by name", "DB_USER", {"secretsmanager": f"{SIGNING}:password::"}),
]


@pytest.mark.parametrize(("what", "variable", "value"), ODD, ids=[w for w, _, _ in ODD])
def test_the_json_schema_and_the_loader_both_refuse(
    what: str, variable: str, value: object
) -> None:
    document = load(fleet_text().encode(), "fleet.yml").value
    document["clusters"]["prod"]["services"]["app"]["secrets"][variable] = value  # type: ignore[index]
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document)), what
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")


def test_the_json_schema_accepts_every_form() -> None:
    document = load(fleet_text().encode(), "fleet.yml").value
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document)) == []
    # a secret's full ARN by name, with parameters where the string form takes them
    secrets = document["clusters"]["prod"]["services"]["app"]["secrets"]  # type: ignore[index]
    secrets["DB_USER"] = {"secretsmanager": SIGNING}
    secrets["SIGNING_KEY"] = f"{SIGNING}:password::"
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document)) == []
    parse(json.dumps(document), "fleet.json")


# --- cfn-lint and preflight ---------------------------------------------------------------------


@pytest.mark.cfnlint
def test_cfn_lint_clean_in_the_fleets_region(tmp_path: Path) -> None:
    out = tmp_path / "prod.yaml"
    out.write_text(dump_template(stack(fleet_text())))
    assert_cfn_lint_clean([out], "eu-west-1")


@pytest.mark.moto
def test_preflight_describes_each_secret(moto, tmp_path: Path, capsys) -> None:
    """E177 at the entry naming a secret that does not exist; a secret that exists (by name or
    by its full ARN) passes; no secret value appears."""
    sm = moto_client(moto.url, "secretsmanager")
    created = sm.create_secret(Name="prod/db", SecretString='{"username": "u", "host": "h"}')
    ssm = moto_client(moto.url, "ssm")
    ssm.put_parameter(Name="/prod/db/password", Value="s3cret", Type="SecureString")
    text = on_moto(fleet_text(), moto.url)
    # (the other account's parameter and the second use of the signing secret left out)
    text = "\n".join(x for x in text.split("\n") if "API_TOKEN" not in x and "SIGNING_OLD" not in x)
    text = text.replace(SIGNING, created["ARN"])
    text = text.replace("eu-west-1:123456789012:key", "us-east-1:123456789012:key")
    text = text.replace(
        "{secretsmanager: prod/db, json_key: username}", "{secretsmanager: prod/missing}"
    )
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(text, encoding="utf-8")
    done = run_cli(capsys, ["--endpoint-url", moto.url, "validate", str(fleet), "--aws"])
    assert done.code == 2, done.out + done.err
    line = next(i for i, t in enumerate(text.split("\n"), 1) if "prod/missing" in t)
    e177 = [x for x in done.err.splitlines() if "error[E177]" in x]
    assert len(e177) == 1 and e177[0].startswith(f"{fleet}:{line}:"), done.err
    assert "prod/missing" in e177[0]
    # The secrets that exist draw nothing (E131/E134: moto's account has no ECS role or AMI).
    assert [x for x in done.err.splitlines() if "error[E17" in x] == e177, done.err
    assert "s3cret" not in done.err + done.out and '"u"' not in done.err + done.out
