"""schedbench: optimise and benchmark Kubernetes-style cluster scheduling.

Public entry points:

- :func:`parse_selector` / :class:`Selector` - Kubernetes label selectors (``kubectl -l`` syntax).
- :class:`Cluster` - a set of Kubernetes objects loaded from manifests.
- :func:`load_manifests` / :func:`dump_manifests` - read and write Kubernetes YAML.
- :func:`parse_quantity` and friends - the Kubernetes resource quantity grammar.
"""

from importlib.metadata import PackageNotFoundError, version

from .errors import (
    ConfigError,
    InputError,
    ManifestError,
    QuantityError,
    SchedbenchError,
    SelectorError,
)
from .model.labels import Requirement, Selector, parse_selector
from .model.quantity import format_quantity, parse_quantity, resource_to_int

try:
    __version__ = version("schedbench")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0.0.0+unknown"


def __getattr__(name: str):
    # Heavier modules load on first use, so `import schedbench` stays light.
    if name == "Cluster":
        from .cluster import Cluster
        return Cluster
    if name in ("load_manifests", "dump_manifests"):
        from . import manifests
        return getattr(manifests, name)
    raise AttributeError(f"module 'schedbench' has no attribute {name!r}")


__all__ = [
    "Cluster", "ConfigError", "InputError", "ManifestError", "QuantityError", "Requirement",
    "SchedbenchError", "Selector", "SelectorError", "dump_manifests", "format_quantity",
    "load_manifests", "parse_quantity", "parse_selector", "resource_to_int", "__version__",
]
