"""Configuration of a store: one pydantic settings model, read from arguments and ``GITFREE_*``.

Credentials not given here come from the standard AWS chain (environment,
profile, instance role), resolved by boto3 and by DVC's S3 filesystem alike.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError, InputError, first_error

__all__ = [
    "AWS_ENDPOINT",
    "AWS_NAMES",
    "SourceOptions",
    "StoreSettings",
    "default_cache_dir",
    "default_store_url",
    "endpoint_id",
    "validate_endpoint_url",
]

AWS_NAMES: Mapping[str, str] = {
    "aws_access_key_id": "access_key_id",
    "aws_secret_access_key": "secret_access_key",
    "aws_session_token": "session_token",
    "region_name": "region",
    "profile_name": "profile",
    "endpoint_url": "endpoint_url",
}
"""The one mapping from AWS's credential names (boto3's, prefect-aws's ``AwsCredentials``, an Airflow ``aws``
connection's extra) to :class:`StoreSettings` fields."""


_SERVICE_SETTINGS: Mapping[str, frozenset[str]] = {
    "s3": frozenset({"access_key_id", "secret_access_key", "session_token", "region", "profile"}),
    "az": frozenset({"azure_account_name", "azure_account_key", "azure_sas_token", "azure_connection_string"}),
    "gs": frozenset({"gcs_credentials", "gcs_project"}),
}
"""The credential settings of each store service (``endpoint_url`` is every service's: see
:meth:`StoreSettings.foreign_credentials`)."""


def default_store_url() -> str:
    """The local store used when nothing is configured: a directory under the user's data dir."""
    return Path(platformdirs.user_data_dir("gitfree"), "store").as_uri()


def default_cache_dir() -> Path:
    """The worker cache used when nothing is configured (honours ``XDG_CACHE_HOME``)."""
    return Path(platformdirs.user_cache_dir("gitfree"))


