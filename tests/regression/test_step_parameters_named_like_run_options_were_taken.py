"""A step parameter named ``store``, ``author`` or ``commit_id`` was taken by ``Step.run`` for itself: the body
never saw it, different values shared one key (a wrong version returned), ``store='A'`` opened a store in the
current directory. Such names are now refused when the function is decorated."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitfree import InputError, step


@pytest.mark.parametrize("name", ["store", "author", "commit_id", "force"])
def test_a_parameter_named_like_a_run_option_is_refused(name: str, tmp_path: Path) -> None:
    namespace: dict[str, object] = {}
    exec(f"def f(out, {name}=None):\n    (out / 'x').write_text(str({name}))\n", namespace)  # noqa: S102
    with pytest.raises(InputError, match=f"has a parameter '{name}', which a step call takes for itself; rename it"):
        step("features", {}, store=tmp_path / "store")(namespace["f"])  # type: ignore[arg-type]
