"""Fixtures for the learning tests: a gateway config on a tmp SQLite database, and its context."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine

from learning.runner import LearningContext
from proxy.services import database_url
from proxy.settings import load_settings
from store.db import make_engine, migrate
from tests.support.servers import base_config


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    """A gateway config whose database is a SQLite file under tmp_path (no upstream is called)."""
    config = base_config("http://127.0.0.1:9", data_dir=str(tmp_path / "data"))
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def settings(config_path: Path) -> Any:
    return load_settings(config_path)


@pytest.fixture
def engine(settings: Any) -> Iterator[Engine]:
    engine = make_engine(database_url(settings))
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def context(settings: Any, engine: Engine, tmp_path: Path) -> LearningContext:
    return LearningContext.from_settings(settings, engine=engine, overlay_path=tmp_path / "config" / "learned.yaml")
