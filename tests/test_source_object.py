"""A single object given as the source of a commit by reference (issue 18): ``s3://bucket/path/file.csv``
(or its ``az://`` / ``gs://`` twin) is one clear error saying it names an object, not a prefix, and what to
give instead; nothing is written. On real SeaweedFS, Azurite and fake-gcs-server."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from click.testing import CliRunner
from helpers import Servers
from test_by_reference import _az_place, _gs_place, _s3_place

from gitfree import Store
from gitfree.cli import cli
from gitfree.versioning import InputError, NotFoundError


@pytest.mark.parametrize("kind", ["s3", "az", "gs"])
def test_an_objects_url_as_a_source_says_it_names_an_object_and_to_give_its_folder(
    kind: str,
    request: pytest.FixtureRequest,
    make_store: Callable[..., Store],
    servers: Servers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if kind == "s3":
        place = _s3_place(request.getfixturevalue("seaweedfs"), make_store, versioned=False)
    elif kind == "az":
        place = _az_place(request.getfixturevalue("azurite"), make_store)
    else:
        place = _gs_place(request.getfixturevalue("fake_gcs"), make_store, versioned=False)
    place.write("sub/file.csv", b"x,y\n1,2\n")
    place.write("sub/file.csv.bak", b"old")  # a name the object's is a prefix of
    url = f"{place.url}sub/file.csv"
    store = place.store()
    with pytest.raises(InputError) as caught:
        store.commit("ds", url, by_reference=True)
    assert str(caught.value) == (
        f"{url} names an object, not a prefix of objects: a commit by reference versions every object under a "
        f"prefix, so give its folder ({place.url}sub/), or copy the object into a local folder and commit that "
        "without by_reference=True"
    )
    with pytest.raises(NotFoundError):
        store.log("ds")
    assert store.commit("ds", f"{place.url}sub/", by_reference=True).nfiles == 2  # what it says to do works

    for key, value in servers.env(kind).items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(cli, ["--store", servers.url(kind), "commit", "other", url, "--by-reference"])
    assert result.exit_code == InputError.exit_code
    assert result.output.splitlines() == [
        f"error: {url} names an object, not a prefix of objects: a commit by reference versions every object under "
        f"a prefix, so give its folder ({place.url}sub/), or copy the object into a local folder and commit that "
        "without --by-reference"
    ]
    # a prefix with nothing under it, beside the object, still says so
    with pytest.raises(InputError, match=re.escape(f"{place.url}nothing/ holds no objects; check the prefix")):
        store.commit("ds", f"{place.url}nothing/", by_reference=True)
