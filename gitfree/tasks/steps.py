"""Versioned steps as Prefect tasks: :func:`gitfree.step` with the flow run's author, artifacts and events.

A step task runs only when its inputs' versions, its parameters or its code changed since a version of
its output was made (docs/design.md, "Versioned steps"). Its final state says what happened, in the
one line the step logs: ``Completed`` with the message ``featurize made features@8 (raw/sales@13,
window=7)`` when the body ran, or ``features@7 is up to date (raw/sales@12, window=7)`` when it did not
(nothing pulled, no body run, no artifact, no event).
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from prefect import Task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Completed

from gitfree.versioning import InputError, Ref, Step, Version
from gitfree.versioning import step as versioned_step

from . import _runtime
from .tasks import StoreLike, resolve_store, retry_if_transient

__all__ = ["StepTask", "step"]

CALL_KEYWORDS = ("force", "store", "return_state", "wait_for")
"""Keywords a call of a step task takes for itself (a step's function may not have parameters so named)."""
CACHE_OPTIONS = ("cache_policy", "cache_key_fn")
"""Prefect caching options a step task refuses: the step key decides whether the body runs."""


class StepTask(Task[..., Version]):
    """The Prefect task :func:`gitfree.tasks.step` makes: calling it returns the output's :class:`Version`.

    Its function returns a ``Completed`` state carrying the outcome line as its message, so that the task
    run's final state says whether the body ran; a call in a flow returns that state's result (the
    version), as any task's does (``return_state=True`` gives the state).
    """

    step: Step
    """The :class:`gitfree.Step` the task runs."""

    def __call__(self, *args: Any, return_state: bool = False, wait_for: Any = None, **kwargs: Any) -> Any:
        self._check_call(args, kwargs)
        returned = super().__call__(*args, return_state=return_state, wait_for=wait_for, **kwargs)
        if not return_state and isinstance(returned, State):
            return returned.result()
        return returned

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        """Submit a run of the step to the flow's task runner (a future of its version)."""
        self._check_call(args, {k: v for k, v in kwargs.items() if k not in ("return_state", "wait_for")})
        return super().submit(*args, **kwargs)

    def _check_call(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """A call the task cannot take (a typo in a keyword, a positional argument) in one line."""
        try:
            inspect.signature(self.fn).bind(*args, **kwargs)
        except TypeError as exc:
            names = ", ".join(f"{name}=" for name in inspect.signature(self.fn).parameters)
            raise InputError(f"cannot call the step task {self.name}: {exc}; it takes the keywords {names}") from None

    def with_options(self, **options: Any) -> StepTask:
        """The same step task with other Prefect options (Prefect's caching options are refused)."""
        _check_options(self.step.fn.__name__, options)
        made = super().with_options(**options)
        return _adopt(made, self.step)


def step(
    output: str,
    inputs: Mapping[str, str | Ref | Version | None] | None = None,
    store: StoreLike = None,
    *,
    paths: Mapping[str, Sequence[str]] | None = None,
    code_version: str | None = None,
    message: str | None = None,
    wait: float | None = None,
    workdir: str | os.PathLike[str] | None = None,
    **task_options: Any,
) -> Callable[[Callable[..., Any]], StepTask]:
    """Make a function a versioned step that runs as a Prefect task: it runs only when its inputs'
    versions, its parameters or its code changed.

    The function is written as for :func:`gitfree.step`: one path per input, the empty folder ``out``
    to write its output into, JSON parameters, and it may return a dict of metrics. The task is called
    with keywords: an input as a ref or a :class:`Version` (``featurize(raw=ingested, window=7)``), the
    parameters, ``force=True`` to run the body anyway, ``store=`` to use another store than the
    decorator's (a URL, a ``Store`` or a ``GitfreeStore`` block). It returns the output's version.

    When the body ran and made a new version, the task publishes the version's table artifact (key
    ``gitfree-<output>``) and the event ``gitfree.dataset.committed``, as :func:`commit_dataset` does,
    and the version records the flow run as its author. When the step is up to date the task finishes
    ``Completed`` with the message ``features@7 is up to date (raw/sales@12, window=7)``: nothing pulled,
    no body run, no artifact, no event. A retried task reuses its commit id: an attempt that committed
    and died before noting or publishing is finished by the retry without running the body again.
    Another worker running the same step on the same inputs is waited for (at most ``wait`` seconds).

    ``task_options`` are Prefect's (``retries=1``, ``retry_delay_seconds``, ``name``, ``tags``...).
    By default only failures a retry may fix are retried (:func:`retry_if_transient`: a body's own
    exception is; bad parameters, a missing input or an empty output are not). Prefect's caching is
    off and cannot be turned on (``cache_policy``, ``cache_key_fn``): the step key is the cache.

    Example:
        ```python
        from pathlib import Path
        from prefect import flow
        import gitfree.tasks

        @gitfree.tasks.step("features/sales", inputs={"raw": "raw/sales@latest"}, store="s3://ml-data/versions")
        def featurize(raw: Path, out: Path, window: int = 7) -> dict[str, float]:
            ...  # read raw/*.csv, write out/features.csv
            return {"rows": 120}

        @flow
        def nightly(window: int = 7):
            features = featurize(window=window)   # Completed "features/sales@3 is up to date (...)" if nothing changed
        ```
    """
    options = {"cache_policy": NO_CACHE, "retry_condition_fn": retry_if_transient, **task_options}

    def decorate(fn: Callable[..., Any]) -> StepTask:
        _check_options(fn.__name__, task_options)
        _check_names(fn)
        core = versioned_step(
            output,
            inputs,
            None,
            paths=paths,
            code_version=code_version,
            message=message,
            wait=wait,
            workdir=workdir,
        )(fn)
        made = StepTask(fn=_task_function(core, store), **options)
        return _adopt(made, core)

    return decorate


def _task_function(core: Step, default_store: StoreLike) -> Callable[..., Any]:
    """The function the Prefect task calls: run the step with the run's author and a retry-stable commit id,
    publish what it made, and return a ``Completed`` state whose message is the outcome line."""
    signature = _signature(core)

    @functools.wraps(core.fn)
    def run_step(*args: Any, **kwargs: Any) -> Version | State[Version]:
        arguments = signature.bind(*args, **kwargs).arguments
        force = bool(arguments.pop("force", False))
        chosen = arguments.pop("store", None)
        target = resolve_store(chosen if chosen is not None else default_store)
        commit_id = _runtime.commit_id(core.output)
        outcome = core.run(force=force, store=target, author=_runtime.author(), commit_id=commit_id, **arguments)
        version, line = outcome.version, outcome.line
        if not outcome.ran and version.created:
            # An earlier attempt of this task run made it (the core says so by its commit id) and died before
            # publishing: publish it now.
            line = f"{core.fn.__name__} made {version.ref} in an earlier attempt of this task run"
        if version.created:
            _runtime.publish(target, version)
        _runtime.run_logger().info("%s", line)
        if _runtime.in_task_run():
            return Completed(message=line, data=version)
        return version

    run_step.__signature__ = signature  # type: ignore[attr-defined]
    return run_step


def _signature(core: Step) -> inspect.Signature:
    """The task's parameters, all keyword-only: the step call's (inputs, parameters, ``force``), then
    ``store``."""
    call = inspect.signature(core)
    store = inspect.Parameter("store", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="StoreLike")
    return call.replace(parameters=[*call.parameters.values(), store])


def _check_options(fn: str, options: Mapping[str, Any]) -> None:
    for name in CACHE_OPTIONS:
        value = options.get(name)
        if value is not None and value is not NO_CACHE:
            raise InputError(
                f"the step task {fn} cannot take {name}=: whether its body runs is decided by its step key (the "
                f"exact input versions, parameters and code); Prefect's cache would return an old version "
                f"when an input ref such as 'raw@latest' names a new one. Leave {name} out"
            )


def _check_names(fn: Callable[..., Any]) -> None:
    taken = [name for name in inspect.signature(fn).parameters if name in CALL_KEYWORDS]
    if taken:
        raise InputError(
            f"the step {fn.__name__} has a parameter {taken[0]!r}, which a call of a step task takes for itself; "
            f"rename it"
        )


def _adopt(task: Task[..., Any], core: Step) -> StepTask:
    """``task`` as a :class:`StepTask` of ``core`` (Prefect's ``with_options`` makes a plain ``Task``)."""
    task.__class__ = StepTask
    adopted: StepTask = task  # type: ignore[assignment]
    adopted.step = core
    return adopted
