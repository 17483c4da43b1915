"""``gitfree-flows``: start scheduled ingestion or the example pipeline with one command.

gitfree-flows ingest SOURCE DATASET [--cron "0 2 * * *"]     # serve a scheduled ingestion
gitfree-flows ingest SOURCE DATASET                          # run it once, now
gitfree-flows pipeline SOURCE DATASET [--cron ...]           # ingest + train when DATASET gets a version
gitfree-flows sales-pipeline SOURCE [--cron ...]            # ingest, featurize, train: versioned steps
gitfree-flows pull REF DEST                                  # fetch a version on this worker

The arguments (dataset name, ref, local source, schedule, store settings) are checked before
Prefect is touched; any failure is one line on stderr with the exit codes of ``gitfree``
(2 bad usage or input, 3 not found, 6 configuration, ...).
"""

from __future__ import annotations

import math
import urllib.parse
from pathlib import Path

import click

from gitfree.cli import OneLineErrors
from gitfree.versioning import (
    STORE_MARKER,
    InputError,
    Store,
    format_count,
    format_size,
    parse_ref,
    validate_dataset_name,
)

_STORE_HELP = "Store URL (s3://bucket/prefix, file:///path). Default: GITFREE_STORE, else a local directory."


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gitfree")
def main() -> None:
    """Run gitfree's Prefect flows (the store comes from --store or GITFREE_STORE, access from GITFREE_*)."""


store_option = click.option(
    "--store", "store_url", envvar="GITFREE_STORE", show_envvar=True, metavar="URL", help=_STORE_HELP
)


def _slug(dataset: str) -> str:
    return validate_dataset_name(dataset).replace("/", "-")


def _check_store(store_url: str | None, *, reach: bool = False) -> Store:
    """The store, configured (URL, endpoint, credentials pairing, worker cache); ``reach``: and answering.

    Serving does not reach for it (the server may come up after the worker, as in docker-compose).
    """
    store = Store(store_url)
    if reach:
        store.backend.exists(STORE_MARKER)  # one small request: an unreachable endpoint or bad credentials fail here
    return store


def _check_source(source: str) -> None:
    """A local source must exist; a remote one must have a scheme the ingestion knows."""
    parts = urllib.parse.urlsplit(source)
    scheme = parts.scheme.lower()
    if scheme in ("", "file"):
        path = Path(urllib.parse.unquote(parts.path) if scheme else source).expanduser()
        if not path.exists():
            raise InputError(f"the ingestion source {path} does not exist: give an existing file or directory")
    elif scheme == "s3":
        if not parts.netloc:
            raise InputError(f"the ingestion source {source!r} names no bucket: write it as s3://BUCKET/PREFIX")
    elif scheme not in ("http", "https"):
        raise InputError(f"cannot ingest {source!r}: use a local path, an s3:// prefix or an http(s) URL")


def _check_cron(cron: str) -> None:
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=cron)
    except ValidationError:
        raise InputError(
            f"--cron {cron!r} is not a cron schedule: give five fields, e.g. '0 2 * * *' (02:00 every day)"
        ) from None


@main.command()
@click.argument("source")
@click.argument("dataset")
@click.option(
    "--cron", metavar="SCHEDULE", help="Serve the ingestion on this cron schedule (e.g. '0 2 * * *') instead of once."
)
@store_option
def ingest(source: str, dataset: str, cron: str | None, store_url: str | None) -> None:
    """Commit SOURCE (a local path, an s3:// prefix or an http(s) URL) as the next version of DATASET.

    Without --cron it runs once, now, and prints the version (or "unchanged" when the source
    holds what the newest version does). With --cron it serves a deployment on that schedule.
    """
    slug = _slug(dataset)
    _check_source(source)
    _check_store(store_url, reach=not cron)
    if cron:
        _check_cron(cron)
    from .ingest import ingest_dataset

    parameters = {"source": source, "dataset": dataset, "store": store_url}
    if cron:
        ingest_dataset.serve(name=f"ingest-{slug}", cron=cron, parameters=parameters)
        return
    version = ingest_dataset(source, dataset, store=store_url)
    amount = f"{format_count(version.nfiles, 'file')}, {format_size(version.size)}"
    if version.created is False:
        click.echo(f"unchanged: {version.ref} already holds this data ({amount})")
    else:
        click.echo(f"{version.ref}: {amount}")


