"""``GitfreeHook``: a :class:`gitfree.Store` from an Airflow connection (conn type ``gitfree``, or ``aws``,
``wasb``, ``google_cloud_platform``).

A ``gitfree`` connection holds the store and how to reach it:

====================  ==========================================================================
field                 meaning
====================  ==========================================================================
host, schema          the bucket and the prefix: host ``ml-data``, schema ``versions`` is the store
                      ``s3://ml-data/versions`` (a host with a scheme, ``s3://ml-data/versions``,
                      ``az://container/versions``, ``gs://bucket/versions`` or ``file:///srv/store``,
                      is taken as the whole URL)
login, password       ``s3://``: the access key id and secret access key (none: the AWS credential chain);
                      ``az://``: the storage account name and its key (as Azure's ``wasb`` connection);
                      ``gs://``: no login, the password is a service-account JSON key (or its path)
extra                 ``store`` (a whole store URL, instead of host and schema), ``endpoint_url`` (an S3
                      server, Azure's blob endpoint, a GCS emulator), ``region``, ``session_token``,
                      ``profile``, ``cache_dir``, ``jobs``; for ``az://`` the Azure provider's
                      ``connection_string``, ``sas_token``, ``shared_access_key``; for ``gs://`` the Google
                      provider's ``keyfile_dict``, ``key_path``, ``project``
====================  ==========================================================================

For example, as an environment variable (JSON or URI form)::

    AIRFLOW_CONN_GITFREE_DEFAULT='{"conn_type": "gitfree", "host": "ml-data", "schema": "versions",
        "login": "AKIA...", "password": "...", "extra": {"endpoint_url": "http://s3.internal:8333"}}'
    AIRFLOW_CONN_GITFREE_DEFAULT='gitfree://AKIA...:SECRET@ml-data/versions?endpoint_url=http%3A%2F%2Fs3.internal%3A8333'
    AIRFLOW_CONN_GITFREE_DEFAULT='{"conn_type": "gitfree", "host": "az://ml-data/versions",
        "login": "mystorageaccount", "password": "<account key>"}'
    AIRFLOW_CONN_GITFREE_DEFAULT='{"conn_type": "gitfree", "host": "gs://ml-data/versions",
        "extra": {"key_path": "/secrets/sa.json", "project": "my-project"}}'

A credential of another service than the store's (an Azure key on a ``gs://`` store, S3 keys on an ``az://``
one) is refused with one ``ConfigError`` naming it. An ``aws`` connection (the Amazon provider's, which need not
be installed) gives the credentials, ``region_name`` and ``endpoint_url`` from its usual fields; a ``wasb``
connection the account (login), key (password), account URL (host, as the endpoint) and the extras above; a
``google_cloud_platform`` one ``key_path``, ``keyfile_dict`` and ``project`` (also with the ``extra__..__``
prefix). With those the store URL comes from the operator's ``store=`` or the connection's extra ``store``.
Anything not set falls back to the ``GITFREE_*`` variables and each service's own (the AWS credential chain,
``AZURE_STORAGE_*``, ``GOOGLE_APPLICATION_CREDENTIALS``). Secrets are handed to the store as ``SecretStr``,
masked in the task logs (each one the hook reads, the parts of a connection string too) and never logged.
"""

from __future__ import annotations

import json
from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from pydantic import SecretStr

from gitfree.versioning import AWS_NAMES, ConfigError, Store, StoreSettings

__all__ = ["GitfreeHook"]

_EXTRA_SETTINGS = ("store", "endpoint_url", "region", "session_token", "profile", "cache_dir", "jobs")
"""The gitfree settings a connection's extra may hold; it may also hold AWS's names (``AWS_NAMES``)."""


