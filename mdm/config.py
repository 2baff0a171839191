"""Settings, built once from the environment (prefix ``MDM_``)."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from mdm.crypto import KeyRing, new_key


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
    # Requests per second each API key may make, refilled continuously, with bursts of up
    # to `rate_limit_burst` (429 with Retry-After beyond). Counted per server process: with
    # `--workers N` a key can reach N times the rate. 0 switches the limit off.
    rate_limit_per_second: float = Field(default=500.0, ge=0)
    rate_limit_burst: int = Field(default=1000, ge=1)
    # National ids are sealed at rest with the first key of MDM_DATA_KEYS
    # ("id:base64key,id:base64key"; the others still open older values), and found by a
    # keyed hash under its own key, MDM_BLIND_INDEX_KEY. Unset (development), both are
    # generated once and kept in a git-ignored local file; set them in production.
    data_keys: str = ""
    blind_index_key: str = ""
    secrets_file: Path = Path(".mdm-secrets")
    # More sensitive fields, or another scope for one, as JSON: {"phones":
    # "persons:read:sensitive"}. Shown in clear only to keys holding the scope, in every
    # output (reads, search, reviews, history, webhooks). The defaults stay sensitive.
    sensitive_fields: dict[str, str] = Field(default_factory=dict)
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

    @model_validator(mode="after")
    def _sensitive_fields(self) -> Settings:
        from mdm.mapping.profile import CANONICAL_FIELDS
        from mdm.model.redaction import SCOPES_THAT_SHOW

        for name, scope in self.sensitive_fields.items():
            if name not in CANONICAL_FIELDS:
                raise ValueError(f"MDM_SENSITIVE_FIELDS: {name!r} is not a canonical field")
            if scope not in SCOPES_THAT_SHOW:
                raise ValueError(
                    f"MDM_SENSITIVE_FIELDS: {name} needs one of {', '.join(SCOPES_THAT_SHOW)}"
                )
        return self

    @model_validator(mode="after")
    def _keys(self) -> Settings:
        if not self.data_keys or not self.blind_index_key:
            local = _local_secrets(self.secrets_file)
            self.data_keys = self.data_keys or local["data_keys"]
            self.blind_index_key = self.blind_index_key or local["blind_index_key"]
        keyring(self.data_keys)  # a bad setting fails at start, not at the first write
        return self

    @property
    def keyring(self) -> KeyRing:
        return keyring(self.data_keys)


@lru_cache(maxsize=8)
def keyring(spec: str) -> KeyRing:
    return KeyRing.parse(spec)


def _local_secrets(path: Path) -> dict[str, str]:
    """Development keys, generated once per checkout and shared by every process using it.

    Written to a temporary file and linked into place, so that processes starting together
    all end up with the one set that won."""
    for _ in range(50):
        try:
            found = json.loads(path.read_text())
            if found.get("data_keys") and found.get("blind_index_key"):
                return {k: str(found[k]) for k in ("data_keys", "blind_index_key")}
        except FileNotFoundError:
            pass
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable ({exc}); set MDM_DATA_KEYS") from None
        else:
            raise ValueError(f"{path}: incomplete; set MDM_DATA_KEYS and MDM_BLIND_INDEX_KEY")
        fresh = {"data_keys": f"dev1:{new_key()}", "blind_index_key": new_key()}
        fd, temp = tempfile.mkstemp(prefix=".mdm-secrets-", dir=path.parent or ".")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(fresh, handle)
            os.link(temp, path)
            logging.getLogger(__name__).warning(
                "development keys generated and kept in %s; set MDM_DATA_KEYS and "
                "MDM_BLIND_INDEX_KEY in production",
                path,
            )
            return fresh
        except FileExistsError:
            continue
        finally:
            os.unlink(temp)
    raise ValueError(f"{path}: could not be read or created")


class SettingsError(ValueError):
    """Settings that cannot be used. Unlike pydantic's own error, it never repeats the
    values given: they include keys."""


def load_settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        lines = [
            f"{'MDM_' + str(e['loc'][0]).upper() if e['loc'] else 'settings'}: {e['msg']}"
            for e in exc.errors(include_input=False, include_url=False)
        ]
        raise SettingsError("\n".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
