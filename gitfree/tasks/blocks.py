"""The ``GitfreeStore`` Prefect block: where a store is and how to reach it, saved on the Prefect server."""

from __future__ import annotations

from typing import Any

from prefect.blocks.core import Block
from pydantic import Field, SecretStr

from gitfree.versioning import Store

try:  # prefect-aws is optional: when installed, a store can reuse an AwsCredentials block
    from prefect_aws import AwsCredentials
except ImportError:  # pragma: no cover - depends on the environment
    AwsCredentials = None  # type: ignore[misc,assignment,unused-ignore]

__all__ = ["GitfreeStore"]


class GitfreeStore(Block):
    """A gitfree store: an S3 prefix (or a local directory) holding versioned datasets.

    Example:
        ```python
        from gitfree.tasks import GitfreeStore

        GitfreeStore(
            url="s3://ml-data/versions",
            endpoint_url="http://seaweedfs:8333",
            access_key_id="worker",
            secret_access_key="...",
        ).save("ml-data")

        store = GitfreeStore.load("ml-data").get_store()
        ```
    """

    _block_type_name = "gitfree Store"
    _block_type_slug = "gitfree-store"
    _description = "Versioned datasets on S3 with DVC's data format and no git."
    _documentation_url = "https://github.com/gitfree/gitfree#readme"  # type: ignore[assignment]

    url: str | None = Field(
        default=None, description="s3://bucket/prefix or file:///path; empty: GITFREE_STORE or a local default."
    )
    endpoint_url: str | None = Field(default=None, description="S3 endpoint of a non-AWS server (SeaweedFS, MinIO).")
    access_key_id: str | None = Field(default=None, description="Access key id; empty: the AWS credential chain.")
    secret_access_key: SecretStr | None = Field(default=None, description="Secret access key.")
    session_token: SecretStr | None = Field(default=None, description="Session token for temporary credentials.")
    region: str | None = Field(default=None, description="AWS region.")
    profile: str | None = Field(default=None, description="AWS profile name.")
    cache_dir: str | None = Field(
        default=None, description="Worker cache directory; empty: GITFREE_CACHE_DIR or the user's cache dir."
    )
    if AwsCredentials is not None:
        aws_credentials: AwsCredentials | None = Field(
            default=None, description="Take the credentials from a prefect-aws AwsCredentials block."
        )

    def get_store(self) -> Store:
        """The :class:`gitfree.Store` this block describes."""
        options: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "access_key_id": self.access_key_id,
            "secret_access_key": self.secret_access_key,
            "session_token": self.session_token,
            "region": self.region,
            "profile": self.profile,
            "cache_dir": self.cache_dir,
        }
        aws = getattr(self, "aws_credentials", None)
        if aws is not None:
            options["access_key_id"] = options["access_key_id"] or aws.aws_access_key_id
            options["secret_access_key"] = options["secret_access_key"] or aws.aws_secret_access_key
            options["session_token"] = options["session_token"] or aws.aws_session_token
            options["region"] = options["region"] or aws.region_name
            options["profile"] = options["profile"] or aws.profile_name
            endpoint = getattr(getattr(aws, "aws_client_parameters", None), "endpoint_url", None)
            options["endpoint_url"] = options["endpoint_url"] or endpoint
        return Store(self.url, **{k: v for k, v in options.items() if v is not None})
