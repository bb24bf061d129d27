"""A service's capacity provider strategy: `group:` as one name, or a list of
`{group, base, weight}` across the cluster's groups (issue 21, item 1).

AWS's rules, refused here first (E190) so that no deploy fails on them:

- CapacityProviderStrategyItem (ECS API reference,
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_CapacityProviderStrategyItem.html):
  `base` 0-100000 and "Only one capacity provider in a capacity provider strategy can have a
  base defined"; `weight` 0-1000, "If no value is specified, the default value of 0 is used".
- CreateService capacityProviderStrategy (ECS API reference, API_CreateService.html): "A
  capacity provider strategy can contain a maximum of 20 capacity providers" (older SDK docs
  say 6; the API reference today says 20).
- "Capacity provider strategies" (Amazon ECS developer guide,
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-capacity-providers.html):
  with several providers "at least one of the capacity providers must have a weight value
  greater than zero"; all at 0 makes CreateService fail.
- Only providers associated with the service's cluster may be named (the same page): every
  group of the strategy is a group of the service's own cluster (else E108).

A placement constraint must be satisfiable on every group of the strategy (E191): a task
that ECS assigns to a group whose instances the constraint excludes stays PENDING. Only what
the fleet file determines is judged (`memberOf` on `attribute:ecs.instance-type`, and on a
custom attribute that some group of the cluster sets in `ecs.attributes`); the expression
grammar is ECS's cluster query language
(https://docs.aws.amazon.com/AmazonECS/latest/developerguide/cluster-query-language.html).
"""

from __future__ import annotations

import fnmatch
import re

from .. import settings as s
from ..lazyre import lazy
from ..settings import Issue
from .decl import as_int, as_str, integer, member, obj, req, section, string, strings
from .model import Cluster, Group, Service, StrategyItem
from .yaml12 import Path

MAX_PROVIDERS = 20
BASE_MAX = 100000
WEIGHT_MAX = 1000
NAME = s.NAME_RE.pattern
STRATEGY = strings(
    "a capacity provider strategy: at most one group with a base, at least one "
    "weight above 0 when there are several (E190)",
    obj(
        "one group of the strategy (CapacityProviderStrategyItem)",
        group=req(string("a group of the same cluster", pattern=NAME)),
        base=integer(
            "tasks placed on this group first",
            0,
            BASE_MAX,
            default=0,
            aws="CapacityProviderStrategyItem base 0-100000, on one item only",
        ),
        weight=integer(
            "this group's share of the tasks beyond the base",
            0,
            WEIGHT_MAX,
            default=0,
            aws="CapacityProviderStrategyItem weight 0-1000 (default 0)",
        ),
    ),
    aws=f"at most {MAX_PROVIDERS} capacity providers (CreateService)",
    example=[
        {"group": "web", "base": 1, "weight": 1},
        {"group": "workers", "weight": 3},
    ],
)
ITEM = member(STRATEGY)


def parse_strategy(
    value: object, path: Path, issues: list[Issue], cluster: str, groups: dict[str, object]
) -> tuple[StrategyItem, ...] | None:
    """`group:` → the strategy; None when it has errors (reported)."""
    if not isinstance(value, list):
        name = s.check_str(value, path, issues)
        if name is None or not _known(name, path, issues, cluster, groups):
            return None
        return (StrategyItem(name, 0, 1, path),)
    before = len(issues)
    if not value or len(value) > MAX_PROVIDERS:
        issues.append(
            Issue(
                path,
                "E190",
                f"a capacity provider strategy has 1 to {MAX_PROVIDERS} groups; this one has "
                f"{len(value)}",
            )
        )
        return None
    items: list[StrategyItem] = []
    for index, raw in enumerate(value):
        item = _item(raw, (*path, index), issues, cluster, groups)
        if item is not None:
            items.append(item)
    if len(issues) != before:
        return None
    _check_items(items, path, issues)
    return tuple(items) if len(issues) == before else None


