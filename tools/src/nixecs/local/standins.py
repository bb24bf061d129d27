"""Stand-ins in the emulator for what a fleet references and does not create, and the local
copy of the fleet that names them.

A fleet names things that exist in its account before it: subnets, security groups, a VPC,
AMIs, a certificate or listener, key pairs, a template bucket, SSM parameters, Secrets
Manager secrets, ECR images, the SNS topic of `notifications:`. The
emulator has none of them, and it makes up its own ids (moto 5.2 has no way to choose an EC2
id), so each is created there and the fleet is copied with every such id replaced by its
stand-in's, token by token, at the places the model says they are written. Names the user
chooses (parameters, repositories, key pairs, buckets) are created under the same name.

The stand-ins then pass the same preflight a real account gets (E131-E138), which `local
deploy` runs: what the fleet needs from its account is exactly the list made here.

What the emulator cannot do is said, not hidden (`LIMITS`): moto creates no scaling
resources from CloudFormation (local/gaps.py makes them through their APIs), has no instance
refresh (local/refresh.py stands in), runs no tasks, launches instances only with a sized root
volume, and enforces few of AWS's rules on changes (docs/aws.md lists each).
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..diagnostics import OperationalFailure
from ..fleet.model import Fleet, Group
from ..fleet.yaml12 import Path as FleetPath

# What `local deploy` says it cannot check, every time (docs/aws.md, "moto's gaps").
LIMITS = (
    "IAM policies are not evaluated (every call is allowed)",
    "its CloudFormation skips scalable targets, scaling policies and their alarms (made "
    "here through their own APIs from the template, so no CloudFormation rule on them is "
    "checked)",
    "an instance refresh (`roll`) is emulated: it steps to Successful (or rolls back on a "
    "--rollback-alarm in ALARM) without replacing, draining or health-checking an instance",
    "no task runs and no target registers (nothing boots NixOS or the ECS agent): a task "
    "`run` starts stays PROVISIONING, as on AWS while no instance can take it; a service that "
    "scales shows desired 0 (AWS starts it at 1, then within its scaling range)",
    "an EventBridge Scheduler schedule is kept as the stack says (its CloudFormation type is "
    "added here) but never fires",
    "CloudWatch records no metrics (nothing runs): `scaling replay` reads a recorded trace "
    "(--trace), `scaling check` and `scaling simulate` need no AWS",
    "groups whose root volume takes its size from the AMI launch no instance "
    "(their capacity is 0 here; give root_volume.size_gib to see them launch)",
    "few of AWS's rules on updates are enforced (listener-rule priorities, replacements, "
    "protected instances): `deploy --plan` against AWS is the check for those",
)
# A manifest for a stand-in image: valid JSON of the right media type (moto records it).
_MANIFEST = {
    "schemaVersion": 2,
    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
    "config": {
        "mediaType": "application/vnd.docker.container.image.v1+json",
        "size": 2,
        "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
    },
    "layers": [],
}


@dataclass
class StandIns:
    """Fleet value → stand-in value, and (place in the file, new text) edits."""

    ids: dict[str, str] = field(default_factory=dict)
    edits: dict[FleetPath, str] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ids": self.ids, "created": self.created}


def _default_vpc(ec2: Any) -> str:
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    return str(vpcs[0]["VpcId"])


def _zones(ec2: Any) -> list[str]:
    return [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]


def _architecture(ec2: Any, instance_types: tuple[str, ...]) -> str:
    answer = ec2.describe_instance_types(InstanceTypes=list(instance_types[:1]))
    found = answer.get("InstanceTypes", [])
    supported = found[0]["ProcessorInfo"]["SupportedArchitectures"] if found else ["x86_64"]
    return "arm64" if "arm64" in supported and "x86_64" not in supported else "x86_64"


def _free_cidrs(ec2: Any, vpc: str) -> Iterator[str]:
    """/24 blocks of the default VPC (172.31.0.0/16, whose default subnets are /20s below
    172.31.96.0) that no subnet holds yet: another fleet, or another environment of this
    one, deployed to the emulator before has taken some (CreateSubnet refuses an overlap)."""
    answer = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])
    taken = {subnet["CidrBlock"] for subnet in answer.get("Subnets", [])}
    for third in range(128, 256):
        if f"172.31.{third}.0/24" not in taken:
            yield f"172.31.{third}.0/24"
    raise OperationalFailure(
        f"the emulator's default VPC {vpc} has no free /24 block for a further stand-in "
        "subnet: `nixecs local stop` forgets them all"
    )


def _referenced(fleet: Fleet, key: str) -> list[str]:
    """The ids under `key` (subnets, security_groups) of every cluster and its load balancer."""
    found: set[str] = set()
    for cluster in fleet.clusters.values():
        found.update(getattr(cluster, key))
        if cluster.load_balancer is not None:
            found.update(getattr(cluster.load_balancer, key))
    return sorted(found)


def create(session: Any, fleet: Fleet, known: dict[str, str]) -> StandIns:
    """Create what is missing (ids in `known` whose stand-in still exists are reused)."""
    ec2 = session.client("ec2")
    out = StandIns()
    vpc = _default_vpc(ec2)
    zones = _zones(ec2)

    def exists(kind: str, ident: str) -> bool:
        from botocore.exceptions import ClientError

        describe, key, filter_name = {
            "subnet": ("describe_subnets", "Subnets", "subnet-id"),
            "sg": ("describe_security_groups", "SecurityGroups", "group-id"),
            "ami": ("describe_images", "Images", "image-id"),
        }[kind]
        try:
            answer = getattr(ec2, describe)(Filters=[{"Name": filter_name, "Values": [ident]}])
        except ClientError:
            return False
        return bool(answer.get(key))

    def reuse(original: str, kind: str) -> bool:
        stand_in = known.get(original)
        if stand_in and exists(kind, stand_in):
            out.ids[original] = stand_in
            return True
        return False

    subnets = _referenced(fleet, "subnets")
    cidrs = _free_cidrs(ec2, vpc)
    for index, subnet in enumerate(subnets):
        if reuse(subnet, "subnet"):
            continue
        made = ec2.create_subnet(
            VpcId=vpc,
            CidrBlock=next(cidrs),
            AvailabilityZone=zones[index % len(zones)],
        )["Subnet"]["SubnetId"]
        out.ids[subnet] = made
        out.created.append(f"subnet {made} for {subnet}")
    groups = _referenced(fleet, "security_groups")
    for security_group in groups:
        if reuse(security_group, "sg"):
            continue
        made = ec2.create_security_group(
            GroupName=f"nixecs-local-{security_group}-{secrets.token_hex(3)}",
            Description=f"nixecs local stand-in for {security_group}",
            VpcId=vpc,
        )["GroupId"]
        out.ids[security_group] = made
        out.created.append(f"security group {made} for {security_group}")
    for cluster in fleet.clusters.values():
        balancer = cluster.load_balancer
        if balancer is None:
            continue
        if balancer.vpc:
            out.ids[balancer.vpc] = vpc
        if balancer.certificate_arn and balancer.certificate_arn not in out.ids:
            acm = session.client("acm")
            arn = known.get(balancer.certificate_arn)
            try:
                if arn:
                    acm.describe_certificate(CertificateArn=arn)
            except acm.exceptions.ResourceNotFoundException:
                arn = None
            if not arn:
                arn = acm.request_certificate(DomainName="local.nixecs.invalid")["CertificateArn"]
                out.created.append(f"certificate {arn}")
            out.ids[balancer.certificate_arn] = arn
        if balancer.listener_arn and balancer.listener_arn not in out.ids:
            out.ids[balancer.listener_arn] = _listener(session, out, vpc, zones)
    for cluster in fleet.clusters.values():
        for group in cluster.groups.values():
            if group.ami_host is not None:  # found by its tags at deploy, as on AWS
                _host_ami(ec2, fleet, group, out)
            elif group.ami not in out.ids and not reuse(group.ami, "ami"):
                made = _ami(ec2, group.ami, _architecture(ec2, group.instance_types))
                out.ids[group.ami] = made
                out.created.append(f"AMI {made} for {group.ami}")
            if group.key_pair:
                with contextlib.suppress(ec2.exceptions.ClientError):
                    ec2.create_key_pair(KeyName=group.key_pair)
                    out.created.append(f"key pair {group.key_pair}")
    if fleet.template_bucket and not _bucket_exists(session, fleet.template_bucket):
        s3 = session.client("s3")
        with contextlib.suppress(s3.exceptions.ClientError):
            kwargs: dict[str, Any] = {"Bucket": fleet.template_bucket}
            if fleet.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": fleet.region}
            s3.create_bucket(**kwargs)
            out.created.append(f"bucket {fleet.template_bucket}")
    _parameters(session, fleet, out)
    _topics(session, fleet, out)
    _secrets(session, fleet, out)
    _images(session, fleet, out)
    _service_linked_roles(session, out)
    out.edits.update(capacity_edits(fleet))
    return out


def _service_linked_roles(session: Any, out: StandIns) -> None:
    """The two service-linked roles under their AWS names. moto's CreateServiceLinkedRole
    names them otherwise (`AWSServiceRoleForecs`, moto 5.2 iam/models.py
    create_service_linked_role), so the preflight (E131) would never find them there."""
    from ..aws.preflight import ECS_ROLE, SCALING_ROLE

    iam = session.client("iam")
    for name, principal in (ECS_ROLE, SCALING_ROLE):
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": principal}, "Action": "sts:AssumeRole"}
            ],
        }
        with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
            iam.create_role(
                RoleName=name,
                Path=f"/aws-service-role/{principal}/",
                AssumeRolePolicyDocument=json.dumps(trust),
            )
            out.created.append(f"service-linked role {name}")


def capacity_edits(fleet: Fleet) -> dict[FleetPath, str]:
    """`capacity.min: 0` for groups moto cannot launch: a launch template whose root volume
    takes its size from the AMI fails there ("MissingParameter: size/snapshot", moto 5.2
    ec2/models/elastic_block_store.py create_volume), where AWS takes the snapshot's size."""
    return {
        (*group.path, "capacity", "min"): "0"
        for cluster in fleet.clusters.values()
        for group in cluster.groups.values()
        if group.root_volume.size_gib is None and group.capacity.min > 0
    }


