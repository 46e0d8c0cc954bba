"""Planning: catalogs, config resolution, allocation, parameters, payloads.  Pure — no I/O."""

from .allocate import allocate, is_power_of_two
from .configs import canonicalise_config, parameters_for, parse_deployment_config
from .resolve import model_candidates, plan
from .shapes import ShapeCatalog
from .validate import validate_deployment

__all__ = [
    "allocate",
    "is_power_of_two",
    "parse_deployment_config",
    "canonicalise_config",
    "parameters_for",
    "plan",
    "model_candidates",
    "ShapeCatalog",
    "validate_deployment",
]
