"""Who is asking: the owner of jobs and the reader of tables.

Anonymous access is the default (owner ``None``). Authentication proper
(bearer tokens, basic auth, groups) plugs in here; every resource asks this
module and nothing else.
"""

from __future__ import annotations

from typing import Any


def owner_of(request: Any) -> str | None:
    """The authenticated user of ``request``, or None for anonymous access."""
    return None
