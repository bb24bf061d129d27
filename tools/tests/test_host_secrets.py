"""`nixecs secrets fetch` against moto server: batching, files, ownership, and no value ever shown."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import boto3
import pytest

from conftest import MotoServer
from host_fixtures import imds_fixture, sample_settings  # noqa: F401  (the `imds` fixture)
from nixecs.cli import run
from nixecs.host.secrets import SecretsFailed, SecretWriter, fetch_secrets, load_specs
from nixecs.settings import SecretSpec
from nixecs.testing.imds import ImdsEmulator

pytestmark = pytest.mark.moto

DB_VALUE = "s3cr3t-db-Value-7f2a"
API_VALUE = "api-token-Zq81-never-print"


def ssm_client(moto: MotoServer, region: str = "us-east-1") -> Any:
    return boto3.client("ssm", endpoint_url=moto.url, region_name=region)


def put(moto: MotoServer, name: str, value: str, region: str = "us-east-1") -> None:
    ssm_client(moto, region).put_parameter(Name=name, Value=value, Type="SecureString")


def host_root(tmp_path: Path, list_secrets: object | None = None) -> Path:
    """A re-rooted host: settings.json as `nixecs apply` writes it, plus the image's list."""
    root = tmp_path / "host"
    settings = root / "run/nixecs/settings.json"
    settings.parent.mkdir(parents=True)
    settings.write_text(json.dumps(sample_settings().to_json()))  # db-password ← /prod/db/password
    if list_secrets is not None:
        listing = root / "etc/nixecs/secrets.json"
        listing.parent.mkdir(parents=True)
        listing.write_text(json.dumps(list_secrets))
    return root


def fetch(moto: MotoServer, root: Path, *extra: str) -> int:
    return run(
        [
            "--endpoint-url",
            moto.url,
            "--region",
            "us-east-1",
            "secrets",
            "fetch",
            "--root",
            str(root),
            *extra,
        ]
    )


def me() -> tuple[int, int]:
    return os.geteuid(), os.getegid()