def _known(
    name: str, path: Path, issues: list[Issue], cluster: str, groups: dict[str, object]
) -> bool:
    if name in groups:
        return True
    issues.append(
        Issue(
            path,
            "E108",
            f"no group {name!r} in cluster {cluster!r} (groups: {', '.join(sorted(map(str, groups))) or 'none'})",
        )
    )
    return False


def _item(
    raw: object, path: Path, issues: list[Issue], cluster: str, groups: dict[str, object]
) -> StrategyItem | None:
    before = len(issues)
    m = section(ITEM, raw, path, issues, own=("group",))
    if m is None or "group" not in m:
        return None
    name = s.check_str(m["group"], (*path, "group"), issues)
    if name is None or not _known(name, (*path, "group"), issues, cluster, groups):
        return None
    if len(issues) != before:
        return None
    return StrategyItem(as_str(name), as_int(m["base"]), as_int(m["weight"]), path)


def _check_items(items: list[StrategyItem], path: Path, issues: list[Issue]) -> None:
    seen: set[str] = set()
    for item in items:
        if item.group in seen:
            issues.append(
                Issue(
                    (*item.path, "group"),
                    "E190",
                    f"group {item.group!r} appears twice in the strategy: name each group once",
                )
            )
        seen.add(item.group)
    based = [item for item in items if item.base > 0]
    for item in based[1:]:
        issues.append(
            Issue(
                (*item.path, "base"),
                "E190",
                f"only one group of a capacity provider strategy may have a base (AWS), and "
                f"{based[0].group!r} already has {based[0].base}",
            )
        )
    if len(items) > 1 and all(item.weight == 0 for item in items):
        issues.append(
            Issue(
                path,
                "E190",
                "every group of the strategy has weight 0 (the default): with several groups AWS "
                "needs at least one weight above 0",
            )
        )


# -- placement constraints against the strategy's groups --------------------------------------

_CLAUSE_RE = lazy(
    r"attribute:(?P<name>[A-Za-z0-9_./\\-]+)\s+"
    r"(?P<op>==|equals|!=|not_equals|in|not_in|!in|=~|matches|!~|not_matches|exists|!exists)"
    r"(?:\s+(?P<arg>.+?))?\s*"
)
_AND_RE = lazy(r"\s+(?:and|&&)\s+")


def _values(argument: str) -> tuple[str, ...]:
    inner = argument.strip()
    if inner[:1] in "[(" and inner[-1:] in "])":
        inner = inner[1:-1]
    return tuple(v.strip().strip("'\"") for v in inner.split(",") if v.strip())


def _holds(op: str, argument: str | None, values: tuple[str, ...]) -> bool | None:
    """Whether some instance of a group whose attribute takes `values` (empty: not set)
    satisfies `attribute OP argument`; None: not judged."""
    if op in ("exists", "!exists"):
        return bool(values) == (op == "exists")
    if argument is None:
        return None
    wanted = _values(argument)
    if op in ("==", "equals"):
        return argument.strip() in values
    if op in ("!=", "not_equals"):
        return any(v != argument.strip() for v in values)
    if op == "in":
        return any(v in wanted for v in values)
    if op in ("not_in", "!in"):
        return any(v not in wanted for v in values)
    if op in ("=~", "matches"):
        return any(fnmatch.fnmatchcase(v, argument.strip()) for v in values)
    return any(not fnmatch.fnmatchcase(v, argument.strip()) for v in values)


def _attribute_values(name: str, group: Group, managed: set[str]) -> tuple[str, ...] | None:
    if name == "ecs.instance-type":
        return group.instance_types
    if name in managed:
        value = group.ecs.attributes.get(name)
        return (value,) if value is not None else ()
    return None  # set outside the fleet file (PutAttributes) or by the agent: not judged


