"""gitfree: commit and fetch dataset versions from orchestrated workers, with DVC's data format and no git.

``from gitfree import Store`` is all most users need; see the README for a tour.
"""

from importlib.metadata import PackageNotFoundError, version

from . import versioning
from .versioning import *  # noqa: F403 - the public API is gitfree.versioning's

try:
    __version__ = version("gitfree")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [*versioning.__all__, "__version__"]