def _host_ami(ec2: Any, fleet: Fleet, group: Group, out: StandIns) -> None:
    """For `ami: {host: web}`: a stand-in AMI tagged as `ami publish --host web` tags one
    (host, an image hash, the pinned revision), unless the emulator already has one; the
    deploy then resolves it like any other (aws/host_amis.py)."""
    from .. import naming
    from ..aws.host_amis import choose, wanted_rev

    assert group.ami_host is not None
    host, rev = group.ami_host.host, wanted_rev(fleet, group.ami_host)
    images = ec2.describe_images(
        Owners=["self"], Filters=[{"Name": f"tag:{naming.TAG_HOST}", "Values": [host]}]
    )["Images"]
    if choose(images, host, rev).image_id is not None:
        return
    made = _ami(ec2, group.ami, _architecture(ec2, group.instance_types))
    tags = [
        {"Key": naming.TAG_HOST, "Value": host},
        {"Key": naming.TAG_IMAGE_SHA256, "Value": "0" * 64},  # no image: a stand-in
    ]
    if rev:
        tags.append({"Key": naming.TAG_FLAKE, "Value": rev})
    ec2.create_tags(Resources=[made], Tags=tags)
    out.created.append(f"AMI {made} for host {host}")


def _ami(ec2: Any, original: str, architecture: str) -> str:
    """A copy of one of the emulator's own images of that architecture (moto's
    RegisterImage records no architecture, and the preflight checks it: E135)."""
    source = ec2.describe_images(
        Owners=["amazon"], Filters=[{"Name": "architecture", "Values": [architecture]}]
    )["Images"][0]["ImageId"]
    copied = ec2.copy_image(
        Name=f"nixecs-local-{original}-{secrets.token_hex(3)}",
        SourceImageId=source,
        SourceRegion=ec2.meta.region_name,
    )
    return str(copied["ImageId"])


