"""``gitfree-flows``: start scheduled ingestion or the example pipeline with one command.

gitfree-flows ingest SOURCE DATASET [--cron "0 2 * * *"]     # serve a scheduled ingestion
gitfree-flows ingest SOURCE DATASET                          # run it once, now
gitfree-flows pipeline SOURCE DATASET [--cron ...]           # ingest + train when DATASET gets a version
gitfree-flows pull REF DEST                                  # fetch a version on this worker
"""

from __future__ import annotations

import click

from gitfree.versioning.refs import validate_dataset_name


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Run gitfree's Prefect flows (the store comes from GITFREE_STORE and GITFREE_*)."""


def _slug(dataset: str) -> str:
    return validate_dataset_name(dataset).replace("/", "-")


@main.command()
@click.argument("source")
@click.argument("dataset")
@click.option("--cron", help="Serve on this schedule instead of running once.")
@click.option("--store", "store_url", envvar="GITFREE_STORE", help="Store URL.")
def ingest(source: str, dataset: str, cron: str | None, store_url: str | None) -> None:
    """Commit SOURCE (path, s3:// prefix or http(s) URL) as DATASET, once or on a schedule."""
    from .ingest import ingest_dataset

    parameters = {"source": source, "dataset": dataset, "store": store_url}
    if cron:
        ingest_dataset.serve(name=f"ingest-{_slug(dataset)}", cron=cron, parameters=parameters)
    else:
        version = ingest_dataset(source, dataset, store=store_url)
        click.echo(f"{version.ref}: {version.nfiles} files, {version.size} bytes")


@main.command()
@click.argument("source")
@click.argument("dataset")
@click.option("--cron", default="*/10 * * * *", show_default=True, help="Ingestion schedule.")
@click.option("--store", "store_url", envvar="GITFREE_STORE", help="Store URL.")
@click.option("--model-dataset", default="models/sensor-mean", show_default=True)
def pipeline(source: str, dataset: str, cron: str, store_url: str | None, model_dataset: str) -> None:
    """Serve the example pipeline: scheduled ingestion, and training triggered by each new version."""
    from prefect import serve

    from .ingest import ingest_dataset, train_example, train_trigger

    slug = _slug(dataset)
    # to_deployment returns a RunnerDeployment when called outside an event loop, as here
    serve(
        ingest_dataset.to_deployment(  # type: ignore[arg-type]
            name=f"ingest-{slug}", cron=cron, parameters={"source": source, "dataset": dataset, "store": store_url}
        ),
        train_example.to_deployment(  # type: ignore[arg-type]
            name=f"train-on-{slug}", triggers=[train_trigger(dataset)], parameters={"model_dataset": model_dataset}
        ),
    )


@main.command()
@click.argument("ref")
@click.argument("dest")
@click.option("--store", "store_url", envvar="GITFREE_STORE", help="Store URL.")
@click.option("--overwrite", is_flag=True)
def pull(ref: str, dest: str, store_url: str | None, overwrite: bool) -> None:
    """Fetch REF into DEST in a flow run."""
    from .ingest import pull_dataset_flow

    version = pull_dataset_flow(ref, dest, store=store_url, overwrite=overwrite)
    click.echo(f"pulled {version.ref} to {dest}")


if __name__ == "__main__":
    main()
