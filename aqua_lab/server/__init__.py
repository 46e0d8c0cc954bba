"""The Jupyter server extension (REST API under <base_url>aqua/)."""
