"""Versioned steps: ``dvc repro`` semantics inside any orchestrator, with no dvc.yaml and no lock file.

A step is a function that reads versions of some datasets and writes one folder, committed as the next
version of its output. Its *key* is the sha256 of the exact input versions, the parameters (canonical
JSON), the output dataset and the code's fingerprint; ``steps/<key>/<output>@<n>.json`` notes the version
a run with that key made. A call whose key has a note returns that version without pulling anything or
running the body. A worker about to run the body first takes the step's claim (``steps/<key>/claim.json``,
a lease renewed while it runs): another worker calling the same step with the same inputs waits for it and
returns its version, so two workers racing on new data make one version (docs/design.md, "Versioned steps").
"""

from __future__ import annotations

import ast
import contextlib
import functools
import hashlib
import importlib
import importlib.machinery
import inspect
import json
import logging
import math
import os
import shutil
import socket
import sys
import tempfile
import textwrap
import time
import types
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import JsonValue

from . import layout
from .backends import KeyExists, PreconditionFailed
from .catalog import made_by
from .errors import ConflictError, InputError
from .leases import Holder, read
from .models import Author, InputRef, StaleVersion, StepRun, StepStatus, Version, utcnow
from .refs import Ref, parse_ref, validate_dataset_name
from .store import Store

__all__ = ["Step", "StepOutcome", "find_step", "fingerprint", "step", "step_status"]

logger = logging.getLogger("gitfree")

OUT = "out"
"""The parameter of a step's function that receives the empty folder to write its output into."""
RESERVED = ("force", "store", "author", "commit_id")
"""Keyword arguments a step call takes for itself (:meth:`Step.run`): no parameter of a step may have them."""
KEY_FORMAT = 1
"""Bumped if what goes into a step key ever changes: every step then runs once more."""

StoreLike = Store | str | os.PathLike[str] | None
InputLike = str | Ref | Version


@dataclass(frozen=True)
class StepOutcome:
    """What one call of a step did: the output version, and whether the body ran to make it."""

    version: Version
    ran: bool
    """True when the body ran in this call; false when a version made with the same key was returned."""
    key: str
    inputs: dict[str, Version]
    params: dict[str, JsonValue]
    line: str
    """The one line logged: ``features@7 is up to date (raw/sales@12, window=7)``."""


@dataclass(frozen=True)
class _Call:
    """A call of a step, bound and checked before anything is read: its input refs and parameters."""

    refs: dict[str, InputLike]
    params: dict[str, JsonValue]
    force: bool