def test_fetches_settings_and_list_secrets_into_files(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(moto, "/prod/db/password", DB_VALUE)
    put(moto, "/prod/api/token", API_VALUE)
    uid, gid = me()
    # The list as the NixOS module writes it (a list with name and path) …
    root = host_root(
        tmp_path,
        [
            {
                "name": "api-token",
                "parameter": "/prod/api/token",
                "owner": str(uid),
                "group": str(gid),
                "mode": "0440",
                "path": "/run/nixecs/secrets/api-token",
            }
        ],
    )
    assert fetch(moto, root) == 0
    db = root / "run/nixecs/secrets/db-password"
    api = root / "run/nixecs/secrets/api-token"
    assert db.read_text() == DB_VALUE
    assert api.read_text() == API_VALUE
    assert stat.S_IMODE(db.stat().st_mode) == 0o400
    assert stat.S_IMODE(api.stat().st_mode) == 0o440
    assert (api.stat().st_uid, api.stat().st_gid) == (uid, gid)
    out = capsys.readouterr()
    assert DB_VALUE not in out.err + out.out and API_VALUE not in out.err + out.out
    assert "2 secret(s) in place" in out.err


def test_list_file_in_the_settings_shape(moto: MotoServer, tmp_path: Path) -> None:
    put(moto, "/prod/db/password", DB_VALUE)
    put(moto, "/prod/api/token", API_VALUE)
    root = host_root(tmp_path, {"api-token": {"parameter": "/prod/api/token", "mode": "0400"}})
    assert fetch(moto, root) == 0
    assert (root / "run/nixecs/secrets/api-token").read_text() == API_VALUE


def test_more_than_ten_parameters_are_batched_ten_per_call(
    moto: MotoServer, tmp_path: Path
) -> None:
    ssm = ssm_client(moto)
    specs = {}
    for index in range(23):
        ssm.put_parameter(Name=f"/bulk/p{index:02d}", Value=f"value-{index}", Type="SecureString")
        specs[f"s{index:02d}"] = SecretSpec(
            f"/bulk/p{index:02d}", str(os.geteuid()), str(os.getegid()), "0400"
        )
    # Two secrets may share one parameter: it is fetched once.
    specs["alias"] = SecretSpec("/bulk/p00", str(os.geteuid()), str(os.getegid()), "0400")
    calls: list[list[str]] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        calls.append(list(params["Names"]))
        assert params["WithDecryption"] is True

    ssm.meta.events.register("provide-client-params.ssm.GetParameters", count)
    lines: list[str] = []
    written = fetch_secrets(specs, ssm, SecretWriter(str(tmp_path), lines.append), lines.append)
    assert [len(names) for names in calls] == [10, 10, 3]
    assert sorted(n for names in calls for n in names) == [f"/bulk/p{i:02d}" for i in range(23)]
    assert len(written) == 24
    assert (tmp_path / "run/nixecs/secrets/s17").read_text() == "value-17"
    assert (tmp_path / "run/nixecs/secrets/alias").read_text() == "value-0"
    assert not any("value-" in line for line in lines)


def test_missing_parameter_fails_by_name_and_writes_nothing(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(moto, "/prod/db/password", DB_VALUE)
    root = host_root(tmp_path, {"api-token": {"parameter": "/prod/api/missing"}})
    assert fetch(moto, root) == 1
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "error" in line]
    assert lines == [
        "nixecs: error: SSM has no parameter /prod/api/missing (or the instance role may not read it); no secret was written"
    ]
    assert DB_VALUE not in err
    assert not (root / "run/nixecs/secrets").exists()


def test_values_never_appear_even_with_verbose_failures(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    put(moto, "/prod/db/password", DB_VALUE)
    root = host_root(tmp_path)
    (root / "run/nixecs/secrets").parent.mkdir(parents=True, exist_ok=True)
    (root / "run/nixecs/secrets").write_text("a file where the directory should be")
    code = run(
        [
            "-v",
            "--endpoint-url",
            moto.url,
            "--region",
            "us-east-1",
            "secrets",
            "fetch",
            "--root",
            str(root),
        ]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "run/nixecs/secrets: is a symbolic link or not a directory" in err
    assert "no secret was written" in err
    assert DB_VALUE not in err
    assert "Traceback" not in err


def test_ownership_when_root_or_not(tmp_path: Path) -> None:
    """As root the requested owner is applied; otherwise only what the caller may give."""
    lines: list[str] = []
    spec = SecretSpec("/x", "65534", "65534", "0400")
    real = SecretWriter(str(tmp_path / "real"), lines.append)
    path = Path(real.write("nobody-secret", spec, DB_VALUE, 65534, 65534))
    if os.geteuid() == 0:
        assert (path.stat().st_uid, path.stat().st_gid) == (65534, 65534)
        assert lines == []
    else:
        assert path.stat().st_uid == os.geteuid()
        assert "stays owned by uid" in lines[0]

    # An unprivileged caller (euid not 0, not the requested owner) keeps its own ownership.
    lines.clear()
    unprivileged = SecretWriter(str(tmp_path / "unprivileged"), lines.append, euid=12345)
    path = Path(unprivileged.write("db", spec, DB_VALUE, 65534, 65534))
    assert path.stat().st_uid == os.geteuid()
    assert stat.S_IMODE(path.stat().st_mode) == 0o400
    assert len(lines) == 1 and "not 65534:65534 as requested" in lines[0]
    assert DB_VALUE not in lines[0]

    # Giving a file to oneself is always permitted: no warning.
    lines.clear()
    uid, gid = me()
    own = SecretWriter(str(tmp_path / "own"), lines.append, euid=uid)
    path = Path(own.write("mine", SecretSpec("/x", str(uid), str(gid), "0600"), "v", uid, gid))
    assert (path.stat().st_uid, path.stat().st_gid) == (uid, gid) and lines == []


def test_unknown_owner_is_invalid_before_any_aws_call(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_root(
        tmp_path, {"api-token": {"parameter": "/prod/api/token", "owner": "no-such-user-x"}}
    )
    assert fetch(moto, root) == 2
    assert "no user 'no-such-user-x'" in capsys.readouterr().err


def test_conflicting_declarations_are_invalid(tmp_path: Path) -> None:
    root = host_root(tmp_path, {"db-password": {"parameter": "/other/param"}})
    with pytest.raises(Exception, match="declared differently"):
        load_specs(
            str(root / "run/nixecs/settings.json"),
            str(root / "etc/nixecs/secrets.json"),
            lambda _: None,
        )


def test_invalid_list_file_exits_2(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = host_root(tmp_path, {"../escape": {"parameter": "/x"}})
    assert fetch(moto, root) == 2
    assert "is not valid" in capsys.readouterr().err
    assert not (root / "run/nixecs/secrets").exists()


def test_nothing_declared_is_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(["secrets", "fetch", "--root", str(tmp_path)]) == 0
    assert "nothing to fetch" in capsys.readouterr().err


def test_region_comes_from_imds_when_not_given(
    moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    put(moto, "/prod/db/password", "in-us-west-2", region="us-west-2")
    root = host_root(tmp_path)
    with ImdsEmulator(region="us-west-2") as imds:
        code = run(
            [
                "--endpoint-url",
                moto.url,
                "secrets",
                "fetch",
                "--root",
                str(root),
                "--imds",
                imds.url,
            ]
        )
        assert imds.count("GET", "/latest/meta-data/placement/region") == 1
    assert code == 0
    assert (root / "run/nixecs/secrets/db-password").read_text() == "in-us-west-2"


def test_fetch_values_error_carries_no_value(moto: MotoServer) -> None:
    put(moto, "/a", DB_VALUE)
    with pytest.raises(SecretsFailed) as caught:
        from nixecs.host.secrets import fetch_values

        fetch_values(ssm_client(moto), ["/a", "/b"])
    assert (
        "/b" in str(caught.value)
        and DB_VALUE not in str(caught.value)
        and "/a," not in str(caught.value)
    )
