"""Manifest backends: the small key/value store of version records, with conditional writes.

Two backends keep the same promises:

- :class:`S3Backend` uses S3's ``If-None-Match: *`` (create-only) and ``If-Match``
  (compare-and-swap), and translates every botocore error into a gitfree error here,
  once, so nothing above this module sees botocore.
- :class:`FileBackend` gets the same guarantees from ``link(2)`` (atomic create-only)
  and ``rename(2)`` under an ``flock`` on the key's directory.

The outcomes of a conditional write are reported with the private exceptions
below; :class:`~gitfree.versioning.store.Store` turns them into protocol steps.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import functools
import hashlib
import io
import json
import os
import re
import time
import types
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from .config import StoreSettings, endpoint_id
from .errors import ConfigError, GitfreeError, InputError, IntegrityError
from .layout import is_staged_object, probe_key
from .localfs import owner_stamp, sweep_leftovers

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from obstore.store import ObjectStore, RetryConfig

__all__ = ["AzureBackend", "Backend", "FileBackend", "GCSBackend", "Head", "ObjectInfo", "S3Backend", "open_backend"]

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ObjectInfo:
    """A key found by :meth:`Backend.scan`."""

    key: str
    size: int
    modified: datetime
    etag: str | None
    """The server's ETag without quotes (S3: the md5 of the content unless uploaded in parts)."""


@dataclass(frozen=True)
class Head:
    """What a HEAD (or a GET) of one S3 object says of it: its size, ETag (no quotes), VersionId (``None`` when
    the bucket gives none, or ``"null"``) and whether the server encrypted it with KMS or a customer key."""

    size: int
    etag: str
    version_id: str | None
    encrypted: bool

    @classmethod
    def of(cls, response: Any) -> Head:
        sse = str(response.get("ServerSideEncryption") or "")
        version = response.get("VersionId")
        return cls(
            size=int(response.get("ContentLength", 0)),
            etag=str(response.get("ETag", "")).strip('"'),
            version_id=None if version in (None, "", "null") else str(version),
            encrypted=sse.startswith("aws:kms") or bool(response.get("SSECustomerAlgorithm")),
        )


class KeyExists(Exception):
    """A create-only write found the key already there."""


class KeyMissing(Exception):
    """The key does not exist."""


class PreconditionFailed(Exception):
    """A compare-and-swap found another version of the key (or none)."""


class OutcomeUnknown(GitfreeError):
    """The write may or may not have happened (timeout, 5xx, lost response): re-read before acting.

    Where nothing can be re-read, it reaches the caller as a failed request worth retrying."""

    def __init__(self, key: str) -> None:
        super().__init__(
            f"the store's answer to writing {key} was lost (a timeout or a server error), so whether it was "
            "written is unknown; nothing relies on it: retry"
        )
        self.key = key