@main.command()
@click.argument("source")
@click.argument("dataset")
@click.option(
    "--cron", default="*/10 * * * *", show_default=True, metavar="SCHEDULE", help="Cron schedule of the ingestion."
)
@store_option
@click.option(
    "--model-dataset",
    default="models/sensor-mean",
    show_default=True,
    metavar="DATASET",
    help="Dataset the training commits its model to.",
)
def pipeline(source: str, dataset: str, cron: str, store_url: str | None, model_dataset: str) -> None:
    """Serve the example pipeline: scheduled ingestion of SOURCE as DATASET, and training on each new version."""
    slug = _slug(dataset)
    validate_dataset_name(model_dataset)
    _check_source(source)
    _check_store(store_url)
    _check_cron(cron)
    from prefect import serve

    from .ingest import ingest_dataset, train_example, train_trigger

    # to_deployment returns a RunnerDeployment when called outside an event loop, as here
    serve(
        ingest_dataset.to_deployment(  # type: ignore[arg-type]
            name=f"ingest-{slug}", cron=cron, parameters={"source": source, "dataset": dataset, "store": store_url}
        ),
        train_example.to_deployment(  # type: ignore[arg-type]
            name=f"train-on-{slug}", triggers=[train_trigger(dataset)], parameters={"model_dataset": model_dataset}
        ),
    )


@main.command("sales-pipeline")
@click.argument("source")
@click.option("--raw", default="raw/sales", show_default=True, metavar="DATASET", help="Dataset of the raw CSV files.")
@click.option("--window", default=7, show_default=True, help="Days in featurize's rolling mean (at least 1).")
@click.option("--alpha", default=0.1, show_default=True, help="L2 penalty of train's least squares (at least 0).")
@click.option("--cron", metavar="SCHEDULE", help="Serve the pipeline on this cron schedule instead of running it once.")
@store_option
def sales_pipeline(source: str, raw: str, window: int, alpha: float, cron: str | None, store_url: str | None) -> None:
    """Run the example pipeline of versioned steps on SOURCE (CSV files of date,units): ingest, featurize, train.

    Each step runs only when the versions it reads, its parameters or its code changed. Without --cron it
    runs once, now, and prints each version and whether it is new; with --cron it serves a deployment.
    """
    slug = _slug(raw)
    if window < 1:
        raise InputError(f"--window {window} is not a number of days: give 1 or more")
    if not (math.isfinite(alpha) and alpha >= 0):
        raise InputError(f"--alpha {alpha} is not a penalty: give a number of 0 or more")
    _check_source(source)
    _check_store(store_url, reach=not cron)
    if cron:
        _check_cron(cron)
    from .pipeline import sales_pipeline as pipeline_flow

    parameters = {"source": source, "store": store_url, "raw": raw, "window": window, "alpha": alpha}
    if cron:
        pipeline_flow.serve(name=f"steps-on-{slug}", cron=cron, parameters=parameters)
        return
    for name, version in pipeline_flow(**parameters).items():  # type: ignore[arg-type]
        click.echo(f"{name}: {version.ref} ({'new' if version.created else 'unchanged'})")


@main.command()
@click.argument("ref")
@click.argument("dest")
@store_option
@click.option("--overwrite", is_flag=True, help="Replace DEST if it holds other data.")
def pull(ref: str, dest: str, store_url: str | None, overwrite: bool) -> None:
    """Fetch the version REF (images, images@3, images@prod) into DEST, in a flow run on this worker."""
    parse_ref(ref)
    _check_store(store_url).show(ref)  # a version that does not exist is one line, before any flow run
    from .ingest import pull_dataset_flow

    version = pull_dataset_flow(ref, dest, store=store_url, overwrite=overwrite)
    click.echo(f"pulled {version.ref} to {dest}")


if __name__ == "__main__":
    main()
