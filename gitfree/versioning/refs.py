"""Dataset names, tag names and refs (``images``, ``images@7``, ``images@prod``, ``images@latest~2``)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import InputError
from .layout import RESERVED_SEGMENTS

__all__ = ["Ref", "parse_ref", "validate_dataset_name", "validate_tag_name"]

_SEGMENT = re.compile(r"[a-z0-9][a-z0-9._-]*")
_TAG = re.compile(r"[a-z0-9][a-z0-9._-]*")
_LATEST = re.compile(r"latest(?:~([0-9]+))?")  # ASCII digits only: \d takes any Unicode digit
_NUMBER = re.compile(r"[0-9]+")
_MAX_NAME = 200
_MAX_TAG = 100


def validate_dataset_name(name: str) -> str:
    """Return ``name`` if it is a valid dataset name, else raise :class:`InputError`."""
    if not isinstance(name, str) or not name:
        raise InputError("a dataset name is required, e.g. 'images' or 'raw/sales'")
    if len(name) > _MAX_NAME:
        raise InputError(f"dataset name is {len(name)} characters long; the limit is {_MAX_NAME}")
    for segment in name.split("/"):
        if not _SEGMENT.fullmatch(segment):
            raise InputError(
                f"invalid dataset name {name!r}: use lowercase segments of a-z, 0-9, '.', '_' "
                "and '-' that start with a letter or digit, joined by '/' (e.g. 'raw/sales')"
            )
        if segment in RESERVED_SEGMENTS or segment.endswith(".json"):
            raise InputError(f"invalid dataset name {name!r}: the segment {segment!r} is reserved by the store layout")
    return name


def validate_tag_name(tag: str) -> str:
    """Return ``tag`` if it is a valid tag name, else raise :class:`InputError`."""
    if not isinstance(tag, str) or not _TAG.fullmatch(tag) or len(tag) > _MAX_TAG:
        raise InputError(
            f"invalid tag {tag!r}: use lowercase a-z, 0-9, '.', '_' and '-', starting with a "
            f"letter or digit, at most {_MAX_TAG} characters (e.g. 'prod', '2026-q3')"
        )
    if _NUMBER.fullmatch(tag):
        raise InputError(f"invalid tag {tag!r}: a tag made of digits only would read as a version number")
    if _LATEST.fullmatch(tag):
        raise InputError(f"invalid tag {tag!r}: 'latest' is reserved for the newest version")
    return tag


@dataclass(frozen=True)
class Ref:
    """A parsed ref: exactly one of ``number``, ``tag`` or ``back`` (versions before the latest) is used.

    ``images`` and ``images@latest`` parse to ``back=0``.
    """

    dataset: str
    number: int | None = None
    tag: str | None = None
    back: int | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return f"{self.dataset}@{self.number}"
        if self.tag is not None:
            return f"{self.dataset}@{self.tag}"
        return f"{self.dataset}@latest" + (f"~{self.back}" if self.back else "")


def parse_ref(ref: str | Ref) -> Ref:
    """Parse ``name``, ``name@N``, ``name@tag``, ``name@latest`` or ``name@latest~K``."""
    if isinstance(ref, Ref):
        return ref
    if not isinstance(ref, str) or not ref:
        raise InputError("a ref is required, e.g. 'images', 'images@3', 'images@prod' or 'images@latest~1'")
    name, sep, selector = ref.partition("@")
    try:
        validate_dataset_name(name)
    except InputError as exc:
        raise InputError(f"malformed ref {ref!r}: {exc}") from None
    if not sep:
        return Ref(name, back=0)
    if _NUMBER.fullmatch(selector):
        number = int(selector)
        if number < 1:
            raise InputError(f"malformed ref {ref!r}: version numbers start at 1")
        return Ref(name, number=number)
    if latest := _LATEST.fullmatch(selector):
        return Ref(name, back=int(latest.group(1) or 0))
    if _TAG.fullmatch(selector) and len(selector) <= _MAX_TAG:
        return Ref(name, tag=selector)
    raise InputError(
        f"malformed ref {ref!r}: after '@' write a version number, a tag, 'latest' or 'latest~K' "
        "(e.g. 'images@3', 'images@prod', 'images@latest~1')"
    )
