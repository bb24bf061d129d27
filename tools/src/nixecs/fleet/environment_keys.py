"""The keys and names of `environments:` (fleet/environments.py), apart from the merge: the
declaration (fleet/schema.py) reads them, and the merge reads the declaration (which keys are
required), so neither imports the other's module for them (no import cycle)."""

from __future__ import annotations

from ..lazyre import lazy

KEY = "environments"
ENV_KEYS = ("region", "name_prefix", "set")
NAME_RE = lazy(r"[a-z][a-z0-9-]{0,31}")
