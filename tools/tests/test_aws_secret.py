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
        capsys, [*base, "secret", "put", "/prod/db/password", "--value-stdin"], stdin=SECRET + "\n"
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
    run_cli(capsys, [*base, "put", "/x", "--value-stdin"], stdin="v")
    first = run_cli(capsys, [*base, "rm", "/x"])
    assert first.code == 0 and first.out == "/x: removed\n"
    second = run_cli(capsys, [*base, "rm", "/x"])
    assert second.code == 0 and second.out == "/x: does not exist, nothing to remove\n"
    missing = run_cli(capsys, [*base, "get", "/x"])
    assert missing.code == 1 and "does not exist" in missing.err


def test_value_never_comes_from_argv_or_a_missing_terminal(moto, capsys):
    base = ["--endpoint-url", moto.url, "--region", "us-east-1", "secret", "put", "/x"]
    assert run_cli(capsys, [*base, "--value", "hunter2"]).code == 2
    no_tty = run_cli(capsys, base, stdin="")
    assert no_tty.code == 2 and "--value-stdin" in no_tty.err
    assert run_cli(capsys, [*base, "--value-stdin"], stdin="\n").code == 2  # empty value
    assert run_cli(capsys, [*base, "--value-stdin", "--generate"], stdin="v").code == 2
    assert run_cli(capsys, [*base[:-1], "aws/x", "--generate"]).code == 2  # reserved prefix


def test_an_aws_error_names_the_operation_and_never_echoes_the_value(stubbed, capsys):
    """Real SSM echoes a rejected value in its message; moto does not, so the answer is stubbed."""
    value = "s3cr3t-" + "x" * 20
    ssm = stubbed("ssm")
    ssm.add_client_error("get_parameter", "ParameterNotFound", "Parameter /big not found.")
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
        capsys, ["--region", "us-east-1", "secret", "put", "/big", "--value-stdin"], stdin=value
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
    result = run_cli(capsys, ["--region", "us-east-1", "secret", "put", "/pw", "--generate"])
    assert result.code == 0 and result.out == "/pw: created (version 1)\n"
    assert "Generated" not in result.out + result.err
    ssm.assert_no_pending_responses()
