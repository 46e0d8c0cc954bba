"""Catalog data that ships with aqua_lab and loading of users' config files."""

from .bundled import BundledCatalog, bundled_catalog
from .files import load_deployment_config_file

__all__ = ["bundled_catalog", "BundledCatalog", "load_deployment_config_file"]