@dataclass
class Step:
    """A function made a versioned step by :func:`step`. Calling it returns the output's version."""

    fn: Callable[..., Any]
    output: str
    inputs: dict[str, InputLike | None]
    store: StoreLike = None
    paths: dict[str, list[str]] = field(default_factory=dict)
    code_version: str | None = None
    message: str | None = None
    wait: float | None = None
    workdir: str | os.PathLike[str] | None = None
    _stores: dict[str, Store] = field(default_factory=dict, repr=False)
    _code: str | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        validate_dataset_name(self.output)
        _check_function(self.fn)
        self.name = f"{self.fn.__module__}:{self.fn.__qualname__}"
        self.signature = inspect.signature(self.fn)
        _check_signature(self.fn.__name__, self.signature, self.inputs, self.paths)
        functools.update_wrapper(self, self.fn)
        # What a call takes (not the function's own parameters): an orchestrator wrapping a step in its own
        # task (``@task`` over ``@gitfree.step``) binds the call's arguments to this.
        self.__signature__ = _call_signature(self.signature, self.inputs)

    @property
    def code(self) -> str:
        """The fingerprint of the step's code (:func:`fingerprint`), taken at its first call: by then the
        module that defines it has run to its end, so helpers and constants defined below it count too."""
        if self._code is None:
            self._code = fingerprint(self.fn)
        return self._code

    def __call__(self, *args: Any, force: bool = False, **kwargs: Any) -> Version:
        return self.run(*args, force=force, **kwargs).version

    # ------------------------------------------------------------------ the parts of a call

    def bind(self, *args: Any, force: bool = False, **kwargs: Any) -> _Call:
        """Check a call's arguments before anything is read: its input refs and its parameters as JSON."""
        fn = self.fn.__name__
        try:
            bound = self.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise InputError(f"cannot call the step {fn}: {exc}") from None
        if OUT in bound.arguments:
            raise InputError(f"cannot call the step {fn}: {OUT!r} is the folder gitfree gives it; do not pass it")
        refs: dict[str, InputLike] = {}
        for name, default in self.inputs.items():
            ref = bound.arguments.pop(name, default)
            if ref is None:
                raise InputError(f"cannot call the step {fn}: give the input {name!r} a version (a ref like 'raw@3')")
            if not isinstance(ref, str | Ref | Version):
                raise InputError(
                    f"cannot call the step {fn}: the input {name!r} is {type(ref).__name__}; give a ref such as "
                    f"'raw@3' or a Version"
                )
            refs[name] = ref
        bound.apply_defaults()
        missing = [
            p.name
            for p in self.signature.parameters.values()
            if p.name not in bound.arguments and p.name not in self.inputs and p.name != OUT
        ]
        if missing:
            raise InputError(f"cannot call the step {fn}: give {', '.join(map(repr, missing))}")
        params = {k: v for k, v in bound.arguments.items() if k not in self.inputs and k != OUT}
        return _Call(refs, _json_params(fn, params), force)

    def resolve(self, call: _Call, store: Store) -> dict[str, Version]:
        """Every input ref to the exact version it names now (``NotFoundError`` for one that does not exist);
        the newest versions of all inputs named by dataset or ``@latest`` in one batch of parallel reads."""
        parsed = {name: parse_ref(ref) for name, ref in call.refs.items() if not isinstance(ref, Version)}
        newest = {r.dataset for r in parsed.values() if r.number is None and r.tag is None and not r.back}
        heads = store.catalog.heads(newest) if newest else {}
        resolved: dict[str, Version] = {}
        for name, ref in call.refs.items():
            if isinstance(ref, Version):
                found = store.show(ref.ref)  # still a version of this store
                if found.id != ref.id:
                    raise InputError(
                        f"the input {name!r} ({ref.ref}) is not a version of {store.url}; a step reads its own store"
                    )
                resolved[name] = found
                continue
            head = heads.get(parsed[name].dataset) if parsed[name].dataset in newest else None
            resolved[name] = head if head is not None else store.show(parsed[name])
        return resolved

    def key(self, inputs: Mapping[str, Version], params: Mapping[str, JsonValue]) -> str:
        """The step key: what decides whether a version made earlier is this call's answer."""
        body = {
            "format": KEY_FORMAT,
            "output": self.output,
            "code": self.code,
            "code_version": self.code_version,
            "params": params,
            "inputs": {name: [v.dataset, v.number, str(v.id)] for name, v in sorted(inputs.items())},
            "paths": {name: sorted(p) for name, p in sorted(self.paths.items())},
        }
        return hashlib.sha256(_canonical(body).encode()).hexdigest()

    def open_store(self, store: StoreLike = None) -> Store:
        """The store this step reads and writes (``store`` given, else the step's, else ``GITFREE_STORE``)."""
        chosen = store if store is not None else self.store
        if isinstance(chosen, Store):
            return chosen
        url = os.fspath(chosen) if chosen is not None else ""
        if url not in self._stores:
            self._stores[url] = Store(url or None)
        return self._stores[url]

    # ------------------------------------------------------------------ running

    def run(
        self,
        *args: Any,
        force: bool = False,
        store: StoreLike = None,
        author: Author | None = None,
        commit_id: uuid.UUID | None = None,
        **kwargs: Any,
    ) -> StepOutcome:
        """Call the step and say what happened (:class:`StepOutcome`); ``store``, ``author`` and ``commit_id``
        are for orchestrator integrations (a retried task passes the same ``commit_id``)."""
        if not isinstance(force, bool):
            raise InputError(f"cannot call the step {self.fn.__name__}: force is True or False, not {force!r}")
        call = self.bind(*args, force=force, **kwargs)
        target = self.open_store(store)
        inputs = self.resolve(call, target)
        key = self.key(inputs, call.params)
        if not force:
            made, _ = target.catalog.step_made(key, self.output)
            if made is not None:
                return self._outcome(made, False, key, inputs, call.params, commit_id)
        return self._claimed(target, call, inputs, key, author, commit_id)

    def _claimed(
        self,
        store: Store,
        call: _Call,
        inputs: dict[str, Version],
        key: str,
        author: Author | None,
        commit_id: uuid.UUID | None,
    ) -> StepOutcome:
        """Take the step's claim (or wait for the worker holding it), then run the body unless that worker
        made the version meanwhile."""
        claim = self._claim(store, key, call.force)
        if isinstance(claim, Version):
            return self._outcome(claim, False, key, inputs, call.params, commit_id)
        try:
            if not call.force:
                made, _ = store.catalog.step_made(key, self.output)
                if made is not None:  # made between our first look and our claim
                    return self._outcome(made, False, key, inputs, call.params, commit_id)
            unnoted = self._unnoted(store, key, commit_id, call.force)
            if unnoted is not None:  # committed by a worker (or an earlier attempt) that died before its note
                store.catalog.note_step(self._result(key, unnoted, inputs, call.params))
                mine = commit_id is not None and unnoted.id == commit_id
                return self._outcome(unnoted.model_copy(update={"created": mine}), mine, key, inputs, call.params)
            version = self._execute(store, call, inputs, key, claim, author, commit_id)
        finally:
            claim.release()
        return self._outcome(version, True, key, inputs, call.params)

    def _unnoted(self, store: Store, key: str, commit_id: uuid.UUID | None, force: bool) -> Version | None:
        """The output's head if this step key made it and no note says so: its worker died between the commit
        and the note. Running the body again could commit other bytes (a timestamp, a seed): a second version
        for one key. It is the answer, except to ``force``, for which it is only if it is this very attempt's
        commit (a retried task passing the same ``commit_id``)."""
        head = store.catalog.head(self.output)
        if head is None or made_by(head) != key:
            return None
        if force and (commit_id is None or head.id != commit_id):
            return None
        return head

    def _claim(self, store: Store, key: str, force: bool) -> Holder | Version:
        """Our claim on the step, or the version the worker that held it made while we waited."""
        claim_key = layout.step_claim_key(key)
        deadline = None if self.wait is None else time.monotonic() + self.wait
        delay, told = 0.05, False
        while True:
            holder = Holder.new(
                store.backend, store.coordinator.ttl, key=claim_key, kind="step", dataset=self.output, pointer=key
            )
            try:
                holder.create()
                return holder
            except KeyExists:
                pass
            found = read(store.backend, claim_key)
            if found is not None and store.coordinator.dead(found[0]):
                try:
                    holder.take_over(found[1])
                except PreconditionFailed:
                    continue
                logger.warning(
                    "%s: took over the claim of %s (pid %d), judged dead (expired, or its process gone)",
                    self.fn.__name__,
                    found[0].host,
                    found[0].pid,
                )
                return holder
            if not force:
                made, _ = store.catalog.step_made(key, self.output)
                if made is not None:
                    return made
            if found is None:
                continue  # released since we tried: try again at once
            if deadline is not None and time.monotonic() > deadline:
                raise ConflictError(
                    f"the step {self.fn.__name__} with these inputs is being run by {found[0].host} (pid "
                    f"{found[0].pid}) since {found[0].created_at:%Y-%m-%d %H:%M:%S}Z; wait longer (wait=) or try later"
                )
            if not told:
                logger.info(
                    "%s with these inputs is being run by %s (pid %d); waiting for its version",
                    self.fn.__name__,
                    found[0].host,
                    found[0].pid,
                )
                told = True
            time.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _execute(
        self,
        store: Store,
        call: _Call,
        inputs: dict[str, Version],
        key: str,
        claim: Holder,
        author: Author | None,
        commit_id: uuid.UUID | None,
    ) -> Version:
        """Materialise the inputs, run the body into an empty folder, commit it, note the result."""
        fn = self.fn.__name__
        work = Path(tempfile.mkdtemp(prefix=f"gitfree-step-{fn}-", dir=self.workdir))
        try:
            paths = {name: self._materialise(store, name, version, work) for name, version in inputs.items()}
            out = work / OUT / self.output.rpartition("/")[2]
            out.mkdir(parents=True)
            returned = self.fn(**paths, **{OUT: out}, **call.params)
            metrics = _metrics(fn, returned)
            if not any(out.iterdir()):
                raise InputError(f"{fn} wrote nothing to {OUT}; a step must write its output into the folder {OUT}")
            head = store.catalog.head(self.output)
            # A new version unless the newest one was made by this very step key with the same data (a note
            # lost after its commit): the same data from other parameters or code is a version of its own.
            recorded = head.metadata.get("step") if head is not None else None
            same_key = isinstance(recorded, dict) and recorded.get("key") == key
            version = store.commit(
                self.output,
                out,
                message=self.message if self.message is not None else f"{fn}({_describe(inputs, call.params)})",
                metadata={"params": call.params, "step": self._meta(key)},
                metrics=metrics,
                inputs=[InputRef(dataset=v.dataset, number=v.number) for v in inputs.values()],
                author=author,
                force=not same_key,
                commit_id=commit_id,
            )
            if not claim.valid(store.coordinator.ttl / 10):
                logger.warning("%s: our claim lapsed while the body ran; another worker may have run it too", fn)
            store.catalog.note_step(self._result(key, version, inputs, call.params))
            return version
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _materialise(self, store: Store, name: str, version: Version, work: Path) -> Path:
        dest = work / "in" / name
        if not version.is_dir:
            dest.mkdir(parents=True)
            return store.pull(version, f"{dest}/", paths=self.paths.get(name))
        dest.parent.mkdir(parents=True, exist_ok=True)
        return store.pull(version, dest, paths=self.paths.get(name))

    def _meta(self, key: str) -> dict[str, JsonValue]:
        return {"name": self.name, "key": key, "code": self.code, "code_version": self.code_version}

    def _result(self, key: str, version: Version, inputs: dict[str, Version], params: dict[str, JsonValue]) -> StepRun:
        return StepRun(
            key=key,
            step=self.name,
            dataset=version.dataset,
            number=version.number,
            code=self.code,
            code_version=self.code_version,
            params=params,
            inputs={name: InputRef(dataset=v.dataset, number=v.number) for name, v in inputs.items()},
            paths=self.paths,
            created_at=utcnow(),
            host=socket.gethostname(),
        )

    def _outcome(
        self,
        version: Version,
        ran: bool,
        key: str,
        inputs: dict[str, Version],
        params: dict[str, JsonValue],
        commit_id: uuid.UUID | None = None,
    ) -> StepOutcome:
        """What a call did. A version found up to date is ``created`` only when it has the call's ``commit_id``: an
        earlier attempt of the same orchestrator task made it (as :meth:`.Store.commit` says of its own retries),
        so an integration asks ``version.created`` alone whether its task made the version."""
        described = _describe(inputs, params)
        if ran and version.created:
            line = f"{self.fn.__name__} made {version.ref} ({described})"
        elif ran:
            line = f"{self.fn.__name__} ran; {version.ref} already held its output ({described})"
        else:
            mine = commit_id is not None and version.id == commit_id
            line = (
                f"{self.fn.__name__} made {version.ref} in an earlier attempt ({described})"
                if mine
                else f"{version.ref} is up to date ({described})"
            )
            version = version.model_copy(update={"created": mine})
        logger.info("%s", line)
        return StepOutcome(version, ran, key, dict(inputs), dict(params), line)


