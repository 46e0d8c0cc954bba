"""Catalog data that ships with aqua_lab and loading of users' config files."""

from .files import load_deployment_config_file
from .shipped import BundledCatalog, bundled_catalog

__all__ = ["bundled_catalog", "BundledCatalog", "load_deployment_config_file"]
