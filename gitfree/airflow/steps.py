"""Versioned steps as Airflow tasks: :func:`step` (a TaskFlow decorator) and :func:`run_step` (inside any task).

A versioned step (:func:`gitfree.step`) runs its body only when its input versions, parameters or code
changed. Here it runs with the task's store (its Airflow connection), the DAG run and task as the author of
the version it makes, and a commit id that every try of the task instance shares. Its output's asset event
(``gitfree://<output>``, the version in ``extra``) is emitted only when this task instance made a new
version: an up-to-date step's task succeeds, logs ``demo/features@7 is up to date (demo/sales@12,
window=7)`` and emits nothing, so a DAG scheduled on the output's asset runs only when the output changed.

A plain :func:`gitfree.step` called inside an Airflow ``@task`` knows nothing of Airflow: it opens its own
store (its ``store=`` or ``GITFREE_STORE``, not the connection), records no DAG run in its author and emits
no asset event. A task with ``outlets=[dataset_outlet(output)]`` then never emits one, and a task with
``outlets=[dataset_asset(output)]`` emits one each time it succeeds, whether the step made a version or
was up to date. Call it through :func:`run_step` instead (docs/airflow.md, "Versioned steps").
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from airflow.sdk import BaseOperator
from airflow.sdk.bases.decorator import DecoratedOperator, task_decorator_factory
from airflow.sdk.definitions.context import KNOWN_CONTEXT_KEYS
from pydantic import JsonValue

from gitfree.versioning import InputError, Step, StepOutcome, Store
from gitfree.versioning import step as versioned_step

from . import _runtime
from .assets import dataset_asset, dataset_outlet, version_extra
from .functions import DEFAULT_CONN_ID

if TYPE_CHECKING:
    from airflow.sdk.bases.decorator import Task

__all__ = ["run_step", "step"]

log = logging.getLogger(__name__)

OWN_ARGUMENTS = ("gitfree_conn_id", "store", "context", "author", "commit_id")
"""Names :func:`run_step` and :meth:`gitfree.Step.run` take for themselves: no step parameter may have one."""


def run_step(
    versioned: Step,
    *args: Any,
    force: bool = False,
    gitfree_conn_id: str | None = DEFAULT_CONN_ID,
    store: str | Store | None = None,
    context: Mapping[str, Any] | None = None,
    **kwargs: Any,
) -> StepOutcome:
    """Run a :func:`gitfree.step` inside an Airflow task: the task's store, author and retry-stable commit id.

    The store is ``store`` (a URL overriding the connection's, or a :class:`gitfree.Store`), else the step's own
    ``store=``, reached with the connection ``gitfree_conn_id``. A new version of the step's output emits an
    event of ``gitfree://<output>`` if the task declares ``outlets=[dataset_outlet(output)]``; an up-to-date
    step emits nothing. An input may be given as the XCom of a gitfree task (a dict with ``ref``).

    Returns:
        The :class:`gitfree.StepOutcome`: ``ran`` (the body ran), ``version``, ``line`` (logged).

    Raises:
        AirflowFailException: bad arguments, an input that does not exist, a body that wrote nothing: errors
            a retry cannot fix (the task fails at once).
        AirflowException: an error a retry may fix (a lost connection, another writer in the way). An
            exception the body raises is raised as it is, so the task's retries apply.

    Example:
        ```python
        from airflow.sdk import task
        from gitfree.airflow import dataset_outlet, run_step

        @task(outlets=[dataset_outlet("demo/features")])
        def features() -> str:
            return run_step(featurize, window=7).line   # featurize: a @gitfree.step
        ```
    """
    outcome, _, _ = run_with_store(
        versioned, args, kwargs, force=force, gitfree_conn_id=gitfree_conn_id, store=store, context=context
    )
    return outcome


def run_with_store(
    versioned: Step,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    *,
    force: object,
    gitfree_conn_id: str | None,
    store: str | Store | None,
    context: Mapping[str, Any] | None,
) -> tuple[StepOutcome, Store, bool]:
    """:func:`run_step`, the store it used, and whether this task instance made the version (its event emitted)."""
    context = _runtime.context_or_current(context)
    with _runtime.translated():
        check_step(versioned, OWN_ARGUMENTS, "run_step's own arguments")
        if not isinstance(force, bool):
            raise InputError(f"cannot run the step {versioned.fn.__name__}: force is {force!r}; give true or false")
        target = _runtime.store_from(gitfree_conn_id, _store_of(versioned, store))
        given = {name: _input(versioned, name, value, target) for name, value in kwargs.items()}
        attempt = _runtime.commit_id(context, versioned.output)
        outcome = versioned.run(
            *args, force=force, store=target, author=_runtime.author(context), commit_id=attempt, **given
        )
    version = outcome.version
    # This task instance made the version: this try, or an earlier try that died after its commit and before
    # its event (the same commit id: the step then finds its own version up to date, and says created).
    made_here = bool(version.created)
    _check_outlets(context, versioned.output)
    if made_here:
        _runtime.emit(context, version, target, log)
    else:
        log.info("no asset event: %s is not a new version", version.ref)
    return outcome, target, made_here


def step(
    output: str,
    inputs: Mapping[str, str | None] | None = None,
    *,
    gitfree_conn_id: str | None = DEFAULT_CONN_ID,
    store: str | None = None,
    paths: Mapping[str, Sequence[str]] | None = None,
    code_version: str | None = None,
    message: str | None = None,
    wait: float | None = None,
    workdir: str | os.PathLike[str] | None = None,
    **task_kwargs: Any,
) -> Callable[[Callable[..., Any]], Task[..., dict[str, JsonValue]]]:
    """Make a function a versioned step (:func:`gitfree.step`) and a TaskFlow task that runs it.

    Calling the decorated function in a DAG makes a task (task id: the function's name; ``.override()``,
    ``.partial()`` and ``.expand()`` work as for ``@task``). Its keyword arguments are the step's inputs
    (refs such as ``"demo/sales@3"``, or the XCom of a gitfree task: a commit operator's or another step's)
    and its parameters, templated; ``force=True`` runs the body even if a version with the same inputs,
    parameters and code exists. The task declares ``dataset_outlet(output)`` itself and emits an event of
    ``gitfree://<output>`` only when it made a new version; up to date, it succeeds with the line
    ``demo/features@7 is up to date (demo/sales@12, window=7)`` in its log and no event. Its XCom is the
    version's ``extra`` (``ref``, ``number``, ``store``...) plus ``created`` (this task instance made the
    version, and emitted its event), ``ran`` (the body ran), ``key`` (the step key) and ``line``.

    Args:
        output, inputs, paths, code_version, message, wait, workdir: as for :func:`gitfree.step`.
        gitfree_conn_id: the store's Airflow connection (``None``: the ``GITFREE_*`` variables).
        store: a store URL overriding the connection's (templated).
        task_kwargs: for the task, as for ``@task`` (``retries``, ``pool``, ``outlets``...).

    Raises:
        AirflowFailException: when the DAG is parsed, a step that cannot be one (no ``out`` parameter, a
            parameter named like an Airflow context value, an operator argument such as ``retries`` or
            ``owner``, or one of ``gitfree_conn_id``, ``store``...).

    Example:
        ```python
        from pathlib import Path
        from gitfree.airflow import GitfreeCommitOperator, step

        @step(output="demo/features", inputs={"raw": "demo/sales@latest"})
        def featurize(raw: Path, out: Path, window: int = 3) -> None:
            ...  # read raw, write out/features.csv

        @dag(schedule="@daily")
        def pipeline():
            ingest = GitfreeCommitOperator(task_id="ingest", dataset="demo/sales", path="/data/sales")
            featurize(raw=ingest.output, window=3)     # runs only when demo/sales changed
        ```
    """

    def decorate(fn: Callable[..., Any]) -> Task[..., dict[str, JsonValue]]:
        with _runtime.translated():
            made = versioned_step(
                output,
                inputs,
                paths=paths,
                code_version=code_version,
                message=message,
                wait=wait,
                workdir=workdir,
            )(fn)
            # A context value's name would be filled from the context by @task's rules, and an operator
            # argument's from the DAG's default_args: either would silently change the step's parameters.
            taken = (*OWN_ARGUMENTS, *sorted(KNOWN_CONTEXT_KEYS), *inspect.signature(BaseOperator).parameters)
            check_step(made, taken, "the names a task takes for itself")
            alias = dataset_outlet(output)
            outlets = list(task_kwargs.pop("outlets", None) or [])
            if dataset_asset(output) in outlets:
                raise InputError(
                    f"the step {fn.__name__} declares {dataset_asset(output).uri} in outlets, so Airflow would record "
                    "an event of it each time the task succeeds, also when the step is up to date; leave it out: "
                    "the step's task emits it when it makes a new version"
                )
        decorated = task_decorator_factory(
            python_callable=StepCallable(made),
            multiple_outputs=False,
            decorated_operator_class=GitfreeStepOperator,
            outlets=[*outlets, alias] if alias not in outlets else outlets,
            gitfree_conn_id=gitfree_conn_id,
            store=store,
            **task_kwargs,
        )
        return cast("Task[..., dict[str, JsonValue]]", decorated)

    return decorate


class StepCallable:
    """What a step's task calls: the :class:`gitfree.Step`, with the signature a task of it is called with
    (its inputs and parameters, keyword-only, and ``force``; no ``out``), so that Airflow checks a call's
    arguments when the DAG is parsed."""

    def __init__(self, made: Step) -> None:
        self.step = made
        functools.update_wrapper(self, made.fn)
        self.__signature__ = _task_signature(made)

    def __call__(self, *args: Any, force: bool = False, **kwargs: Any) -> StepOutcome:
        return run_step(self.step, *args, force=force, **kwargs)


class GitfreeStepOperator(DecoratedOperator):
    """The operator of a task made by :func:`step`: runs the step with the task's rendered arguments."""

    custom_operator_name = "@gitfree.airflow.step"
    template_fields: Sequence[str] = ("op_args", "op_kwargs", "store")
    ui_color = "#d9ead3"

    def __init__(
        self,
        *,
        python_callable: StepCallable,
        gitfree_conn_id: str | None = DEFAULT_CONN_ID,
        store: str | None = None,
        **kwargs: Any,
    ) -> None:
        outlets = list(kwargs.pop("outlets", None) or [])
        alias = dataset_outlet(python_callable.step.output)
        super().__init__(
            python_callable=python_callable, outlets=outlets if alias in outlets else [*outlets, alias], **kwargs
        )
        self.versioned = python_callable.step
        self.gitfree_conn_id = gitfree_conn_id
        self.store = store

    def execute(self, context: Any) -> dict[str, JsonValue]:
        # The arguments go to the step as given: not merged with the context as @task's are, so a context
        # value never becomes a parameter (and part of the step key).
        kwargs = dict(self.op_kwargs)
        force = kwargs.pop("force", False)
        outcome, target, made_here = run_with_store(
            self.versioned,
            tuple(self.op_args),
            kwargs,
            force=force,
            gitfree_conn_id=self.gitfree_conn_id,
            store=self.store or None,
            context=context,
        )
        return {
            **version_extra(outcome.version, target.url),
            "created": made_here,
            "ran": outcome.ran,
            "key": outcome.key,
            "line": outcome.line,
        }