class Backend(ABC):
    """A store's key space. Keys are ``/``-separated, relative to the store root."""

    url: str
    """The store URL, without credentials."""

    @abstractmethod
    def get(self, key: str) -> tuple[bytes, str]:
        """Return ``(content, etag)``; raise :class:`KeyMissing`."""

    @abstractmethod
    def get_range(self, key: str, start: int, end: int) -> bytes:
        """The bytes ``[start, end)`` of ``key``, cut at its end: ``b""`` when ``start`` is at or past the end,
        and without a request when ``end <= start``. Raise :class:`KeyMissing`; ``start`` is not negative."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> str:
        """Write ``key`` only if it does not exist; return its etag; raise :class:`KeyExists`."""

    @abstractmethod
    def replace(self, key: str, data: bytes, etag: str) -> str:
        """Overwrite ``key`` only if its etag is still ``etag``; raise :class:`PreconditionFailed`."""

    @abstractmethod
    def put(self, key: str, data: bytes) -> None:
        """Write ``key`` unconditionally (only for keys a single writer owns, such as its lease)."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``; a missing key is not an error."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def size(self, key: str) -> int:
        """Size in bytes; raise :class:`KeyMissing`."""

    @abstractmethod
    def scan(self, prefix: str) -> Iterator[ObjectInfo]:
        """Every key under ``prefix`` (recursively) with its size, time and etag, in no particular order."""

    def list(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix`` (recursively), in no particular order."""
        return (info.key for info in self.scan(prefix))

    def delete_many(self, keys: Iterable[str]) -> None:
        """Delete every key (missing keys are not an error)."""
        for key in keys:
            self.delete(key)

    def listed_md5s(self, prefix: str) -> dict[str, str]:
        """The md5 of each key under ``prefix`` whose content md5 the service's listing gives and its ETag is not
        (Azure's Content-MD5): what a quick fsck compares, beside the ETags of :meth:`scan`. Default: none."""
        return {}

    def names_an_object(self) -> bool:
        """Whether the store's URL (its prefix, without a ``/`` after it) is the key of an object: a file's URL
        given where a folder's is meant. False where that cannot be told (or for a folder store)."""
        return False

    def sweep_temporaries(self) -> int:
        """Delete the temporary files killed writers left in the store (a folder store's; no other kind
        has any: an S3-style PUT is whole or absent). Returns how many; GC calls it."""
        return 0

    def remove_empty_folders(self, prefix: str) -> None:  # noqa: B027 - a no-op where keys make no folders
        """Remove the folders under ``prefix`` that deletions left empty (S3 has no folders: nothing to do)."""

    @abstractmethod
    def md5(self, key: str) -> tuple[str, int]:
        """Stream ``key`` and return the md5 of its content and its size; raise :class:`KeyMissing`."""

    @abstractmethod
    def object_store(self, *, timeout: float | None = None) -> ObjectStore:
        """An obstore store rooted at the store's root, for bulk object transfer (and batched record reads:
        those pass ``timeout``, the read timeout, instead of the transfer timeout)."""

    def object_uploader(self) -> Callable[[str, Path], None] | None:
        """A function uploading one object file to a key, for a service obstore cannot write to; ``None``
        (the default): the bulk transfer PUTs objects with obstore."""
        return None

    create_condition = "'If-None-Match: *'"
    """How the service is asked for a create-only write (named in the probe's refusal)."""
    swap_condition = "'If-Match'"
    """How the service is asked for a compare-and-swap (named in the probe's refusal)."""
    conditional_service = "an S3 server with conditional writes (AWS S3, SeaweedFS 4.18+, MinIO 2024+)"
    """What to use instead, in the probe's refusal."""

    def probe_conditional_writes(self) -> None:
        """Prove that a second create of a key fails and a stale swap fails; else :class:`ConfigError`."""
        key = probe_key(uuid.uuid4().hex)
        etag = self.create(key, b"1")
        try:
            try:
                self.create(key, b"2")
            except KeyExists:
                pass
            else:
                raise ConfigError(
                    f"the server behind {self.url} ignores {self.create_condition} (a second create of the "
                    "same key succeeded), so concurrent commits could overwrite each other; gitfree "
                    f"refuses to write to it. Use {self.conditional_service}."
                )
            try:
                self.replace(key, b"3", '"0"' if etag.startswith('"') else "0")
            except PreconditionFailed:
                pass
            else:
                raise ConfigError(
                    f"the server behind {self.url} ignores {self.swap_condition} (a swap with a stale ETag "
                    "succeeded), so tags and the latest pointer could be lost; gitfree refuses to "
                    f"write to it. Use {self.conditional_service}."
                )
        finally:
            self.delete(key)


# --------------------------------------------------------------------------- file


class FileBackend(Backend):
    """A store in a local (or mounted) directory."""

    _TMP = ".gitfree-tmp-"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.url = root.as_uri()

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if any(part in ("", ".", "..") for part in parts[:-1]) or parts[-1] in (".", ".."):
            # Keys are built by layout from checked names; one that would leave the store is refused.
            raise IntegrityError(f"the key {key!r} is not a path inside the store {self.url}")
        return self.root.joinpath(*parts)

    def _write_tmp(self, path: Path, data: bytes) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.parent / f"{self._TMP}{uuid.uuid4().hex[:8]}{owner_stamp()}"  # the writer is named in it
        with open(tmp, "xb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return tmp

    @contextlib.contextmanager
    def _locked_dir(self, path: Path) -> Iterator[None]:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    @staticmethod
    def _etag(data: bytes) -> str:
        return hashlib.md5(data, usedforsecurity=False).hexdigest()

    def get(self, key: str) -> tuple[bytes, str]:
        try:
            data = self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            raise KeyMissing(key) from None
        except IsADirectoryError:
            raise IntegrityError(
                f"{self._path(key)} is a directory where the store keeps a record; move it away (run `gitfree fsck`)"
            ) from None
        return data, self._etag(data)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        _check_range(start, end)
        if end <= start:
            return b""
        try:
            with open(self._path(key), "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if start >= size:
                    return b""
                f.seek(start)
                return f.read(min(end, size) - start)  # never more than the file holds: read(n) allocates n
        except (FileNotFoundError, NotADirectoryError):
            raise KeyMissing(key) from None
        except IsADirectoryError:
            raise IntegrityError(
                f"{self._path(key)} is a directory where the store keeps a file; move it away (run `gitfree fsck`)"
            ) from None

    def create(self, key: str, data: bytes) -> str:
        path = self._path(key)
        tmp = self._write_tmp(path, data)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise KeyExists(key) from None
        finally:
            tmp.unlink()
        return self._etag(data)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        path = self._path(key)
        with self._locked_dir(path):
            try:
                _, current = self.get(key)
            except KeyMissing:
                raise PreconditionFailed(key) from None
            if current != etag:
                raise PreconditionFailed(key)
            os.replace(self._write_tmp(path, data), path)
        return self._etag(data)

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        os.replace(self._write_tmp(path, data), path)

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(key).unlink()

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise KeyMissing(key) from None

    def scan(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        for dirpath, _, filenames in os.walk(base):
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for filename in filenames:
                if filename.startswith(self._TMP):
                    continue
                try:
                    st = os.stat(os.path.join(dirpath, filename))
                except FileNotFoundError:
                    continue
                key = filename if rel == "." else f"{rel}/{filename}"
                yield ObjectInfo(key, st.st_size, datetime.fromtimestamp(st.st_mtime, UTC), None)

    def sweep_temporaries(self) -> int:
        # Ours name their writer (removed once it is gone from this host); obstore's do not, and go
        # only when no one has written to them for a day, as do ours of a writer on another host.
        ours, staged = [], []
        for dirpath, _, filenames in os.walk(self.root):
            for filename in filenames:
                if filename.startswith(self._TMP):
                    ours.append(Path(dirpath, filename))
                elif is_staged_object(filename):
                    staged.append(Path(dirpath, filename))
        return len(sweep_leftovers(ours)) + len(sweep_leftovers(staged, only_idle=True))

    def remove_empty_folders(self, prefix: str) -> None:
        # Bottom up; a folder that is not empty (or was just made again by a writer) is left alone.
        base = self._path(prefix.rstrip("/"))
        for dirpath, _, _ in os.walk(base, topdown=False):
            if Path(dirpath) != base:
                with contextlib.suppress(OSError):
                    os.rmdir(dirpath)

    def md5(self, key: str) -> tuple[str, int]:
        digest, size = hashlib.md5(usedforsecurity=False), 0
        try:
            with open(self._path(key), "rb") as f:
                while chunk := f.read(_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
        except (FileNotFoundError, NotADirectoryError):
            raise KeyMissing(key) from None
        return digest.hexdigest(), size

    def object_store(self, *, timeout: float | None = None) -> ObjectStore:
        from obstore.store import LocalStore

        self.root.mkdir(parents=True, exist_ok=True)
        return LocalStore(self.root)

    def probe_conditional_writes(self) -> None:
        # link(2) and rename(2) under flock give these guarantees on a local file system;
        # just make sure the directory is writable, with an error that says so.
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self._write_tmp(self.root / "probe", b"")
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"cannot write to the store directory {self.root}: {exc.strerror}") from None


# --------------------------------------------------------------------------- s3

_DENIED = {
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "InvalidToken",
    "ExpiredToken",
    "InvalidClientTokenId",
    "403",
}


class S3Backend(Backend):
    """A store under ``s3://bucket/prefix`` on AWS or any S3 server with conditional writes."""

    def __init__(self, bucket: str, prefix: str, settings: StoreSettings) -> None:
        import boto3
        import botocore.config
        import botocore.exceptions

        if not bucket:
            raise InputError("an S3 store URL needs a bucket: write it as s3://BUCKET/PREFIX")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.endpoint = settings.resolved_endpoint()  # ConfigError unless http(s)://HOST[:PORT]
        self._settings = settings
        self._secret = settings.secret_access_key.get_secret_value() if settings.secret_access_key else None
        self._token = settings.session_token.get_secret_value() if settings.session_token else None
        if bool(settings.access_key_id) != bool(self._secret):
            raise ConfigError(
                "give both an access key id and a secret access key (GITFREE_ACCESS_KEY_ID and "
                "GITFREE_SECRET_ACCESS_KEY), or neither to use the AWS credential chain"
            )
        try:
            session = boto3.session.Session(
                aws_access_key_id=settings.access_key_id,
                aws_secret_access_key=self._secret,
                aws_session_token=self._token,
                region_name=settings.region or ("us-east-1" if self.endpoint else None),
                profile_name=settings.profile,
            )
        except botocore.exceptions.ProfileNotFound:
            raise ConfigError(
                f"AWS profile {settings.profile!r} is not configured: add it to ~/.aws/config or fix GITFREE_PROFILE"
            ) from None
        # Manifest requests are small: a short read timeout, retried, finds a dead or silent endpoint
        # in seconds (AWS's advice for small S3 requests), instead of minutes.
        config = botocore.config.Config(
            retries={"total_max_attempts": settings.retries + 1, "mode": "standard"},
            max_pool_connections=64,
            connect_timeout=settings.connect_timeout,
            read_timeout=settings.read_timeout,
            s3={"addressing_style": "path"} if self.endpoint else None,
        )
        try:
            self._client: S3Client = session.client("s3", endpoint_url=self.endpoint, config=config)
        except (ValueError, botocore.exceptions.BotoCoreError) as exc:
            raise ConfigError(
                f"cannot set up an S3 client for {self.endpoint or 'AWS S3'} (region {session.region_name!r}): "
                f"{_first_line(exc)}; check GITFREE_ENDPOINT_URL and GITFREE_REGION"
            ) from None
        self._session = session
        self._region = session.region_name

    def __repr__(self) -> str:
        return f"S3Backend({self.url!r}, endpoint={self.endpoint!r})"

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    @contextlib.contextmanager
    def _translate(self, key: str, *, write: bool = False) -> Iterator[None]:
        """Turn botocore's errors into ours; the one place that knows them."""
        import botocore.exceptions as bex

        where = f"s3://{self.bucket}/{self._key(key)}"
        server = self.endpoint or "AWS S3"
        try:
            yield
        except bex.ClientError as exc:
            raise self._answered(exc, key, write=write, where=where, server=server) from None
        except bex.NoCredentialsError:
            raise ConfigError(
                "no S3 credentials found: set GITFREE_ACCESS_KEY_ID and GITFREE_SECRET_ACCESS_KEY, "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an AWS profile"
            ) from None
        except (bex.PartialCredentialsError, bex.CredentialRetrievalError) as exc:
            raise ConfigError(
                f"the S3 credentials could not be loaded ({_first_line(exc)}): fix GITFREE_ACCESS_KEY_ID / "
                "GITFREE_SECRET_ACCESS_KEY, the AWS profile or the role"
            ) from None
        except bex.ConnectionError as exc:  # refused, connect timeout, DNS, TLS, proxy
            attempts = self._settings.retries + 1
            raise ConfigError(
                f"cannot reach the S3 endpoint {server} ({type(exc).__name__}, {attempts} attempt(s)): is it "
                "running and is the URL right? (GITFREE_ENDPOINT_URL; GITFREE_CONNECT_TIMEOUT is "
                f"{self._settings.connect_timeout:g} s)"
            ) from None
        except bex.ReadTimeoutError:
            if write:
                raise OutcomeUnknown(key) from None
            raise ConfigError(
                f"the S3 endpoint {server} accepted a connection but did not answer within "
                f"{self._settings.read_timeout:g} s ({self._settings.retries + 1} attempt(s)) while reading {where}: "
                "is the endpoint URL an S3 server, and is it healthy? (GITFREE_READ_TIMEOUT raises the limit)"
            ) from None
        except (bex.ConnectionClosedError, bex.ResponseStreamingError, bex.IncompleteReadError) as exc:
            if write:
                raise OutcomeUnknown(key) from None
            raise GitfreeError(
                f"the connection to {server} failed while reading {where}: {type(exc).__name__}; retry"
            ) from None
        except (bex.EndpointProviderError, bex.BaseEndpointResolverError, bex.InvalidEndpointConfigurationError) as exc:
            raise ConfigError(
                f"no usable S3 endpoint for {where} ({_first_line(exc)}): check GITFREE_ENDPOINT_URL and GITFREE_REGION"
            ) from None
        except bex.ParamValidationError as exc:
            raise InputError(f"the S3 client refused the request for {where}: {_first_line(exc)}") from None
        except bex.BotoCoreError as exc:
            raise GitfreeError(f"the S3 request for {where} failed: {_first_line(exc)}; retry") from None

    def _answered(self, exc: Any, key: str, *, write: bool, where: str, server: str) -> Exception:
        """What a botocore ``ClientError`` (the server answered with an error) means for us."""
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code == "PreconditionFailed" or status == 412:
            return PreconditionFailed(key)
        if code in ("NoSuchKey", "404") or (status == 404 and code != "NoSuchBucket"):
            return KeyMissing(key)
        if code == "NoSuchBucket":
            return ConfigError(
                f"the bucket {self.bucket!r} does not exist on {server}: create it, or fix the store URL"
            )
        if code in _DENIED or status == 403:
            return ConfigError(
                f"{server} denied access to {where} ({code or status}): check the credentials "
                "(GITFREE_ACCESS_KEY_ID / GITFREE_SECRET_ACCESS_KEY, an AWS profile or role) "
                "and the bucket policy"
            )
        if write and (status == 409 or status >= 500):
            return OutcomeUnknown(key)
        return GitfreeError(f"{server} answered {code or status} for {where}: {error.get('Message', '')}")

    def get(self, key: str) -> tuple[bytes, str]:
        with self._translate(key):
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key))
            return response["Body"].read(), response["ETag"]

    def get_range(self, key: str, start: int, end: int) -> bytes:
        import botocore.exceptions as bex

        _check_range(start, end)
        if end <= start:
            return b""  # no request: "bytes=5-4" is no range, and a server would answer with the whole object
        with self._translate(key):
            try:
                response = self._client.get_object(
                    Bucket=self.bucket, Key=self._key(key), Range=f"bytes={start}-{end - 1}"
                )
            except bex.ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 416:
                    return b""  # the range starts at or past the end (or the object is empty)
                raise
            body = response["Body"]
            try:
                whole = response["ResponseMetadata"].get("HTTPStatusCode") == 200 and not response.get("ContentRange")
                if whole and start > 0:
                    raise GitfreeError(
                        f"{self.endpoint or 'AWS S3'} ignored the Range of a read of {self._key(key)} (it sent the "
                        "whole object): use an S3 server that serves byte ranges"
                    )
                return body.read(end - start)  # a server that sent more than asked is not read further
            finally:
                body.close()

    def create(self, key: str, data: bytes) -> str:
        try:
            with self._translate(key, write=True):
                return self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*")[
                    "ETag"
                ]
        except PreconditionFailed:
            raise KeyExists(key) from None

    def replace(self, key: str, data: bytes, etag: str) -> str:
        try:
            with self._translate(key, write=True):
                return self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data, IfMatch=etag)["ETag"]
        except KeyMissing:
            raise PreconditionFailed(key) from None

    def put(self, key: str, data: bytes) -> None:
        with self._translate(key, write=True):
            self._client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def delete(self, key: str) -> None:
        with contextlib.suppress(KeyMissing), self._translate(key, write=True):
            self._client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except KeyMissing:
            return False
        return True

    def size(self, key: str) -> int:
        with self._translate(key):
            return self._client.head_object(Bucket=self.bucket, Key=self._key(key))["ContentLength"]

    def scan(self, prefix: str) -> Iterator[ObjectInfo]:
        full = self._key(prefix)
        strip = len(self.prefix) + 1 if self.prefix else 0
        with self._translate(prefix):
            for page in self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full):
                for obj in page.get("Contents", []):
                    yield ObjectInfo(
                        obj["Key"][strip:],
                        obj.get("Size", 0),
                        obj["LastModified"],
                        obj.get("ETag", "").strip('"') or None,
                    )

    def names_an_object(self) -> bool:
        if not self.prefix:
            return False
        try:
            with self._translate(self.prefix):
                self._client.head_object(Bucket=self.bucket, Key=self.prefix)
        except (KeyMissing, GitfreeError):
            return False
        return True

    def head(self, key: str, version_id: str | None = None) -> Head:
        """One HEAD of ``key`` (of its version ``version_id`` when given); :class:`KeyMissing` if there is none."""
        pin: dict[str, Any] = {"VersionId": version_id} if version_id else {}
        with self._translate(key):
            return Head.of(self._client.head_object(Bucket=self.bucket, Key=self._key(key), **pin))

    def read_pinned(
        self, key: str, *, version_id: str | None, etag: str, start: int | None = None, end: int | None = None
    ) -> tuple[Head, Iterator[bytes]]:
        """A GET of ``key`` pinned to ``version_id`` (else to ``etag`` with ``If-Match``), optionally of the range
        ``[start, end)``: what the server says of the object, and its bytes as they stream.
        :class:`KeyMissing` (no such key or version), :class:`PreconditionFailed` (the ETag is no longer it)."""
        pin: dict[str, Any] = {"VersionId": version_id} if version_id else {"IfMatch": f'"{etag}"'}
        if start is not None and end is not None:
            pin["Range"] = f"bytes={start}-{end - 1}"
        with self._translate(key):
            response = self._client.get_object(Bucket=self.bucket, Key=self._key(key), **pin)

        def chunks() -> Iterator[bytes]:
            with self._translate(key):
                yield from response["Body"].iter_chunks(_CHUNK)

        return Head.of(response), chunks()

    def shares_access(self, other: S3Backend) -> bool:
        """Whether ``other`` is on the same S3 service as this backend (the same endpoint, by
        :func:`.config.endpoint_id`) and reached with the same credentials (the keys and token both sessions
        resolve to), so that a ``CopyObject`` signed by this backend reads ``other``'s keys as ``other`` would."""
        if endpoint_id(self.endpoint) != endpoint_id(other.endpoint):
            return False
        mine, theirs = self._session.get_credentials(), other._session.get_credentials()
        if mine is None or theirs is None:
            return False
        a, b = mine.get_frozen_credentials(), theirs.get_frozen_credentials()
        return (a.access_key, a.secret_key, a.token) == (b.access_key, b.secret_key, b.token)

    def copy_from(self, source: S3Backend, key: str, dest: str, *, version_id: str | None, etag: str) -> str:
        """A server-side ``CopyObject`` of ``source``'s ``key`` to ``dest`` here, no byte downloaded, pinned to
        ``version_id`` (``CopySourceVersionId``) or else to ``etag`` (``CopySourceIfMatch``); the new object's ETag
        (no quotes). :class:`KeyMissing` (no such key or version), :class:`PreconditionFailed` (the ETag is not
        ``etag``); a denied copy is a ``ConfigError`` naming both places."""
        copy_source: dict[str, str] = {"Bucket": source.bucket, "Key": source._key(key)}
        pin: dict[str, str] = {}
        if version_id:
            copy_source["VersionId"] = version_id
        else:
            pin["CopySourceIfMatch"] = f'"{etag}"'
        import botocore.exceptions as bex

        try:
            with self._translate(dest, write=True):
                try:
                    response = self._client.copy_object(
                        Bucket=self.bucket,
                        Key=self._key(dest),
                        CopySource=copy_source,  # type: ignore[arg-type]
                        **pin,  # type: ignore[arg-type]
                    )
                except bex.ClientError as exc:
                    # The store's bucket answered the HEADs just before: the source's is gone, and with it the key
                    # (SeaweedFS names the destination's bucket in this error).
                    if exc.response.get("Error", {}).get("Code") == "NoSuchBucket":
                        raise KeyMissing(key) from None
                    raise
        except ConfigError as exc:
            raise ConfigError(
                f"cannot copy s3://{source.bucket}/{source._key(key)} to {self.url}/{dest} on the server: {exc}"
            ) from None
        return str(response.get("CopyObjectResult", {}).get("ETag", "")).strip('"')

    def delete_if(self, key: str, etag: str) -> None:
        """Delete ``key`` if its ETag is still ``etag`` (a HEAD, then the delete): what a failed copy put there, not
        what another writer put there since."""
        with contextlib.suppress(KeyMissing):
            if self.head(key).etag == etag:
                self.delete(key)

    def delete_many(self, keys: Iterable[str]) -> None:
        batch: list[str] = []
        for key in [*keys, None]:
            if key is not None:
                batch.append(key)
            if batch and (key is None or len(batch) == 1000):
                with self._translate(batch[0], write=True):
                    response = self._client.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": [{"Key": self._key(k)} for k in batch], "Quiet": True}
                    )
                errors = [e for e in response.get("Errors", []) if e.get("Code") != "NoSuchKey"]
                if errors:
                    raise GitfreeError(
                        f"{len(errors)} of {len(batch)} deletes failed on {self.endpoint or 'AWS S3'} "
                        f"(e.g. {errors[0].get('Key')}: {errors[0].get('Code')}); re-run to finish"
                    )
                batch = []

    def md5(self, key: str) -> tuple[str, int]:
        digest, size = hashlib.md5(usedforsecurity=False), 0
        with self._translate(key):
            body = self._client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            for chunk in body.iter_chunks(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def object_store(self, *, timeout: float | None = None) -> ObjectStore:
        from obstore.auth.boto3 import Boto3CredentialProvider
        from obstore.store import S3Store

        config: dict[str, Any] = {"region": self._region or "us-east-1"}
        if self.endpoint:
            config.update(endpoint=self.endpoint, virtual_hosted_style_request=False)
        from botocore.credentials import RefreshableCredentials

        credentials = self._session.get_credentials()
        if credentials is None:
            raise ConfigError(
                "no S3 credentials found: set GITFREE_ACCESS_KEY_ID and GITFREE_SECRET_ACCESS_KEY, "
                "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or an AWS profile"
            )
        auth: dict[str, Any]
        if isinstance(credentials, RefreshableCredentials):  # a role or SSO: boto3 refreshes them for obstore
            auth = {"credential_provider": Boto3CredentialProvider(self._session)}
        else:
            # Static keys go to obstore as they are: no call back into Python from its I/O threads
            # (such a call during interpreter shutdown was seen to abort the process).
            frozen = credentials.get_frozen_credentials()
            auth = {"access_key_id": frozen.access_key, "secret_access_key": frozen.secret_key}
            if frozen.token:
                auth["session_token"] = frozen.token
        return S3Store(
            self.bucket,
            prefix=self.prefix or None,
            **auth,  # the same chain (keys, profile, role) as the manifest client
            client_options={
                "allow_http": True,
                "connect_timeout": timedelta(seconds=self._settings.connect_timeout),
                "timeout": timedelta(seconds=self._settings.transfer_timeout if timeout is None else timeout),
            },
            retry_config=_retry_config(self._settings.retries),
            **config,
        )


def _retry_config(retries: int) -> RetryConfig:
    """obstore's retries of a failed request, as every backend's object store takes them: ``retries`` times,
    backing off from 100 ms."""
    return {"max_retries": retries, "backoff": {"init_backoff": timedelta(milliseconds=100)}}


def _check_range(start: int, end: int) -> None:
    if start < 0 or end < 0:
        raise ValueError(f"a byte range starts and ends at 0 or more, not [{start}, {end})")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


_BUCKET = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def _s3_location(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of an ``s3://BUCKET/PREFIX`` URL; :class:`InputError` if it is malformed."""
    if not re.match(r"s3://", url, re.IGNORECASE):
        fixed = re.sub(r"^s3:/*", "s3://", url, flags=re.IGNORECASE)
        raise InputError(
            f"store URL {url!r} is malformed: an S3 store needs s3://BUCKET/PREFIX (two slashes, then the "
            f"bucket){f', e.g. {fixed}' if fixed != 's3://' else ''}"
        )
    netloc = url[len("s3://") :].split("/", 1)[0]
    if "@" in netloc:  # never echo it: it may hold a secret
        raise InputError(
            "the store URL holds credentials (s3://KEY:SECRET@...): remove them and set GITFREE_ACCESS_KEY_ID "
            "and GITFREE_SECRET_ACCESS_KEY (or use the AWS credential chain)"
        )
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InputError(f"store URL {url!r} is malformed ({exc}): write it as s3://BUCKET/PREFIX") from None
    if not netloc:
        raise InputError(f"store URL {url!r} names no bucket: write it as s3://BUCKET/PREFIX")
    if ":" in netloc and _BUCKET.fullmatch(netloc.split(":", 1)[0]):
        raise InputError(
            f"store URL {url!r}: {netloc!r} is not a bucket name; an S3 store URL is s3://BUCKET/PREFIX, and "
            f"the server goes in GITFREE_ENDPOINT_URL (e.g. http://{netloc})"
        )
    if not _BUCKET.fullmatch(netloc):
        raise InputError(
            f"store URL {url!r}: {netloc!r} is not a bucket name (letters, digits, '.', '-', '_'); "
            "write it as s3://BUCKET/PREFIX"
        )
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise InputError(f"store URL {url!r} has a '?' or '#', which a store prefix cannot hold: s3://BUCKET/PREFIX")
    return netloc, unquote(parts.path)


def open_backend(settings: StoreSettings) -> Backend:
    """The backend for ``settings.store`` (or the local default)."""
    url = settings.resolved_store()
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        if re.match(r"s3:", url, re.IGNORECASE):
            _s3_location(url)  # the precise message
        raise InputError(
            f"store URL {url!r} is malformed ({exc}): use s3://BUCKET/PREFIX, file:///PATH or a local path"
        ) from None
    scheme = parts.scheme.lower()
    if scheme == "s3":
        return S3Backend(*_s3_location(url), settings)
    if scheme == "az":
        return AzureBackend(*_az_location(url), settings)
    if scheme == "gs":
        return GCSBackend(*_gs_location(url), settings)
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InputError(f"store URL {url!r}: a file:// URL names a local path, e.g. file:///srv/data-store")
        return FileBackend(Path(unquote(parts.path)))
    if scheme == "" or (len(scheme) == 1 and os.name == "nt"):
        return FileBackend(Path(url).expanduser().absolute())
    raise ConfigError(
        f"store URL {url!r} has the unknown scheme {scheme!r}: use s3://BUCKET/PREFIX, az://CONTAINER/PREFIX, "
        "gs://BUCKET/PREFIX, file:///PATH or a local path"
    )


# --------------------------------------------------------------------------- azure


_AZ_CONTAINER = re.compile(r"[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]")
_UNREACHABLE = ("connection refused", "dns error", "failed to lookup", "tcp connect error", "connect error")


class AzureBackend(Backend):
    """A store under ``az://container/prefix`` on Azure Blob Storage (or Azurite), through obstore.

    Azure's own conditions: ``If-None-Match: *`` (create-only; a second create is answered 409
    ``BlobAlreadyExists``) and ``If-Match: <etag>`` (compare-and-swap; a stale or missing blob is
    answered 412 ``ConditionNotMet``). obstore sends both and reports them as ``AlreadyExistsError``
    and ``PreconditionError``; every other obstore error is translated in :meth:`_translate`."""

    conditional_service = "Azure Blob Storage itself, or Azurite"

    def __init__(self, container: str, prefix: str, settings: StoreSettings) -> None:
        from obstore.store import AzureStore

        self.container = container
        self.prefix = prefix.strip("/")
        self.url = f"az://{container}/{self.prefix}".rstrip("/")
        self._settings = settings
        found = settings.azure_credentials()
        if "account" not in found:
            raise ConfigError(
                "no Azure storage account given: set GITFREE_AZURE_ACCOUNT_NAME (or AZURE_STORAGE_ACCOUNT_NAME, "
                "or AZURE_STORAGE_CONNECTION_STRING)"
            )
        if "key" not in found and "sas" not in found:
            raise ConfigError(
                f"no credentials for the Azure account {found['account']!r}: set GITFREE_AZURE_ACCOUNT_KEY "
                "(or AZURE_STORAGE_ACCOUNT_KEY), a SAS token (GITFREE_AZURE_SAS_TOKEN) or "
                "AZURE_STORAGE_CONNECTION_STRING"
            )
        self.endpoint = found.get("endpoint")
        auth: dict[str, Any] = {"account_key": found["key"]} if "key" in found else {"sas_key": found["sas"]}
        self._store = AzureStore(
            container,
            prefix=self.prefix or None,
            account_name=found["account"],
            endpoint=self.endpoint,
            client_options=self._client_options(settings.read_timeout),
            retry_config=_retry_config(settings.retries),
            **auth,
        )
        self._auth, self._account = auth, found["account"]

    def _client_options(self, timeout: float) -> Any:  # obstore's ClientConfig
        return {
            "allow_http": True,
            "connect_timeout": timedelta(seconds=self._settings.connect_timeout),
            "timeout": timedelta(seconds=timeout),
        }

    def __repr__(self) -> str:
        return f"AzureBackend({self.url!r}, endpoint={self.endpoint!r})"

    @contextlib.contextmanager
    def _translate(self, key: str, *, write: bool = False) -> Iterator[None]:
        """Turn obstore's Azure errors into ours; the one place that knows them."""
        import obstore.exceptions as oe

        where = f"{self.url}/{key}"
        server = self.endpoint or f"Azure account {self._account}"
        try:
            yield
        except oe.AlreadyExistsError:
            raise KeyExists(key) from None
        except oe.PreconditionError:
            raise PreconditionFailed(key) from None
        except (FileNotFoundError, oe.NotFoundError) as exc:
            if "ContainerNotFound" in str(exc):
                raise ConfigError(
                    f"the container {self.container!r} does not exist on {server}: create it, or fix the store URL"
                ) from None
            raise KeyMissing(key) from None
        except (oe.PermissionDeniedError, oe.UnauthenticatedError, PermissionError):
            raise ConfigError(
                f"{server} denied access to {where}: check the account, key or SAS token "
                "(GITFREE_AZURE_ACCOUNT_NAME / GITFREE_AZURE_ACCOUNT_KEY / GITFREE_AZURE_SAS_TOKEN)"
            ) from None
        except (oe.BaseError, OSError, TimeoutError) as exc:
            raise self._failed(exc, key, write=write, where=where, server=server) from None

    def _failed(self, exc: BaseException, key: str, *, write: bool, where: str, server: str) -> Exception:
        text = str(exc).lower()
        if "containernotfound" in text or "container does not exist" in text:
            return ConfigError(
                f"the container {self.container!r} does not exist on {server}: create it, or fix the store URL"
            )
        if "403 forbidden" in text or "401 unauthorized" in text or "authenticationfailed" in text:
            return ConfigError(
                f"{server} denied access to {where}: check the account, key or SAS token "
                "(GITFREE_AZURE_ACCOUNT_NAME / GITFREE_AZURE_ACCOUNT_KEY / GITFREE_AZURE_SAS_TOKEN)"
            )
        if any(marker in text for marker in _UNREACHABLE):
            return ConfigError(
                f"cannot reach the Azure endpoint {server} ({self._settings.retries + 1} attempt(s)): is it running "
                "and is the URL right? (GITFREE_ENDPOINT_URL or the connection string's BlobEndpoint)"
            )
        if write:  # a timeout, a 5xx or a cut connection: the write may have happened
            return OutcomeUnknown(key)
        return GitfreeError(f"the Azure request for {where} failed: {_first_line(exc)}; retry")

    def get(self, key: str) -> tuple[bytes, str]:
        import obstore

        with self._translate(key):
            result = obstore.get(self._store, key)
            return bytes(result.bytes()), str(result.meta["e_tag"])

    def get_range(self, key: str, start: int, end: int) -> bytes:
        import obstore

        _check_range(start, end)
        if end <= start:
            return b""
        size = self.size(key)  # obstore refuses a range past the end: cut it here
        if start >= size:
            return b""
        with self._translate(key):
            return bytes(obstore.get_range(self._store, key, start=start, end=min(end, size)))

    def create(self, key: str, data: bytes) -> str:
        import obstore

        with self._translate(key, write=True):
            return str(obstore.put(self._store, key, data, mode="create")["e_tag"])

    def replace(self, key: str, data: bytes, etag: str) -> str:
        import obstore

        try:
            with self._translate(key, write=True):
                return str(obstore.put(self._store, key, data, mode={"e_tag": etag})["e_tag"])
        except KeyMissing:
            raise PreconditionFailed(key) from None

    def put(self, key: str, data: bytes) -> None:
        import obstore

        with self._translate(key, write=True):
            obstore.put(self._store, key, data)

    def delete(self, key: str) -> None:
        import obstore

        with contextlib.suppress(KeyMissing), self._translate(key, write=True):
            obstore.delete(self._store, key)

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except KeyMissing:
            return False
        return True

    def size(self, key: str) -> int:
        import obstore

        with self._translate(key):
            return int(obstore.head(self._store, key)["size"])

    def scan(self, prefix: str) -> Iterator[ObjectInfo]:
        import obstore

        with self._translate(prefix):
            for page in obstore.list(self._store, prefix.rstrip("/") or None):
                for obj in page:
                    path = str(obj["path"])
                    if prefix and not (path == prefix or path.startswith(prefix)):
                        continue
                    etag = obj.get("e_tag")
                    yield ObjectInfo(path, int(obj["size"]), obj["last_modified"], etag.strip('"') if etag else None)

    def md5(self, key: str) -> tuple[str, int]:
        import obstore

        digest, size = hashlib.md5(usedforsecurity=False), 0
        with self._translate(key):
            for chunk in obstore.get(self._store, key).stream(_CHUNK):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size

    def object_store(self, *, timeout: float | None = None) -> ObjectStore:
        from obstore.store import AzureStore

        return AzureStore(
            self.container,
            prefix=self.prefix or None,
            account_name=self._account,
            endpoint=self.endpoint,
            client_options=self._client_options(self._settings.transfer_timeout if timeout is None else timeout),
            retry_config=_retry_config(self._settings.retries),
            **self._auth,
        )

    # ------------------------------------------------------------------ a source of versions by reference

    list_page = 5000
    """Blobs per List Blobs request (Azure's most)."""

    def names_an_object(self) -> bool:
        import xml.etree.ElementTree as ET

        if not self.prefix:
            return False
        query = {"comp": "list", "maxresults": "1", "restype": "container", "prefix": self.prefix}
        try:  # the first name under a prefix is the prefix itself, if a blob has it
            page = ET.fromstring(self._rest("", query))  # noqa: S314 - the service's own answer, no entities
        except GitfreeError:
            return False
        return any(blob.findtext("Name") == self.prefix for blob in page.iter("Blob"))

    def listed_md5s(self, prefix: str) -> dict[str, str]:
        # Set by the service for a single Put Blob; a blob uploaded in blocks (obstore's multipart, above
        # transfer.SINGLE_PUT_MAX) has none and stays unverified without --deep.
        return {b.key: b.md5 for b in self.blobs(prefix) if b.md5}

    def blobs(self, prefix: str) -> Iterator[BlobInfo]:
        """Every blob under ``prefix`` (recursively) as List Blobs describes it, with the Content-MD5 and the
        versionId that obstore's listing leaves out: one signed request per 5,000 blobs."""
        import xml.etree.ElementTree as ET

        root = f"{self.prefix}/" if self.prefix else ""
        marker = ""
        while True:
            query = {"comp": "list", "maxresults": str(self.list_page), "restype": "container"}
            if root + prefix:
                query["prefix"] = root + prefix
            if marker:
                query["marker"] = marker
            page = ET.fromstring(self._rest(prefix, query))  # noqa: S314 - the service's own answer, no entities
            for blob in page.iter("Blob"):
                yield _blob_info(blob, len(root))
            marker = page.findtext("NextMarker") or ""
            if not marker:
                return

    def _rest(self, key: str, query: dict[str, str]) -> bytes:
        """A GET of the container with ``query``, signed with the account key (or carrying the SAS token), retried
        after a refused connection, 429 or a 5xx; every error is translated here, once."""
        import urllib.error
        import urllib.request
        from email.utils import formatdate
        from urllib.parse import quote, urlencode

        base = (self.endpoint or f"https://{self._account}.blob.core.windows.net").rstrip("/")
        url = f"{base}/{quote(self.container)}?{urlencode(query, quote_via=quote)}"  # a space is %20, never +
        if "sas_key" in self._auth:
            url += "&" + str(self._auth["sas_key"]).lstrip("?")
        where, server = f"{self.url}/{key}", self.endpoint or f"Azure account {self._account}"
        for attempt in range(self._settings.retries + 1):
            headers = {"x-ms-date": formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
            if "account_key" in self._auth:
                headers["Authorization"] = self._shared_key(urlsplit(url).path, query, headers)
            try:
                request = urllib.request.Request(url, headers=headers)  # noqa: S310 - the store's own endpoint
                with urllib.request.urlopen(request, timeout=self._settings.read_timeout) as response:  # noqa: S310
                    return bytes(response.read())
            except urllib.error.HTTPError as exc:
                body = exc.read().decode("utf-8", "replace")
                if (exc.code < 500 and exc.code != 429) or attempt == self._settings.retries:
                    raise self._rest_error(exc.code, body, where, server) from None
            except (urllib.error.URLError, OSError) as exc:
                if attempt == self._settings.retries:
                    raise self._failed(exc, key, write=False, where=where, server=server) from None
            time.sleep(min(1.0, 0.1 * 2**attempt))
        raise AssertionError("unreachable")  # pragma: no cover - the last attempt returns or raises

    def _shared_key(self, path: str, query: dict[str, str], headers: dict[str, str]) -> str:
        """The ``Authorization`` header of a GET (Azure's Shared Key scheme; the key is never in a message)."""
        import binascii
        import hmac

        canonical = "".join(f"{name}:{value}\n" for name, value in sorted(headers.items()))
        resource = f"/{self._account}{path}" + "".join(f"\n{name}:{value}" for name, value in sorted(query.items()))
        try:
            secret = base64.b64decode(str(self._auth["account_key"]), validate=True)
        except (binascii.Error, ValueError):
            raise ConfigError(
                f"the account key of the Azure account {self._account!r} is not base64: copy it again from the "
                "portal (GITFREE_AZURE_ACCOUNT_KEY or AZURE_STORAGE_ACCOUNT_KEY)"
            ) from None
        signature = hmac.new(secret, ("GET\n" + "\n" * 11 + canonical + resource).encode(), hashlib.sha256).digest()
        return f"SharedKey {self._account}:{base64.b64encode(signature).decode()}"

    def _rest_error(self, status: int, body: str, where: str, server: str) -> GitfreeError:
        if status == 404 and "ContainerNotFound" in body:
            return ConfigError(
                f"the container {self.container!r} does not exist on {server}: create it, or fix the URL"
            )
        if status in (401, 403):
            return ConfigError(
                f"{server} denied access to {where} (HTTP {status}): check the account, key or SAS token "
                "(GITFREE_AZURE_ACCOUNT_NAME / GITFREE_AZURE_ACCOUNT_KEY / GITFREE_AZURE_SAS_TOKEN) and that they "
                "may list the container"
            )
        code = re.search(r"<Code>([^<]{1,100})</Code>", body)
        return GitfreeError(f"{server} answered {status} {code.group(1) if code else ''} for {where}; retry")

    @functools.cached_property
    def _reader(self) -> ObjectStore:
        return self.object_store()  # the transfer timeout: a pinned read streams a whole object

    def read_pinned(
        self, key: str, *, etag: str, version_id: str | None, start: int | None = None, end: int | None = None
    ) -> tuple[str, Iterator[bytes]]:
        """A GET of ``key`` with ``If-Match: "<etag>"`` (and ``versionid`` when one was recorded), optionally of
        ``[start, end)``: the ETag served (no quotes) and the bytes as they stream. :class:`KeyMissing` (no such
        blob or version), :class:`PreconditionFailed` (its ETag is no longer ``etag``)."""
        import obstore

        options: dict[str, Any] = {"if_match": f'"{etag}"'}
        if version_id:
            options["version"] = version_id
        if start is not None and end is not None:
            options["range"] = (start, end)
        with self._translate(key):
            result = obstore.get(self._reader, key, options=options)  # type: ignore[arg-type]

        def chunks() -> Iterator[bytes]:
            with self._translate(key):
                for chunk in result.stream(_CHUNK):
                    yield bytes(chunk)

        return str(result.meta["e_tag"]).strip('"'), chunks()

    def etag(self, key: str) -> str:
        """The blob's ETag now (no quotes); :class:`KeyMissing`."""
        import obstore

        with self._translate(key):
            return str(obstore.head(self._store, key)["e_tag"]).strip('"')


@dataclass(frozen=True)
class BlobInfo:
    """A blob found by :meth:`AzureBackend.blobs`: its key below the store prefix, size and ETag (no quotes), its
    Content-MD5 as hex (``None`` unless it is a block blob that has one), and its versionId (``None`` unless the
    account versions blobs)."""

    key: str
    size: int
    etag: str
    md5: str | None
    version_id: str | None


def _blob_info(blob: Any, strip: int) -> BlobInfo:
    """A ``<Blob>`` element of List Blobs. Only a block blob's Content-MD5 is taken for its md5: the service sets
    it for a single Put Blob; a block list or an append or page blob has none unless a client set one."""
    properties = blob.find("Properties")

    def text(name: str) -> str | None:
        return properties.findtext(name) if properties is not None else None

    md5 = None
    content_md5 = text("Content-MD5")
    if content_md5 and text("BlobType") in (None, "BlockBlob"):
        try:
            raw = base64.b64decode(content_md5, validate=True)
        except ValueError:
            raw = b""
        md5 = raw.hex() if len(raw) == 16 else None
    return BlobInfo(
        key=str(blob.findtext("Name") or "")[strip:],
        size=int(text("Content-Length") or 0),
        etag=str(text("Etag") or "").strip('"'),
        md5=md5,
        version_id=blob.findtext("VersionId") or None,
    )


def _az_location(url: str) -> tuple[str, str]:
    """``(container, prefix)`` of an ``az://CONTAINER/PREFIX`` URL; :class:`InputError` if it is malformed."""
    if not re.match(r"az://", url, re.IGNORECASE):
        raise InputError(f"store URL {url!r} is malformed: an Azure store needs az://CONTAINER/PREFIX")
    container, _, prefix = url[len("az://") :].partition("/")
    if "@" in container:  # never echo it: it may hold a secret
        raise InputError(
            "the store URL holds credentials (az://...@...): remove them and set GITFREE_AZURE_ACCOUNT_NAME and "
            "GITFREE_AZURE_ACCOUNT_KEY (or AZURE_STORAGE_CONNECTION_STRING)"
        )
    if not _AZ_CONTAINER.fullmatch(container):
        raise InputError(
            f"store URL {url!r}: {container!r} is not an Azure container name (3 to 63 lowercase letters, digits "
            "and single hyphens, beginning and ending with a letter or digit); write it as az://CONTAINER/PREFIX"
        )
    if "?" in prefix or "#" in prefix:
        raise InputError(f"store URL {url!r} has a '?' or '#', which a store prefix cannot hold: az://CONTAINER/PREFIX")
    segments = unquote(prefix).strip("/").split("/")
    if any(segment in ("", ".", "..") for segment in segments) and segments != [""]:
        raise InputError(
            f"store URL {url!r}: a prefix of an Azure store has no empty, '.' or '..' part: write it as "
            "az://CONTAINER/PART/PART"
        )
    return container, unquote(prefix)


# --------------------------------------------------------------------------- google cloud storage


_GCS_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_GCS_SCOPE = "https://www.googleapis.com/auth/devstorage.read_write"
_GCS_CHUNK = 8 * 1024 * 1024  # a multiple of 256 KiB, as GCS's resumable uploads require
_REFUSED = ("connection refused", "failed to establish a new connection", "name or service not known", "nodename")


@functools.cache
def _google() -> Any:
    """google-cloud-storage's modules (the ``gcs`` extra), imported once; :class:`ConfigError` without them."""
    try:
        import google.api_core.exceptions as ge
        import google.auth.exceptions as gae
        import requests
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage
        from google.oauth2 import service_account
    except ImportError:
        raise ConfigError("a gs:// store needs the gcs extra: pip install 'gitfree[gcs]'") from None
    return types.SimpleNamespace(
        ge=ge,
        gae=gae,
        requests=requests,
        AnonymousCredentials=AnonymousCredentials,
        storage=storage,
        service_account=service_account,
    )


def _anonymous_token() -> dict[str, Any]:
    """obstore's credential for an emulator that checks none: a token, never a metadata-server lookup."""
    return {"token": "anonymous", "expires_at": None}


class GCSBackend(Backend):
    """A store under ``gs://bucket/prefix`` on Google Cloud Storage (or fake-gcs-server).

    Records, tags and leases go through the JSON API with ``google-cloud-storage`` (the ``gcs`` extra), with
    GCS's own preconditions: ``ifGenerationMatch=0`` (create-only) and ``ifGenerationMatch=<generation>``
    (compare-and-swap), both answered 412 when they fail. The object generation is the etag the protocol
    swaps on. Objects are read with obstore's ``GCSStore`` and uploaded through the JSON API too
    (:meth:`object_uploader`): obstore's XML-API PUT is not accepted by the emulator. Errors are translated
    in :meth:`_translate`; deletes are unconditional (the protocol needs no conditional delete)."""

    create_condition = "ifGenerationMatch=0"
    swap_condition = "ifGenerationMatch=<generation>"
    conditional_service = "Google Cloud Storage itself, or an emulator that enforces generation preconditions"

    def __init__(self, bucket: str, prefix: str, settings: StoreSettings) -> None:
        g = _google()
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"gs://{bucket}/{self.prefix}".rstrip("/")
        self._settings = settings
        found = settings.gcs_settings()
        if "key" not in found and "endpoint" not in found:
            raise ConfigError(
                "no Google Cloud credentials for a gs:// store: set GOOGLE_APPLICATION_CREDENTIALS (or "
                "GITFREE_GCS_CREDENTIALS) to a service-account JSON key, or STORAGE_EMULATOR_HOST for an emulator"
            )
        self.endpoint = found.get("endpoint")
        self._key = found.get("key")
        credentials: Any = g.AnonymousCredentials()
        if self._key is not None:
            try:
                credentials = g.service_account.Credentials.from_service_account_info(
                    json.loads(self._key), scopes=[_GCS_SCOPE]
                )
            except ValueError:  # never echo the key
                raise ConfigError(
                    "the Google Cloud service-account key is malformed (its private_key cannot be read): "
                    "download a new JSON key and point GOOGLE_APPLICATION_CREDENTIALS at it"
                ) from None
        options = {"api_endpoint": self.endpoint} if self.endpoint else None
        self._client = g.storage.Client(
            project=found.get("project", "gitfree"), credentials=credentials, client_options=options
        )
        self._bucket = self._client.bucket(bucket)
        self._bucket_seen = False
        self._timeout = (settings.connect_timeout, settings.read_timeout)

    def __repr__(self) -> str:
        return f"GCSBackend({self.url!r}, endpoint={self.endpoint!r})"

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def _retrying(self, call: Callable[[], Any]) -> Any:
        """``call()``, again after a transient failure (a refused or cut connection, a timeout, 429, 5xx), up to
        ``retries`` more times; only for reads and writes that may be repeated (never a conditional one)."""
        g = _google()

        transient = (
            g.ge.TooManyRequests,
            g.ge.ServerError,
            g.gae.TransportError,
            g.requests.ConnectionError,
            g.requests.Timeout,
        )
        for attempt in range(self._settings.retries):
            try:
                return call()
            except transient:
                time.sleep(min(1.0, 0.1 * 2**attempt))
        return call()

    def _bucket_missing(self, exc: BaseException) -> bool:
        """Whether the 404 ``exc`` means the bucket is gone: GCS says so in its message; an emulator answers a
        missing bucket and a missing object alike, so the bucket is asked about once (once seen, not again).
        A key allowed to read objects but not the bucket (403 on it) takes the 404 for a missing object."""
        g = _google()
        if "bucket does not exist" in str(exc).lower():
            return True
        if not self._bucket_seen:
            try:
                self._bucket_seen = bool(self._retrying(lambda: self._bucket.exists(timeout=self._timeout, retry=None)))
            except (g.ge.Forbidden, g.ge.Unauthorized):
                self._bucket_seen = True
            except (g.ge.GoogleAPICallError, g.gae.GoogleAuthError, g.requests.RequestException, OSError):
                return False  # cannot tell now: the object is missing
        return not self._bucket_seen

    @contextlib.contextmanager
    def _translate(
        self, key: str, *, write: bool = False, taken: type[Exception] = PreconditionFailed
    ) -> Iterator[None]:
        """Turn google-cloud-storage's errors into ours; the one place that knows them. ``taken`` is what a
        failed precondition (412) means for this call."""
        g = _google()

        where = f"{self.url}/{key}"
        server = self.endpoint or "Google Cloud Storage"
        try:
            yield
        except g.ge.PreconditionFailed:
            raise taken(key) from None
        except g.ge.NotFound as exc:
            if self._bucket_missing(exc):
                raise ConfigError(
                    f"the bucket {self.bucket!r} does not exist on {server}: create it, or fix the store URL"
                ) from None
            raise KeyMissing(key) from None
        except (g.ge.Forbidden, g.ge.Unauthorized, g.gae.RefreshError):
            raise ConfigError(
                f"{server} denied access to {where}: check the service-account key (GOOGLE_APPLICATION_CREDENTIALS "
                "or GITFREE_GCS_CREDENTIALS) and its roles on the bucket"
            ) from None
        except (g.ge.GoogleAPICallError, g.gae.TransportError, g.requests.RequestException, OSError) as exc:
            raise self._failed(exc, key, write=write, where=where, server=server) from None

    def _failed(self, exc: BaseException, key: str, *, write: bool, where: str, server: str) -> Exception:
        g = _google()

        if isinstance(exc, g.gae.TransportError):  # nothing was sent to the bucket: the token could not be had
            return ConfigError(
                f"cannot get an access token for the service account of {self.url} from its token_uri "
                f"({self._settings.retries + 1} attempt(s)): check the network and the key's token_uri"
            )
        text = str(exc).lower()
        unsent = isinstance(exc, g.requests.ConnectTimeout) or any(marker in text for marker in _REFUSED)
        if unsent:
            return ConfigError(
                f"cannot reach the Google Cloud Storage endpoint {server} ({self._settings.retries + 1} attempt(s)): "
                "is it running and is the URL right? (GITFREE_ENDPOINT_URL or STORAGE_EMULATOR_HOST)"
            )
        if write:  # a timeout, a 5xx or a cut connection: the write may have happened
            return OutcomeUnknown(key)
        return GitfreeError(f"the Google Cloud Storage request for {where} failed: {_first_line(exc)}; retry")

    def get(self, key: str) -> tuple[bytes, str]:
        blob = self._bucket.blob(self._name(key))
        with self._translate(key):
            data = self._retrying(lambda: blob.download_as_bytes(timeout=self._timeout, retry=None))
        return data, str(blob.generation)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        g = _google()

        _check_range(start, end)
        if end <= start:
            return b""
        blob = self._bucket.blob(self._name(key))
        try:
            with self._translate(key):
                data: bytes = self._retrying(
                    lambda: blob.download_as_bytes(
                        start=start, end=end - 1, checksum=None, timeout=self._timeout, retry=None
                    )
                )
        except GitfreeError as exc:
            if isinstance(exc.__context__, g.ge.RequestRangeNotSatisfiable):  # at or past the end
                return b""
            raise
        return data

    def _upload(self, key: str, data: bytes, generation: int | None, *, taken: type[Exception]) -> str:
        blob = self._bucket.blob(self._name(key))

        # No retry of a conditional write: a retried create could meet itself (412) and report a taken key;
        # a lost answer is OutcomeUnknown, and the protocol re-reads.
        def upload() -> None:
            blob.upload_from_string(
                data,
                content_type="application/octet-stream",
                if_generation_match=generation,
                timeout=self._timeout,
                retry=None,
            )

        with self._translate(key, write=True, taken=taken):
            upload() if generation is not None else self._retrying(upload)
        return str(blob.generation)

    def create(self, key: str, data: bytes) -> str:
        return self._upload(key, data, 0, taken=KeyExists)

    def replace(self, key: str, data: bytes, etag: str) -> str:
        if not etag.isdigit() or int(etag) == 0:  # not a generation: it cannot match
            raise PreconditionFailed(key)
        return self._upload(key, data, int(etag), taken=PreconditionFailed)

    def put(self, key: str, data: bytes) -> None:
        self._upload(key, data, None, taken=PreconditionFailed)

    def delete(self, key: str) -> None:
        blob = self._bucket.blob(self._name(key))
        with contextlib.suppress(KeyMissing), self._translate(key, write=True):
            self._retrying(lambda: blob.delete(timeout=self._timeout, retry=None))

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except KeyMissing:
            return False
        return True

    def size(self, key: str) -> int:
        blob = self._bucket.blob(self._name(key))
        with self._translate(key):
            self._retrying(lambda: blob.reload(timeout=self._timeout, retry=None))
        return int(blob.size or 0)

    def scan(self, prefix: str) -> Iterator[ObjectInfo]:
        root = f"{self.prefix}/" if self.prefix else ""
        with self._translate(prefix):
            for blob in self._client.list_blobs(self.bucket, prefix=root + prefix, timeout=self._timeout, retry=None):
                etag = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash else None  # composed objects: none
                yield ObjectInfo(blob.name[len(root) :], int(blob.size or 0), blob.updated, etag)

    def md5(self, key: str) -> tuple[str, int]:
        digest = hashlib.md5(usedforsecurity=False)

        class _Hashing(io.RawIOBase):
            size = 0

            def write(self, chunk: Any) -> int:
                digest.update(chunk)
                self.size += len(chunk)
                return len(chunk)

        sink = _Hashing()
        blob = self._bucket.blob(self._name(key))
        with self._translate(key):
            blob.download_to_file(
                sink,
                timeout=(self._settings.connect_timeout, self._settings.transfer_timeout),
                retry=None,
            )
        return digest.hexdigest(), sink.size

    def object_uploader(self) -> Callable[[str, Path], None]:
        return self._upload_file

    def _upload_file(self, key: str, path: Path) -> None:
        """One object file to ``key`` through the JSON API (resumable past 8 MiB, in 8 MiB chunks, so a large
        file holds 8 MiB of memory, not google-cloud-storage's default 100 MiB)."""
        blob = self._bucket.blob(self._name(key), chunk_size=_GCS_CHUNK)
        with self._translate(key, write=True):
            self._retrying(
                lambda: blob.upload_from_filename(
                    str(path),
                    content_type="application/octet-stream",
                    timeout=(self._settings.connect_timeout, self._settings.transfer_timeout),
                    retry=None,
                )
            )

    def object_store(self, *, timeout: float | None = None) -> ObjectStore:
        from obstore.store import GCSStore

        # Credentials are always explicit: a key, or for an emulator a fixed token, so obstore never falls back
        # to the instance metadata server (skip_signature would).
        auth: dict[str, Any] = (
            {"service_account_key": self._key} if self._key is not None else {"credential_provider": _anonymous_token}
        )
        if self.endpoint:
            auth["base_url"] = self.endpoint
        return GCSStore(
            self.bucket,
            prefix=self.prefix or None,
            client_options={
                "allow_http": True,
                "connect_timeout": timedelta(seconds=self._settings.connect_timeout),
                "timeout": timedelta(seconds=self._settings.transfer_timeout if timeout is None else timeout),
            },
            retry_config=_retry_config(self._settings.retries),
            **auth,
        )

    # ------------------------------------------------------------------ a source of versions by reference

    def names_an_object(self) -> bool:
        if not self.prefix:
            return False
        try:
            with self._translate(""):
                found = self._client.list_blobs(
                    self.bucket, prefix=self.prefix, max_results=1, timeout=self._timeout, retry=None
                )
                return any(blob.name == self.prefix for blob in found)
        except GitfreeError:
            return False

    def objects(self, prefix: str) -> Iterator[GCSObjectInfo]:
        """Every object under ``prefix`` (recursively) with its generation, etag and md5Hash (one JSON-API list
        request per 1,000 objects)."""
        root = f"{self.prefix}/" if self.prefix else ""
        with self._translate(prefix):
            for blob in self._client.list_blobs(self.bucket, prefix=root + prefix, timeout=self._timeout, retry=None):
                # A composite object (componentCount) has no md5Hash on GCS: it is hashed instead.
                md5 = base64.b64decode(blob.md5_hash).hex() if blob.md5_hash and not blob.component_count else None
                generation = int(blob.generation or 0)
                yield GCSObjectInfo(
                    blob.name[len(root) :], int(blob.size or 0), generation, str(blob.etag or generation), md5
                )

    def read_generation(
        self,
        key: str,
        generation: int,
        sink: Callable[[bytes], object],
        start: int | None = None,
        end: int | None = None,
    ) -> None:
        """Stream generation ``generation`` of ``key`` (optionally its bytes ``[start, end)``) into ``sink``, as it
        arrives. :class:`KeyMissing` when that generation no longer exists; :class:`PreconditionFailed` when the
        server served another one."""

        class _Sink(io.RawIOBase):
            def write(self, chunk: Any) -> int:
                sink(bytes(chunk))
                return len(chunk)

        blob = self._bucket.blob(self._name(key), generation=generation)
        with self._translate(key):
            blob.download_to_file(
                _Sink(),
                start=start,
                end=None if end is None else end - 1,
                checksum=None,  # gitfree hashes what it reads itself
                timeout=(self._settings.connect_timeout, self._settings.transfer_timeout),
                retry=None,
            )
        if blob.generation is not None and int(blob.generation) != generation:
            raise PreconditionFailed(key)

    def generation(self, key: str) -> int:
        """The object's generation now; :class:`KeyMissing`."""
        blob = self._bucket.blob(self._name(key))
        with self._translate(key):
            self._retrying(lambda: blob.reload(timeout=self._timeout, retry=None))
        return int(blob.generation or 0)


@dataclass(frozen=True)
class GCSObjectInfo:
    """An object found by :meth:`GCSBackend.objects`: its key below the store prefix, size, generation, etag and
    md5Hash as hex (``None`` for a composite object, which GCS gives none)."""

    key: str
    size: int
    generation: int
    etag: str
    md5: str | None


def _gs_location(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of a ``gs://BUCKET/PREFIX`` URL; :class:`InputError` if it is malformed."""
    if not re.match(r"gs://", url, re.IGNORECASE):
        raise InputError(f"store URL {url!r} is malformed: a Google Cloud Storage store needs gs://BUCKET/PREFIX")
    bucket, _, prefix = url[len("gs://") :].partition("/")
    if "@" in bucket or ":" in bucket:  # never echo it: it may hold a secret
        raise InputError(
            "the store URL holds credentials or a port (gs://...@... or gs://HOST:PORT): a gs:// URL names a bucket; "
            "set GOOGLE_APPLICATION_CREDENTIALS for the key and GITFREE_ENDPOINT_URL for another server"
        )
    parts = bucket.split(".")
    if (
        not _GCS_BUCKET.fullmatch(bucket)
        or any(not part or len(part) > 63 for part in parts)
        or (len(parts) == 1 and len(bucket) > 63)
        or bucket.startswith("goog")
        or re.fullmatch(r"[0-9.]+", bucket)
    ):
        raise InputError(
            f"store URL {url!r}: {bucket!r} is not a Google Cloud Storage bucket name (3 to 63 lowercase letters, "
            "digits, '-', '_' and '.', beginning and ending with a letter or digit); write it as gs://BUCKET/PREFIX"
        )
    if "?" in prefix or "#" in prefix:
        raise InputError(f"store URL {url!r} has a '?' or '#', which a store prefix cannot hold: gs://BUCKET/PREFIX")
    segments = unquote(prefix).strip("/").split("/")
    if any(segment in ("", ".", "..") for segment in segments) and segments != [""]:
        raise InputError(
            f"store URL {url!r}: a prefix of a Google Cloud Storage store has no empty, '.' or '..' part: write it "
            "as gs://BUCKET/PART/PART"
        )
    return bucket, unquote(prefix).strip("/")


def cloud_source_location(url: str) -> tuple[str, str]:
    """``(container, prefix)`` of an ``az://`` or ``(bucket, prefix)`` of a ``gs://`` source of a version by
    reference, checked as a store URL is; :class:`InputError` naming the source."""
    try:
        return _az_location(url) if url[:5].lower() == "az://" else _gs_location(url)
    except InputError as exc:
        raise InputError(str(exc).replace("store URL", "the source", 1)) from None
