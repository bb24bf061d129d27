"""What every builder of one cluster's template needs: the fleet, the cluster, logical IDs
and the tags, computed once per cluster rather than once per resource."""

from __future__ import annotations

from .. import naming
from ..fleet.model import Cluster, Fleet, Group, Service
from ..records import dataclass, field
from .ids import CLUSTER, LogicalIds
from .intrinsics import Json, get_att, ref, tag_value

Resources = dict[str, dict[str, Json]]


@dataclass
class Context:
    fleet: Fleet
    cluster: Cluster
    ids: LogicalIds
    cluster_tags: tuple[tuple[str, str], ...] = field(init=False)
    _tags: dict[tuple[str, str], tuple[tuple[str, str], ...]] = field(
        init=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        # `flake:` is optional, and an empty tag value is refused by ECS (capacity providers):
        # without a flake there is no flake tag.
        self.cluster_tags = ((naming.TAG_CLUSTER, tag_value(self.cluster.name)),) + (
            ((naming.TAG_FLAKE, tag_value(self.fleet.flake)),) if self.fleet.flake else ()
        )

    @property
    def ecs_cluster_name(self) -> str:
        return naming.ecs_cluster_name(self.cluster.name)

    def cluster_ref(self) -> dict[str, Json]:
        return ref(CLUSTER)

    def cluster_arn(self) -> dict[str, Json]:
        return get_att(CLUSTER, "Arn")

    def group_tags(self, group: Group) -> tuple[tuple[str, str], ...]:
        pairs = self._tags.get(("group", group.name))
        if pairs is None:  # once per group: five resources carry them
            pairs = self._tags["group", group.name] = (
                *self.cluster_tags,
                (naming.TAG_GROUP, tag_value(group.name)),
                (naming.TAG_HOST, tag_value(group.host)),
            )
        return pairs

    def service_tags(self, service: Service) -> tuple[tuple[str, str], ...]:
        pairs = self._tags.get(("service", service.name))
        if pairs is None:
            pairs = self._tags["service", service.name] = (
                *self.cluster_tags,
                (naming.TAG_SERVICE, tag_value(service.name)),
            )
        return pairs
