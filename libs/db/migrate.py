"""Alembic, driven from code: one environment, one version folder per service (branch labels).

The caller names the services (the registry's names): libs/ imports no service. A service's
migrations live in services/<name>/migrations, its tables in services/<name>/models.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from alembic import command
from alembic.config import Config

__all__ = ["alembic_config", "upgrade"]

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str, services: Iterable[str]) -> Config:
    names = tuple(services)
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "alembic"))
    locations = [
        str(ROOT / "services" / s / "migrations")
        for s in names
        if (ROOT / "services" / s / "migrations").is_dir()
    ]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["database_url"] = database_url
    cfg.attributes["services"] = names
    return cfg


def upgrade(database_url: str, services: Iterable[str], revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url, services), revision)
