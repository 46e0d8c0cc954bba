"""Path templates (``deployments/{deployment_id}``) as regexes, for the REST route table (and the OCI
emulator's, which imports this module alone): literal text escaped, each ``{name}`` a named group that
matches one path segment unless ``wide`` gives it its own pattern (ids that contain slashes)."""

from __future__ import annotations

import re
from collections.abc import Mapping

PARAMETER = re.compile(r"{(\w+)}")


def template_pattern(template: str, wide: Mapping[str, str] | None = None) -> str:
    out, at = [], 0
    for found in PARAMETER.finditer(template):
        name = found.group(1)
        out.append(re.escape(template[at : found.start()]))
        out.append(f"(?P<{name}>{(wide or {}).get(name, '[^/]+')})")
        at = found.end()
    return "".join(out) + re.escape(template[at:])
