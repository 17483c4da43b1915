"""The ``GitfreeStore`` Prefect block: where a store is and how to reach it, saved on the Prefect server."""

from __future__ import annotations

from typing import Annotated, Any

from prefect.blocks.core import Block
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    model_validator,
)

from gitfree.versioning import AWS_NAMES, ConfigError, SourceOptions, Store, StoreSettings

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
    """A gitfree store: an S3, Azure Blob or GCS prefix (or a local directory) holding versioned datasets.

    The store URL decides which credentials apply: ``access_key_id``... (or ``aws_credentials``) to ``s3://``,
    ``azure_*`` to ``az://``, ``gcs_*`` to ``gs://``; one of another service is refused (``ConfigError``).
    ``endpoint_url`` is each service's: an S3 server, Azure's blob endpoint (Azurite), a GCS emulator.

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
        default=None,
        description="s3://bucket/prefix, az://container/prefix, gs://bucket/prefix or file:///path; empty: "
        "GITFREE_STORE or a local default.",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint of a non-AWS server (SeaweedFS, MinIO); az://: the blob endpoint; gs://: an emulator.",
    )
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
    azure_account_name: str | None = Field(
        default=None, description="az:// stores: the storage account; empty: AZURE_STORAGE_ACCOUNT_NAME."
    )
    azure_account_key: SecretStr | None = Field(default=None, description="az:// stores: the account's shared key.")
    azure_sas_token: SecretStr | None = Field(default=None, description="az:// stores: a SAS token instead of the key.")
    azure_connection_string: SecretStr | None = Field(
        default=None, description="az:// stores: a connection string (AccountName=...;AccountKey=...;BlobEndpoint=...)."
    )
    gcs_credentials: SecretStr | None = Field(
        default=None,
        description="gs:// stores: a service-account JSON key, or its file's path; empty: "
        "GOOGLE_APPLICATION_CREDENTIALS, else only an emulator (endpoint_url, STORAGE_EMULATOR_HOST), anonymously.",
    )
    gcs_project: str | None = Field(default=None, description="gs:// stores: the Google Cloud project.")
    source_endpoint_url: str | None = Field(
        default=None,
        description="Versions by reference: the S3 endpoint of s3:// sources on another server; empty: the store's "
        "(or GITFREE_SOURCE_ENDPOINT_URL).",
    )
    source_access_key_id: str | None = Field(
        default=None, description="Versions by reference: the access key id that reads the sources."
    )
    source_secret_access_key: SecretStr | None = Field(
        default=None, description="Versions by reference: the secret access key that reads the sources."
    )
    source_session_token: SecretStr | None = Field(
        default=None, description="Versions by reference: a session token for the sources' temporary credentials."
    )
    source_region: str | None = Field(default=None, description="Versions by reference: the sources' AWS region.")
    source_profile: str | None = Field(default=None, description="Versions by reference: the sources' AWS profile.")

    @model_validator(mode="after")
    def _credentials_fit_the_url(self) -> GitfreeStore:
        if self.url:  # without one, the store (GITFREE_STORE) is known only when it is opened: store_settings()
            _check_fit(self, StoreSettings(store=self.url))
        return self

    def store_settings(self) -> StoreSettings:
        """The :class:`gitfree.versioning.StoreSettings` this block describes (then ``GITFREE_*``)."""
        aws = self.aws_credentials
        names: dict[str, Any] = {}
        if aws is not None:
            names = {name: getattr(aws, name, None) for name in AWS_NAMES}
            names["endpoint_url"] = getattr(aws.aws_client_parameters, "endpoint_url", None)
        settings = StoreSettings.from_aws(
            names,
            store=self.url,
            endpoint_url=self.endpoint_url,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
            session_token=self.session_token,
            region=self.region,
            profile=self.profile,
            cache_dir=self.cache_dir,
            **{name: getattr(self, name) for name in _CLOUD_FIELDS},
        )
        _check_fit(self, settings)
        return settings

    def source_options(self) -> SourceOptions | None:
        """The :class:`gitfree.versioning.SourceOptions` of the ``source_*`` fields (how the ``s3://`` sources of
        versions by reference are reached when they are not on the store's endpoint or credentials), ``None``
        when none is set (then ``GITFREE_SOURCE_*``)."""
        given = {name: getattr(self, f"source_{name}") for name in SourceOptions.model_fields}
        if all(value in (None, "") for value in given.values()):
            return None
        return SourceOptions(**given)

    def get_store(self) -> Store:
        """The :class:`gitfree.Store` this block describes (its ``source_*`` fields: the source options with which
        its commits by reference and reads of them reach their sources)."""
        return Store(settings=self.store_settings(), source_options=self.source_options())


_CLOUD_FIELDS = (
    "azure_account_name",
    "azure_account_key",
    "azure_sas_token",
    "azure_connection_string",
    "gcs_credentials",
    "gcs_project",
)
_CREDENTIAL_FIELDS = ("access_key_id", "secret_access_key", "session_token", "region", "profile", *_CLOUD_FIELDS)


def _check_fit(block: GitfreeStore, settings: StoreSettings) -> None:
    """``ConfigError`` naming a credential of the block that the store's service does not take (an Azure key on
    a ``gs://`` store): one line, never the value."""
    given = [(name, name) for name in _CREDENTIAL_FIELDS if getattr(block, name) not in (None, "")]
    if block.aws_credentials is not None:
        given.append(("aws_credentials", "access_key_id"))
    foreign = set(settings.foreign_credentials(setting for _, setting in given))
    named = [field for field, setting in given if setting in foreign]
    if named:
        listed = ", ".join(f"{field} ({StoreSettings.stores_taking(field)})" for field in named)
        raise ConfigError(
            f"the GitfreeStore block sets credentials its store {settings.resolved_store()} does not use: {listed}; "
            f"remove {'them' if len(named) > 1 else 'it'}, or point url at the store it is for"
        )