def step(
    output: str,
    inputs: Mapping[str, InputLike | None] | None = None,
    store: StoreLike = None,
    *,
    paths: Mapping[str, Sequence[str]] | None = None,
    code_version: str | None = None,
    message: str | None = None,
    wait: float | None = None,
    workdir: str | os.PathLike[str] | None = None,
) -> Callable[[Callable[..., Any]], Step]:
    """Make a function a versioned step: it runs only when its inputs, parameters or code changed.

    The function takes one path per input (named as in ``inputs``), the empty folder ``out`` to write its
    output into, and its parameters (JSON values); it may return a dict of metrics. A call resolves every
    input ref to an exact version, computes the step key (input versions, parameters, output, code) and, if
    a version of ``output`` was made with that key, returns it without pulling or running anything (logging
    ``features@7 is up to date (raw/sales@12, window=7)``). Otherwise it pulls the inputs (only what the
    worker cache lacks; ``paths`` takes part of an input), runs the body in a fresh folder, and commits
    ``out`` with the input versions as ``inputs`` and the parameters in ``metadata``. ``force=True`` in a
    call runs the body anyway. A worker calling a step another is running with the same key waits for it
    (at most ``wait`` seconds; default: as long as that worker is alive) and returns its version.

    Args:
        output: the dataset the step writes.
        inputs: parameter name → default ref (``"raw/sales@latest"``), or ``None`` to require it in each call.
            A call may pass any of them (``featurize(raw="raw/sales@12")``).
        store: the store (a URL or a :class:`Store`); default: ``GITFREE_STORE``.
        paths: parameter name → the files or folders of that input to pull.
        code_version: bump it to rerun when code the body calls (not its own source) changed.
        message: the versions' message; default: the call, such as ``featurize(raw/sales@12, window=7)``.
        wait: seconds to wait for another worker running the same step (``ConflictError`` after).
        workdir: where the step's temporary folders go (default: the system's).

    Example:
        >>> @step(output="features", inputs={"raw": "raw/sales@latest"})     # doctest: +SKIP
        ... def featurize(raw: Path, out: Path, window: int = 7) -> None:
        ...     (out / "features.csv").write_text(...)
        >>> featurize(window=7)                                                # doctest: +SKIP
    """

    for name, wanted in (paths or {}).items():
        if isinstance(wanted, str | bytes) or not all(isinstance(p, str) for p in wanted):
            raise InputError(f"paths[{name!r}] is a list of paths inside that input, e.g. [{str(wanted)!r}]")

    def decorate(fn: Callable[..., Any]) -> Step:
        return Step(
            fn,
            output=output,
            inputs=dict(inputs or {}),
            store=store,
            paths={name: list(p) for name, p in (paths or {}).items()},
            code_version=code_version,
            message=message,
            wait=wait,
            workdir=workdir,
        )

    return decorate


