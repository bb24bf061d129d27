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
from conftest import EXAMPLES

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


def _plain(url: str, name: str, value: str = "plain-value", fleet: str | None = None) -> None:
    """A String parameter; with `fleet`, carrying that fleet's mark (nixecs:fleet)."""
    tags = [{"Key": "nixecs:fleet", "Value": fleet}] if fleet else []
    moto_client(url, "ssm").put_parameter(Name=name, Value=value, Type="String", Tags=tags)


# (parameters there first, command after `secret`, terminal answer (None: no terminal),
#  exit code, message, parameter → its state afterwards)
HOSTILE: dict[str, tuple[dict[str, str | None], list[str], str | None, int, str, dict[str, Any]]] = {
    "put of a foreign parameter": (
        {THEIRS: None}, ["put", THEIRS, "--value-stdin", "--fleet", "{fleet}"], None, 2,
        f"refusing: secret: {THEIRS} is not a parameter {{fleet}} references (its parameters: "
        f"{OURS}); pass --outside-fleet",
        {THEIRS: ("String", "plain-value", 1)},
    ),
    "put --generate of a foreign parameter": (
        {}, ["put", THEIRS, "--generate", "--fleet", "{fleet}"], None, 2,
        f"{THEIRS} is not a parameter", {THEIRS: None},
    ),
    "put without --fleet": (
        {}, ["put", OURS, "--value-stdin"], None, 2,
        f"refusing: secret: {OURS}: no --fleet FILE says whose parameter it is", {OURS: None},
    ),
    "rm of a foreign parameter": (
        {THEIRS: None}, ["rm", THEIRS, "--fleet", "{fleet}", "--yes"], None, 2,
        f"{THEIRS} is not a parameter", {THEIRS: ("String", "plain-value", 1)},
    ),
    "rm without --fleet": (
        {THEIRS: None}, ["rm", THEIRS, "--yes"], None, 2, "no --fleet FILE",
        {THEIRS: ("String", "plain-value", 1)},
    ),
    "type change without a terminal": (
        {OURS: "default"}, ["put", OURS, "--value-stdin", "--fleet", "{fleet}"], None, 2,
        f"{OURS} is a String (version 1); storing the secret makes it a SecureString",
        {OURS: ("String", "plain-value", 1)},
    ),
    "type change declined at the terminal": (
        {OURS: "default"}, ["put", OURS, "--fleet", "{fleet}"], "n\n", 1, "nixecs: aborted",
        {OURS: ("String", "plain-value", 1)},
    ),
    "type change of a foreign parameter, --outside-fleet, no terminal": (
        {THEIRS: None}, ["put", THEIRS, "--value-stdin", "--outside-fleet"], None, 2,
        "no terminal to confirm on: pass --yes", {THEIRS: ("String", "plain-value", 1)},
    ),
    "type change with --yes": (
        {OURS: "default"}, ["put", OURS, "--value-stdin", "--fleet", "{fleet}", "--yes"], None, 0,
        "", {OURS: ("SecureString", "new-value", 2)},
    ),
    "rm without a terminal": (
        {OURS: "default"}, ["rm", OURS, "--fleet", "{fleet}"], None, 2,
        f"This deletes SSM parameter {OURS} (String, version 1",
        {OURS: ("String", "plain-value", 1)},
    ),
    "rm declined at the terminal": (
        {OURS: "default"}, ["rm", OURS, "--fleet", "{fleet}"], "n\n", 1, "aborted",
        {OURS: ("String", "plain-value", 1)},
    ),
    "rm accepted at the terminal": (
        {OURS: "default"}, ["rm", OURS, "--fleet", "{fleet}"], "y\n", 0, "", {OURS: None},
    ),
    "rm of a foreign parameter with --outside-fleet --yes": (
        {THEIRS: None}, ["rm", THEIRS, "--outside-fleet", "--yes"], None, 0, "", {THEIRS: None},
    ),
    "put of the fleet's new parameter: nothing to ask": (
        {}, ["put", OURS, "--value-stdin", "--fleet", "{fleet}"], None, 0, "",
        {OURS: ("SecureString", "new-value", 1)},
    ),
    # the mark `secret put --fleet` writes (nixecs:fleet) is what rm and a type change check
    "type change of the fleet's parameter without its mark": (
        {OURS: None}, ["put", OURS, "--value-stdin", "--fleet", "{fleet}", "--yes"], None, 2,
        f"refusing: secret: {OURS} has no nixecs:fleet tag: `secret put --fleet` did not make "
        "it for fleet 'default'", {OURS: ("String", "plain-value", 1)},
    ),
    "rm of the fleet's parameter without its mark": (
        {OURS: None}, ["rm", OURS, "--fleet", "{fleet}", "--yes"], None, 2,
        f"refusing: secret: {OURS} has no nixecs:fleet tag", {OURS: ("String", "plain-value", 1)},
    ),
    "rm of a parameter another fleet marked": (
        {OURS: "acme"}, ["rm", OURS, "--fleet", "{fleet}", "--yes"], None, 2,
        f"refusing: secret: {OURS} belongs to fleet 'acme' (nixecs:fleet=acme), not to this "
        "fleet 'default'; pass --outside-fleet", {OURS: ("String", "plain-value", 1)},
    ),
    "put over a parameter another fleet marked": (
        {OURS: "acme"}, ["put", OURS, "--value-stdin", "--fleet", "{fleet}", "--yes"], None, 2,
        f"{OURS} belongs to fleet 'acme'", {OURS: ("String", "plain-value", 1)},
    ),
    "rm without the mark, --outside-fleet --yes": (
        {OURS: None}, ["rm", OURS, "--fleet", "{fleet}", "--outside-fleet", "--yes"], None, 0,
        "", {OURS: None},
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
    for name, mark in there.items():
        _plain(moto.url, name, fleet=mark)
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
    ssm.add_response(
        "list_tags_for_resource",
        {"TagList": [{"Key": "nixecs:fleet", "Value": "default"}]},
        {"ResourceType": "Parameter", "ResourceId": OURS},
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


def _tags(url: str, name: str) -> dict[str, str]:
    found = moto_client(url, "ssm").list_tags_for_resource(
        ResourceType="Parameter", ResourceId=name
    )
    return {t["Key"]: t["Value"] for t in found["TagList"]}


def test_put_marks_the_parameter_as_the_fleets_and_rm_reads_the_mark(moto, fleet, capsys):
    """`secret put --fleet` tags what it creates (nixecs:fleet, and nixecs:cluster of the one
    cluster referencing it) in the PutParameter itself; a new value over an untagged
    SecureString the fleet references claims it through AddTagsToResource — PutParameter
    refuses Tags with Overwrite=true ("tags and overwrite can't be used together", which the
    moto server reproduces, so sending them together would fail here)."""
    base = ["--endpoint-url", moto.url, "--region", "us-east-1", "secret"]
    mine = ["--fleet", str(fleet)]
    created = run_cli(capsys, [*base, "put", OURS, *mine, "--value-stdin"], stdin="one\n")
    assert created.code == 0, created.err
    assert _tags(moto.url, OURS) == {"nixecs:fleet": "default", "nixecs:cluster": "prod"}
    generated = run_cli(capsys, [*base, "put", "/prod/other", "--outside-fleet", "--generate"])
    assert generated.code == 0 and _tags(moto.url, "/prod/other") == {}  # not the fleet's
    # made by hand, untagged: rm refuses; a put of a new value claims it; then rm may
    ssm = moto_client(moto.url, "ssm")
    ssm.delete_parameter(Name=OURS)
    ssm.put_parameter(Name=OURS, Value="by-hand", Type="SecureString")
    refused = run_cli(capsys, [*base, "rm", OURS, *mine, "--yes"])
    assert refused.code == 2 and "has no nixecs:fleet tag" in refused.err
    claimed = run_cli(capsys, [*base, "put", OURS, *mine, "--value-stdin"], stdin="two\n")
    assert claimed.code == 0, claimed.err
    assert claimed.out == f"{OURS}: updated (version 2)\n"
    assert f"{OURS}: tagged nixecs:fleet=default (it had no owner mark)" in claimed.err
    assert _tags(moto.url, OURS) == {"nixecs:fleet": "default", "nixecs:cluster": "prod"}
    removed = run_cli(capsys, [*base, "rm", OURS, *mine, "--yes"])
    assert removed.code == 0 and removed.out == f"{OURS}: removed\n"
    # another fleet's parameter: --outside-fleet writes the value, and leaves its mark alone
    ssm.put_parameter(
        Name=OURS,
        Value="theirs",
        Type="SecureString",
        Tags=[{"Key": "nixecs:fleet", "Value": "acme"}],
    )
    outside = [*base, "put", OURS, *mine, "--outside-fleet", "--value-stdin"]
    acted = run_cli(capsys, outside, stdin="three\n")
    assert acted.code == 0 and acted.out == f"{OURS}: updated (version 2)\n", acted.err
    assert _tags(moto.url, OURS) == {"nixecs:fleet": "acme"}


# Two clusters (in flow style: one group each) sharing /acme/shared, each with its own /NAME/db.
TWO_CLUSTERS = "version: 1\nregion: us-east-1\nparameter_prefix: /acme\nclusters:\n" + "".join(
    f"  {name}: {{subnets: [subnet-0a1b2c3d], security_groups: [sg-0a1b2c3d], groups: {{web: "
    "{ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {min: 1, max: 2}, "
    f"secrets: {{db: {{parameter: /{name}/db}}, shared: {{parameter: /acme/shared}}}}}}}}}}\n"
    for name in ("prod", "staging")
)


def test_a_parameter_of_two_clusters_or_only_below_the_prefix_has_no_cluster_mark(tmp_path):
    from nixecs.fleet.checks import check_fleet_file

    model, _ = check_fleet_file(str(write_fleet(tmp_path, TWO_CLUSTERS)))
    assert model.parameter_tags("/prod/db") == {"nixecs:fleet": "default", "nixecs:cluster": "prod"}
    assert model.parameter_tags("/staging/db")["nixecs:cluster"] == "staging"
    assert model.parameter_tags("/acme/shared") == {"nixecs:fleet": "default"}  # two clusters
    assert model.parameter_tags("/acme/other") == {"nixecs:fleet": "default"}  # prefix only


def test_a_parameter_a_clusters_task_reads_carries_that_clusters_mark(tmp_path):
    """A cluster's `tasks:` read parameters as its services do: one read only by a task is
    that cluster's (as `parameter_uses` and `owns_parameter` already say)."""
    from nixecs.fleet.checks import check_fleet_file

    text = (EXAMPLES / "workloads.yml").read_text(encoding="utf-8")
    marker = "      migrate:  # `nixecs run jobs/migrate --wait`\n        group: web\n"
    assert marker in text
    text = text.replace(marker, marker + "        secrets: {DB: /jobs/db/password}\n")
    model, _ = check_fleet_file(str(write_fleet(tmp_path, text)))
    assert model.owns_parameter("/jobs/db/password")
    assert model.parameter_tags("/jobs/db/password") == {
        "nixecs:fleet": "default",
        "nixecs:cluster": "jobs",
    }


def test_a_second_cluster_reading_a_parameter_removes_its_cluster_mark(moto, tmp_path, capsys):
    """The fleet edit: /acme/shared read by staging alone (marked nixecs:cluster=staging),
    then by prod too. AddTagsToResource adds or overwrites, never removes, so the next `put`
    removes the mark the fleet no longer gives (RemoveTagsFromResource) instead of leaving
    it naming staging; a mark of a cluster still the only reader is kept."""
    base = ["--endpoint-url", moto.url, "--region", "us-east-1", "secret", "put"]
    staging_only = TWO_CLUSTERS.replace(
        "shared: {parameter: /acme/shared}", "other: {parameter: /acme/x}", 1
    )
    assert staging_only != TWO_CLUSTERS
    (tmp_path / "one").mkdir()
    (tmp_path / "both").mkdir()
    one = write_fleet(tmp_path / "one", staging_only)
    first = run_cli(
        capsys, [*base, "/acme/shared", "--fleet", str(one), "--value-stdin"], stdin="a\n"
    )
    assert first.code == 0, first.err
    assert _tags(moto.url, "/acme/shared")["nixecs:cluster"] == "staging"
    both = write_fleet(tmp_path / "both", TWO_CLUSTERS)
    again = run_cli(
        capsys, [*base, "/acme/shared", "--fleet", str(both), "--value-stdin"], stdin="b\n"
    )
    assert again.code == 0, again.err
    assert _tags(moto.url, "/acme/shared") == {"nixecs:fleet": "default"}
    # a parameter still read by one cluster keeps its mark through a new value
    for stdin in ("c\n", "d\n"):
        kept = run_cli(
            capsys, [*base, "/prod/db", "--fleet", str(both), "--value-stdin"], stdin=stdin
        )
        assert kept.code == 0, kept.err
    assert _tags(moto.url, "/prod/db") == {"nixecs:fleet": "default", "nixecs:cluster": "prod"}
