"""``GitfreeHook``: a :class:`gitfree.Store` from an Airflow connection (conn type ``gitfree``, or ``aws``).

A ``gitfree`` connection holds the store and how to reach it:

====================  ==========================================================================
field                 meaning
====================  ==========================================================================
host, schema          the bucket and the prefix: host ``ml-data``, schema ``versions`` is the store
                      ``s3://ml-data/versions`` (a host with a scheme, ``s3://ml-data/versions`` or
                      ``file:///srv/store``, is taken as the whole URL)
login, password       the S3 access key id and secret access key (none: the AWS credential chain)
extra                 ``store`` (a whole store URL, instead of host and schema), ``endpoint_url``,
                      ``region``, ``session_token``, ``profile``, ``cache_dir``, ``jobs``
====================  ==========================================================================

For example, as an environment variable (JSON or URI form)::

    AIRFLOW_CONN_GITFREE_DEFAULT='{"conn_type": "gitfree", "host": "ml-data", "schema": "versions",
        "login": "AKIA...", "password": "...", "extra": {"endpoint_url": "http://s3.internal:8333"}}'
    AIRFLOW_CONN_GITFREE_DEFAULT='gitfree://AKIA...:SECRET@ml-data/versions?endpoint_url=http%3A%2F%2Fs3.internal%3A8333'

An ``aws`` connection (the Amazon provider's, which need not be installed) gives the credentials,
``region_name`` and ``endpoint_url`` from its usual fields; the store URL then comes from the
operator's ``store=`` or the connection's extra ``store``. Anything not set falls back to the
``GITFREE_*`` variables and the AWS credential chain. Secrets are handed to the store as
``SecretStr`` and never logged.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

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
            options = _connection_options(self._connection(self.gitfree_conn_id))
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
                "login": "Access key id",
                "password": "Secret access key",
            },
            "placeholders": {
                "host": "ml-data  (or s3://ml-data/versions, file:///srv/store)",
                "schema": "versions",
                "login": "empty: the AWS credential chain",
                "extra": '{"endpoint_url": "http://s3.internal:8333", "region": "us-east-1"}',
            },
        }


def _connection_options(conn: Any) -> dict[str, Any]:
    """Store arguments from a connection's fields (see the module docstring)."""
    extra = conn.extra_dejson
    is_gitfree = (conn.conn_type or "gitfree") == "gitfree"
    if is_gitfree:
        unknown = sorted(set(extra) - {*_EXTRA_SETTINGS, *AWS_NAMES})
        if unknown:
            raise ConfigError(
                f"the Airflow connection {conn.conn_id!r} has extra keys gitfree does not know: {', '.join(unknown)}; "
                f"use {', '.join(_EXTRA_SETTINGS)}"
            )
    aws = {name: extra.get(name) for name in AWS_NAMES}
    if not is_gitfree:  # the Amazon provider's per-service endpoint
        aws["endpoint_url"] = aws["endpoint_url"] or extra.get("service_config", {}).get("s3", {}).get("endpoint_url")
    settings = {name: extra.get(name) for name in _EXTRA_SETTINGS}
    settings |= {"access_key_id": conn.login, "secret_access_key": conn.password}
    if is_gitfree and conn.host and not settings["store"]:
        host = conn.host.strip()
        prefix = f"/{conn.schema.strip('/')}" if conn.schema else ""
        settings["store"] = host.rstrip("/") + prefix if "://" in host else f"s3://{host.strip('/')}" + prefix
    return StoreSettings.fields_from_aws(aws, **settings)
