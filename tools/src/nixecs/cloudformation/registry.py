"""Which properties of a resource type force its replacement: the type's
`createOnlyProperties`, read from CloudFormation's resource provider (registry) schemas.

"createOnlyProperties: A list of JSON pointers to properties that are able to be found only
when creating a resource. ... Any property not explicitly listed in the createOnlyProperties
element can be specified by the user during a resource update operation" — and a change to
one of them replaces the resource (Resource type schema,
https://docs.aws.amazon.com/cloudformation-cli/latest/userguide/resource-type-schema.html).

nixecs does not vendor these schemas: cfn-lint ships them, refreshed with every release
(cfnlint/data/schemas, read through `cfnlint.schema.PROVIDER_SCHEMA_MANAGER`,
aws-cloudformation/cfn-lint src/cfnlint/schema/manager.py). cfn-lint is optional at run time
(`pip install cfn-lint`); without it `Registry.available` is false and the plan says that
replacement comes from CloudFormation's change set alone.
"""

from __future__ import annotations

from functools import cache
from typing import Any

INSTALL_HINT = (
    "cfn-lint is not installed (pip install cfn-lint): replacement is taken from "
    "CloudFormation's change set only, and the hazards that depend on it are not checked"
)

Pointer = tuple[str, ...]  # a createOnlyProperties pointer under /properties, split


class Registry:
    """createOnlyProperties by resource type, for one region's schemas."""

    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self._manager: Any = _manager()

    @property
    def available(self) -> bool:
        return self._manager is not None

    def create_only(self, resource_type: str) -> tuple[Pointer, ...] | None:
        """The type's create-only property paths; None when unknown (no cfn-lint, or a type
        its schemas lack, such as a custom resource)."""
        if self._manager is None:
            return None
        return _create_only(self._manager, self.region, resource_type)


@cache
def _manager() -> Any:
    try:
        from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
    except ImportError:
        return None
    return PROVIDER_SCHEMA_MANAGER


@cache
def _create_only(manager: Any, region: str, resource_type: str) -> tuple[Pointer, ...] | None:
    try:
        schema = manager.get_resource_schema(region.replace("_", "-"), resource_type)
    except Exception:  # cfn-lint's ResourceNotFoundError, or a region it has no schemas for
        try:
            schema = manager.get_resource_schema("us-east-1", resource_type)
        except Exception:
            return None
    pointers = (getattr(schema, "schema", None) or {}).get("createOnlyProperties", [])
    out = []
    for pointer in pointers:
        parts = tuple(str(pointer).split("/")[1:])
        if parts[:1] == ("properties",) and len(parts) > 1:
            out.append(parts[1:])
    return tuple(out)
