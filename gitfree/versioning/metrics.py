"""Metrics across versions: the series :meth:`.Store.metrics` lists (docs/design.md, "Metrics").

A version's metrics are part of its record (numbers only: NaN and infinities are refused at commit), so
the series of a dataset is its records read newest first, in parallel, as ``log`` reads them; comparing
two versions is :meth:`.MetricsDiff.between`, and gating a promotion on them is :mod:`.promotion`.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence

from .catalog import Catalog
from .errors import InputError, NotFoundError
from .models import MetricsPoint, Version
from .refs import validate_dataset_name

__all__ = ["series"]


def series(catalog: Catalog, dataset: str, names: Sequence[str] | str | None, limit: int | None) -> list[MetricsPoint]:
    """See :meth:`.Store.metrics`."""
    validate_dataset_name(dataset)
    wanted = _metric_names(names)
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise InputError(f"limit must be a whole number of at least 1, not {limit!r}", options=(("limit", "--limit"),))
    numbers = sorted(catalog.numbers(dataset), reverse=True)
    if not numbers:
        raise catalog.not_found_dataset(dataset)
    points: list[MetricsPoint] = []
    seen: set[str] = set()
    first = len(numbers) if limit is None else limit + 1
    for _, record in catalog.records(dataset, numbers, first=first):
        if not isinstance(record, Version):
            continue  # a tombstone, or a record that cannot be read (warned about)
        seen.update(record.metrics)
        values = {k: v for k, v in record.metrics.items() if wanted is None or k in wanted}
        if values and (limit is None or len(points) < limit):
            points.append(
                MetricsPoint(ref=record.ref, number=record.number, created_at=record.created_at, metrics=values)
            )
        if limit is not None and len(points) >= limit and (wanted is None or seen.issuperset(wanted)):
            break  # enough, and every name asked for is known to exist
    missing = [name for name in wanted or () if name not in seen]
    if missing:
        raise _unknown_metrics(dataset, missing, seen)
    return points


def _metric_names(names: Sequence[str] | str | None) -> list[str] | None:
    """The metric names asked for (one name may be given as a string), deduplicated."""
    if names is None:
        return None
    wanted = [names] if isinstance(names, str) else list(names)
    if not wanted:
        raise InputError("names is empty: pass the metrics to list, or names=None for every one")
    bad = next((n for n in wanted if not isinstance(n, str) or not n), None)
    if bad is not None:
        raise InputError(f"a metric name is a non-empty string, not {bad!r}")
    return list(dict.fromkeys(wanted))


def _unknown_metrics(dataset: str, missing: Sequence[str], existing: Iterable[str]) -> NotFoundError:
    """``NotFoundError`` naming the metrics of ``dataset`` that exist (and a close match of a typo)."""
    names = sorted(existing)
    what = ", ".join(repr(n) for n in missing)
    noun = "metric" if len(missing) == 1 else "metrics"
    if not names:
        return NotFoundError(
            f"no version of {dataset!r} records the {noun} {what}: it records no metrics at all "
            "(commit with metrics={'name': number} to record some)",
            cli=f"no version of {dataset!r} records the {noun} {what}: it records no metrics at all "
            "(commit with --metric NAME=NUMBER to record some)",
        )
    close = difflib.get_close_matches(missing[0], names, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    shown = ", ".join(names[:20]) + (f" and {len(names) - 20} more" if len(names) > 20 else "")
    return NotFoundError(f"no version of {dataset!r} records the {noun} {what}{hint}; its metrics are: {shown}")
