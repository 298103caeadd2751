"""One typed settings object, read from BACKCRM_* environment variables.

DATABASE_URL and REDIS_URL are read without the prefix too.

The defaults are the embedded mode: a SQLite file under ./var/, in-process cache and bus.
Setting DATABASE_URL (postgresql+asyncpg://...) and REDIS_URL (redis://...) switches to
production mode with no code change.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BACKCRM_", extra="ignore", frozen=True, populate_by_name=True
    )

    database_url: str = Field(
        default="",
        validation_alias=AliasChoices("DATABASE_URL", "BACKCRM_DATABASE_URL"),
        description="SQLAlchemy async URL; default sqlite under var_dir; postgresql+asyncpg://...",
    )
    redis_url: str = Field(
        default="",
        validation_alias=AliasChoices("REDIS_URL", "BACKCRM_REDIS_URL"),
        description="redis://...; empty means the in-process cache and bus",
    )
    redis_prefix: str = Field(
        default="backcrm:", description="prefix of every Redis key (streams and cache)"
    )
    var_dir: Path = Field(default=Path("var"), description="writable folder for embedded data")
    address: str = Field(default="127.0.0.1:50051", description="host:port the server binds")
    auth_enabled: bool = Field(default=True, description="false only for local experiments")
    auth_tokens: str = Field(
        default="",
        description='JSON list of {"name", "sha256", "scopes"}; tokens are only stored hashed',
    )
    auth_tokens_file: Path = Field(
        default=Path(""), description="more hashed tokens, same layout; default var_dir/tokens.json"
    )
    cache_max_entries: int = Field(default=100_000, description="in-process cache bound")
    cache_ttl_seconds: int = Field(default=300, description="backstop TTL of cached profiles")
    max_message_bytes: int = Field(default=8 * 1024 * 1024, description="gRPC message limit")
    shutdown_grace_seconds: float = Field(default=10.0, description="SIGTERM drain time")
    otel_exporter: Literal["none", "console", "otlp"] = Field(
        default="none", description="where traces and metrics go"
    )
    otel_endpoint: str = Field(default="", description="OTLP endpoint, e.g. http://collector:4317")
    log_level: str = Field(default="INFO", description="root log level")
    profile_address: str = Field(
        default="", description="where other services reach profile; empty: this server"
    )
    segmentation_address: str = Field(
        default="", description="where other services reach segmentation; empty: this server"
    )
    bonus_address: str = Field(
        default="", description="where other services reach bonus; empty: this server"
    )
    ads_address: str = Field(
        default="", description="where other services reach ads; empty: this server"
    )
    recommend_address: str = Field(
        default="", description="where other services reach recommend; empty: this server"
    )
    service_token: str = Field(
        default="",
        description="bearer token services use to call each other; minted per process when empty",
    )
    ads_service_token: str = Field(
        default="",
        description="bearer token ads records ad events on profiles (TrackEvents) and credits "
        "ad rewards (bonus RewardPoints) with: name `ads`, scopes profile:write and "
        "bonus:reward; minted per process when empty",
    )
    bonus_service_token: str = Field(
        default="",
        description="bearer token bonus writes its profile traits (bonus.tier) with: name "
        "`bonus`, scopes profile:read and profile:write; minted per process when empty",
    )
    segment_reconcile_seconds: float = Field(
        default=300.0, description="set-wise re-check of time-dependent segments"
    )
    segment_rfm_seconds: float = Field(
        default=86_400.0, description="how often RFM scores are recomputed (also on demand)"
    )
    segment_due_poll_seconds: float = Field(
        default=0.2, description="how often due (time-dependent) memberships are re-evaluated"
    )
    segment_builds: int = Field(
        default=2,
        ge=1,
        le=64,
        description="segment builds a process runs at once (each one INSERT … SELECT in the "
        "database): about the database's cores",
    )
    bonus_expiry_seconds: float = Field(
        default=3600.0, gt=0, description="how often points past their expiry are recorded"
    )
    bonus_quote_key: str = Field(
        default="",
        description="HMAC-SHA256 key signing QuoteOffer quote ids, the same in every bonus "
        "replica; empty: derived from database_url (set it in production)",
    )
    bonus_quote_ttl_seconds: float = Field(
        default=900.0, gt=0, description="how long a quote id may be passed to Accrue"
    )
    bonus_signals_timeout_seconds: float = Field(
        default=0.15, gt=0, description="QuoteOffer's budget for its one call to segmentation"
    )
    bonus_config_check_seconds: float = Field(
        default=0.5,
        gt=0,
        description="how often each bonus process compares its cached configuration's version",
    )
    bonus_tier_sweep_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="how often bonus lowers tiers whose points left the rolling period",
    )
    ads_tracking_keys: str = Field(
        default="",
        description='ads: JSON {"key id": "secret"} signing tracking tokens; empty: a dev key '
        "derived from the database URL (set it in production)",
    )
    ads_tracking_key_id: str = Field(
        default="", description="ads: the key id new tracking tokens are signed with"
    )
    ads_segment_timeout_seconds: float = Field(
        default=0.05, gt=0, description="ads: how long SelectAds waits for segmentation"
    )
    ads_reservation_seconds: float = Field(
        default=60.0, gt=0, description="ads: how long a selection holds budget/cap room"
    )
    ads_catalog_check_seconds: float = Field(
        default=0.5, gt=0, description="ads: how often each process compares its campaign cache"
    )
    recommend_catalog_check_seconds: float = Field(
        default=0.5,
        gt=0,
        description="recommend: how often each process compares its catalogue cache's version",
    )
    recommend_segment_timeout_seconds: float = Field(
        default=0.05,
        gt=0,
        description="recommend: how long GetRecommendations waits for segmentation",
    )
    recommend_train_seconds: float = Field(
        default=86_400.0,
        ge=0,
        description="recommend: how often the personal model is retrained (0: only on demand)",
    )
    recommend_rebuild_seconds: float = Field(
        default=86_400.0,
        ge=0,
        description="recommend: how often the co-occurrence is recounted from the kept baskets "
        "(one process per period; 0: never)",
    )
    recommend_model_check_seconds: float = Field(
        default=5.0, gt=0, description="recommend: how often each process looks for a newer model"
    )
    outbox_poll_seconds: float = Field(default=0.5, description="outbox relay idle poll")
    bus_retention_seconds: float = Field(
        default=7 * 86_400.0,
        gt=0,
        description="bus messages older than this are dropped, even unread (erasure wins)",
    )
    bus_max_len: int = Field(
        default=1_000_000,
        ge=1,
        description="Redis: entries a stream keeps for lagging groups; alarm at 80%, drop past it",
    )
    bus_trim_seconds: float = Field(
        default=30.0, gt=0, description="Redis: how often streams are trimmed"
    )
    bus_drain_seconds: float = Field(
        default=10.0,
        ge=0,
        description="on shutdown, how long consumers may finish what is already on the bus",
    )
    watch_max_watchers: int = Field(
        default=1_000, ge=1, description="concurrent Watch* streams per process"
    )
    watch_buffer: int = Field(
        default=1_000, ge=1, description="messages a slow watcher may fall behind before it ends"
    )

    @model_validator(mode="after")
    def _defaults_under_var_dir(self) -> Settings:
        # Frozen model: derived defaults are filled in once, here.
        if not self.database_url:
            object.__setattr__(
                self, "database_url", f"sqlite+aiosqlite:///{self.var_dir}/backcrm.db"
            )
        if self.auth_tokens_file == Path(""):
            object.__setattr__(self, "auth_tokens_file", self.var_dir / "tokens.json")
        return self

    @cached_property
    def embedded_bus(self) -> bool:
        return not self.redis_url