def _listener(session: Any, out: StandIns, vpc: str, zones: list[str]) -> str:
    """An ALB with an HTTP listener, for a fleet that attaches to an existing listener."""
    ec2 = session.client("ec2")
    elb = session.client("elbv2")
    subnets = [
        ec2.create_subnet(
            VpcId=vpc, CidrBlock=f"172.31.{250 + i}.0/24", AvailabilityZone=zones[i % len(zones)]
        )["Subnet"]["SubnetId"]
        for i in range(2)
    ]
    balancer = elb.create_load_balancer(
        Name=f"nixecs-local-{secrets.token_hex(3)}", Subnets=subnets
    )
    listener = elb.create_listener(
        LoadBalancerArn=balancer["LoadBalancers"][0]["LoadBalancerArn"],
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    out.created.append(f"load balancer listener {listener}")
    return str(listener)


def _bucket_exists(session: Any, bucket: str) -> bool:
    """Whether the stand-in bucket is there already: CreateBucket of a bucket one owns
    "returns 200 OK" again in us-east-1 (BucketAlreadyOwnedByYou elsewhere; CreateBucket,
    https://docs.aws.amazon.com/AmazonS3/latest/API/API_CreateBucket.html), so a second run
    would say it made it again."""
    s3 = session.client("s3")
    try:
        s3.head_bucket(Bucket=bucket)
    except s3.exceptions.ClientError:
        return False
    return True


def _parameters(session: Any, fleet: Fleet, out: StandIns) -> None:
    """Every SSM parameter the fleet reads, as a SecureString holding a random value (the
    real value never leaves the real account; nothing here reads it)."""
    names = {
        spec.parameter
        for c in fleet.clusters.values()
        for g in c.groups.values()
        for spec in g.secrets.values()
    }
    names |= {
        p for c in fleet.clusters.values() for s in c.task_definitions for _, p in s.secret_uses()
    }
    ssm = session.client("ssm")
    for name in sorted(names):
        with contextlib.suppress(ssm.exceptions.ParameterAlreadyExists):
            ssm.put_parameter(Name=name, Value=secrets.token_urlsafe(24), Type="SecureString")
            out.created.append(f"SSM parameter {name} (a random value)")


def _topics(session: Any, fleet: Fleet, out: StandIns) -> None:
    """The SNS topic of each cluster's `notifications:`, under the ARN's name, with SNS's
    default policy (a new topic's): `deploy` refuses a topic that does not exist or whose
    policy is not its own (aws/topics.py). The emulator's account and region make the ARN;
    where they differ from the fleet's, the copy names the stand-in's."""
    sns = session.client("sns")
    for cluster in fleet.clusters.values():
        settings = cluster.notifications
        if settings is None or settings.sns_topic in out.ids:
            continue
        name = settings.sns_topic.rpartition(":")[2]
        existing = {t["TopicArn"] for t in sns.list_topics().get("Topics", [])}
        made = str(sns.create_topic(Name=name)["TopicArn"])  # idempotent: the same ARN again
        if made not in existing:
            out.created.append(f"SNS topic {made}")
        if made != settings.sns_topic:
            out.ids[settings.sns_topic] = made


def _secrets(session: Any, fleet: Fleet, out: StandIns) -> None:
    """Every Secrets Manager secret the containers read, with a random value (a JSON object of
    random values for the keys read from it). One named by its ARN is created under the ARN's
    name and the copy names the stand-in's ARN (Secrets Manager adds its own six-character
    suffix to the ARN; CreateSecret takes a name, not an ARN:
    https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_CreateSecret.html);
    only ARNs of the fleet's region
    are stood in (the emulator's client is of that region; preflight does not judge others)."""
    keys: dict[str, set[str]] = {}
    arns: dict[str, str] = {}
    for cluster in fleet.clusters.values():
        for service in cluster.task_definitions:
            for container in service.containers:
                for ref in container.secret_refs:
                    if ref.service != "secretsmanager":
                        continue
                    if ref.arn is not None:
                        if ref.region not in (None, fleet.region):
                            continue
                        # secret:NAME-AbCdEf: the name, without the six-character suffix
                        resource = ref.arn.split(":", 6)[6]
                        name = resource.rsplit("-", 1)[0] if "-" in resource else resource
                        arns[ref.arn] = name
                    else:
                        name = str(ref.name)
                    keys.setdefault(name, set())
                    if ref.json_key:
                        keys[name].add(ref.json_key)
    if not keys:
        return
    client = session.client("secretsmanager")
    made: dict[str, str] = {}
    for name in sorted(keys):
        try:
            made[name] = client.describe_secret(SecretId=name)["ARN"]
            continue
        except client.exceptions.ResourceNotFoundException:
            pass
        value = (
            json.dumps({k: secrets.token_urlsafe(24) for k in sorted(keys[name])})
            if keys[name]
            else secrets.token_urlsafe(24)
        )
        made[name] = client.create_secret(Name=name, SecretString=value)["ARN"]
        out.created.append(f"Secrets Manager secret {name} (a random value)")
    for arn, name in arns.items():
        out.ids[arn] = made[name]


def _images(session: Any, fleet: Fleet, out: StandIns) -> None:
    """Every `image: {ecr: REPO, tag}` as a manifest in the emulator's ECR. A digest cannot be
    stood in as written (moto computes its own), so the copy names the stand-in's."""
    ecr = session.client("ecr")
    seen: set[tuple[str, str]] = set()
    for cluster in fleet.clusters.values():
        for service in cluster.task_definitions:
            for container in service.containers:
                image = container.image
                if image.ecr is None or (image.ecr, image.tag or image.digest or "") in seen:
                    continue
                seen.add((image.ecr, image.tag or image.digest or ""))
                with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
                    ecr.create_repository(repositoryName=image.ecr)
                manifest = dict(_MANIFEST, annotations={"nixecs.local": f"{image.ecr}"})
                tag = image.tag or "local-stand-in"
                try:
                    found = ecr.describe_images(
                        repositoryName=image.ecr, imageIds=[{"imageTag": tag}]
                    )
                    digest = found["imageDetails"][0]["imageDigest"]
                except ecr.exceptions.ImageNotFoundException:
                    put = ecr.put_image(
                        repositoryName=image.ecr, imageManifest=json.dumps(manifest), imageTag=tag
                    )
                    digest = put["image"]["imageId"]["imageDigest"]
                    out.created.append(f"ECR image {image.ecr}:{tag}")
                if image.digest:
                    out.ids[image.digest] = digest


def local_copy(fleet: Fleet, stand_ins: StandIns) -> str:
    """The fleet file's text with every stood-in id replaced where the file writes it."""
    import re

    lines = fleet.document.text.split("\n")
    for where, text in stand_ins.edits.items():
        at = fleet.document.locate(where)
        line = lines[at.line - 1]
        match = re.compile(r"[^\s,}\]#]+").match(line, at.column - 1)
        if match is not None:
            lines[at.line - 1] = line[: match.start()] + text + line[match.end() :]
    text = "\n".join(lines)
    for original in sorted(stand_ins.ids, key=len, reverse=True):
        new = stand_ins.ids[original]
        text = re.sub(rf"(?<![\w:/.-]){re.escape(original)}(?![\w-])", lambda _m: new, text)  # noqa: B023
    return text
