"""Ready-made Prefect flows: scheduled ingestion, pulling a version in a worker, and an example pipeline."""

from __future__ import annotations

import json
import shutil
import statistics
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.events.schemas.deployment_triggers import DeploymentEventTrigger
from pydantic import JsonValue

from gitfree.tasks import COMMITTED_EVENT, GitfreeStore, commit_dataset, pull_dataset, resolve_store
from gitfree.versioning import InputError, Store, Version, validate_dataset_name

__all__ = ["fetch_source", "ingest_dataset", "pull_dataset_flow", "train_example", "train_trigger"]

StoreArg = str | GitfreeStore | None


def fetch_source(source: str, staging: Path, store: Store, source_options: dict[str, Any] | None = None) -> Path:
    """Bring ``source`` (a local path, an ``s3://`` prefix or an http(s) URL of a file) into ``staging``.

    A local path is used where it is, not copied. An ``s3://`` source is read with ``source_options``
    (arguments of ``s3fs.S3FileSystem``), else as the store is reached (:meth:`StoreSettings.s3fs_options
    <gitfree.versioning.StoreSettings.s3fs_options>`). Returns the path to commit.
    """
    scheme = urllib.parse.urlsplit(source).scheme.lower()
    if scheme in ("", "file"):
        path = Path(urllib.parse.unquote(urllib.parse.urlsplit(source).path) if scheme else source).expanduser()
        if not path.exists():
            raise InputError(f"the ingestion source {path} does not exist")
        return path
    if scheme == "s3":
        import s3fs

        fs = s3fs.S3FileSystem(**(source_options if source_options is not None else store.settings.s3fs_options()))
        prefix = source[len("s3://") :].rstrip("/")
        if fs.isfile(prefix):
            target = staging / Path(prefix).name
            fs.get_file(prefix, str(target))
            return target
        keys = fs.find(prefix)
        if not keys:
            raise InputError(f"the ingestion source {source} holds no objects")
        for key in keys:
            target = staging.joinpath(*key[len(prefix) + 1 :].split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            fs.get_file(key, str(target))
        return staging
    if scheme in ("http", "https"):
        name = Path(urllib.parse.urlsplit(source).path).name or "download"
        target = staging / name
        with urllib.request.urlopen(source, timeout=60) as response, open(target, "wb") as out:  # noqa: S310 - http(s) only
            shutil.copyfileobj(response, out, 1 << 20)
        return target
    raise InputError(f"cannot ingest {source!r}: use a local path, an s3:// prefix or an http(s) URL")


@flow(name="gitfree-ingest", log_prints=True)
def ingest_dataset(
    source: str,
    dataset: str,
    store: StoreArg = None,
    message: str = "",
    metadata: dict[str, JsonValue] | None = None,
    source_options: dict[str, Any] | None = None,
    by_reference: bool = False,
) -> Version:
    """Copy ``source`` into a staging area and commit it as the next version of ``dataset``.

    With ``by_reference=True`` nothing is copied: the files of ``source`` (an ``s3://bucket/prefix/`` on the
    store's endpoint and credentials, an ``az://`` or ``gs://`` prefix on a store of that service, or a folder
    every worker shares) are versioned where they are, and an
    unchanged source costs its LIST and reads no object (docs/design.md, "Versions by reference").

    When the source has not changed since the newest version, no version is created (and no
    event is emitted). Run it on a schedule::

        ingest_dataset.serve(name="sensors-nightly", cron="0 2 * * *",
                             parameters={"source": "s3://raw/sensors", "dataset": "sensors"})

    or from a shell: ``gitfree-flows ingest s3://raw/sensors sensors --cron "0 2 * * *"``.
    """
    validate_dataset_name(dataset)
    target = resolve_store(store)
    logger = get_run_logger()
    if by_reference:
        return _ingest_by_reference(source, dataset, target, message, metadata, source_options)
    with tempfile.TemporaryDirectory(prefix="gitfree-ingest-") as tmp:
        staging = Path(tmp) / dataset.rsplit("/", 1)[-1]
        staging.mkdir()
        path = fetch_source(source, staging, target, source_options)
        meta = {"source": source, **(metadata or {})}
        version = commit_dataset(
            dataset, path, store=target, message=message or f"ingested from {source}", metadata=meta
        )
    if version.created is False:
        logger.info(
            "unchanged: %s already holds %s (%s files, %s bytes)", version.ref, source, version.nfiles, version.size
        )
    else:
        logger.info("%s: %s files, %s bytes", version.ref, version.nfiles, version.size)
    return version


def _ingest_by_reference(
    source: str,
    dataset: str,
    target: Store,
    message: str,
    metadata: dict[str, JsonValue] | None,
    source_options: dict[str, Any] | None,
) -> Version:
    if source_options:
        raise InputError(
            "source_options (s3fs arguments, for a copy) are not taken by reference: a source on another endpoint or "
            "with credentials of its own takes the worker's GITFREE_SOURCE_ENDPOINT_URL, GITFREE_SOURCE_ACCESS_KEY_ID "
            "and GITFREE_SOURCE_SECRET_ACCESS_KEY (leave out source_options)"
        )
    meta = {"source": source, **(metadata or {})}
    text = message or f"ingested from {source}"
    version = commit_dataset(dataset, source, store=target, message=text, metadata=meta, by_reference=True)
    get_run_logger().info(
        "%s by reference to %s: %s files (new: %s)", version.ref, source, version.nfiles, version.created
    )
    return version


@flow(name="gitfree-pull", log_prints=True)
def pull_dataset_flow(ref: str, dest: str, store: StoreArg = None, overwrite: bool = False) -> Version:
    """Fetch a version into ``dest`` on the worker that runs this flow."""
    return pull_dataset(ref, dest, store=resolve_store(store), overwrite=overwrite)


@flow(name="gitfree-train-example", log_prints=True)
def train_example(ref: str, store: str | None = None, model_dataset: str = "models/sensor-mean") -> Version:
    """The example pipeline's second half: pull a data version, "train" a model, commit the model.

    The model is a small JSON file (count and mean of the numbers in the data's CSV files); its
    version records the data version it was trained on as an input.
    """
    target = resolve_store(store)
    with tempfile.TemporaryDirectory(prefix="gitfree-train-") as tmp:
        data = Path(tmp) / "data"
        version = pull_dataset(ref, data, store=target)
        values = []
        for csv in sorted(data.rglob("*.csv")) if data.is_dir() else [data]:
            for line in csv.read_text(errors="replace").splitlines()[1:]:
                field = line.rsplit(",", 1)[-1]
                try:
                    values.append(float(field))
                except ValueError:
                    continue
        mean = statistics.fmean(values) if values else None
        model = {"trained_on": version.ref, "values": len(values), "mean": mean}
        model_dir = Path(tmp) / "model"
        model_dir.mkdir()
        (model_dir / "model.json").write_text(json.dumps(model, indent=2) + "\n")
        metrics = {"values": len(values)} | ({"mean": mean} if mean is not None else {})  # a count stays an integer
        return commit_dataset(
            model_dataset, model_dir, store=target, message=f"trained on {version.ref}", metrics=metrics
        )


def train_trigger(dataset: str) -> DeploymentEventTrigger:
    """ "When ``dataset`` gets a new version, run the deployment" — with the version's ref as ``ref``."""
    return DeploymentEventTrigger(
        expect={COMMITTED_EVENT},
        match={"prefect.resource.id": f"gitfree.dataset.{dataset}"},
        parameters={"ref": "{{ event.payload.ref }}", "store": "{{ event.payload.store }}"},
    )
