"""A three-step pipeline whose steps skip unchanged work: raw sales CSVs -> features -> a model.

Put this file in your DAGs folder with the connection ``gitfree_default`` (see docs/airflow.md).

- ``sales_pipeline`` ingests the folder ``params.source`` as the next version of ``demo/sales``
  (``GitfreeCommitOperator``), then runs two versioned steps: ``featurize`` (the sales CSVs -> each row's
  price and the mean units sold over the last ``params.window`` rows, ``demo/sales-features``) and
  ``train`` (a least-squares line through them, ridge ``params.ridge``: ``model.json`` and its metrics,
  ``demo/sales-model``). A step runs its body only when the exact versions it reads, its parameters or
  its code changed; otherwise its task succeeds at once with ``demo/sales-model@3 is up to date
  (demo/sales-features@2, ridge=0.0)`` in its log and emits no asset event.
- ``sales_model_report`` is scheduled on the model's asset ``gitfree://demo/sales-model``: it runs once
  per new model, never for a pipeline run that changed nothing, and reports the model's metrics.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
from pathlib import Path

import pendulum
from airflow.sdk import dag, task

from gitfree.airflow import GitfreeCommitOperator, dataset_asset, pull_dataset, step

MODEL = dataset_asset("demo/sales-model")  # the asset gitfree://demo/sales-model
SOURCE = str(Path(__file__).resolve().parent / "sales")  # examples/airflow/sales in this repository
WORKDIR = str(Path(tempfile.gettempdir()) / "gitfree-airflow")  # where sales_model_report pulls to


@step(output="demo/sales-features", inputs={"raw": "demo/sales@latest"})
def featurize(raw: Path, out: Path, window: int = 3) -> dict[str, float]:
    """Each row's price and the mean units sold over the last ``window`` rows, from every CSV of ``raw``."""
    rows = []
    for path in sorted(raw.rglob("*.csv")):
        with path.open(newline="") as f:
            rows += [(float(row["price"]), float(row["units"])) for row in csv.DictReader(f)]
    print(f"featurize: read {len(rows)} rows, window {window}")
    with (out / "features.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["price", "units_avg"])
        for i, (price, _) in enumerate(rows):
            recent = [units for _, units in rows[max(0, i - window + 1) : i + 1]]
            writer.writerow([price, round(sum(recent) / len(recent), 6)])
    return {"rows": len(rows)}


@step(output="demo/sales-model", inputs={"features": "demo/sales-features@latest"})
def train(features: Path, out: Path, ridge: float = 0.0) -> dict[str, float]:
    """Fit ``units_avg = slope * price + intercept`` by least squares, the slope shrunk by ``ridge``."""
    with (features / "features.csv").open(newline="") as f:
        points = [(float(row["price"]), float(row["units_avg"])) for row in csv.DictReader(f)]
    n = len(points)
    mean_x, mean_y = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / (sxx + ridge) if sxx + ridge else 0.0
    intercept = mean_y - slope * mean_x
    rmse = math.sqrt(sum((y - slope * x - intercept) ** 2 for x, y in points) / n)
    print(f"train: fitted {n} rows, ridge {ridge}, rmse {rmse:.4f}")
    model = {"slope": round(slope, 6), "intercept": round(intercept, 6), "ridge": ridge}
    (out / "model.json").write_text(json.dumps(model, indent=2) + "\n")
    return {"rmse": round(rmse, 6), "rows": n}


@dag(
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"source": SOURCE, "window": 3, "ridge": 0.0},
    render_template_as_native_obj=True,  # "{{ params.window }}" is the number 3, not the text "3"
    tags=["gitfree"],
)
def sales_pipeline() -> None:
    ingest = GitfreeCommitOperator(
        task_id="ingest", dataset="demo/sales", path="{{ params.source }}", message="ingested by {{ run_id }}"
    )
    # Each step reads the exact version the task before it returned (its XCom), and runs only if it changed.
    features = featurize(raw=ingest.output, window="{{ params.window }}")
    train(features=features, ridge="{{ params.ridge }}")


@dag(schedule=[MODEL], params={"workdir": WORKDIR}, is_paused_upon_creation=False, tags=["gitfree"])
def sales_model_report() -> None:
    @task(inlets=[MODEL])
    def report(**context: object) -> dict[str, object]:
        params: dict[str, str] = context["params"]  # type: ignore[assignment]
        version = pull_dataset(MODEL, Path(params["workdir"]) / "sales-model", overwrite=True)
        model = json.loads((Path(params["workdir"]) / "sales-model" / "model.json").read_text())
        print(f"report: {version.ref} rmse {version.metrics['rmse']} on {version.metrics['rows']:.0f} rows")
        return {"ref": version.ref, "metrics": version.metrics, "model": model}

    report()


sales_pipeline()
sales_model_report()
