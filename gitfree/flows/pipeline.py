"""The example pipeline as versioned steps: ingest raw sales, featurize them, train a model on the features.

``ingest_dataset`` commits the raw CSVs (no version when they did not change); ``featurize`` and ``train``
are :func:`gitfree.tasks.step` tasks, so each runs only when the versions it reads, its parameters or its
code changed: a rerun on unchanged data runs no step body, a changed raw file reruns both steps, and a new
``alpha`` reruns only ``train``. Run it once (``gitfree-flows sales-pipeline examples/sales``) or serve it
on a schedule (``--cron``).

The step bodies are plain functions of the standard library (``featurize.step.fn``, ``train.step.fn``):
Python reads files and writes files; gitfree decides whether they run, and versions what they write.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from pathlib import Path

from prefect import flow, get_run_logger

from gitfree.tasks import GitfreeStore, resolve_store, step
from gitfree.versioning import InputError, Version, validate_dataset_name

from .ingest import ingest_dataset

__all__ = ["FEATURES", "MODEL", "featurize", "sales_pipeline", "train"]

FEATURES = "features/sales"
"""The dataset ``featurize`` writes."""
MODEL = "models/sales"
"""The dataset ``train`` writes."""


@step(FEATURES, inputs={"raw": "raw/sales@latest"})
def featurize(raw: Path, out: Path, window: int = 7) -> dict[str, float]:
    """Each day's units beside the mean of the ``window`` days before it, for every CSV (``date,units``) in
    ``raw``: ``out/features.csv`` with the columns ``series,date,rolling_mean,units``."""
    if window < 1:
        raise InputError(f"featurize: window={window} is not a number of days; give 1 or more")
    rows = []
    for path in sorted(raw.rglob("*.csv")):
        with path.open(newline="", encoding="utf-8") as f:
            try:
                days = [(row["date"], float(row["units"])) for row in csv.DictReader(f)]
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"featurize: {path.name} is not a CSV of date,units rows ({exc})") from None
        series = path.relative_to(raw).with_suffix("").as_posix()
        for i in range(window, len(days)):
            mean = statistics.fmean(units for _, units in days[i - window : i])
            rows.append((series, days[i][0], round(mean, 4), days[i][1]))
    with (out / "features.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("series", "date", "rolling_mean", "units"))
        writer.writerows(rows)
    return {"rows": len(rows)}


@step(MODEL, inputs={"features": f"{FEATURES}@latest"})
def train(features: Path, out: Path, alpha: float = 0.1) -> dict[str, float]:
    """Ridge regression ``units ≈ intercept + slope * rolling_mean`` (penalty ``alpha`` per row on the slope of
    the standardized rolling mean), written to ``out/model.json``; returns the training ``rmse`` and ``rows``."""
    if not alpha >= 0:
        raise InputError(f"train: alpha={alpha} is not a penalty; give 0 or more")
    with (features / "features.csv").open(newline="", encoding="utf-8") as f:
        pairs = [(float(row["rolling_mean"]), float(row["units"])) for row in csv.DictReader(f)]
    if len(pairs) < 2:
        raise InputError(f"train: {len(pairs)} feature rows, a fit needs 2; is the window longer than the data?")
    x_mean = statistics.fmean(x for x, _ in pairs)
    y_mean = statistics.fmean(y for _, y in pairs)
    sxy = sum((x - x_mean) * (y - y_mean) for x, y in pairs)
    sxx = sum((x - x_mean) ** 2 for x, _ in pairs)
    slope = sxy / (sxx * (1 + alpha)) if sxx else 0.0
    intercept = y_mean - slope * x_mean
    rmse = math.sqrt(statistics.fmean((y - intercept - slope * x) ** 2 for x, y in pairs))
    model = {"intercept": round(intercept, 6), "slope": round(slope, 6), "alpha": alpha, "rows": len(pairs)}
    (out / "model.json").write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
    return {"rmse": round(rmse, 6), "rows": len(pairs)}


@flow(name="gitfree-sales-pipeline", log_prints=True)
def sales_pipeline(
    source: str,
    store: str | GitfreeStore | None = None,
    raw: str = "raw/sales",
    window: int = 7,
    alpha: float = 0.1,
) -> dict[str, Version]:
    """Ingest ``source`` as ``raw``, then featurize it (``window`` days) and train on it (``alpha``): each
    step runs only when what it reads or its parameters changed. Returns the three versions by name."""
    validate_dataset_name(raw)
    ingested = ingest_dataset(source, raw, store=store)
    target = resolve_store(store)
    features = featurize(raw=ingested, window=window, store=target)
    model = train(features=features, alpha=alpha, store=target)
    get_run_logger().info("model %s: %s", model.ref, ", ".join(f"{k} {v}" for k, v in sorted(model.metrics.items())))
    return {"raw": ingested, "features": features, "model": model}
