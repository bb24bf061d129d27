"""`secret put/rm` act only on the fleet's own SSM parameters (issue 16, item 3), against the
moto server: a parameter the `--fleet` file does not reference (or any, without `--fleet`)
needs `--outside-fleet`; turning a String into a SecureString and deleting ask first, naming
the parameter, with `--yes` for scripts and a refusal when there is no terminal to ask on.
Each hostile case ends with the parameter exactly as it was."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import FLEET, moto_client, run_cli, stubbed_clients, write_fleet

pytestmark = pytest.mark.moto
_stubbed = pytest.fixture(name="stubbed")(stubbed_clients)

OURS = "/prod/db/password"
THEIRS = "/billing/api-key"
WITH_SECRETS = FLEET.replace(
    "        capacity: {min: 1, max: 4}\n",
    f"        capacity: {{min: 1, max: 4}}\n        secrets:\n          db: {{parameter: {OURS}}}\n",
    1,
)


class Terminal(io.StringIO):
    """Answers typed at a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def fleet(tmp_path: Path) -> Path:
    return write_fleet(tmp_path, WITH_SECRETS)


def _stored(url: str, name: str) -> tuple[str, str, int] | None:
    ssm = moto_client(url, "ssm")
    found = ssm.get_parameters(Names=[name], WithDecryption=True)["Parameters"]
    return (found[0]["Type"], found[0]["Value"], found[0]["Version"]) if found else None


def _plain(url: str, name: str, value: str = "plain-value") -> None:
    moto_client(url, "ssm").put_parameter(Name=name, Value=value, Type="String")


# (parameters there first, command after `secret`, terminal answer (None: no terminal),
#  exit code, message, parameter → its state afterwards)
HOSTILE: dict[str, tuple[list[str], list[str], str | None, int, str, dict[str, Any]]] = {
    "put of a foreign parameter": (
        [THEIRS], ["put", THEIRS, "--value-stdin", "--fleet", "{fleet}"], None, 2,
        f"refusing: secret: {THEIRS} is not a parameter {{fleet}} references (its parameters: "
        f"{OURS}); pass --outside-fleet",
        {THEIRS: ("String", "plain-value", 1)},
    ),
    "put --generate of a foreign parameter": (
        [], ["put", THEIRS, "--generate", "--fleet", "{fleet}"], None, 2,
        f"{THEIRS} is not a parameter", {THEIRS: None},
    ),
    "put without --fleet": (
        [], ["put", OURS, "--value-stdin"], None, 2,
        f"refusing: secret: {OURS}: no --fleet FILE says whose parameter it is", {OURS: None},
    ),
    "rm of a foreign parameter": (
        [THEIRS], ["rm", THEIRS, "--fleet", "{fleet}", "--yes"], None, 2,
        f"{THEIRS} is not a parameter", {THEIRS: ("String", "plain-value", 1)},
    ),
    "rm without --fleet": (
        [THEIRS], ["rm", THEIRS, "--yes"], None, 2, "no --fleet FILE",
        {THEIRS: ("String", "plain-value", 1)},
    ),
    "type change without a terminal": (
        [OURS], ["put", OURS, "--value-stdin", "--fleet", "{fleet}"], None, 2,
        f"{OURS} is a String (version 1); storing the secret makes it a SecureString",
        {OURS: ("String", "plain-value", 1)},
    ),
    "type change declined at the terminal": (
        [OURS], ["put", OURS, "--fleet", "{fleet}"], "n\n", 1, "nixecs: aborted",
        {OURS: ("String", "plain-value", 1)},
    ),
    "type change of a foreign parameter, --outside-fleet, no terminal": (
        [THEIRS], ["put", THEIRS, "--value-stdin", "--outside-fleet"], None, 2,
        "no terminal to confirm on: pass --yes", {THEIRS: ("String", "plain-value", 1)},
    ),
    "type change with --yes": (
        [OURS], ["put", OURS, "--value-stdin", "--fleet", "{fleet}", "--yes"], None, 0,
        "", {OURS: ("SecureString", "new-value", 2)},
    ),
    "rm without a terminal": (
        [OURS], ["rm", OURS, "--fleet", "{fleet}"], None, 2,
        f"This deletes SSM parameter {OURS} (String, version 1",
        {OURS: ("String", "plain-value", 1)},
    ),
    "rm declined at the terminal": (
        [OURS], ["rm", OURS, "--fleet", "{fleet}"], "n\n", 1, "aborted",
        {OURS: ("String", "plain-value", 1)},
    ),
    "rm accepted at the terminal": (
        [OURS], ["rm", OURS, "--fleet", "{fleet}"], "y\n", 0, "", {OURS: None},
    ),
    "rm of a foreign parameter with --outside-fleet --yes": (
        [THEIRS], ["rm", THEIRS, "--outside-fleet", "--yes"], None, 0, "", {THEIRS: None},
    ),
    "put of the fleet's new parameter: nothing to ask": (
        [], ["put", OURS, "--value-stdin", "--fleet", "{fleet}"], None, 0, "",
        {OURS: ("SecureString", "new-value", 1)},
    ),
}  # fmt: skip