def validate_endpoint_url(url: str, setting: str = "GITFREE_ENDPOINT_URL") -> str:
    """``url`` if it is an ``http(s)://HOST[:PORT][/PATH]`` URL; else :class:`ConfigError` naming ``setting``."""
    bare = re.sub(r"^https?:/*", "", url, flags=re.IGNORECASE) or "HOST:PORT"
    hint = f"http://{bare}"
    try:
        parts = urlsplit(url)
        port_ok = parts.port is None or parts.port > 0
    except ValueError as exc:
        raise ConfigError(f"the S3 endpoint {url!r} ({setting}) is not a valid URL ({exc}): fix {setting}") from None
    if "://" not in url:
        raise ConfigError(f"the S3 endpoint {url!r} ({setting}) needs a scheme: write it as {hint} (or https://...)")
    if parts.scheme.lower() not in ("http", "https"):
        rest = url.split("://", 1)[1]
        raise ConfigError(
            f"the S3 endpoint {url!r} ({setting}) must start with http:// or https://, not {parts.scheme}://: "
            f"write it as e.g. http://{rest}"
        )
    if not parts.hostname:
        raise ConfigError(f"the S3 endpoint {url!r} ({setting}) names no host: write it as http://HOST:PORT")
    if not port_ok or parts.query or parts.fragment:
        raise ConfigError(f"the S3 endpoint {url!r} ({setting}) is not a valid URL: write it as http://HOST:PORT")
    return url


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
    lease_ttl: float = Field(default=600.0, gt=0, le=86400.0)
    """Seconds a commit's lease (or the GC lock) lives without a heartbeat; renewed every third of it."""
    clock_skew: float = Field(default=300.0, ge=0, le=86400.0)
    """Seconds by which the clocks of two workers may differ; a lease is dead only this long after expiry."""
    gc_wait: float = Field(default=1800.0, ge=0, le=7 * 86400.0)
    """Seconds a commit waits for a running garbage collection, or GC for commits still uploading."""
    commit_attempts: int = Field(default=100, ge=1)
    """How many version numbers a commit tries before giving up with ``ConflictError``."""
    connect_timeout: float = Field(default=3.0, gt=0, le=3600.0)
    """Seconds to open a connection to the S3 endpoint (manifest requests and object transfers)."""
    read_timeout: float = Field(default=2.5, gt=0, le=3600.0)
    """Seconds to wait for the server to answer a manifest request (records, tags, leases, listings),
    or to send the next bytes of an answer; a request that times out is retried."""
    transfer_timeout: float = Field(default=120.0, gt=0, le=86400.0)
    """Seconds one object transfer (a PUT of up to 100 MiB, a part or a range of a larger one) may take."""
    retries: int = Field(default=2, ge=0, le=20)
    """How many times a failed S3 request (refused connection, timeout, 5xx, throttling) is retried."""
    azure_account_name: str | None = None
    """Azure storage account of an ``az://`` store. Default: ``AZURE_STORAGE_ACCOUNT_NAME``
    (or ``AZURE_STORAGE_ACCOUNT``), else the connection string's ``AccountName``."""
    azure_account_key: SecretStr | None = None
    """Its shared key. Default: ``AZURE_STORAGE_ACCOUNT_KEY`` (or ``AZURE_STORAGE_KEY``), else the connection
    string's."""
    azure_sas_token: SecretStr | None = None
    """A SAS token instead of the key. Default: ``AZURE_STORAGE_SAS_TOKEN``, else the connection string's."""
    azure_connection_string: SecretStr | None = None
    """An Azure connection string (``AccountName=...;AccountKey=...;BlobEndpoint=...``).
    Default: ``AZURE_STORAGE_CONNECTION_STRING``. Its ``BlobEndpoint`` is the endpoint unless ``endpoint_url``
    is set."""

    gcs_credentials: SecretStr | None = None
    """Google Cloud credentials of a ``gs://`` store: a service-account JSON key, or the path of its file.
    Default: the file ``GOOGLE_APPLICATION_CREDENTIALS`` names. Without it, only an emulator
    (``STORAGE_EMULATOR_HOST`` or ``endpoint_url``) is reached, anonymously: gitfree never asks a metadata server."""
    gcs_project: str | None = None
    """The Google Cloud project (only named in requests that need one). Default: ``GOOGLE_CLOUD_PROJECT``,
    else the key's ``project_id``."""

    @field_validator(
        "store",
        "cache_dir",
        "endpoint_url",
        "access_key_id",
        "region",
        "profile",
        "azure_account_name",
        "gcs_project",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @classmethod
    def merged(cls, settings: StoreSettings | None = None, **overrides: Any) -> StoreSettings:
        """``settings`` (default: from ``GITFREE_*``) with every override that is not ``None`` applied;
        ``InputError`` naming the first setting that is invalid."""
        given = {key: value for key, value in overrides.items() if value is not None}
        try:
            if settings is None:
                return cls(**given)
            if not given:
                return settings
            return cls.model_validate({**settings.model_dump(exclude_none=True), **given})
        except ValidationError as exc:
            raise InputError(f"invalid store settings: {first_error(exc)}") from None

    def azure_credentials(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The Azure account, key or SAS token and endpoint of an ``az://`` store: these settings, then the
        ``AZURE_STORAGE_*`` variables, then the connection string. Keys: ``account``, ``key``, ``sas`` and
        ``endpoint``, each present only when found (``key`` and ``sas`` are secrets: never print them)."""
        env = os.environ if environ is None else environ
        conn = self.azure_connection_string.get_secret_value() if self.azure_connection_string else ""
        parts = _connection_string(conn or env.get("AZURE_STORAGE_CONNECTION_STRING", ""))
        found = {
            "account": self.azure_account_name
            or env.get("AZURE_STORAGE_ACCOUNT_NAME")
            or env.get("AZURE_STORAGE_ACCOUNT")
            or parts.get("accountname"),
            "key": (self.azure_account_key.get_secret_value() if self.azure_account_key else None)
            or env.get("AZURE_STORAGE_ACCOUNT_KEY")
            or env.get("AZURE_STORAGE_KEY")
            or parts.get("accountkey"),
            "sas": (self.azure_sas_token.get_secret_value() if self.azure_sas_token else None)
            or env.get("AZURE_STORAGE_SAS_TOKEN")
            or parts.get("sharedaccesssignature"),
            "endpoint": self.resolved_endpoint() or parts.get("blobendpoint"),
        }
        return {name: value for name, value in found.items() if value}

    def gcs_settings(self, environ: Mapping[str, str] | None = None) -> dict[str, str]:
        """The credentials, endpoint and project of a ``gs://`` store: these settings, then
        ``GOOGLE_APPLICATION_CREDENTIALS``, ``STORAGE_EMULATOR_HOST`` and ``GOOGLE_CLOUD_PROJECT``. Keys:
        ``key`` (the service-account JSON: a secret, never print it), ``endpoint`` and ``project``, each
        present only when found; :class:`ConfigError` for a key file that cannot be read or is not JSON."""
        env = os.environ if environ is None else environ
        found: dict[str, str] = {}
        given = self.gcs_credentials.get_secret_value().strip() if self.gcs_credentials else ""
        source = "GITFREE_GCS_CREDENTIALS"
        if not given and env.get("GOOGLE_APPLICATION_CREDENTIALS"):
            given, source = env["GOOGLE_APPLICATION_CREDENTIALS"].strip(), "GOOGLE_APPLICATION_CREDENTIALS"
        if given:
            found["key"] = _service_account_json(given, source)
        emulator = env.get("STORAGE_EMULATOR_HOST", "").strip()
        if emulator and "://" not in emulator:
            emulator = f"http://{emulator}"
        if self.endpoint_url:
            found["endpoint"] = validate_endpoint_url(
                self.endpoint_url.strip(), "GITFREE_ENDPOINT_URL / --endpoint-url"
            )
        elif emulator:
            found["endpoint"] = validate_endpoint_url(emulator, "STORAGE_EMULATOR_HOST")
        project = self.gcs_project or env.get("GOOGLE_CLOUD_PROJECT") or _json_field(found.get("key"), "project_id")
        if project:
            found["project"] = project
        return found

    def resolved_store(self) -> str:
        return self.store or default_store_url()

    def resolved_cache_dir(self) -> Path:
        return (self.cache_dir or default_cache_dir()).expanduser().absolute()

    def prepared_cache_dir(self) -> Path:
        """The worker cache directory, created if missing and proven writable; else :class:`ConfigError`."""
        path = self.resolved_cache_dir()
        try:
            path.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path, prefix=".gitfree-probe-"):
                pass
        except OSError as exc:
            reason = "it is not a directory" if isinstance(exc, FileExistsError | NotADirectoryError) else None
            reason = reason or exc.strerror or type(exc).__name__
            setting = "GITFREE_CACHE_DIR" if self.cache_dir else "GITFREE_CACHE_DIR or XDG_CACHE_HOME"
            raise ConfigError(
                f"the worker cache {path} cannot be created or written ({reason}): "
                f"point {setting} (--cache-dir, cache_dir=) at a writable directory"
            ) from None
        return path

    def resolved_endpoint(self) -> str | None:
        """The S3 endpoint URL, if any, checked to be ``http(s)://HOST[:PORT]``; else :class:`ConfigError`."""
        for value, setting in (
            (self.endpoint_url, "GITFREE_ENDPOINT_URL / --endpoint-url"),
            (os.environ.get("AWS_ENDPOINT_URL_S3"), "AWS_ENDPOINT_URL_S3"),
            (os.environ.get("AWS_ENDPOINT_URL"), "AWS_ENDPOINT_URL"),
        ):
            if value:
                return validate_endpoint_url(value.strip(), setting)
        return None

    @staticmethod
    def fields_from_aws(aws: Mapping[str, Any] | None = None, /, **settings: Any) -> dict[str, Any]:
        """The fields of this class that AWS-named credentials and gitfree-named ``settings`` give.

        ``aws`` holds values under AWS's names (:data:`AWS_NAMES`: ``aws_access_key_id``,
        ``aws_secret_access_key``, ``aws_session_token``, ``region_name``, ``profile_name``,
        ``endpoint_url``); other keys in it are ignored. ``settings`` are fields of this class
        (``store``, ``cache_dir``, ``endpoint_url``, ``access_key_id``, ...) and win over the AWS-named
        values. ``None`` or ``""`` (also as a ``SecretStr``) is unset, on either side.
        """
        fields = {name: value for name, value in settings.items() if not _unset(value)}
        for name, field in AWS_NAMES.items():
            value = (aws or {}).get(name)
            if not _unset(value) and field not in fields:
                fields[field] = value
        return fields

    @classmethod
    def from_aws(cls, aws: Mapping[str, Any] | None = None, /, **settings: Any) -> StoreSettings:
        """Settings from AWS-named credentials and gitfree-named ``settings`` (:meth:`fields_from_aws`);
        what neither gives comes from the ``GITFREE_*`` variables, then the AWS credential chain.

        Example:
            >>> StoreSettings.from_aws({"aws_access_key_id": "AKIA1", "region_name": "eu-west-1"},
            ...                        store="s3://ml-data/versions", region="us-east-2").region
            'us-east-2'

        Raises:
            InputError: a value is malformed (``jobs`` not a number, an unknown setting); the message
                names the setting, never its value.
        """
        try:
            return cls(**cls.fields_from_aws(aws, **settings))
        except ValidationError as exc:
            raise InputError(f"invalid store settings: {first_error(exc)}") from None

    def s3fs_options(self) -> dict[str, Any]:
        """Arguments of ``s3fs.S3FileSystem`` that reach S3 as this store does: its endpoint (checked),
        its keys (with the session token of temporary ones), its region and profile. Nothing given:
        s3fs uses the AWS credential chain, as the store does."""
        options: dict[str, Any] = {}
        if endpoint := self.resolved_endpoint():
            options["endpoint_url"] = endpoint
        if self.access_key_id and self.secret_access_key:
            options["key"] = self.access_key_id
            options["secret"] = self.secret_access_key.get_secret_value()
            if self.session_token:
                options["token"] = self.session_token.get_secret_value()
        if self.profile:
            options["profile"] = self.profile
        if self.region:
            options["client_kwargs"] = {"region_name": self.region}
        return options

    def foreign_credentials(self, given: Iterable[str]) -> list[str]:
        """The settings among ``given`` (field names, e.g. the ones a Prefect block or an Airflow connection set)
        that are credentials of a service this store is not on, sorted: ``azure_*`` anywhere but an ``az://``
        store, ``gcs_*`` anywhere but a ``gs://`` store, S3's keys, token, region and profile on an ``az://`` or
        ``gs://`` store (a local or ``file://`` store may hold S3's, for ``s3://`` sources by reference). An
        integration refuses such a setting in one line instead of silently ignoring it."""
        store = self.resolved_store()
        try:  # as open_backend reads it (urlsplit drops leading spaces); a malformed URL fails there
            scheme = urlsplit(store).scheme.lower() if "://" in store else "file"
        except ValueError:
            scheme = "file"
        allowed = _SERVICE_SETTINGS.get(scheme, _SERVICE_SETTINGS["s3"] if scheme == "file" else frozenset())
        every = frozenset().union(*_SERVICE_SETTINGS.values())
        return sorted(name for name in set(given) if name in every and name not in allowed)

    @staticmethod
    def stores_taking(name: str) -> str:
        """Which stores take the credential ``name`` (a setting, or an integration's field named after one:
        ``azure_*``, ``gcs_*``, else S3's), as the refusal of a :meth:`foreign_credentials` one says it:
        ``"az:// stores only"``."""
        if name.startswith("azure_"):
            return "az:// stores only"
        if name.startswith("gcs_"):
            return "gs:// stores only"
        return "s3:// and local stores only"


AWS_ENDPOINT = "aws"
"""What a reference table records as the endpoint of a source on AWS S3 itself (source options without an
endpoint URL: another account's keys, a profile or a region)."""


def endpoint_id(url: str | None) -> str:
    """The name of an S3 endpoint that two workers compare: ``scheme://host:port`` in lower case, the default
    port and a trailing ``/`` left out; :data:`AWS_ENDPOINT` for ``None`` (AWS S3 itself)."""
    if not url:
        return AWS_ENDPOINT
    parts = urlsplit(url.strip())
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    port = parts.port
    if port is None or (scheme, port) in (("http", 80), ("https", 443)):
        return f"{scheme}://{host}{parts.path.rstrip('/')}"
    return f"{scheme}://{host}:{port}{parts.path.rstrip('/')}"


class SourceOptions(BaseSettings):
    """How to reach the ``s3://`` source of a version by reference that is not on the store's endpoint or not
    readable with the store's credentials (docs/design.md, "Source options"), as :class:`StoreSettings` takes
    them for the store: an endpoint, keys (secrets: never printed), a region, a profile.

    Every field can be set with an environment variable named ``GITFREE_SOURCE_`` plus the field name in upper
    case: ``GITFREE_SOURCE_ENDPOINT_URL``, ``GITFREE_SOURCE_ACCESS_KEY_ID``, ``GITFREE_SOURCE_SECRET_ACCESS_KEY``,
    ``GITFREE_SOURCE_SESSION_TOKEN``, ``GITFREE_SOURCE_REGION``, ``GITFREE_SOURCE_PROFILE``. A commit records the
    source's endpoint (:meth:`endpoint`) in its reference table, never a credential; a reader finds the options
    for that endpoint in its own settings when it reads the files.

    Example:
        >>> SourceOptions(endpoint_url="http://minio.lab:9000/", access_key_id="reader").endpoint()
        'http://minio.lab:9000'
    """

    model_config = SettingsConfigDict(env_prefix="GITFREE_SOURCE_", extra="forbid", frozen=True)

    endpoint_url: str | None = None
    """The source's S3 endpoint; ``None``: AWS S3 itself."""
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    region: str | None = None
    profile: str | None = None
    """An AWS profile name from ``~/.aws/config``."""

    @field_validator("endpoint_url", "access_key_id", "region", "profile", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("secret_access_key", "session_token", mode="before")
    @classmethod
    def _empty_secret_is_unset(cls, value: object) -> object:
        return None if _unset(value) else value

    @classmethod
    def from_env(cls) -> SourceOptions | None:
        """The options the ``GITFREE_SOURCE_*`` variables give, or ``None`` when none is set;
        ``InputError`` naming the first that is invalid."""
        given = [name for name, value in os.environ.items() if name.upper().startswith("GITFREE_SOURCE_") and value]
        known = [f"GITFREE_SOURCE_{field.upper()}" for field in cls.model_fields]
        unknown = sorted(name for name in given if name.upper() not in known)
        if unknown:  # a typo would otherwise send the source to AWS, or leave it on the store's endpoint
            raise InputError(f"{unknown[0]} is not a source option: set one of {', '.join(known)}")
        if not given:
            return None
        try:
            return cls()
        except ValidationError as exc:
            raise InputError(f"invalid source options (GITFREE_SOURCE_*): {first_error(exc)}") from None

    def given(self) -> bool:
        """Whether any option is set."""
        return any(value is not None for value in self.model_dump().values())

    def endpoint(self) -> str:
        """The endpoint these options reach, as a reference table records it (:func:`endpoint_id`), checked to be
        ``http(s)://HOST[:PORT]`` (``ConfigError`` naming ``GITFREE_SOURCE_ENDPOINT_URL`` otherwise)."""
        if self.endpoint_url:
            validate_endpoint_url(self.endpoint_url.strip(), "GITFREE_SOURCE_ENDPOINT_URL / --source-endpoint-url")
        return endpoint_id(self.endpoint_url)

    def settings(self, base: StoreSettings) -> StoreSettings:
        """``base`` (its timeouts and retries) with these options instead of its S3 endpoint and credentials:
        what the options do not give is unset (then the AWS chain), never the store's."""
        if self.endpoint_url:
            self.endpoint()  # the precise message
        fields = {"endpoint_url", "access_key_id", "secret_access_key", "session_token", "region", "profile"}
        kept = base.model_dump(exclude=fields, exclude_none=True)
        # Every S3 field given, None included, so that no GITFREE_* variable of the store fills one in.
        return StoreSettings.model_validate({**kept, **self.model_dump(include=fields)})


def _connection_string(text: str) -> dict[str, str]:
    """The ``Name=value`` parts of an Azure connection string, names in lower case (values may hold '=')."""
    parts: dict[str, str] = {}
    for item in text.split(";"):
        name, sep, value = item.strip().partition("=")
        if sep and name.strip():
            parts[name.strip().lower()] = value.strip()
    return parts


def _service_account_json(given: str, source: str) -> str:
    """The service-account JSON ``given`` is or names (a path); else :class:`ConfigError` naming ``source``."""
    text = given
    if not given.startswith("{"):
        try:
            text = Path(given).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise ConfigError(
                f"the Google Cloud key file {given!r} ({source}) cannot be read ({reason}): point {source} at a "
                "service-account JSON key"
            ) from None
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict) or not parsed.get("client_email") or not parsed.get("private_key"):
        raise ConfigError(
            f"the Google Cloud credentials of {source} are not a service-account JSON key (with client_email and "
            "private_key): download one for the service account and point it there"
        )
    return text


def _json_field(text: str | None, name: str) -> str | None:
    value = json.loads(text).get(name) if text else None
    return value if isinstance(value, str) and value else None


def _unset(value: object) -> bool:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return value is None or value == ""
