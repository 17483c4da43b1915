"""Promotion by stage, with metric gates and a stage order; and a dataset's audit trail.

A stage is a tag (``staging``, ``production``). :func:`promote` reads the stage's record, judges the
candidate against the version it names (docs/design.md, "Tag moves": promotion), then moves the tag only
from that same record (``expect_seq``): a promotion judged against a holder that has since been replaced
is refused with ``ConflictError``, never applied to the new holder. What the gate compared is kept in the
record (``gate``) and so in the tag's history. :func:`audit` is one timeline of a dataset's commits,
drops and tag writes.
"""

from __future__ import annotations

import logging
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from . import layout, protocol
from .backends import KeyExists, KeyMissing, OutcomeUnknown, PreconditionFailed
from .catalog import Catalog
from .errors import ConflictError, GateError, InputError, NotFoundError
from .leases import Coordinator
from .models import AuditEvent, Author, Dropped, Metric, Stages, Tag, TagEvent, Version, utcnow
from .refs import validate_dataset_name, validate_tag_name

__all__ = ["Requirement", "audit", "parse_requirements", "promote", "set_stages", "stages", "tag_history"]

logger = logging.getLogger("gitfree")

_COMPARE: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}
_FAILED = {">=": "<", ">": "<=", "<=": ">", "<": ">=", "==": "!="}
"""What a failed comparison shows: ``accuracy 0.91 < 0.93`` for a gate ``accuracy >=``."""
_SPEC = re.compile(r"\s*(>=|<=|==|>|<)\s*(\S.*?)?\s*")
_NAMED = re.compile(r"\s*([^<>=\s][^<>=]*?)\s*((?:>=|<=|==|>|<).*)")
_EXAMPLES = "e.g. 'accuracy>=' (at least the current holder's) or 'f1>=0.9' (at least 0.9)"


@dataclass(frozen=True)
class Requirement:
    """One metric gate: ``metric op bound``, or ``metric op`` the stage's current holder's value."""

    metric: str
    op: str
    bound: Metric | None = None

    def __str__(self) -> str:
        return f"{self.metric} {self.op}" + (f" {_shown(self.bound)}" if self.bound is not None else "")


def parse_requirements(require: Mapping[str, str] | Iterable[str] | None) -> list[Requirement]:
    """``{"accuracy": ">=", "f1": ">= 0.9"}`` or ``["accuracy>=", "f1>=0.9"]`` as requirements; ``InputError``
    for anything else (an unknown operator, a bound that is not a finite number)."""
    if require is None:
        return []
    if isinstance(require, str):
        require = [require]
    pairs: list[tuple[str, str]] = []
    if isinstance(require, Mapping):
        pairs = [(str(name), str(spec)) for name, spec in require.items()]
    else:
        for text in require:
            named = _NAMED.fullmatch(str(text))
            if named is None:
                raise InputError(f"the requirement {str(text)[:80]!r} is not METRIC OP [NUMBER] ({_EXAMPLES})")
            pairs.append((named[1], named[2]))
    return [_requirement(name, spec) for name, spec in pairs]


def _requirement(name: str, spec: str) -> Requirement:
    match = _SPEC.fullmatch(spec)
    if not name.strip() or match is None:
        raise InputError(
            f"the requirement {name!r}: {spec[:60]!r} is not an operator (>=, >, <=, <, ==) with an optional number "
            f"({_EXAMPLES})"
        )
    bound: Metric | None = None
    if match[2] is not None:
        try:
            bound = int(match[2]) if re.fullmatch(r"[+-]?[0-9]+", match[2]) else float(match[2])
        except ValueError:
            raise InputError(f"the requirement {name!r}: {match[2][:40]!r} is not a number ({_EXAMPLES})") from None
        if not math.isfinite(bound):
            raise InputError(f"the requirement {name!r}: the bound must be a finite number, not {match[2]!r}")
    return Requirement(name.strip(), match[1], bound)


def _shown(value: Metric) -> str:
    return str(value) if isinstance(value, int) else repr(value)


# ---------------------------------------------------------------------------- the gate


def _check_known(requirements: Sequence[Requirement], candidate: Version, holder: Version | None) -> None:
    """A metric neither the candidate nor the holder has is a typo, not a refusal."""
    have = [candidate, *([holder] if holder is not None else [])]
    for requirement in requirements:
        if all(requirement.metric not in v.metrics for v in have):
            listed = "; ".join(f"{v.ref} has {', '.join(sorted(v.metrics)) or 'no metrics'}" for v in have)
            raise InputError(f"no version has the metric {requirement.metric!r} the promotion requires: {listed}")