def step_status(store: Store, datasets: Iterable[str] = ()) -> list[StepStatus]:
    """Whether the newest version of each dataset (default: of every dataset a step made) is what its step
    would make now: its inputs have no newer version, and, when the step can be imported (``module:qualname``
    from its record, with the current directory on the path, as ``python -m`` has it), its code, code_version
    and parameter defaults are those it was made with."""
    names = sorted(set(datasets))
    heads = store.catalog.heads(names or store.catalog.datasets())
    for name in names:
        if heads.get(name) is None:
            raise store.catalog.not_found_dataset(name)
    made = {n: v for n, v in heads.items() if v is not None and (names or made_by(v) is not None)}
    stale: dict[str, list[StaleVersion]] = {}
    for item in store.stale(made) if made else []:
        stale.setdefault(item.ref, []).append(item)
    return [_status(version, stale.get(version.ref, [])) for _, version in sorted(made.items())]


def _status(version: Version, stale: list[StaleVersion]) -> StepStatus:
    recorded = version.metadata.get("step")
    if not isinstance(recorded, dict) or not isinstance(recorded.get("name"), str):
        return StepStatus(ref=version.ref, inputs=stale, note="" if stale else "no versioned step made it")
    name = str(recorded["name"])
    found = find_step(name)
    if isinstance(found, str):
        return StepStatus(ref=version.ref, step=name, inputs=stale, note=f"cannot compare it with its step: {found}")
    then = version.metadata.get("params")
    then = then if isinstance(then, dict) else {}
    now = {
        p.name: p.default for p in found.signature.parameters.values() if p.name != OUT and p.name not in found.inputs
    }
    changed = {
        k: (then[k], _json_default(now[k]))
        for k in sorted(set(then) & set(now))
        if now[k] is not inspect.Parameter.empty and _canonical(_json_default(now[k])) != _canonical(then[k])
    }
    made_with = recorded.get("code_version")
    versions = (made_with if isinstance(made_with, str) else None, found.code_version)
    return StepStatus(
        ref=version.ref,
        step=name,
        code_changed=recorded.get("code") != found.code,
        code_version=versions if versions[0] != versions[1] else None,
        params=changed,
        params_added=sorted(set(now) - set(then)),
        params_removed=sorted(set(then) - set(now)),
        inputs=stale,
    )


