"""Shared fixtures. Expensive artefacts (the small world) are built once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("POLARS_MAX_THREADS", "2")

SMALL_WORLD_SEED = 7


@pytest.fixture(scope="session")
def small_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic world (seed 7), generated once per test session; returns its path."""
    from retail.world import generate_world

    path = tmp_path_factory.mktemp("world") / "small"
    generate_world(path, scale="small", seed=SMALL_WORLD_SEED)
    return path
