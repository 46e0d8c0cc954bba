"""The package version, apart from ``aqua_lab/__init__.py`` so that modules the package root loads
(the server extension's OpenAPI document) can name it without importing the root."""

__version__ = "0.1.0"
