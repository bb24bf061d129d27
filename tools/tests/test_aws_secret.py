"""`nixecs secret put|get|rm` against moto server: SecureStrings, values never on argv or in
output without --reveal, --generate only when nothing exists."""

from __future__ import annotations

import pytest

from aws_fixtures import moto_client, run_cli, stubbed_clients
from nixecs.aws.secret import generate_password

pytestmark = pytest.mark.moto
_stubbed = pytest.fixture(name="stubbed")(stubbed_clients)

SECRET = "correct horse battery staple"


def test_put_from_stdin_then_get_hides_value_unless_revealed(moto, capsys):
    base = ["--endpoint-url", moto.url, "--region", "us-east-1"]
    put = run_cli(
        capsys,
        [*base, "secret", "put", "/prod/db/password", "--value-stdin", "--outside-fleet"],
        stdin=SECRET + "\n",
    )
    assert put.code == 0, put.err
    assert "created (version 1)" in put.out
    assert SECRET not in put.out + put.err

    stored = moto_client(moto.url, "ssm").get_parameter(
        Name="/prod/db/password", WithDecryption=True
    )["Parameter"]
    assert stored["Type"] == "SecureString"
    assert stored["Value"] == SECRET  # exactly one trailing newline dropped

    hidden = run_cli(capsys, [*base, "secret", "get", "/prod/db/password"])
    assert hidden.code == 0
    assert SECRET not in hidden.out + hidden.err
    assert "SecureString, version 1, last modified" in hidden.out

    meta = run_cli(capsys, [*base, "--output", "json", "secret", "get", "/prod/db/password"]).json()
    assert meta["version"] == 1 and meta["type"] == "SecureString" and "value" not in meta

    shown = run_cli(capsys, [*base, "secret", "get", "/prod/db/password", "--reveal"])
    assert shown.code == 0 and shown.out == SECRET + "\n"


def test_put_same_value_is_unchanged_and_new_value_is_a_new_version(moto, capsys):
    base = [
        "--endpoint-url",
        moto.url,
        "--region",
        "us-east-1",
        "secret",
        "put",
        "/a/b",
        "--value-stdin",
        "--outside-fleet",
    ]
    assert run_cli(capsys, base, stdin="one").code == 0
    again = run_cli(capsys, base, stdin="one")
    assert "unchanged (version 1)" in again.out
    changed = run_cli(capsys, base, stdin="two")
    assert "updated (version 2)" in changed.out
    assert (
        moto_client(moto.url, "ssm").get_parameter(Name="/a/b", WithDecryption=True)["Parameter"][
            "Value"
        ]
        == "two"
    )


def test_generate_creates_once_and_never_overwrites(moto, capsys):
    base = [
        "--endpoint-url",
        moto.url,
        "--region",
        "us-east-1",
        "secret",
        "put",
        "/prod/db/pw",
        "--generate",
        "--outside-fleet",
    ]
    first = run_cli(capsys, base)
    assert first.code == 0 and "created" in first.out
    ssm = moto_client(moto.url, "ssm")
    value = ssm.get_parameter(Name="/prod/db/pw", WithDecryption=True)["Parameter"]["Value"]
    assert len(value) >= 16
    assert value not in first.out + first.err
    second = run_cli(capsys, base)
    assert second.code == 0 and "exists, left unchanged" in second.out
    assert ssm.get_parameter(Name="/prod/db/pw", WithDecryption=True)["Parameter"]["Value"] == value
    assert ssm.get_parameter(Name="/prod/db/pw")["Parameter"]["Version"] == 1


def test_generated_passwords_are_random_and_long():
    values = {generate_password() for _ in range(50)}
    assert len(values) == 50
    assert all(len(v) >= 16 and v.isalnum() for v in values)
    with pytest.raises(ValueError):
        generate_password(8)


def test_rm_is_idempotent_with_a_clear_message(moto, capsys):
    base = ["--endpoint-url", moto.url, "--region", "us-east-1", "secret"]
    run_cli(capsys, [*base, "put", "/x", "--value-stdin", "--outside-fleet"], stdin="v")
    first = run_cli(capsys, [*base, "rm", "/x", "--outside-fleet", "--yes"])
    assert first.code == 0 and first.out == "/x: removed\n"
    second = run_cli(capsys, [*base, "rm", "/x", "--outside-fleet", "--yes"])
    assert second.code == 0 and second.out == "/x: does not exist, nothing to remove\n"
    missing = run_cli(capsys, [*base, "get", "/x"])
    assert missing.code == 1 and "does not exist" in missing.err


def test_value_never_comes_from_argv_or_a_missing_terminal(moto, capsys):
    base = ["--endpoint-url", moto.url, "--region", "us-east-1", "secret", "put", "/x"]
    base += ["--outside-fleet"]
    assert run_cli(capsys, [*base, "--value", "hunter2"]).code == 2
    no_tty = run_cli(capsys, base, stdin="")
    assert no_tty.code == 2 and "--value-stdin" in no_tty.err
    assert run_cli(capsys, [*base, "--value-stdin"], stdin="\n").code == 2  # empty value
    assert run_cli(capsys, [*base, "--value-stdin", "--generate"], stdin="v").code == 2
    assert run_cli(capsys, [*base[:-2], "aws/x", "--generate"]).code == 2  # reserved prefix


