"""Secrets from SSM parameter ARNs and Secrets Manager (fleet/secret_refs.py): each
container's Secrets, and the execution role allowed to read exactly those."""

from __future__ import annotations

from ..fleet.containers import Container
from ..fleet.model import Service
from ..fleet.secret_refs import SecretRef
from .intrinsics import (
    ARN_PREFIX,
    IAM_POLICY_VERSION,
    REGION_ACCOUNT,
    Json,
    kms_key_arn,
    literal,
    ssm_parameter_arn,
    sub,
)


def value_from(ref: SecretRef) -> Json:
    """Secret.valueFrom: the ARN as written, or a secret named in the stack's account and
    region as its partial ARN; then `:json-key:version-stage:version-id` when any is set.

    Never the bare name: ECS's Secret.valueFrom takes "the full ARN of the Secrets Manager
    secret" — only an SSM parameter of the task's region may go by name (ECS API Reference,
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Secret.html) — and the agent
    parses valueFrom with arn.Parse, failing the task on anything else. The partial ARN
    (`…:secret:NAME`, without the six-character suffix) is what the agent handles: a resource
    of two parts (`secret:NAME`) is passed whole as GetSecretValue's SecretId, one of five
    (`secret:NAME:json-key:stage:id`) is cut back to `secret:NAME` by reconstructASMARN
    (aws/amazon-ecs-agent agent/taskresource/asmsecret/asmsecret.go,
    getASMParametersFromInput), and GetSecretValue takes "the ARN or name of the secret",
    a partial ARN included (Secrets Manager API Reference, API_GetSecretValue; a name ending
    in `-` and six characters would read as a suffix: refused by E176)."""
    if ref.arn is not None:
        return ref.arn + ref.suffix
    assert ref.name is not None
    return sub(
        f"{ARN_PREFIX}:secretsmanager:{REGION_ACCOUNT}:secret:{literal(ref.name + ref.suffix)}"
    )


def container_secrets(c: Container) -> list[Json]:
    """The container's Secrets: its SSM parameters by name and its references, by variable."""
    found: list[tuple[str, Json]] = [
        (name, ssm_parameter_arn(parameter)) for name, parameter in c.secrets.items()
    ]
    found += [(ref.variable, value_from(ref)) for ref in c.secret_refs]
    return [{"Name": name, "ValueFrom": value} for name, value in sorted(found, key=lambda f: f[0])]


def _secret_resource(ref: SecretRef) -> Json:
    """What GetSecretValue is granted on: the full ARN as written, or the name with `-??????`,
    the six characters Secrets Manager appends to it in the ARN ("Resource:
    arn:aws:secretsmanager:…:secret:SecretName-??????", Secrets Manager user guide,
    auth-and-access_examples)."""
    if ref.arn is not None:
        return ref.arn
    assert ref.name is not None
    return sub(f"{ARN_PREFIX}:secretsmanager:{REGION_ACCOUNT}:secret:{literal(ref.name)}-??????")


def _via(service: str, region: str | None) -> Json:
    return sub(f"{service}.{literal(region) if region else '${AWS::Region}'}.${{AWS::URLSuffix}}")


def statements(service: Service) -> list[dict[str, Json]]:
    """The execution role's statements for the service's secret references (none without)."""
    refs = [ref for c in service.containers for ref in c.secret_refs]
    parameters = sorted({ref.arn for ref in refs if ref.service == "ssm" and ref.arn})
    secrets = [ref for ref in refs if ref.service == "secretsmanager"]
    found: list[dict[str, Json]] = []
    if parameters:
        found.append(
            {
                "Sid": "ReadParameterArns",
                "Effect": "Allow",
                "Action": "ssm:GetParameters",
                "Resource": list(parameters),
            }
        )
        # As for parameters by name (iam._read_parameters): decrypt through SSM of the
        # parameter's own region, for exactly these parameters (encryption context).
        for region in sorted({arn.split(":")[3] for arn in parameters}):
            mine = [arn for arn in parameters if arn.split(":")[3] == region]
            partition, account = mine[0].split(":")[1], mine[0].split(":")[4]
            found.append(
                {
                    "Sid": "DecryptParameterArnsViaSsm" + region.replace("-", "").title(),
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": f"arn:{partition}:kms:{region}:{account}:key/*",
                    "Condition": {
                        "StringEquals": {
                            "kms:ViaService": _via("ssm", region),
                            "kms:EncryptionContext:PARAMETER_ARN": list(mine),
                        }
                    },
                }
            )
    if secrets:
        resources: list[Json] = []
        for ref in secrets:
            resource = _secret_resource(ref)
            if resource not in resources:
                resources.append(resource)
        found.append(
            {
                "Sid": "ReadSecretsManagerSecrets",
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": resources,
            }
        )
        # A customer managed key: decrypt only through Secrets Manager, and only for these
        # secrets (it encrypts under the context SecretARN, "How AWS Secrets Manager uses AWS
        # KMS", security-encryption: kms:EncryptionContext:SecretARN). aws/secretsmanager's
        # key policy already allows it through the service.
        keyed = sorted({(ref.kms_key, ref.region or "") for ref in secrets if ref.kms_key})
        for index, (key, region) in enumerate(keyed):
            of_key = [
                _secret_resource(r) for r in secrets if (r.kms_key, r.region or "") == (key, region)
            ]
            found.append(
                {
                    "Sid": f"DecryptSecretsViaSecretsManager{index}",
                    "Effect": "Allow",
                    "Action": "kms:Decrypt",
                    "Resource": kms_key_arn(key),
                    "Condition": {
                        "StringEquals": {"kms:ViaService": _via("secretsmanager", region or None)},
                        "StringLike": {"kms:EncryptionContext:SecretARN": of_key},
                    },
                }
            )
    return found


def extend_execution_role(properties: dict[str, Json], service: Service) -> None:
    """Add the `nixecs-task-secret-refs` policy to the execution role's properties, when the
    service's containers read secrets by ARN or from Secrets Manager."""
    found = statements(service)
    if not found:
        return
    policies = properties.setdefault("Policies", [])
    assert isinstance(policies, list)
    policies.append(
        {
            "PolicyName": "nixecs-task-secret-refs",
            "PolicyDocument": {"Version": IAM_POLICY_VERSION, "Statement": list(found)},
        }
    )