def check_step(made: Step, names: Sequence[str], what: str) -> None:
    """A step parameter or input must not have a name its caller takes for itself."""
    taken = [name for name in made.signature.parameters if name in names]
    if taken:
        raise InputError(f"the step {made.fn.__name__} has a parameter {taken[0]!r}, one of {what}; rename it")


def _task_signature(made: Step) -> inspect.Signature:
    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = []
    for name, p in made.signature.parameters.items():
        if name == "out":
            continue
        if name in made.inputs:
            default = made.inputs[name]
            parameters.append(inspect.Parameter(name, keyword, default=p.empty if default is None else default))
        else:
            parameters.append(p.replace(kind=keyword))
    parameters.append(inspect.Parameter("force", keyword, default=False, annotation=bool))
    return inspect.Signature(parameters)


def _store_of(made: Step, store: str | Store | None) -> str | Store | None:
    chosen = store if store is not None else made.store
    if chosen is None or isinstance(chosen, Store | str):
        return chosen
    return os.fspath(chosen)


def _input(made: Step, name: str, value: Any, store: Store) -> Any:
    """An input given as the XCom of a gitfree task (a commit operator's, a step's) is the ref it names."""
    if name not in made.inputs or not isinstance(value, Mapping):
        return value
    ref, where = value.get("ref"), value.get("store")
    if not isinstance(ref, str):
        raise InputError(
            f"cannot run the step {made.fn.__name__}: the input {name!r} is a dict without a 'ref'; give a ref "
            "such as 'demo/sales@3' or the XCom of a gitfree task"
        )
    _runtime.check_same_store(where if isinstance(where, str) else None, store, ref)
    return ref


def _check_outlets(context: Mapping[str, Any] | None, output: str) -> None:
    """A task that declares the output's asset itself emits an event each time it succeeds: say so."""
    if context is None:
        return
    if dataset_asset(output) in (context["ti"].task.outlets or []):
        log.warning(
            "this task declares %s in outlets, so Airflow records an event of it each time the task succeeds, "
            "also when the step is up to date: declare outlets=[gitfree.airflow.dataset_outlet(%r)] instead",
            dataset_asset(output).uri,
            output,
        )
