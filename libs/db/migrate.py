"""Alembic, driven from code: one environment, one version folder per service (branch labels)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

__all__ = ["alembic_config", "upgrade"]

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("profile", "segmentation", "ads", "recommend", "bonus")


def alembic_config(database_url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "alembic"))
    locations = [
        str(ROOT / "services" / s / "migrations")
        for s in SERVICES
        if (ROOT / "services" / s / "migrations").is_dir()
    ]
    cfg.set_main_option("version_locations", " ".join(locations))
    cfg.set_main_option("path_separator", "space")
    cfg.attributes["database_url"] = database_url
    return cfg


def upgrade(database_url: str, revision: str = "heads") -> None:
    command.upgrade(alembic_config(database_url), revision)
