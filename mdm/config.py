"""Settings, built once from the environment (prefix ``MDM_``)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MDM_", extra="ignore")

    database_url: str = "sqlite:///./mdm.db"
    admin_key: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    # Decision thresholds on the match confidence (DESIGN section 3).
    auto_merge_threshold: float = Field(default=0.95, ge=0.0, le=1.0)
    review_threshold: float = Field(default=0.70, ge=0.0, le=1.0)
    # Exact keys are trusted unless the names clearly disagree (shared mailbox, data error).
    # A blocking key shared by more persons than this is generic (a household address,
    # a placeholder): it yields no candidates rather than a giant block.
    max_block_size: int = Field(default=50, ge=1)
    max_body_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    max_batch_records: int = Field(default=1000, ge=1)
    # Keyed hash for the national-id blind index; set it in production.
    blind_index_key: str = "mdm-development-blind-index-key"
    db_pool_size: int = Field(default=10, ge=1)
    # Source mapping profiles (TOML). The shipped ones (greenhouse, workday, salesforce)
    # load first; files in MDM_PROFILES_DIR add sources or replace one of the same key.
    profiles_dir: Path | None = None
    shipped_profiles: bool = True
    # Survivorship rules (TOML, [fields.<name>] strategy/owners/...): replace the defaults
    # for the fields it names.
    survivorship_file: Path | None = None
    # Webhooks. Private, loopback and link-local targets are refused (SSRF) unless allowed
    # (tests and `make run` deliver to 127.0.0.1).
    webhook_allow_private: bool = False
    # Seconds before each retry: about three days in all; each delay gets +-20% jitter.
    webhook_retry_schedule: list[float] = Field(
        default=[5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 43200, 86400, 86400]
    )
    webhook_timeout: float = Field(default=10.0, gt=0)
    webhook_lease: float = Field(default=60.0, gt=0)
    # How often the webhook worker checks sync health and raises alerts (0: never).
    health_interval: float = Field(default=3600.0, ge=0)

    @model_validator(mode="after")
    def _thresholds_ordered(self) -> Settings:
        if self.review_threshold > self.auto_merge_threshold:
            raise ValueError("MDM_REVIEW_THRESHOLD must not exceed MDM_AUTO_MERGE_THRESHOLD")
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