def judge(
    requirements: Sequence[Requirement], candidate: Version, holder: Version | None, stage: str
) -> tuple[list[str], list[str]]:
    """What each requirement found: ``(passed, failed)`` lines, e.g. ``accuracy 0.95 >= 0.93 of
    models/churn@6 (production)`` and ``accuracy 0.91 < 0.93 of models/churn@6 (production)``."""
    _check_known(requirements, candidate, holder)
    passed: list[str] = []
    failed: list[str] = []
    for r in requirements:
        value = candidate.metrics.get(r.metric)
        if value is None:
            failed.append(f"{candidate.ref} has no metric {r.metric!r}")
            continue
        if r.bound is not None:
            against, of = r.bound, ""
        elif holder is None:
            passed.append(f"{r} not applied: {stage} had no holder")
            continue
        elif r.metric not in holder.metrics:
            failed.append(f"{holder.ref} ({stage}) has no metric {r.metric!r} to compare with")
            continue
        else:
            against, of = holder.metrics[r.metric], f" of {holder.ref} ({stage})"
        ok = _COMPARE[r.op](value, against)
        (passed if ok else failed).append(
            f"{r.metric} {_shown(value)} {r.op if ok else _FAILED[r.op]} {_shown(against)}{of}"
        )
    return passed, failed


# ---------------------------------------------------------------------------- stage order


def _order(catalog: Catalog, candidate: Version, stage: str) -> str | None:
    """With a stage order, a version enters a stage only while it holds the stage before it: what it held,
    or ``None`` for the first stage or no order. ``InputError`` for a stage not in the order."""
    record, _ = catalog.stages(candidate.dataset)
    if record is None or not record.stages:
        return None
    order = " → ".join(record.stages)
    if stage not in record.stages:
        raise InputError(
            f"{stage!r} is not a stage of {candidate.dataset!r}: its stages are {order} (set_stages changes them)",
            options=(("set_stages", "`gitfree stages`"),),
        )
    index = record.stages.index(stage)
    if index == 0:
        return None
    before = record.stages[index - 1]
    held = _holder(catalog, candidate.dataset, before)[0]
    if held is None or held.number != candidate.number:
        now = f"{before} is at {held.version_ref}" if held is not None else f"{before} has no version"
        raise GateError(
            f"refused to promote {candidate.ref} to {stage}: the stages of {candidate.dataset!r} are {order}, and "
            f"{candidate.ref} does not hold {before} ({now}); promote it to {before} first"
        )
    return f"held {before}"


def _holder(catalog: Catalog, dataset: str, stage: str) -> tuple[Tag | None, int]:
    """The stage's tag (``None`` when it has none, or it was deleted) and the ``seq`` to move it from."""
    try:
        record, _ = catalog.read_tag(layout.tag_key(dataset, stage))
    except KeyMissing:
        return None, protocol.ABSENT
    return (None if record.deleted else record), record.seq


# ---------------------------------------------------------------------------- promote


def promote(
    catalog: Catalog,
    coordinator: Coordinator,
    candidate: Version,
    stage: str,
    *,
    require: Mapping[str, str] | Iterable[str] | None,
    message: str,
    author: Author,
    attempts: int,
) -> Tag:
    """Move the tag ``stage`` to ``candidate`` if the stage order and the metric gate allow it; see
    :meth:`.Store.promote`."""
    validate_tag_name(stage)
    requirements = parse_requirements(require)
    current, seq = _holder(catalog, candidate.dataset, stage)
    if current is not None and current.number == candidate.number:
        _check_known(requirements, candidate, None)  # a misspelt metric is an error even when nothing is to do
        logger.info("%s already holds %s: nothing to promote", candidate.ref, stage)
        return current.model_copy(update={"written": False})
    held = _order(catalog, candidate, stage)
    holder = _version_of(catalog, current)
    passed, failed = judge(requirements, candidate, holder, stage)
    if failed:
        raise GateError(f"refused to promote {candidate.ref} to {stage}: {'; '.join(failed)}")
    if current is None and any(r.bound is None for r in requirements):
        logger.info("%s had no holder: promoting %s without comparing its metrics", stage, candidate.ref)
    gate = "; ".join([*passed, *([held] if held else [])])
    return protocol.move_tag(
        catalog,
        coordinator,
        candidate,
        stage,
        move=True,
        expect=None,
        attempts=attempts,
        author=author,
        message=message,
        gate=gate,
        expect_seq=seq,
    )


