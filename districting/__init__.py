"""Census districting and field planning.

From a Stage-1 address register to contiguous, workload-balanced counting,
instructor and registration districts, with maps, sheets and a staffing plan.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("districting")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

__all__ = ["__version__"]
