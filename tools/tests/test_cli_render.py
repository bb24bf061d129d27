"""`validate`, `render`, `userdata` and `scaling check` as DESIGN §6 specifies them: files,
exit codes, diagnostics on stderr, JSON output, determinism, atomic and all-or-nothing writes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import EXAMPLES, REPO, oversized_example_fleet

DIAGNOSTIC_LINE = r"^\S+:\d+:\d+: (error|warning)\[[EW]\d{3}\]: "


def nixecs(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "nixecs", *args], cwd=cwd, capture_output=True, check=False, env=env
    )


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_render_writes_manifest_stacks_and_userdata(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = nixecs("render", str(EXAMPLES / "fleet.yml"), "-o", str(out))
    assert result.returncode == 0, result.stderr.decode()
    assert sorted(tree_digest(out)) == [
        "manifest.json",
        "prod/groups/web.userdata",
        "prod/groups/workers.userdata",
        "prod/stack.yaml",
    ]
    manifest = json.loads((out / "manifest.json").read_text())
    web = manifest["clusters"]["prod"]["groups"]["web"]
    data = (out / "prod/groups/web.userdata").read_bytes()
    assert web == {
        "userdata": "prod/groups/web.userdata",
        "format": "settings",
        "bytes": len(data),
        "gzip": False,
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert data.startswith(b"#nixecs-settings v1\n")
    assert (
        (out / "prod/groups/workers.userdata")
        .read_bytes()
        .startswith(b"# nixecs-userdata v1 cluster=prod group=workers")
    )
    # the userdata command prints exactly the rendered bytes
    assert nixecs("userdata", str(EXAMPLES / "fleet.yml"), "prod/web").stdout == data
    assert nixecs(
        "userdata", str(EXAMPLES / "fleet.yml"), "prod/web", "--format", "nix"
    ).stdout.startswith(b"# nixecs-userdata v1")


def test_render_is_deterministic_across_processes(tmp_path: Path) -> None:
    digests = []
    for seed in ("0", "12345"):
        out = tmp_path / f"out-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        assert (
            nixecs("render", str(EXAMPLES / "fleet.yml"), "-o", str(out), env=env).returncode == 0
        )
        digests.append(tree_digest(out))
    assert digests[0] == digests[1]


def test_invalid_fleet_writes_nothing_and_leaves_a_previous_render_intact(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert nixecs("render", str(EXAMPLES / "fleet.yml"), "-o", str(out)).returncode == 0
    before = tree_digest(out)
    broken = tmp_path / "fleet.yml"
    text = (EXAMPLES / "fleet.yml").read_text()
    # the web group's capacity: its line and the column of its `min:` value, from the text
    line = next(n for n, x in enumerate(text.splitlines(), 1) if "min: 2, max: 10" in x)
    column = text.splitlines()[line - 1].index("min: 2") + len("min: ") + 1
    broken.write_text(text.replace("min: 2, max: 10", "min: 12, max: 10"))
    result = nixecs("render", str(broken), "-o", str(out))
    assert result.returncode == 2
    assert result.stdout == b""
    lines = result.stderr.decode().splitlines()
    assert (
        len(lines) == 1
        and f"{broken}:{line}:{column}: error[E109]: min 12 is greater than max 10" == lines[0]
    )
    assert tree_digest(out) == before
    assert not [p for p in out.rglob("*") if ".tmp-" in p.name]  # no temporary files left behind


def test_validate_exit_codes_and_json(tmp_path: Path) -> None:
    ok = nixecs("--output", "json", "validate", str(EXAMPLES / "fleet.yml"))
    assert ok.returncode == 0 and json.loads(ok.stdout)["valid"] is True
    # Its `flake:` is github:…, not readable offline. Its groups run the default host
    # (ecs-node): the unchecked hosts are not warned about (nothing to mistype); its `nixos:`
    # texts are (they were only parsed, and an option typo in them shows only at boot).
    [warning] = json.loads(ok.stdout)["diagnostics"]
    assert warning["code"] == "W501" and "hosts" not in warning["message"]
    assert warning["message"].startswith("the `nixos:` texts were only parse-checked")
    bad = tmp_path / "bad.yml"
    bad.write_text("version: 1\nregion: us-east-1\nclusters: {a b: {}}\nextra: 1\n")
    result = nixecs("--output", "json", "validate", str(bad))
    assert result.returncode == 2
    payload = json.loads(result.stdout)
    assert payload["valid"] is False
    assert [(d["line"], d["column"], d["code"]) for d in payload["diagnostics"]] == [
        (3, 12, "E105"),
        (4, 1, "E101"),
    ]
    assert b"Traceback" not in result.stderr


def test_usage_errors_exit_2_without_traceback(tmp_path: Path) -> None:
    for args in (
        ("render", str(EXAMPLES / "fleet.yml")),
        ("userdata", str(EXAMPLES / "fleet.yml"), "prod/nope"),
        ("nosuch",),
    ):
        result = nixecs(*args)
        assert result.returncode == 2, args
        assert b"Traceback" not in result.stderr and result.stderr.strip(), args
    missing = nixecs("validate", str(tmp_path / "missing.yml"))
    assert missing.returncode == 2 and b"error[E100]: cannot read the file" in missing.stderr


def test_scaling_check_shows_w201_for_the_article(tmp_path: Path) -> None:
    result = nixecs("scaling", "check", str(EXAMPLES / "blog.yml"))
    assert result.returncode == 0
    stderr = result.stderr.decode()
    assert "warning[W201]" in stderr and "warning[W202]" in stderr
    for line in stderr.splitlines():
        assert line.startswith(str(EXAMPLES / "blog.yml")), line


@pytest.mark.nix
def test_validate_reports_nixos_syntax_errors_at_the_group(
    tmp_path: Path, nix_instantiate: str
) -> None:
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(
        (EXAMPLES / "fleet.yml")
        .read_text()
        .replace('boot.kernel.sysctl."vm.swappiness" = 10;', "boot.kernel = ;")
    )
    result = nixecs("validate", str(fleet))
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    # line 4, column 17 of the block: the block's line 4 in the file, after its indent of 10
    at = _line_of(fleet.read_text(), "boot.kernel = ;")
    assert (
        f":{at}:27: error[E113]: nixos module text does not parse: syntax error, unexpected ';'"
        in line
    )


def _line_of(text: str, needle: str) -> int:
    """The 1-based line of the first line holding NEEDLE (positions follow the example)."""
    return next(n for n, x in enumerate(text.splitlines(), 1) if needle in x)


def test_oversized_userdata_is_refused_with_its_location(tmp_path: Path) -> None:
    fleet = oversized_example_fleet(tmp_path)
    result = nixecs("render", str(fleet), "-o", str(tmp_path / "out"))
    assert result.returncode == 2
    at = _line_of((EXAMPLES / "fleet.yml").read_text(), "        userdata: nix")
    # at the group's `userdata:` key
    assert f":{at}:9: error[E111]: userdata of prod/workers is" in result.stderr.decode()
    assert not (tmp_path / "out").exists()


def test_aws_name_clashes_are_e114(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yml"
    group = "{ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {min: 0, max: 1}}"
    fleet.write_text(
        "version: 1\nregion: us-east-1\nclusters:\n"
        f"  prod:\n    subnets: [subnet-0a1b2c3d]\n    security_groups: [sg-0a1b2c3d]\n    groups:\n      eu-web: {group}\n"
        f"  prod-eu:\n    subnets: [subnet-0a1b2c3d]\n    security_groups: [sg-0a1b2c3d]\n    groups:\n      web: {group}\n"
    )
    result = nixecs("validate", str(fleet))
    assert result.returncode == 2
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(f"{fleet}:13:7: error[E114]: ") and "'nixecs-prod-eu-web'" in line


def test_stacks_over_cloudformation_quotas_are_e115(tmp_path: Path) -> None:
    from nixecs.testing.fleetgen import generate_fleet

    fleet = tmp_path / "fleet.yml"
    fleet.write_text(generate_fleet(1, 60, 60))  # one cluster: well over 500 resources
    for command in (("validate", str(fleet)), ("render", str(fleet), "-o", str(tmp_path / "out"))):
        result = nixecs(*command)
        assert result.returncode == 2, command
        (line,) = result.stderr.decode().splitlines()
        assert line.startswith(f"{fleet}:5:3: error[E115]: stack nixecs-c0: "), line
        assert "over CloudFormation's quota of 500 per stack" in line
    assert not (tmp_path / "out").exists()


def test_unwritable_output_is_an_operational_failure_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = nixecs("render", str(EXAMPLES / "fleet.yml"), "-o", str(blocker / "out"))
    assert result.returncode == 1
    err = result.stderr.decode()
    assert err.startswith("nixecs: error: cannot write ") and str(blocker) in err
    assert "internal error" not in err and len(err.splitlines()) == 1


_TWO_CLUSTERS = """\
version: 1
region: us-east-1
flake: github:acme/infra
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web: {host: ecs-node, ami: ami-0123456789abcdef0, instance_types: [m6i.large],
            capacity: {min: 1, max: 4}}
      batch: {host: ecs-node, ami: ami-0123456789abcdef0, instance_types: [m6i.large],
              capacity: {min: 0, max: 4}}
  old:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web: {host: ecs-node, ami: ami-0123456789abcdef0, instance_types: [m6i.large],
            capacity: {min: 1, max: 4}}