def find_step(name: str) -> Step | str:
    """The step ``module:qualname`` names, or why it cannot be had. Only a module found in the current
    directory or on ``PYTHONPATH`` is imported (its top level runs: a record must not make gitfree import
    whatever it names), with its output sent to stderr; whatever the import raises, exits included, is the
    reason it cannot be compared."""
    module, _, qualname = name.partition(":")
    if module == "__main__" or "<locals>" in qualname or not module or not qualname:
        return f"{name} was defined in a script or a function, not importable; define the step in a module"
    roots = [os.getcwd(), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    top = module.partition(".")[0]
    if top not in sys.modules and importlib.machinery.PathFinder.find_spec(top, roots) is None:
        return f"{module} is not in the current directory or on PYTHONPATH (only those are imported)"
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, "")
    try:
        with contextlib.redirect_stdout(sys.stderr):
            obj: object = importlib.import_module(module)
        for part in qualname.split("."):
            obj = getattr(obj, part)
    except AttributeError:
        return f"{module} has no {qualname}"
    except (Exception, SystemExit) as exc:
        return f"cannot import {module} ({type(exc).__name__}: {exc})"
    for _ in range(4):  # a Step, or what an orchestrator wrapped it in (a task's step or fn, __wrapped__)
        if isinstance(obj, Step):
            return obj
        obj = next(
            (found for a in ("__gitfree_step__", "step", "fn", "__wrapped__") if (found := getattr(obj, a, None))),
            None,
        )
    return f"{name} is not a versioned step"


