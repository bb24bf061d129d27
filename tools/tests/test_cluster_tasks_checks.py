"""A cluster's `tasks:` go through every offline path a service's task definition does (issue
20, item 4): the AWS rules (E125 fit, E126 image grammar), the lints (W171 untagged image,
W170 nothing writable), the instance role's ECR pulls, and deploy's ECR digest pinning (its
findings located at the task's own `image:`)."""

from __future__ import annotations

import pytest

from nixecs.aws.images import Problem, Resolution, pin_fleet
from nixecs.cloudformation import build_stack
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.checks import check
from nixecs.fleet.images import ImageRef
from test_scheduled import tasks_with

MIGRATE = "  migrate:\n    group: web\n    image: busybox:1.36\n    memory: 64\n"
DIGEST = "sha256:" + "ab" * 32


def findings(text: str) -> list[tuple[str, str]]:
    """(code, the line it points at) of every finding of `validate`'s checks."""
    lines = text.split("\n")
    try:
        report = check(parse(text, "fleet.yml"), nix=False)
    except InvalidInput as error:
        report = error.report
    return [(d.code, lines[d.location.line - 1].strip()) for d in report.sorted()]


@pytest.mark.parametrize(
    ("migrate", "expected"),
    [
        (
            "  migrate:\n    group: web\n    image: Busybox:1.36\n    memory: 64\n",
            ("E126", "image: Busybox:1.36"),
        ),
        (
            "  migrate:\n    group: web\n    image: busybox:1.36\n    memory: 65536\n",
            ("E125", "memory: 65536"),
        ),
        (
            "  migrate:\n    group: web\n    image: public.ecr.aws/acme/tool\n    memory: 64\n",
            ("W171", "image: public.ecr.aws/acme/tool"),
        ),
        (
            "  migrate:\n    group: web\n    containers:\n"
            "      migrate: {image: 'busybox:1.36', memory: 64, read_only_root_filesystem: true}\n",
            (
                "W170",
                "migrate: {image: 'busybox:1.36', memory: 64, read_only_root_filesystem: true}",
            ),
        ),
    ],
    ids=["E126", "E125", "W171", "W170"],
)
def test_a_tasks_container_is_checked_as_a_services(
    migrate: str, expected: tuple[str, str]
) -> None:
    found = findings(tasks_with(MIGRATE, migrate))
    assert expected in found, found
    # the same file without the task's fault draws nothing of the kind
    assert not [f for f in findings(tasks_with(MIGRATE, MIGRATE)) if f[0] == expected[0]]


def test_the_instance_role_pulls_the_tasks_ecr_images() -> None:
    text = tasks_with(MIGRATE, MIGRATE.replace("busybox:1.36", "{ecr: migrations, tag: v1}"))
    stack = build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    (pulls,) = [
        s
        for r in stack["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
        for p in r["Properties"].get("Policies", [])
        for s in p["PolicyDocument"]["Statement"]
        if s.get("Sid") == "EcrPullServiceImages"
    ]
    assert [str(r) for r in pulls["Resource"]] == [
        str(
            {
                "Fn::Sub": "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/migrations"
            }
        )
    ]


def test_deploy_pins_the_tasks_ecr_images_and_locates_their_problems() -> None:
    text = tasks_with(MIGRATE, MIGRATE.replace("busybox:1.36", "{ecr: migrations, tag: v1}"))
    fleet = parse(text, "fleet.yml")
    pinned = pin_fleet(fleet, Resolution(digests={("migrations", "v1"): DIGEST}))
    (container,) = pinned.clusters["prod"].tasks["migrate"].task.containers
    assert container.image.digest == DIGEST
    assert pinned.clusters["prod"].tasks["migrate"].task.image.digest == DIGEST
    missing = Problem(ImageRef(ecr="migrations", tag="v1"), "E136", "no tag v1")
    with pytest.raises(InvalidInput) as caught:
        pin_fleet(fleet, Resolution(problems=[missing]))
    lines = text.split("\n")
    ((code, line),) = [
        (d.code, lines[d.location.line - 1].strip()) for d in caught.value.report.sorted()
    ]
    assert (code, line) == ("E136", "image: {ecr: migrations, tag: v1}")


def test_the_tasks_parameters_are_the_fleets() -> None:
    """`secret put/rm` and preflight's E132 see a task's SSM parameters as the fleet's."""
    secrets = "    secrets: {TOKEN: /prod/migrate/token}\n"
    fleet = parse(tasks_with(MIGRATE, MIGRATE + secrets), "fleet.yml")
    assert "/prod/migrate/token" in fleet.parameter_uses()
    assert fleet.owns_parameter("/prod/migrate/token")


def _attributes(count: int) -> str:
    from test_services import HEAD

    attributes = ", ".join(f"a{i}: v" for i in range(count))
    line = "        capacity: {min: 1, max: 3}\n"
    assert line in HEAD
    return tasks_with(MIGRATE, MIGRATE).replace(
        line, line + f"        ecs: {{attributes: {{{attributes}}}}}\n", 1
    )


@pytest.mark.parametrize(("count", "refused"), [(9, False), (10, True), (12, True)])
def test_ecs_custom_attributes_count_the_group_attribute(count: int, refused: bool) -> None:
    """ECS allows 10 custom attributes a container instance (API_PutAttributes,
    AttributeLimitExceededException); nixecs.group is the group's eleventh at 10 written."""
    found = [f for f in findings(_attributes(count)) if f[0] == "E188"]
    written = ", ".join(f"a{i}: v" for i in range(count))
    assert found == ([("E188", f"ecs: {{attributes: {{{written}}}}}")] if refused else []), found
