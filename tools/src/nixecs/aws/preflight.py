"""Preflight for `deploy` and `validate --aws`: what would certainly fail in the account and
region, found before a change set exists, each at the fleet key that causes it (E131-E135).

- E131 the service-linked roles: AWSServiceRoleForECS (trusts ecs.amazonaws.com —
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/using-service-linked-roles.html)
  and, for scaled services, AWSServiceRoleForApplicationAutoScaling_ECSService (principal
  ecs.application-autoscaling.amazonaws.com —
  https://docs.aws.amazon.com/autoscaling/application/userguide/services-that-can-integrate-ecs.html).
  Both are normally created on first use, but only for a caller allowed
  iam:CreateServiceLinkedRole; `--create-service-linked-roles` creates them up front
  (CreateServiceLinkedRole with AWSServiceName, the service principal —
  https://docs.aws.amazon.com/IAM/latest/APIReference/API_CreateServiceLinkedRole.html).
- E132 every SSM parameter the fleet references exists and is a SecureString: by name, and by
  ARN in `secrets:` when the ARN is of the deploying account and region. Looked up with
  DescribeParameters (metadata only: no value, encrypted or not, ever leaves SSM), at most 50
  names a call (ParameterStringFilter Values: max 50, botocore's ssm model).
- E133 subnets and security groups exist, and all of a cluster's are in one VPC.
- E134 each AMI exists in the region; E135 its architecture is one every instance type of
  the group supports (DescribeInstanceTypes ProcessorInfo.SupportedArchitectures).
- E136-E138 each ECR image (`image: {ecr: REPO, tag | digest}`) exists: its repository (E137),
  its tag (E136) or digest (E138), looked up with ecr:DescribeImages (aws/images.py).
Lookups use filters, which return what exists instead of failing on the first missing id.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from ..diagnostics import InvalidInput, Report
from . import secrets_manager
from .session import Session, aws_errors, error_code

ECS_ROLE = ("AWSServiceRoleForECS", "ecs.amazonaws.com")
SCALING_ROLE = (
    "AWSServiceRoleForApplicationAutoScaling_ECSService",
    "ecs.application-autoscaling.amazonaws.com",
)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _role_exists(iam: Any, name: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        iam.get_role(RoleName=name)
    except ClientError as error:
        if error_code(error) in ("NoSuchEntity", "NoSuchEntityException"):
            return False
        raise
    return True


def _service_linked_roles(
    session: Session, fleet: Any, report: Report, create: bool, say: Any
) -> None:
    iam = session.client("iam")
    first_cluster = next(iter(fleet.clusters.values()), None)
    if first_cluster is None:
        return
    wanted = [(ECS_ROLE, first_cluster.path)]
    scaled = [s for c in fleet.clusters.values() for s in c.services.values() if s.scaling]
    if scaled:
        wanted.append((SCALING_ROLE, (*scaled[0].path, "scaling")))
    for (name, principal), path in wanted:
        if _role_exists(iam, name):
            continue
        if create:
            from botocore.exceptions import ClientError

            try:
                iam.create_service_linked_role(AWSServiceName=principal)
            except ClientError as error:
                # Made meanwhile (another deploy, or a create whose answer was lost), or by
                # an emulator under another name (moto 5.2: `AWSServiceRoleForecs`): there.
                if error_code(error) != "EntityAlreadyExists":
                    raise
                continue
            say(f"created service-linked role {name} ({principal})")
            continue
        report.add(
            "E131",
            f"the service-linked role {name} does not exist in this account: pass "
            f"--create-service-linked-roles (or run `aws iam create-service-linked-role "
            f"--aws-service-name {principal}`)",
            fleet.document.locate(path, key=True),
        )


def _parameter_arns(session: Session, fleet: Any) -> dict[str, list[Any]]:
    """The SSM parameters containers name by ARN (fleet/secret_refs.py) in the deploying
    account and region → where: DescribeParameters sees only those (it lists the caller's
    account and region). A parameter of another account is shared through AWS RAM and
    readable by the execution role, not necessarily by the deploying credentials; another
    region's needs that region's endpoint: neither is judged here (as DescribeSecret's
    AccessDenied is not, aws/secrets_manager.py)."""
    refs = [
        ref
        for cluster in fleet.clusters.values()
        for service in cluster.task_definitions
        for c in service.containers
        for ref in c.secret_refs
        if ref.service == "ssm" and ref.arn is not None
    ]
    if not refs:
        return {}
    account = session.client("sts").get_caller_identity()["Account"]
    found: dict[str, list[Any]] = {}
    for ref in refs:
        # arn:PARTITION:ssm:REGION:ACCOUNT:parameter/NAME (secret_refs.SSM_ARN_RE)
        _, _, _, region, owner, resource = ref.arn.split(":", 5)
        if region == session.region_name() and owner == account:
            found.setdefault(resource[len("parameter") :], []).append(ref.path)
    return found


def _parameters(session: Session, fleet: Any, report: Report) -> None:
    uses = fleet.parameter_uses()
    for name, paths in _parameter_arns(session, fleet).items():
        uses.setdefault(name, []).extend(paths)
    if not uses:
        return
    ssm = session.client("ssm")
    types: dict[str, str] = {}
    for chunk in _chunks(sorted(uses), 50):
        for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Name", "Option": "Equals", "Values": chunk}]
        ):
            types |= {p["Name"]: p.get("Type", "") for p in page.get("Parameters", [])}
    for name, paths in sorted(uses.items()):
        kind = types.get(name)
        if kind == "SecureString":
            continue
        message = (
            f"SSM parameter {name} does not exist in this region (create it with `nixecs secret put {name} --fleet FLEET`)"
            if kind is None
            else f"SSM parameter {name} is a {kind}, not a SecureString: store secrets encrypted "
            f"(`nixecs secret put {name} --fleet FLEET`)"
        )
        for path in paths:
            report.add("E132", message, fleet.document.locate(path))


def _network(session: Session, fleet: Any, report: Report) -> None:
    ec2 = session.client("ec2")
    subnets = sorted({s for c in fleet.clusters.values() for s in c.subnets})
    groups = sorted({g for c in fleet.clusters.values() for g in c.security_groups})
    subnet_vpc: dict[str, str] = {}
    for chunk in _chunks(subnets, 200):
        for page in ec2.get_paginator("describe_subnets").paginate(
            Filters=[{"Name": "subnet-id", "Values": chunk}]
        ):
            subnet_vpc |= {s["SubnetId"]: s["VpcId"] for s in page.get("Subnets", [])}
    group_vpc: dict[str, str] = {}
    for chunk in _chunks(groups, 200):
        for page in ec2.get_paginator("describe_security_groups").paginate(
            Filters=[{"Name": "group-id", "Values": chunk}]
        ):
            group_vpc |= {g["GroupId"]: g.get("VpcId", "") for g in page.get("SecurityGroups", [])}
    for cluster in fleet.clusters.values():
        vpcs: dict[str, str] = {}
        for key, ids, found in (
            ("subnets", cluster.subnets, subnet_vpc),
            ("security_groups", cluster.security_groups, group_vpc),
        ):
            for index, ident in enumerate(ids):
                if ident not in found:
                    report.add(
                        "E133",
                        f"{ident} does not exist in this region",
                        fleet.document.locate((*cluster.path, key, index)),
                    )
                else:
                    vpcs.setdefault(found[ident], ident)
        if len(vpcs) > 1:
            report.add(
                "E133",
                "subnets and security groups must be in one VPC; these are in "
                + ", ".join(f"{vpc} ({ident})" for vpc, ident in sorted(vpcs.items())),
                fleet.document.locate((*cluster.path, "security_groups"), key=True),
            )


def _images(session: Session, fleet: Any, report: Report, known_types: Any = None) -> None:
    ec2 = session.client("ec2")
    groups = [g for c in fleet.clusters.values() for g in c.groups.values()]
    amis = sorted({g.ami for g in groups})
    arch: dict[str, str] = {}
    for chunk in _chunks(amis, 200):
        for page in ec2.get_paginator("describe_images").paginate(
            Filters=[{"Name": "image-id", "Values": chunk}], IncludeDeprecated=True
        ):
            arch |= {i["ImageId"]: i.get("Architecture", "") for i in page.get("Images", [])}
    types = sorted({t for g in groups for t in g.instance_types})
    supported: dict[str, set[str]] = {}
    for chunk in _chunks(types, 100):
        for page in ec2.get_paginator("describe_instance_types").paginate(
            Filters=[{"Name": "instance-type", "Values": chunk}]
        ):
            for item in page.get("InstanceTypes", []):
                supported[item["InstanceType"]] = set(
                    item.get("ProcessorInfo", {}).get("SupportedArchitectures", [])
                )
    for group in groups:
        where = fleet.document.locate((*group.path, "ami"))
        if group.ami not in arch:
            report.add("E134", f"AMI {group.ami} does not exist in this region", where)
            continue
        wrong = [
            t
            for t in group.instance_types
            if t in supported and arch[group.ami] not in supported[t]
        ]
        if wrong:
            report.add(
                "E135",
                f"AMI {group.ami} is {arch[group.ami]}, which instance type"
                f"{'s' if len(wrong) > 1 else ''} {', '.join(wrong)} cannot run "
                f"({', '.join(sorted(supported[wrong[0]]))} only)",
                where,
            )


def preflight(
    session: Session, fleet: Any, *, create_roles: bool = False, say: Any = print
) -> Report:
    """Everything found, as one report (errors E131-E138 at their fleet keys)."""
    report = Report()
    _service_linked_roles(session, fleet, report, create_roles, say)
    _parameters(session, fleet, report)
    secrets_manager.check_fleet(session, fleet, report)  # E177
    _network(session, fleet, report)
    _images(session, fleet, report)
    from .images import check_fleet

    check_fleet(session, fleet, report)
    return report


def check_account(
    session: Any, model: Any, *, create_roles: bool, say: Callable[[str], None]
) -> None:
    """Preflight (E131-E138): InvalidInput with every finding at its fleet key."""
    with aws_errors(session, "preflight"):
        found = preflight(session, model, create_roles=create_roles, say=say)
    if found.has_errors:
        raise InvalidInput(found)
