"""Ready-made Prefect flows (needs the ``prefect`` extra)."""

from .ingest import fetch_source, ingest_dataset, pull_dataset_flow, train_example, train_trigger
from .pipeline import sales_pipeline
from .promote import promote_model, stage_trigger

__all__ = [
    "fetch_source",
    "ingest_dataset",
    "promote_model",
    "pull_dataset_flow",
    "sales_pipeline",
    "stage_trigger",
    "train_example",
    "train_trigger",
]
