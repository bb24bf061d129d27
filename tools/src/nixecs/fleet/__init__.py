"""The fleet model and its YAML 1.2 loader with positions (DESIGN §4)."""

from ..lazyre import import_deferring_compiles

# Before any module of the package imports PyYAML: its import-time regexes are compiled on
# first use (lazyre; issue 18, item 4).
import_deferring_compiles("yaml")

from .loader import environments_of, load_fleet, parse  # noqa: E402
from .model import (  # noqa: E402
    Alarm,
    Capacity,
    Cluster,
    Fleet,
    Group,
    Scaling,
    Service,
    Step,
    StepPolicy,
    TargetTracking,
)

__all__ = [
    "Alarm",
    "Capacity",
    "Cluster",
    "Fleet",
    "Group",
    "Scaling",
    "Service",
    "Step",
    "StepPolicy",
    "TargetTracking",
    "environments_of",
    "load_fleet",
    "parse",
]