"""


def test_render_removes_only_the_output_it_no_longer_produces(tmp_path: Path) -> None:
    """A cluster and a group dropped from the fleet: their files go (the previous manifest
    listed them); a file someone else put there stays, and so does a path the old manifest
    lists outside the output directory."""
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(_TWO_CLUSTERS, encoding="utf-8")
    out = tmp_path / "out"
    first = nixecs("render", str(fleet), "-o", str(out))
    assert first.returncode == 0, first.stderr.decode()
    assert (out / "old" / "stack.yaml").is_file() and (out / "prod/groups/batch.userdata").is_file()
    (out / "prod" / "notes.txt").write_text("mine")
    outside = tmp_path / "outside.txt"
    outside.write_text("not render's")
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["clusters"]["phantom"] = {"stack": "../outside.txt", "groups": {}}
    (out / "manifest.json").write_text(json.dumps(manifest))

    smaller = _TWO_CLUSTERS.split("  old:")[0].replace(
        "      batch: {host: ecs-node, ami: ami-0123456789abcdef0, instance_types: [m6i.large],\n"
        "              capacity: {min: 0, max: 4}}\n",
        "",
    )
    fleet.write_text(smaller, encoding="utf-8")
    second = nixecs("render", str(fleet), "-o", str(out))
    assert second.returncode == 0, second.stderr.decode()
    assert sorted(tree_digest(out)) == [
        "manifest.json",
        "prod/groups/web.userdata",
        "prod/notes.txt",
        "prod/stack.yaml",
    ]
    assert outside.read_text() == "not render's"


def test_validate_says_when_a_template_bucket_is_needed_e130(tmp_path: Path) -> None:
    """Over 51,200 bytes (CreateChangeSet's inline TemplateBody limit) without
    `template_bucket:`: E130 at the cluster; with one, valid; render is never blocked."""
    from nixecs.testing.fleetgen import generate_fleet

    text = generate_fleet(1, 8, 8)  # one cluster of about 100 KB, within every quota
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(text)
    result = nixecs("validate", str(fleet))
    assert result.returncode == 2, result.stderr.decode()
    (line,) = result.stderr.decode().splitlines()
    assert line.startswith(f"{fleet}:5:3: error[E130]: stack nixecs-c0 is "), line
    assert "set `template_bucket:`" in line
    assert nixecs("render", str(fleet), "-o", str(tmp_path / "out")).returncode == 0
    fleet.write_text(
        text.replace("region: us-east-1\n", "region: us-east-1\ntemplate_bucket: acme-cfn\n")
    )
    assert nixecs("validate", str(fleet)).returncode == 0
    fleet.write_text(
        text.replace("region: us-east-1\n", "region: us-east-1\ntemplate_bucket: Bad_Bucket\n")
    )
    bad = nixecs("validate", str(fleet))
    assert bad.returncode == 2 and ":3:18: error[E107]: 'Bad_Bucket'" in bad.stderr.decode()