def _version_of(catalog: Catalog, tag: Tag | None) -> Version | None:
    if tag is None:
        return None
    try:
        return catalog.version(tag.dataset, tag.number)
    except KeyMissing:  # a tag naming a dropped version (fsck's dangling_tag): nothing to compare with
        logger.warning("%s points at %s, which does not exist; the gate compares with nothing", tag.ref, tag.number)
        return None


def set_stages(catalog: Catalog, dataset: str, stages: Sequence[str], *, author: Author, attempts: int) -> Stages:
    """Write the stage order of ``dataset`` (create-only the first time, then compare-and-swap); see
    :meth:`.Store.set_stages`."""
    validate_dataset_name(dataset)
    names = [validate_tag_name(s) for s in stages]
    if len(set(names)) != len(names):
        raise InputError(f"the stages {' → '.join(names)} name a stage twice; give each once, in order")
    if not catalog.numbers(dataset):
        raise catalog.not_found_dataset(dataset)
    catalog.ensure_writable()
    key = layout.stages_key(dataset)
    for _ in range(attempts):
        current, etag = catalog.stages(dataset)
        if current is not None and current.stages == names:
            return current
        record = Stages(dataset=dataset, stages=names, created_at=utcnow(), author=author)
        try:
            if current is None:
                catalog.create(key, record)
            else:
                catalog.swap(key, record, etag)
            return record
        except (KeyExists, PreconditionFailed, OutcomeUnknown):
            continue  # read again: ours after a lost answer, or someone else's to replace
    raise ConflictError(f"could not set the stages of {dataset!r}: others kept changing them at the same time; retry")


def stages(catalog: Catalog, dataset: str) -> list[str]:
    """See :meth:`.Store.stages`."""
    validate_dataset_name(dataset)
    record, _ = catalog.stages(dataset)
    if record is None and not catalog.numbers(dataset):  # a misspelt name is not "no stage order"
        raise catalog.not_found_dataset(dataset)
    return list(record.stages) if record is not None else []


# ---------------------------------------------------------------------------- tag history and audit


def tag_history(catalog: Catalog, dataset: str, tag: str) -> list[TagEvent]:
    """See :meth:`.Store.tag_history`."""
    validate_dataset_name(dataset)
    validate_tag_name(tag)
    history = catalog.tag_histories(dataset, tag).get(tag)
    if not history:
        names = [t.tag for t in catalog.tags(dataset)]  # NotFoundError for a missing dataset
        have = f"its tags are: {', '.join(names)}" if names else "it has no tags"
        raise NotFoundError(f"{dataset!r} has no tag {tag!r} and never had; {have}")
    return history


def tag_events(catalog: Catalog, dataset: str, number: int | None = None) -> list[TagEvent]:
    """See :meth:`.Store.tag_events`."""
    validate_dataset_name(dataset)
    histories = catalog.tag_histories(dataset)
    if not histories and not catalog.numbers(dataset):  # a misspelt name is not "no tags"
        raise catalog.not_found_dataset(dataset)
    events = [event for _, history in sorted(histories.items()) for event in history]
    return [e for e in events if number is None or number in (e.number, e.previous)]


def audit(catalog: Catalog, dataset: str, limit: int | None = None) -> list[AuditEvent]:
    """Commits, drops and tag writes of ``dataset``, newest first (at most ``limit``); see :meth:`.Store.audit`."""
    validate_dataset_name(dataset)
    numbers = catalog.numbers(dataset)
    histories = catalog.tag_histories(dataset)
    if not numbers and not histories:
        raise catalog.not_found_dataset(dataset)
    events: list[AuditEvent] = []
    for number, record in catalog.records(dataset, numbers):
        if isinstance(record, Version):
            events.append(_commit_event(record))
        elif isinstance(record, Dropped):
            events += [
                AuditEvent(at=record.created_at, kind="commit", action="committed", dataset=dataset, number=number),
                AuditEvent(
                    at=record.dropped_at,
                    kind="dropped",
                    action="dropped",
                    dataset=dataset,
                    number=number,
                    author=record.dropped_by,
                ),
            ]
    for history in histories.values():
        events += [
            AuditEvent(
                at=e.created_at,
                kind="tag",
                action=e.action,
                dataset=dataset,
                number=e.number,
                tag=e.tag,
                previous=e.previous,
                seq=e.seq,
                author=e.author,
                message=e.message,
                gate=e.gate,
            )
            for e in history
        ]
    events.sort(key=lambda e: (e.at, e.seq or 0, e.number or 0), reverse=True)
    return events[:limit] if limit is not None else events


def _commit_event(version: Version) -> AuditEvent:
    return AuditEvent(
        at=version.created_at,
        kind="commit",
        action="committed",
        dataset=version.dataset,
        number=version.number,
        author=version.author,
        message=version.message,
    )