def unsatisfiable(expression: str, group: Group, managed: set[str]) -> bool:
    """True when no instance of `group` can satisfy the memberOf expression (every clause
    of an `and` must hold; an `or`, parentheses or another subject is not judged)."""
    if re.search(r"\bor\b|\|\|", expression):
        return False
    for clause in _AND_RE.split(expression.strip()):
        match = _CLAUSE_RE.fullmatch(clause.strip())
        if match is None:
            return False
        values = _attribute_values(match["name"], group, managed)
        if values is None:
            continue
        if _holds(match["op"], match["arg"], values) is False:
            return True
    return False


def check_cluster(cluster: Cluster, issues: list[Issue]) -> None:
    """E191: a memberOf constraint that excludes every instance of a group of the strategy;
    E192: a service with secrets across groups of different KMS keys; W191: a spread on an
    attribute a group of the strategy does not set."""
    managed = {name for g in cluster.groups.values() for name in g.ecs.attributes}
    for service in cluster.services.values():
        _check_service(service, cluster, managed, issues)
        _check_keys(service, cluster, issues)


def _check_keys(service: Service, cluster: Cluster, issues: list[Issue]) -> None:
    """The execution role decrypts the service's secret parameters with one KMS key, its
    group's (nixecs.cloudformation.iam.execution_role); across groups of different keys no
    one key is the right one."""
    if not service.secret_uses() or len(service.groups) < 2:
        return
    keys = {cluster.groups[n].kms_key for n in service.groups if n in cluster.groups}
    if len(keys) > 1:
        issues.append(
            Issue(
                (*service.path, "group"),
                "E192",
                f"service {service.name!r} has secrets, and the groups of its strategy use "
                f"different KMS keys ({', '.join(sorted(str(k) for k in keys))}): its "
                "execution role can decrypt its parameters with one key only",
            )
        )


def _check_spread(
    service: Service, cluster: Cluster, managed: set[str], issues: list[Issue]
) -> None:
    """W191: `spread:attribute:NAME` on a custom attribute the fleet file manages (some group
    of the cluster sets it in `ecs.attributes`) that a group of the service's strategy does
    not set: ECS spreads tasks across the attribute's values ("Amazon ECS task placement
    strategies", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-placement-strategies.html),
    and that group's instances have none, so its tasks are not spread by it. The `ecs.*`
    attributes the agent sets itself are on every instance."""
    for index, (kind, field) in enumerate(service.placement.strategies):
        if kind != "spread" or field is None or not field.startswith("attribute:"):
            continue
        name = field.removeprefix("attribute:")
        if name.startswith("ecs.") or name not in managed:
            continue
        lacking = [
            group
            for group in service.groups
            if group in cluster.groups and name not in cluster.groups[group].ecs.attributes
        ]
        if lacking:
            issues.append(
                Issue(
                    (*service.path, "placement", "strategy", index),
                    "W191",
                    f"spread:attribute:{name} spreads service {service.name!r} across the values "
                    f"of {name!r}, which group{'s' if len(lacking) > 1 else ''} "
                    f"{', '.join(map(repr, lacking))} of its strategy do"
                    f"{'' if len(lacking) > 1 else 'es'} not set (ecs.attributes): its tasks "
                    "there are not spread by it",
                )
            )


def _check_service(
    service: Service, cluster: Cluster, managed: set[str], issues: list[Issue]
) -> None:
    _check_spread(service, cluster, managed, issues)
    for index, (kind, expression) in enumerate(service.placement.constraints):
        if kind != "memberOf" or expression is None:
            continue
        for name in service.groups:
            group = cluster.groups.get(name)
            if group is not None and unsatisfiable(expression, group, managed):
                issues.append(
                    Issue(
                        (*service.path, "placement", "constraints", index),
                        "E191",
                        f"no instance of group {name!r} satisfies memberOf {expression!r}, yet "
                        f"service {service.name!r} places tasks there: its tasks would stay "
                        "PENDING; change the constraint or drop the group from `group:`",
                    )
                )
