"""The host reads userdata, settings.json and the secret list as strictly as the renderer
writes them (issue 12, item 8): each case here was accepted before, silently or harmfully."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path
from typing import Any

import boto3
import pytest

from conftest import MotoServer
from host_fixtures import run_apply, sample_settings
from nixecs import formats
from nixecs.host.secrets import (
    SecretsFailed,
    SecretsInvalid,
    SecretWriter,
    fetch_secrets,
    load_specs,
)
from nixecs.settings import SETTINGS_HEADER, Issue, SettingsError, loads, parse_secret

GOOD = json.dumps(sample_settings().to_json(), sort_keys=True)


def userdata(body: str) -> str:
    return f"{SETTINGS_HEADER}\n{body}\n"


def apply_file(tmp_path: Path, data: bytes) -> tuple[int, str]:
    source = tmp_path / "userdata"
    source.write_bytes(data)
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    return run_apply("--userdata", str(source), "--root", str(root))


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            GOOD.replace('"cluster": "prod"', '"cluster": "evil", "cluster": "prod"'),
            "duplicate key 'cluster'",
        ),
        (
            GOOD.replace('"team": "payments"', '"team": "a", "team": "payments"'),
            "duplicate key 'team'",
        ),
        (GOOD.replace('"version": 1', '"version": true'), "unsupported settings version True"),
        (GOOD.replace('"version": 1', '"version": 1.0'), "unsupported settings version 1.0"),
        (GOOD.replace('"payments"', '"pay\\u000aments"'), "control character U+000A"),
        (GOOD.replace('"team"', '"te\\u001bam"'), "control character U+001B"),
        (
            GOOD.replace('"github:acme/infra"', '"github:acme/infra\\u007f"'),
            "control character U+007F",
        ),
        (
            GOOD.replace('"reserved_memory_mib": 0', '"reserved_memory_mib": NaN'),
            "NaN is not a JSON number",
        ),
    ],
    ids=[
        "dup-top",
        "dup-nested",
        "version-true",
        "version-float",
        "newline",
        "escape-in-key",
        "del",
        "nan",
    ],
)
def test_settings_the_renderer_never_writes_are_refused(
    tmp_path: Path, body: str, message: str
) -> None:
    assert body != GOOD
    with pytest.raises(SettingsError) as caught:
        loads(userdata(body))
    assert message in str(caught.value)
    code, err = apply_file(tmp_path, userdata(body).encode())
    assert code == 2 and message in err and "Traceback" not in err
    assert not any(c in err for c in "\x1b\x7f\r")  # never a raw control character
    assert not (tmp_path / "root/run").exists()  # nothing written


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (b"junk", "4 byte(s) of trailing data after the gzip stream"),
        (gzip.compress(b"#!/bin/sh\necho second member\n"), "trailing data after the gzip stream"),
    ],
    ids=["junk", "second-member"],
)
def test_trailing_data_after_the_gzip_stream_is_refused(
    tmp_path: Path, extra: bytes, message: str
) -> None:
    data = gzip.compress(userdata(GOOD).encode()) + extra
    with pytest.raises(formats.FormatError, match=re.escape(message)):
        formats.decode(data)
    code, err = apply_file(tmp_path, data)
    assert code == 2 and message in err
    assert formats.decode(gzip.compress(userdata(GOOD).encode()))[0] == "settings"


@pytest.mark.parametrize("account", ["4294967295", "4294967296", "9999999999"])
def test_ids_chown_cannot_give_are_refused_by_the_schema(account: str) -> None:
    for key in ("owner", "group"):
        issues: list[Issue] = []
        assert parse_secret({"parameter": "/p/x", key: account}, ("secrets", "s"), issues) is None
        assert [(i.path, i.code) for i in issues] == [(("secrets", "s", key), "E107")]
    assert parse_secret({"parameter": "/p/x", "owner": "4294967294"}, ("s",), []) is not None


def write_list(tmp_path: Path, items: object) -> str:
    path = tmp_path / "secrets.json"
    path.write_text(json.dumps(items) if not isinstance(items, str) else items)
    return str(path)


def test_an_id_too_large_fails_before_any_file_is_written(tmp_path: Path) -> None:
    """Before: `a` was written, then os.fchown raised OverflowError on `b` (a traceback)."""
    listing = write_list(
        tmp_path,
        [
            {"name": "a", "parameter": "/p/a"},
            {"name": "b", "parameter": "/p/b", "owner": "4294967296"},
        ],
    )
    with pytest.raises(SecretsInvalid, match="4294967296 is not a valid id"):
        load_specs(None, listing, lambda line: None)


def test_a_secret_declared_twice_in_the_list_is_refused(tmp_path: Path) -> None:
    listing = write_list(
        tmp_path,
        [{"name": "db", "parameter": "/p/a"}, {"name": "db", "parameter": "/p/b", "mode": "0444"}],
    )
    with pytest.raises(SecretsInvalid, match="'db' is declared twice"):
        load_specs(None, listing, lambda line: None)
    # the settings shape (a JSON object): the duplicate key itself is refused
    listing = write_list(tmp_path, '{"db": {"parameter": "/p/a"}, "db": {"parameter": "/p/b"}}')
    with pytest.raises(SecretsInvalid, match="duplicate key 'db'"):
        load_specs(None, listing, lambda line: None)


@pytest.mark.moto
@pytest.mark.parametrize("kind", ["String", "StringList"])
def test_a_parameter_that_is_not_a_securestring_is_refused(
    moto: MotoServer, tmp_path: Path, kind: str
) -> None:
    ssm: Any = boto3.client("ssm", endpoint_url=moto.url, region_name="us-east-1")
    ssm.put_parameter(Name="/p/enc", Value="fine-value", Type="SecureString")
    ssm.put_parameter(Name="/p/plain", Value="plain-value-9", Type=kind)
    listing = write_list(
        tmp_path,
        [{"name": "enc", "parameter": "/p/enc"}, {"name": "plain", "parameter": "/p/plain"}],
    )
    specs = load_specs(None, listing, lambda line: None)
    root = tmp_path / "host"
    with pytest.raises(SecretsFailed) as caught:
        fetch_secrets(specs, ssm, SecretWriter(str(root), lambda line: None), lambda line: None)
    assert "/p/plain is not a SecureString" in str(caught.value)
    assert "plain-value-9" not in str(caught.value) and "fine-value" not in str(caught.value)
    assert not os.path.exists(root / "run")  # not even the SecureString was written


def test_the_fleet_refuses_control_characters_in_tags_as_the_host_does() -> None:
    """One schema, two ends: what the host would refuse, the renderer does not write."""
    from nixecs.diagnostics import InvalidInput
    from nixecs.fleet import parse

    fleet = """\
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
        capacity: {min: 1, max: 3}
        ecs: {tags: {team: "pay\\nments", "t\\tb": ok}}
"""
    with pytest.raises(InvalidInput) as caught:
        parse(fleet, "fleet.yml")
    found = sorted(d.format() for d in caught.value.report.sorted())
    # ECS's tag rule (letters, digits, spaces and + - = . _ : / @) leaves no control character.
    assert len(found) == 2 and all(("[E116]" in t or "[E117]" in t) for t in found), found
