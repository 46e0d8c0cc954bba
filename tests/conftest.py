from __future__ import annotations

from pathlib import Path

import pytest

from aqua_lab.catalog import bundled_catalog

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def catalog():
    return bundled_catalog()


@pytest.fixture
def seed_sample_text() -> str:
    return (DATA / "seed_sample_deployment_config.json").read_text()
