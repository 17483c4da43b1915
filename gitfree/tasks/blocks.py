"""The ``GitfreeStore`` Prefect block: where a store is and how to reach it, saved on the Prefect server."""

from __future__ import annotations

from typing import Annotated, Any

from prefect.blocks.core import Block
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidatorFunctionWrapHandler, WrapValidator

from gitfree.versioning import AWS_NAMES, Store, StoreSettings

__all__ = ["AwsCredentialsValues", "GitfreeStore"]


class AwsClientParametersValues(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    endpoint_url: str | None = None


class AwsCredentialsValues(BaseModel):
    """What a ``GitfreeStore`` reads of a prefect-aws ``AwsCredentials`` block (the same field names).

    The block's schema names this model, not prefect-aws's class, so that it is one schema whether or
    not prefect-aws is installed: a block saved on one machine loads on another with the same fields.
    An ``AwsCredentials`` block itself is kept as it is (saved, it is stored as a reference to that
    block); read back where prefect-aws is installed, it is an ``AwsCredentials`` again, elsewhere
    these values (its secrets as ``SecretStr``).
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    aws_access_key_id: str | None = None
    aws_secret_access_key: SecretStr | None = None
    aws_session_token: SecretStr | None = None
    profile_name: str | None = None
    region_name: str | None = None
    aws_client_parameters: AwsClientParametersValues | None = None


def _aws_credentials(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    if isinstance(value, Block):
        if value.get_block_type_slug() != "aws-credentials":
            raise ValueError(f"aws_credentials takes a prefect-aws AwsCredentials block, not {type(value).__name__}")
        return value  # kept as it is: saved, a reference to that block
    if isinstance(value, dict):
        try:
            from prefect_aws import AwsCredentials
        except ImportError:
            pass
        else:
            return AwsCredentials.model_validate(value)
    return handler(value)


AwsCredentialsField = Annotated[AwsCredentialsValues | None, WrapValidator(_aws_credentials)]


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
    aws_credentials: AwsCredentialsField = Field(
        default=None,
        description="Take the credentials from a prefect-aws AwsCredentials block (the fields above win).",
    )

    def store_settings(self) -> StoreSettings:
        """The :class:`gitfree.versioning.StoreSettings` this block describes (then ``GITFREE_*``)."""
        aws = self.aws_credentials
        names: dict[str, Any] = {}
        if aws is not None:
            names = {name: getattr(aws, name, None) for name in AWS_NAMES}
            names["endpoint_url"] = getattr(aws.aws_client_parameters, "endpoint_url", None)
        return StoreSettings.from_aws(
            names,
            store=self.url,
            endpoint_url=self.endpoint_url,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            session_token=self.session_token,
            region=self.region,
            profile=self.profile,
            cache_dir=self.cache_dir,
        )

    def get_store(self) -> Store:
        """The :class:`gitfree.Store` this block describes."""
        return Store(settings=self.store_settings())