PREFIXED = WITH_SECRETS.replace("flake:", "parameter_prefix: /acme/prod\nflake:", 1)


@pytest.mark.parametrize(
    ("name", "code", "message"),
    [
        ("/acme/prod/api-token", 0, "created (version 1)"),  # below the declared prefix
        ("/acme/prod/db/password", 0, "created (version 1)"),
        (OURS, 0, "created (version 1)"),  # referenced, outside the prefix
        ("/acme/prod-other/x", 2, "nor below its parameter_prefix /acme/prod; pass --outside"),
        ("/acme/x", 2, "nor below its parameter_prefix /acme/prod"),
    ],
)
def test_a_declared_parameter_prefix_makes_its_parameters_the_fleets(
    moto, tmp_path, capsys, name, code, message
):
    fleet = write_fleet(tmp_path, PREFIXED)
    argv = ["--endpoint-url", moto.url, "--region", "us-east-1", "secret", "put", name]
    result = run_cli(capsys, [*argv, "--fleet", str(fleet), "--generate"])
    assert result.code == code, result.err
    assert message in result.out + result.err
    assert (_stored(moto.url, name) is not None) == (code == 0)


@pytest.mark.parametrize("prefix", ["acme", "/acme/", "/aws/x", "/a/../b", "''"])
def test_the_parameter_prefix_is_a_parameter_path(tmp_path, capsys, prefix):
    fleet = write_fleet(
        tmp_path, WITH_SECRETS.replace("flake:", f"parameter_prefix: {prefix}\nflake:", 1)
    )
    result = run_cli(capsys, ["validate", str(fleet)])
    assert result.code == 2, result.err
    assert f"{fleet}:3:19: error[" in result.err and "an SSM parameter name" in result.err


@pytest.mark.parametrize("case", list(HOSTILE))
def test_secret_put_and_rm_act_only_on_the_fleets_parameters(
    moto, fleet, capsys, monkeypatch, case
):
    there, command, answer, code, message, after = HOSTILE[case]
    for name in there:
        _plain(moto.url, name)
    argv = ["--endpoint-url", moto.url, "--region", "us-east-1", "secret"]
    argv += [part.replace("{fleet}", str(fleet)) for part in command]
    if answer is not None:  # the value prompt (hidden, confirmed) comes after the question
        monkeypatch.setattr(sys, "stdin", Terminal(answer + "new-value\nnew-value\n"))
        result = run_cli(capsys, argv)
    else:
        result = run_cli(capsys, argv, stdin="new-value\n")
    assert result.code == code, result.err
    assert message.replace("{fleet}", str(fleet)) in result.err
    assert "Traceback" not in result.err and "new-value" not in result.out + result.err
    for name, state in after.items():
        assert _stored(moto.url, name) == state, name


def test_rm_after_a_lost_answer_reports_removed(stubbed, capsys, tmp_path):
    """DeleteParameter went through but its answer was lost; botocore's retry gets
    ParameterNotFound. The parameter was there a moment ago: it was removed (by us)."""
    fleet = write_fleet(tmp_path, WITH_SECRETS)
    ssm = stubbed("ssm")
    ssm.add_response(
        "get_parameter",
        {"Parameter": {"Name": OURS, "Type": "SecureString", "Version": 3}},
        {"Name": OURS, "WithDecryption": False},
    )
    ssm.add_client_error("delete_parameter", "ParameterNotFound", expected_params={"Name": OURS})
    result = run_cli(
        capsys, ["--region", "us-east-1", "secret", "rm", OURS, "--fleet", str(fleet), "--yes"]
    )
    assert result.code == 0, result.err
    assert result.out == f"{OURS}: removed\n"
    ssm.assert_no_pending_responses()


def test_rm_of_nothing_deletes_nothing_and_asks_nothing(stubbed, capsys, tmp_path):
    fleet = write_fleet(tmp_path, WITH_SECRETS)
    ssm = stubbed("ssm")
    ssm.add_client_error(
        "get_parameter",
        "ParameterNotFound",
        expected_params={"Name": OURS, "WithDecryption": False},
    )
    result = run_cli(capsys, ["--region", "us-east-1", "secret", "rm", OURS, "--fleet", str(fleet)])
    assert result.code == 0 and result.out == f"{OURS}: does not exist, nothing to remove\n"
    ssm.assert_no_pending_responses()  # no DeleteParameter