def test_an_aws_error_names_the_operation_and_never_echoes_the_value(stubbed, capsys):
    """Real SSM echoes a rejected value in its message; moto does not, so the answer is stubbed."""
    value = "s3cr3t-" + "x" * 20
    ssm = stubbed("ssm")
    for decrypt in (False, True):  # the type check's lookup, then put's compare
        ssm.add_client_error(
            "get_parameter",
            "ParameterNotFound",
            "Parameter /big not found.",
            expected_params={"Name": "/big", "WithDecryption": decrypt},
        )
    ssm.add_client_error(
        "put_parameter",
        "ValidationException",
        f"1 validation error detected: Value '{value}' at 'value' failed to satisfy constraint: "
        "Member must have length less than or equal to 4096",
        expected_params={
            "Name": "/big",
            "Value": value,
            "Type": "SecureString",
            "Overwrite": False,
        },
    )
    result = run_cli(
        capsys,
        ["--region", "us-east-1", "secret", "put", "/big", "--value-stdin", "--outside-fleet"],
        stdin=value,
    )
    assert result.code == 1
    assert result.err.startswith(
        "nixecs: error: secret /big: ssm PutParameter failed: ValidationException"
    )
    assert "s3cr3t" not in result.err and "Traceback" not in result.err
    assert "Value '***' at 'value'" in result.err
    ssm.assert_no_pending_responses()


def test_generate_after_a_lost_answer_reports_created(stubbed, capsys, monkeypatch):
    """PutParameter went through but its answer was lost; the retry hits ParameterAlreadyExists:
    the stored value is ours, so it was created (and nothing was overwritten)."""
    from botocore.stub import ANY

    monkeypatch.setattr("nixecs.aws.secret.generate_password", lambda: "Generated1234567890abcdef")
    ssm = stubbed("ssm")
    ssm.add_client_error(
        "get_parameter",
        "ParameterNotFound",
        expected_params={"Name": "/pw", "WithDecryption": False},
    )
    ssm.add_client_error(
        "put_parameter",
        "ParameterAlreadyExists",
        expected_params={"Name": "/pw", "Value": ANY, "Type": "SecureString", "Overwrite": False},
    )
    ssm.add_response(
        "get_parameter",
        {
            "Parameter": {
                "Name": "/pw",
                "Type": "SecureString",
                "Value": "Generated1234567890abcdef",
                "Version": 1,
            }
        },
        {"Name": "/pw", "WithDecryption": True},
    )
    result = run_cli(
        capsys, ["--region", "us-east-1", "secret", "put", "/pw", "--generate", "--outside-fleet"]
    )
    assert result.code == 0 and result.out == "/pw: created (version 1)\n"
    assert "Generated" not in result.out + result.err
    ssm.assert_no_pending_responses()


BAD_NAMES = [
    "/prod/db/password\n",  # `$` would match before the newline: fullmatch does not
    "/prod/../etc/shadow",
    "/prod/./x",
    "/prod/..",
    "prod/db",  # a name in a hierarchy needs the leading slash
    "password",  # nixecs: hierarchical only, so IAM can scope to it
    "/prod//db",
    "/prod/db/",
    "/",
    "",
    "/prod/db password",
    "/prod/db\tx",
    "/AWS/x",
    "/sSm-things/x",
    "/" + "/".join("l" * 16),  # 16 levels
    "/" + "x" * 1011,  # 1012 characters
    "/prod/pässword",
]
GOOD_NAMES = [
    "/prod/db/password",
    "/a",
    "/prod/db.v2/pass_word-1",
    "/..x/y..",
    "/" + "/".join("l" * 15),
    "/" + "x" * 1010,
    "/awx/ok",
]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_parameter_names_follow_ssm_rules_in_secret_put_and_the_fleet(name, capsys):
    """One rule (settings.PARAMETER_RE) for `secret put|get|rm` and for `secrets:` declarations."""
    from nixecs.settings import Issue, parse_secret

    for command in (["put", name, "--generate"], ["get", name], ["rm", name]):
        result = run_cli(
            capsys,
            ["--endpoint-url", "http://127.0.0.1:9", "--region", "us-east-1", "secret", *command],
        )
        assert result.code == 2, (command, result.err)
        assert "is not valid: an SSM parameter name" in result.err and "Traceback" not in result.err
    issues: list[Issue] = []
    assert parse_secret({"parameter": name}, ("secrets", "db"), issues) is None
    assert [i.path for i in issues] == [("secrets", "db", "parameter")]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_valid_parameter_names_are_accepted_by_both(name):
    from nixecs.aws.secret import check_name
    from nixecs.settings import Issue, parse_secret

    assert check_name(name) == name
    issues: list[Issue] = []
    assert parse_secret({"parameter": name}, ("secrets", "db"), issues) is not None, issues


@pytest.mark.parametrize("name", ["/prod/../x", "/aws/x", "prod/x"])
def test_the_fleet_loader_uses_the_same_rule(name):
    """Both places a fleet names a parameter: a group's `secrets:` and a service's."""
    from nixecs.diagnostics import InvalidInput
    from nixecs.fleet import parse

    fleet = f"""\
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
        secrets:
          db: {{parameter: "{name}"}}
    services:
      api:
        group: web
        image: nginx:1.27
        memory: 256
        secrets: {{DB: "{name}"}}
"""
    with pytest.raises(InvalidInput) as caught:
        parse(fleet, "fleet.yml")
    found = [(d.location.line, d.format()) for d in caught.value.report.sorted()]
    assert [line for line, _ in found] == [13, 19], found
    assert all("an SSM parameter name with a leading slash" in text for _, text in found)