class GitfreeHook(BaseHook):
    """Builds the :class:`gitfree.Store` an Airflow connection describes.

    Args:
        gitfree_conn_id: the connection (conn type ``gitfree`` or ``aws``); ``None``: no connection,
            only ``store`` and the ``GITFREE_*`` variables.
        store: the store URL, overriding the connection's (needed with an ``aws`` connection).

    Example:
        ```python
        from gitfree.airflow import GitfreeHook

        store = GitfreeHook("gitfree_default").get_store()
        print(store.log("images", limit=1)[0].ref)
        ```
    """

    conn_name_attr = "gitfree_conn_id"
    default_conn_name = "gitfree_default"
    conn_type = "gitfree"
    hook_name = "gitfree"

    def __init__(self, gitfree_conn_id: str | None = default_conn_name, store: str | None = None) -> None:
        super().__init__()
        self.gitfree_conn_id = gitfree_conn_id
        self.store_url = store

    def store_options(self) -> dict[str, Any]:
        """The arguments of :class:`gitfree.Store` that the connection (and ``store``) give.

        Raises:
            ConfigError: the connection does not exist, or its extra has a key gitfree does not know.
        """
        options: dict[str, Any] = {}
        if self.gitfree_conn_id is not None:
            options = _connection_options(self._connection(self.gitfree_conn_id), self.store_url)
        if self.store_url:
            options["store"] = self.store_url
        return options

    def get_store(self) -> Store:
        """The :class:`gitfree.Store` of the connection.

        Raises:
            ConfigError: no such connection, an unusable one, or a store that cannot be reached.
            InputError: a setting of the connection is malformed (e.g. ``jobs`` not a number).
        """
        store = Store(settings=StoreSettings.from_aws(None, **self.store_options()))
        self.log.info("gitfree store %s (connection %s)", store.url, self.gitfree_conn_id or "none: GITFREE_*")
        return store

    def get_conn(self) -> Store:
        """The same as :meth:`get_store` (the name Airflow's hooks share)."""
        return self.get_store()

    @classmethod
    def _connection(cls, conn_id: str) -> Any:
        try:
            return cls.get_connection(conn_id)
        except AirflowNotFoundException:
            raise ConfigError(
                f"the Airflow connection {conn_id!r} does not exist: create it with conn type 'gitfree' (host: bucket, "
                "schema: prefix, login/password: S3 keys, extra: endpoint_url, region), e.g. "
                f"AIRFLOW_CONN_{conn_id.upper()}='gitfree://KEY:SECRET@bucket/prefix', or pass gitfree_conn_id=None "
                "to use the GITFREE_* variables"
            ) from None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """How Airflow's connection form shows a ``gitfree`` connection."""
        return {
            "hidden_fields": ["port"],
            "relabeling": {
                "host": "Bucket (or store URL)",
                "schema": "Prefix",
                "login": "Access key id (az://: account name)",
                "password": "Secret access key (az://: account key; gs://: service-account JSON)",
            },
            "placeholders": {
                "host": "ml-data  (or s3://ml-data/versions, az://container/versions, gs://bucket/versions)",
                "schema": "versions",
                "login": "empty: the AWS credential chain",
                "extra": '{"endpoint_url": "http://s3.internal:8333", "region": "us-east-1"}',
            },
        }


def _connection_options(conn: Any, store_url: str | None = None) -> dict[str, Any]:
    """Store arguments from a connection's fields (see the module docstring); ``store_url``: the operator's."""
    extra = {_unprefixed(name): value for name, value in conn.extra_dejson.items()}
    kind = conn.conn_type or "gitfree"
    if kind == "gitfree":
        unknown = sorted(set(extra) - {*_EXTRA_SETTINGS, *AWS_NAMES, *_CLOUD_EXTRAS})
        if unknown:
            raise ConfigError(
                f"the Airflow connection {conn.conn_id!r} has extra keys gitfree does not know: {', '.join(unknown)}; "
                f"use {', '.join([*_EXTRA_SETTINGS, *_CLOUD_EXTRAS])}"
            )
    aws = {name: extra.get(name) for name in AWS_NAMES} if kind in ("gitfree", "aws") else {}
    if kind == "aws":  # the Amazon provider's per-service endpoint
        aws["endpoint_url"] = aws["endpoint_url"] or extra.get("service_config", {}).get("s3", {}).get("endpoint_url")
    settings = {name: extra.get(name) for name in _EXTRA_SETTINGS}
    labels = {name: f"extra {name}" for name in (*_EXTRA_SETTINGS, *AWS_NAMES) if extra.get(name) is not None}
    labels |= {AWS_NAMES[name]: f"extra {name}" for name in AWS_NAMES if extra.get(name) is not None}
    if kind == "gitfree" and conn.host and not settings["store"]:
        host = conn.host.strip()
        prefix = f"/{conn.schema.strip('/')}" if conn.schema else ""
        settings["store"] = host.rstrip("/") + prefix if "://" in host else f"s3://{host.strip('/')}" + prefix
    if kind == "wasb" and conn.host and "://" in conn.host and not settings["endpoint_url"]:
        settings["endpoint_url"] = conn.host.strip().rstrip("/")  # the Azure provider's account URL
    store = store_url or settings["store"]
    # What login and password are follows the connection's own store; the store written to decides what fits.
    login_as, password_as = _login_password(kind, _scheme(settings["store"] or store_url))
    settings |= {login_as: conn.login, password_as: conn.password}
    labels |= {login_as: "login", password_as: "password"}
    for name, setting in _CLOUD_EXTRAS.items():
        value = extra.get(name)
        if value not in (None, "", {}) and settings.get(setting) in (None, ""):
            settings[setting] = json.dumps(value) if isinstance(value, dict) else value
            labels[setting] = f"extra {name}"
    fields = StoreSettings.fields_from_aws(aws, **settings)
    _mask(fields)
    _check_fit(conn.conn_id, fields, labels, store)
    return fields


