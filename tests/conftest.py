"""Shared fixtures. Expensive artefacts (the small world) are built once per session."""

from __future__ import annotations

import os

os.environ.setdefault("POLARS_MAX_THREADS", "2")
