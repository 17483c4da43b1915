"""Configuration of a store: one pydantic settings model, read from arguments and ``GITFREE_*``.

Credentials not given here come from the standard AWS chain (environment,
profile, instance role), resolved by boto3 and by DVC's S3 filesystem alike.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["StoreSettings", "default_cache_dir", "default_store_url"]


def default_store_url() -> str:
    """The local store used when nothing is configured: a directory under the user's data dir."""
    return Path(platformdirs.user_data_dir("gitfree"), "store").as_uri()


def default_cache_dir() -> Path:
    """The worker cache used when nothing is configured (honours ``XDG_CACHE_HOME``)."""
    return Path(platformdirs.user_cache_dir("gitfree"))


class StoreSettings(BaseSettings):
    """Where a store is and how to reach it.

    Every field can be set with an environment variable named ``GITFREE_`` plus
    the field name in upper case, e.g. ``GITFREE_STORE``, ``GITFREE_CACHE_DIR``,
    ``GITFREE_ENDPOINT_URL``, ``GITFREE_SECRET_ACCESS_KEY``.
    """

    model_config = SettingsConfigDict(env_prefix="GITFREE_", extra="forbid")

    store: str | None = None
    """Store URL: ``s3://bucket/prefix``, ``file:///path`` or a local path. Default: a local directory."""
    cache_dir: Path | None = None
    """Persistent worker cache shared by commits and pulls on this machine."""
    endpoint_url: str | None = None
    """S3 endpoint for non-AWS servers. Default: ``AWS_ENDPOINT_URL_S3``, ``AWS_ENDPOINT_URL``, else AWS."""
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    region: str | None = None
    profile: str | None = None
    """An AWS profile name from ``~/.aws/config``."""
    jobs: int | None = Field(default=None, ge=1, le=256)
    """Parallel transfers. Default: DVC's default for the remote."""
    lease_ttl: float = Field(default=600.0, gt=0)
    """Seconds a commit's lease (or the GC lock) lives without a heartbeat; renewed every third of it."""
    clock_skew: float = Field(default=300.0, ge=0)
    """Seconds by which the clocks of two workers may differ; a lease is dead only this long after expiry."""
    gc_wait: float = Field(default=1800.0, ge=0)
    """Seconds a commit waits for a running garbage collection, or GC for commits still uploading."""
    commit_attempts: int = Field(default=100, ge=1)
    """How many version numbers a commit tries before giving up with ``ConflictError``."""

    @field_validator("store", "endpoint_url", "access_key_id", "region", "profile", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    def resolved_store(self) -> str:
        return self.store or default_store_url()

    def resolved_cache_dir(self) -> Path:
        return (self.cache_dir or default_cache_dir()).expanduser().absolute()

    def resolved_endpoint(self) -> str | None:
        return self.endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
