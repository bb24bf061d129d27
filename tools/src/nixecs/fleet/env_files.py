"""A container's `environment_files:` (issue 20, item 5): S3 objects of variables the agent
reads at task start (ECS EnvironmentFile, type s3) — E181.

"You can specify up to ten environment files. The file must have a .env file extension"
(ECS API reference, API_EnvironmentFile; ECS developer guide, use-environment-file); the value
is the object's ARN. The execution role reads them: s3:GetObject on each object and
s3:GetBucketLocation on its bucket (the developer guide's required IAM permissions for
environment files; cloudformation/env_files.py).
"""

from __future__ import annotations

from .. import settings as s
from ..lazyre import lazy
from ..settings import Issue
from .decl import as_str, check, member, string, strings
from .yaml12 import Path

CONTAINER_KEYS = ("environment_files",)
MAX_FILES = 10
# An S3 object ARN (arn:PARTITION:s3:::BUCKET/KEY); bucket names: 3-63 lower-case letters,
# digits, . and - (S3 bucket naming rules).
OBJECT_ARN_RE = lazy(
    r"arn:aws(?:-[a-z]+)*:s3:::(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]{1,1024})"
)

OBJECT_ARN_RULE = "an S3 object ARN of a .env file, arn:aws:s3:::BUCKET/KEY.env"
# The declared pattern holds the extension too, so the JSON Schema refuses what the loader
# does ("The file must have a .env file extension", API_EnvironmentFile).
ENV_FILE_PATTERN = OBJECT_ARN_RE.pattern.replace("?P<bucket>", "").replace(
    "(?P<key>[^\\s]{1,1024})", "(?:[^\\s]{0,1020}\\.env)"
)
ENVIRONMENT_FILES = strings(
    "S3 objects of variables (.env files) the agent reads at task start; the execution "
    "role may read exactly these (E181)",
    string(
        "an S3 object ARN",
        pattern=ENV_FILE_PATTERN,
        rule=OBJECT_ARN_RULE,
        code="E181",
    ),
    aws=f"ECS EnvironmentFile: at most {MAX_FILES}, .env extension",
    unique=True,  # E181: a file listed twice
    max_items=MAX_FILES,
    example=["arn:aws:s3:::acme-config/prod/app.env"],
)


def parse_env_files(m: dict[str, object], path: Path, issues: list[Issue]) -> tuple[str, ...]:
    if "environment_files" not in m:
        return ()
    where: Path = (*path, "environment_files")
    value = m["environment_files"]
    if not isinstance(value, list):
        issues.append(
            Issue(where, s.E_TYPE, f"expected a list of S3 object ARNs, got {s.type_name(value)}")
        )
        return ()
    if len(value) > MAX_FILES:
        issues.append(
            Issue(where, "E181", f"{len(value)} environment files: ECS takes at most {MAX_FILES}")
        )
    found: list[str] = []
    for index, item in enumerate(value):
        at: Path = (*where, index)
        checked = check(member(ENVIRONMENT_FILES), item, at, issues)
        if checked is None:
            continue
        arn = as_str(checked)
        # the list's own rules (the extension is the declared pattern's): each file once, at
        # most MAX_FILES
        if arn in found:
            issues.append(Issue(at, "E181", "this environment file is listed twice"))
            continue
        found.append(arn)
    return tuple(found)


def bucket_arn(object_arn: str) -> str:
    match = OBJECT_ARN_RE.fullmatch(object_arn)
    assert match is not None
    return object_arn.split(":::", 1)[0] + ":::" + match["bucket"]
