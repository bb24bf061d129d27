"""The fleet model and its YAML 1.2 loader with positions (DESIGN §4)."""

from .loader import environments_of, load_fleet, parse
from .model import (
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
