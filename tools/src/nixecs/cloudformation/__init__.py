"""CloudFormation: one stack per cluster (DESIGN §7).

`build_stack(fleet, cluster, userdata)` gives a cluster's template as JSON-shaped data and
`dump_template(template)` the deterministic YAML text `nixecs render` writes;
`name_clashes(fleet)` lists AWS names two subjects would share and `limit_problems`
a template's excess over CloudFormation's quotas (both for `nixecs validate`).
"""

from .clashes import NameClash, name_clashes
from .dump import dump_template
from .ids import LogicalIds
from .limits import limit_problems
from .template import build_stack

__all__ = [
    "LogicalIds",
    "NameClash",
    "build_stack",
    "dump_template",
    "limit_problems",
    "name_clashes",
]