_CLOUD_EXTRAS: dict[str, str] = {
    "connection_string": "azure_connection_string",
    "sas_token": "azure_sas_token",
    "shared_access_key": "azure_account_key",
    "keyfile_dict": "gcs_credentials",
    "key_path": "gcs_credentials",
    "project": "gcs_project",
}
"""Extras of ``az://`` and ``gs://`` stores, named as the Azure (``wasb``) and Google (``google_cloud_platform``)
providers name them, and the settings they give."""

_SECRETS = (
    "secret_access_key",
    "session_token",
    "azure_account_key",
    "azure_sas_token",
    "azure_connection_string",
    "gcs_credentials",
)


def _unprefixed(name: str) -> str:
    """An extra's name without the ``extra__<conn type>__`` prefix older connections (and forms) write."""
    return name.split("__", 2)[2] if name.startswith("extra__") and name.count("__") >= 2 else name


def _scheme(store: str | None) -> str:
    url = store or StoreSettings.merged(None).resolved_store()
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def _login_password(kind: str, scheme: str) -> tuple[str, str]:
    """The settings a connection's login and password give: the S3 keys; on an ``az://`` store (or a ``wasb``
    connection) the account name and key, as Azure's provider has them; on ``gs://`` the password is the
    service-account JSON key (and a login is refused)."""
    if kind == "wasb" or (kind == "gitfree" and scheme == "az"):
        return "azure_account_name", "azure_account_key"
    if kind == "google_cloud_platform" or (kind == "gitfree" and scheme == "gs"):
        return "access_key_id", "gcs_credentials"
    return "access_key_id", "secret_access_key"


def _mask(fields: dict[str, Any]) -> None:
    """Hide every secret of the connection from the task logs (Airflow hides the password, and extras by their
    names only), the parts of a connection string too."""
    from airflow.sdk.log import mask_secret

    for name in _SECRETS:
        value = fields.get(name)
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if isinstance(text, str) and text:
            mask_secret(text)
            if name == "azure_connection_string":
                for part in text.split(";"):
                    key, _, secret = part.partition("=")
                    if key.strip().lower() in ("accountkey", "sharedaccesssignature") and secret:
                        mask_secret(secret.strip())


def _check_fit(conn_id: str, fields: dict[str, Any], labels: dict[str, str], store: str | None) -> None:
    """``ConfigError`` naming what of the connection the store's service does not take (an Azure key for a
    ``gs://`` store): one line, never a value."""
    settings = StoreSettings.merged(None, store=store)
    foreign = settings.foreign_credentials(fields)
    if foreign:
        listed = ", ".join(f"{labels.get(name, name)} ({StoreSettings.stores_taking(name)})" for name in foreign)
        raise ConfigError(
            f"the Airflow connection {conn_id!r} sets credentials its store {settings.resolved_store()} does not use: "
            f"{listed}; remove {'them' if len(foreign) > 1 else 'it'}, or use a connection to the store it is for"
        )