def _json_default(value: object) -> JsonValue:
    try:
        loaded: JsonValue = json.loads(_canonical(value))
    except (TypeError, ValueError):
        return repr(value)
    return loaded


def fingerprint(fn: Callable[..., Any]) -> str:
    """The sha256 of a function's code as Python reads it, and of what it reads: its source without
    decorators, docstring, comments or parameter defaults (so reformatting or documenting it does not rerun
    it; a function with no source of its own, such as a lambda, by its bytecode, names and constants); each
    module constant or closure value it names that is a number, string, boolean, ``None`` or a tuple of
    them; and, the same way, each function of its own module it names. Lists, dicts and other objects it
    reads are not in it: make them parameters, or bump ``code_version``."""
    return hashlib.sha256(_fingerprint(inspect.unwrap(fn), set()).encode()).hexdigest()


def _fingerprint(fn: Callable[..., Any], seen: set[int]) -> str:
    seen.add(id(fn))
    parts = [_own_code(fn)]
    for name, value in _reads(fn):
        if _constant(value):
            parts.append(f"{name}={_canonical(value)}")
        elif inspect.isfunction(value) and value.__module__ == fn.__module__ and id(value) not in seen:
            parts.append(f"{name}=def:{_fingerprint(value, seen)}")
    return "\n".join(parts)


def _own_code(fn: Callable[..., Any]) -> str:
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(fn)))
    except (OSError, TypeError, SyntaxError):
        tree = None
    node = tree.body[0] if tree is not None and tree.body else None
    if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or node.name != fn.__name__:
        return hashlib.sha256(_code_bytes(fn.__code__)).hexdigest()
    node.decorator_list = []
    # Defaults are not code: the parameters they give are in the key as values, so changing a default
    # reruns only the calls it changes.
    node.args.defaults = []
    node.args.kw_defaults = [None] * len(node.args.kw_defaults)
    body = node.body
    first = body[0].value if body and isinstance(body[0], ast.Expr) else None
    if isinstance(first, ast.Constant) and isinstance(first.value, str):
        node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.unparse(node).encode()).hexdigest()


def _reads(fn: Callable[..., Any]) -> list[tuple[str, object]]:
    """The module globals and closure values a function's code names (in any function nested in it too)."""
    names: set[str] = set()
    codes = [fn.__code__]
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if isinstance(c, types.CodeType))
    found = [(name, fn.__globals__[name]) for name in sorted(names) if name in fn.__globals__]
    for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or (), strict=False):
        with contextlib.suppress(ValueError):  # a cell not filled yet
            found.append((name, cell.cell_contents))
    return found


def _constant(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_constant(v) for v in value)
    if isinstance(value, float):
        return math.isfinite(value)
    return value is None or isinstance(value, str | int | bool)


def _code_bytes(code: types.CodeType) -> bytes:
    """A code object's bytecode, names and constants (nested code objects by their own), never an address."""
    consts = b"".join(
        _code_bytes(c) if isinstance(c, types.CodeType) else repr(c).encode() + b"\0" for c in code.co_consts
    )
    return code.co_code + repr(code.co_names).encode() + consts


