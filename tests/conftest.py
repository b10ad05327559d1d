"""The tests' fixtures, built on the shared kit (tests/kit.py), which test modules import for helpers."""
from __future__ import annotations

from pathlib import Path

import pytest

from kit import TINY_MODEL


@pytest.fixture
def tiny_model() -> Path:
    """The committed tiny generator (tests/data/make_tiny_model.py writes it)."""
    return TINY_MODEL