def _check_signature(
    fn: str, signature: inspect.Signature, inputs: Mapping[str, object], paths: Mapping[str, object]
) -> None:
    names = signature.parameters
    positional = [name for name, p in names.items() if p.kind == p.POSITIONAL_ONLY]
    if positional:
        raise InputError(f"the step {fn} has positional-only parameters ({', '.join(positional)}); a step's are named")
    if OUT not in names:
        raise InputError(f"the step {fn} needs a parameter {OUT!r}: the folder it writes its output into")
    for name, p in names.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise InputError(f"the step {fn} cannot take *{name}: name each input and parameter")
        if name in RESERVED:
            raise InputError(f"the step {fn} has a parameter {name!r}, which a step call takes for itself; rename it")
    for name in [*inputs, *paths]:
        if name not in names:
            raise InputError(f"the step {fn} has no parameter {name!r} for its input {name!r}")
        if name == OUT:
            raise InputError(f"the step {fn}: {OUT!r} is its output folder, not an input")
    for name in paths:
        if name not in inputs:
            raise InputError(f"the step {fn}: paths names {name!r}, which is not one of its inputs")


def _call_signature(signature: inspect.Signature, inputs: Mapping[str, InputLike | None]) -> inspect.Signature:
    """A call's parameters, all keyword-only: each input (its default ref), the function's parameters but
    ``out``, then ``force``."""
    params = [
        p.replace(kind=p.KEYWORD_ONLY, default=inputs[p.name], annotation="str | Ref | Version")
        if p.name in inputs
        else p.replace(kind=p.KEYWORD_ONLY)
        for p in signature.parameters.values()
        if p.name != OUT
    ]
    force = inspect.Parameter("force", inspect.Parameter.KEYWORD_ONLY, default=False, annotation="bool")
    return inspect.Signature([*params, force], return_annotation="Version")


def _json_params(fn: str, params: dict[str, Any]) -> dict[str, JsonValue]:
    """The parameters as canonical JSON values, or one line saying which is not one."""
    for name, value in params.items():
        try:
            _plain(value)
            _canonical(value)
        except (TypeError, ValueError, RecursionError) as exc:
            raise InputError(
                f"cannot call the step {fn}: the parameter {name!r} is not a JSON value ({exc}); a step's "
                f"parameters make its key, so pass numbers, strings, booleans, lists or dicts of them"
            ) from None
    loaded: dict[str, JsonValue] = json.loads(_canonical(params))
    return loaded


def _plain(value: object) -> None:
    """Refuse what JSON would change on the way: a dict key that is not a string (``{1: "a"}`` would come back
    as ``{"1": "a"}`` and share a key with it)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            bad = [k for k in item if not isinstance(k, str)]
            if bad:
                raise TypeError(f"the dict key {bad[0]!r} is not a string")
            stack.extend(item.values())
        elif isinstance(item, list | tuple):
            stack.extend(item)


def _check_function(fn: object) -> None:
    """A step is a plain function run to its end: not a partial, a class, a coroutine or a generator."""
    what = type(fn).__name__
    if not inspect.isfunction(inspect.unwrap(fn)):  # type: ignore[arg-type]
        raise InputError(f"a step is a function defined with def or lambda, not a {what}")
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn) or inspect.isgeneratorfunction(fn):
        raise InputError(
            f"the step {getattr(fn, '__name__', what)} is an async or generator function; a step is a plain "
            "function that writes its output and returns"
        )


def _canonical(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def _metrics(fn: str, returned: object) -> dict[str, float]:
    if returned is None:
        return {}
    if isinstance(returned, Mapping) and all(isinstance(k, str) for k in returned):
        bad = [k for k, v in returned.items() if isinstance(v, bool) or not isinstance(v, int | float)]
        bad += [k for k, v in returned.items() if isinstance(v, float) and not math.isfinite(v)]
        if not bad:
            return dict(returned)
        raise InputError(f"{fn} returned metrics that are not finite numbers: {', '.join(map(repr, bad))}")
    raise InputError(f"{fn} returned {type(returned).__name__}; a step returns nothing or a dict of metrics")


def _describe(inputs: Mapping[str, Version], params: Mapping[str, JsonValue]) -> str:
    parts = [v.ref for v in inputs.values()]
    for name, value in params.items():
        text = _canonical(value)
        parts.append(f"{name}={text if len(text) <= 40 else text[:37] + '...'}")
    return ", ".join(parts)
