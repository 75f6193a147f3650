"""Load and validate ``KubeSchedulerConfiguration`` files as kube-scheduler v1.35 does.

This module mirrors, in behaviour (not in code), these parts of Kubernetes v1.35:

- ``staging/src/k8s.io/kube-scheduler/config/v1/types.go`` and ``types_pluginargs.go``: the
  ``kubescheduler.config.k8s.io/v1`` schema. Decoding is strict, as kube-scheduler's codec
  factory is: an unknown or duplicated field is an error, at any depth, plugin args included.
- ``pkg/scheduler/apis/config/v1/defaults.go``: defaulting (one ``default-scheduler`` profile
  when there are none, parallelism 16, backoff 1s/10s, percentageOfNodesToScore 0 = adaptive,
  default args for every enabled plugin that has an args type).
- ``pkg/scheduler/apis/config/v1/default_plugins.go``: ``getDefaultPlugins`` (one multiPoint
  list; ``DynamicResources`` inserted before ``DefaultPreemption`` because the
  DynamicResourceAllocation gate is GA and locked on in v1.35) and ``mergePlugins`` /
  ``mergePluginSet`` (user sets merged into the defaults, ``disabled: [{name: '*'}]``).
- ``pkg/scheduler/framework/runtime/framework.go``: ``NewFramework`` - per extension point
  lists, multiPoint expansion (specific extension points override multiPoint order and
  weights; ``'*'`` at a point stops expansion there), duplicate detection, exactly one
  queueSort plugin, at least one bind plugin, score weights (0 or unset means 1, the specific
  ``score`` list wins over multiPoint) and the MaxTotalScore overflow check.
- ``pkg/scheduler/apis/config/validation/validation.go`` and ``validation_pluginargs.go``:
  the validation rules, including removed plugins (AzureDiskLimits, CinderLimits, EBSLimits,
  GCEPDLimits are invalid in v1) and every in-tree plugin args rule.
- ``pkg/scheduler/framework/plugins/names/names.go``: in-tree plugin names.
- ``pkg/scheduler/profile/profile.go``: all profiles must share one queue sort plugin and args.

Feature gates are taken at their v1.35 defaults: StorageCapacityScoring (alpha, off) makes
``VolumeBindingArgs.shape`` an error; DRASchedulerFilterTimeout (beta, on) gives
``DynamicResourcesArgs.filterTimeout`` its 10s default; DRADeviceBindingConditions (alpha, off)
makes ``bindingTimeout`` an error. Alpha-only plugins (GangScheduling, NodeDeclaredFeatures)
are not registered.

The result is plain dataclasses: :class:`SchedulerConfiguration` holds :class:`Profile`\\ s whose
``plugins`` map every :class:`ExtensionPoint` to its effective, ordered list of
:class:`PluginRef` and whose ``plugin_args`` hold typed, defaulted args. The plugin registry
is extensible with :func:`register_plugin`.

Every problem raises :class:`~schedbench.errors.ConfigError` naming the file, the object
(``KubeSchedulerConfiguration`` or ``KubeSchedulerConfiguration/<schedulerName>``) and the
field path (``profiles[0].plugins.score.enabled[1].name``). kube-scheduler reports every
error at once; schedbench reports the first, in the same stage order (decoding, validation,
framework construction).
"""

from __future__ import annotations

import copy
import difflib
import enum
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar

import yaml

from .errors import ConfigError, join_field

__all__ = [
    "API_VERSION", "KIND", "DEFAULT_SCHEDULER_NAME", "ExtensionPoint", "EXTENSION_POINTS",
    "PluginRef", "PluginSpec", "Profile", "SchedulerConfiguration", "register_plugin",
    "unregister_plugin", "plugin_spec", "registered_plugins", "DEFAULT_MULTIPOINT",
    "REMOVED_PLUGINS", "load_scheduler_config", "parse_scheduler_config",
    "default_configuration", "profile_to_dict", "config_to_dict", "ResourceSpec",
    "UtilizationShapePoint", "RequestedToCapacityRatioParam", "ScoringStrategy",
    "NodeResourcesFitArgs", "NodeResourcesBalancedAllocationArgs", "TopologySpreadDefault",
    "PodTopologySpreadArgs", "SYSTEM_DEFAULT_CONSTRAINTS", "InterPodAffinityArgs",
    "NodeAffinityArgs", "DefaultPreemptionArgs", "VolumeBindingArgs", "DynamicResourcesArgs",
    "parse_go_duration", "format_go_duration", "MAX_NODE_SCORE", "MAX_TOTAL_SCORE",
]

API_VERSION = "kubescheduler.config.k8s.io/v1"
GROUP = "kubescheduler.config.k8s.io"
KIND = "KubeSchedulerConfiguration"
DEFAULT_SCHEDULER_NAME = "default-scheduler"
MAX_NODE_SCORE = 100                     # framework.MaxNodeScore
MAX_TOTAL_SCORE = 2**63 - 1              # framework.MaxTotalScore (math.MaxInt64)
MAX_CUSTOM_PRIORITY_SCORE = 10           # config.MaxCustomPriorityScore (shape scores)
_INT32 = (-(2**31), 2**31 - 1)
_INT64 = (-(2**63), 2**63 - 1)


# ---------------------------------------------------------------------------------------------
# Extension points and the plugin registry
# ---------------------------------------------------------------------------------------------

class ExtensionPoint(enum.StrEnum):
    """A scheduling framework extension point, valued as its key under ``plugins:``.

    Being a ``str`` enum, ``profile.plugins["score"]`` and
    ``profile.plugins[ExtensionPoint.SCORE]`` are the same lookup."""

    PRE_ENQUEUE = "preEnqueue"
    QUEUE_SORT = "queueSort"
    PRE_FILTER = "preFilter"
    FILTER = "filter"
    POST_FILTER = "postFilter"
    PRE_SCORE = "preScore"
    SCORE = "score"
    RESERVE = "reserve"
    PERMIT = "permit"
    PRE_BIND = "preBind"
    BIND = "bind"
    POST_BIND = "postBind"


EP = ExtensionPoint
#: Every extension point, in the order a pod meets them.
EXTENSION_POINTS: tuple[ExtensionPoint, ...] = tuple(ExtensionPoint)
MULTI_POINT = "multiPoint"
# The order in which NewFramework builds the per extension point lists (getExtensionPoints);
# it decides which error is reported first.
_FRAMEWORK_ORDER = (EP.PRE_FILTER, EP.FILTER, EP.POST_FILTER, EP.RESERVE, EP.PRE_SCORE,
                    EP.SCORE, EP.PRE_BIND, EP.BIND, EP.POST_BIND, EP.PERMIT, EP.PRE_ENQUEUE,
                    EP.QUEUE_SORT)
_PLUGINS_KEYS = tuple(str(p) for p in EXTENSION_POINTS) + (MULTI_POINT,)


@dataclass(frozen=True)
class PluginRef:
    """One plugin at one extension point. ``weight`` is the effective score weight at the
    ``score`` extension point and 0 everywhere else."""

    name: str
    weight: int = 0


@dataclass(frozen=True)
class PluginSpec:
    """A registered plugin: its name, the extension points it implements and its args type
    (``None`` when it takes no args). ``builtin`` marks kube-scheduler's in-tree plugins."""

    name: str
    extension_points: frozenset[ExtensionPoint]
    args_type: type | None = None
    builtin: bool = False

    def implements(self, point: ExtensionPoint | str) -> bool:
        return _extension_point(point) in self.extension_points


#: Plugins removed from kube-scheduler, invalid in kubescheduler.config.k8s.io/v1
#: (``invalidPluginsByVersion`` in validation.go), with what replaces them.
REMOVED_PLUGINS: dict[str, str] = {
    "AzureDiskLimits": "NodeVolumeLimits",
    "CinderLimits": "NodeVolumeLimits",
    "EBSLimits": "NodeVolumeLimits",
    "GCEPDLimits": "NodeVolumeLimits",
}

_REGISTRY: dict[str, PluginSpec] = {}
_EP_BY_LOWER = {p.value.lower(): p for p in ExtensionPoint}


def _extension_point(point: ExtensionPoint | str) -> ExtensionPoint:
    if isinstance(point, ExtensionPoint):
        return point
    if isinstance(point, str):
        found = _EP_BY_LOWER.get(point.replace("_", "").replace("-", "").lower())
        if found is not None:
            return found
    raise ValueError(f"unknown extension point {point!r}; expected one of "
                     f"{', '.join(p.value for p in EXTENSION_POINTS)}")


def register_plugin(name: str, extension_points: Iterable[ExtensionPoint | str],
                    args_type: type | None = None, *, replace: bool = False,
                    _builtin: bool = False) -> PluginSpec:
    """Make a plugin known to the configuration loader.

    ``extension_points`` names what the plugin implements, as :class:`ExtensionPoint` members
    or strings in either spelling (``"PreFilter"``, ``"preFilter"``). ``args_type``, when the
    plugin takes args, is a class with ``from_dict(data: Mapping) -> instance`` (applying
    defaults and validating; raising :class:`ConfigError` with a field path relative to the
    args) and ``instance.to_dict() -> dict``; a missing ``pluginConfig`` entry gets
    ``args_type.from_dict({})``. Registering an existing name needs ``replace=True``; in-tree
    plugins cannot be replaced."""
    if not isinstance(name, str) or not name or name == "*" or "/" in name:
        raise ValueError(f"invalid plugin name {name!r}")
    if name in REMOVED_PLUGINS:
        raise ValueError(f"plugin name {name!r} belongs to a removed kube-scheduler plugin")
    existing = _REGISTRY.get(name)
    if existing is not None and existing.builtin:
        raise ValueError(f"{name!r} is an in-tree kube-scheduler plugin and cannot be replaced")
    if existing is not None and not replace:
        raise ValueError(f"plugin {name!r} is already registered (pass replace=True)")
    points = frozenset(_extension_point(p) for p in extension_points)
    if not points:
        raise ValueError(f"plugin {name!r} must implement at least one extension point")
    if args_type is not None and not (callable(getattr(args_type, "from_dict", None))
                                      and callable(getattr(args_type, "to_dict", None))):
        raise TypeError(f"args_type for {name!r} must define from_dict() and to_dict()")
    spec = PluginSpec(name, points, args_type, _builtin)
    _REGISTRY[name] = spec
    return spec


def unregister_plugin(name: str) -> None:
    """Forget a plugin registered with :func:`register_plugin` (in-tree plugins stay)."""
    spec = _REGISTRY.get(name)
    if spec is None:
        raise KeyError(name)
    if spec.builtin:
        raise ValueError(f"{name!r} is an in-tree kube-scheduler plugin")
    del _REGISTRY[name]


def plugin_spec(name: str) -> PluginSpec | None:
    """The registered plugin of that name, or ``None``."""
    return _REGISTRY.get(name)


def registered_plugins() -> dict[str, PluginSpec]:
    """A snapshot of the registry, name -> spec."""
    return dict(_REGISTRY)


# ---------------------------------------------------------------------------------------------
# Small decoding helpers (strict, like kube-scheduler's codec)
# ---------------------------------------------------------------------------------------------

def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value!r}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"string {shown!r}"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _fail(message: str, path: str | None) -> ConfigError:
    return ConfigError(message, field=path or None)


def _suggest(word: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{match[0]}"?)' if match else ""


def _mapping(value: Any, path: str, allowed: Iterable[str]) -> Mapping[str, Any]:
    """A mapping with only the ``allowed`` keys (``None`` reads as empty)."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _fail(f"must be a mapping, got {_describe(value)}", path)
    allowed = tuple(allowed)
    for key in value:
        if not isinstance(key, str) or key not in allowed:
            raise _fail(f'unknown field "{key}"{_suggest(str(key), allowed)}',
                        join_field(path, str(key)))
    return value


def _list(value: Any, path: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _fail(f"must be a list, got {_describe(value)}", path)
    return value


def _int(value: Any, path: str, bits: tuple[int, int] = _INT32) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(f"must be an integer, got {_describe(value)}", path)
    if not bits[0] <= value <= bits[1]:
        width = 32 if bits == _INT32 else 64
        raise _fail(f"value {value} does not fit in a {width}-bit integer", path)
    return value


def _opt_int(value: Any, path: str, bits: tuple[int, int] = _INT32) -> int | None:
    return None if value is None else _int(value, path, bits)


def _bool(value: Any, path: str, default: bool | None = False) -> bool | None:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise _fail(f"must be a boolean, got {_describe(value)}", path)
    return value


def _str(value: Any, path: str, default: str | None = "") -> str | None:
    if value is None:
        return default
    if not isinstance(value, str):
        raise _fail(f"must be a string, got {_describe(value)}", path)
    return value


def _number(value: Any, path: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _fail(f"must be a number, got {_describe(value)}", path)
    return value


# Go durations (metav1.Duration) ---------------------------------------------------------------

_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": 1_000_000_000, "m": 60_000_000_000, "h": 3_600_000_000_000}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


def parse_go_duration(text: str) -> int:
    """Parse a Go duration string (``"10s"``, ``"1m30s"``, ``"1.5h"``, ``"0"``) to integer
    nanoseconds, as ``time.ParseDuration`` does; ``ValueError`` when malformed."""
    if not isinstance(text, str):
        raise ValueError(f"not a string: {text!r}")
    rest = text
    sign = 1
    if rest[:1] in "+-" and rest:
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"invalid duration {text!r}")
    total = Fraction(0)
    pos = 0
    while pos < len(rest):
        m = _DURATION_PART.match(rest, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        total += Fraction(m.group(1)) * _DURATION_UNITS[m.group(2)]
        pos = m.end()
    ns = sign * math.trunc(total)
    if not _INT64[0] <= ns <= _INT64[1]:
        raise ValueError(f"invalid duration {text!r}: out of range")
    return ns


def format_go_duration(ns: int) -> str:
    """Write integer nanoseconds as a Go duration string that parses back exactly."""
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    mag = abs(ns)
    for unit in ("h", "m", "s", "ms", "us", "ns"):
        size = _DURATION_UNITS[unit]
        if mag % size == 0:
            return f"{sign}{mag // size}{unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def _duration(value: Any, path: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _fail(f"must be a duration string such as \"10s\", got {_describe(value)}", path)
    try:
        return parse_go_duration(value)
    except ValueError:
        raise _fail(f"invalid duration {value!r} (expected e.g. \"10s\", \"1m30s\", "
                    "\"500ms\")", path) from None


# Kubernetes name syntax (apimachinery/pkg/util/validation) ------------------------------------

_QUALIFIED_NAME_PART = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def _qualified_name_problem(value: str) -> str | None:
    """Why ``value`` is not a qualified name (a label key), or ``None``."""
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            return "prefix part must be non-empty"
        if len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix):
            return f"prefix part {prefix!r} must be a lowercase RFC 1123 subdomain"
    else:
        return ("must consist of a name with an optional DNS subdomain prefix and '/' "
                "(e.g. 'example.com/MyName')")
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    if not _QUALIFIED_NAME_PART.match(name):
        return ("name part must consist of alphanumeric characters, '-', '_' or '.', and must "
                "start and end with an alphanumeric character")
    return None


def _check_label_name(value: str, path: str) -> None:
    problem = _qualified_name_problem(value)
    if problem:
        raise _fail(f"invalid name {value!r}: {problem}", path)


def _check_label_value(value: str, path: str) -> None:
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        raise _fail(f"invalid label value {value!r}: must be 63 characters or less, empty or "
                    "alphanumeric with '-', '_' or '.' inside", path)


def _args_kind_check(data: Mapping[str, Any], kind: str) -> None:
    """Plugin args may carry apiVersion/kind; they must then name the plugin's args type."""
    api_version = data.get("apiVersion")
    if api_version is not None and api_version != API_VERSION:
        raise _fail(f"args must be {API_VERSION} {kind}, got apiVersion {_describe(api_version)}",
                    "apiVersion")
    got = data.get("kind")
    if got is not None and got != kind:
        raise _fail(f"args for this plugin must be of kind {kind}, got {_describe(got)}", "kind")


_ARGS_META = ("apiVersion", "kind")


# ---------------------------------------------------------------------------------------------
# Plugin args (types_pluginargs.go, defaults.go, validation_pluginargs.go)
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ResourceSpec:
    """A resource considered when scoring, with its weight."""

    name: str
    weight: int = 1

    def to_dict(self) -> dict:
        return {"name": self.name, "weight": self.weight}


_DEFAULT_RESOURCES = (ResourceSpec("cpu", 1), ResourceSpec("memory", 1))


def _resources(value: Any, path: str) -> tuple[ResourceSpec, ...]:
    """Decode ``[]ResourceSpec``, defaulting: empty -> cpu and memory; weight 0 -> 1."""
    items = _list(value, path)
    if not items:
        return _DEFAULT_RESOURCES
    out = []
    for i, raw in enumerate(items):
        p = f"{path}[{i}]"
        m = _mapping(raw, p, ("name", "weight"))
        name = _str(m.get("name"), join_field(p, "name"))
        weight = _opt_int(m.get("weight"), join_field(p, "weight"), _INT64) or 0
        out.append(ResourceSpec(name, weight if weight != 0 else 1))
    return tuple(out)


@dataclass(frozen=True)
class UtilizationShapePoint:
    """One point of a scoring function: utilization 0..100 -> score 0..10."""

    utilization: int
    score: int

    def to_dict(self) -> dict:
        return {"utilization": self.utilization, "score": self.score}


def _shape(value: Any, path: str) -> tuple[UtilizationShapePoint, ...]:
    points = []
    for i, raw in enumerate(_list(value, path)):
        p = f"{path}[{i}]"
        m = _mapping(raw, p, ("utilization", "score"))
        points.append(UtilizationShapePoint(
            _opt_int(m.get("utilization"), join_field(p, "utilization")) or 0,
            _opt_int(m.get("score"), join_field(p, "score")) or 0))
    return tuple(points)


def _validate_shape(shape: tuple[UtilizationShapePoint, ...], path: str) -> None:
    """validateFunctionShape: at least one point, utilization strictly increasing and in
    [0, 100], score in [0, 10]."""
    if not shape:
        raise _fail("at least one point must be specified", path)
    for i in range(1, len(shape)):
        if shape[i - 1].utilization >= shape[i].utilization:
            raise _fail(f"utilization values must be sorted in increasing order "
                        f"({shape[i - 1].utilization} then {shape[i].utilization})",
                        f"{path}[{i}].utilization")
    for i, point in enumerate(shape):
        if not 0 <= point.utilization <= 100:
            raise _fail(f"must be in the range [0, 100], got {point.utilization}",
                        f"{path}[{i}].utilization")
        if not 0 <= point.score <= MAX_CUSTOM_PRIORITY_SCORE:
            raise _fail(f"must be in the range [0, {MAX_CUSTOM_PRIORITY_SCORE}], got "
                        f"{point.score}", f"{path}[{i}].score")


@dataclass(frozen=True)
class RequestedToCapacityRatioParam:
    """Arguments of the RequestedToCapacityRatio scoring strategy."""

    shape: tuple[UtilizationShapePoint, ...] = ()

    def to_dict(self) -> dict:
        return {"shape": [p.to_dict() for p in self.shape]}


SCORING_STRATEGY_TYPES = ("LeastAllocated", "MostAllocated", "RequestedToCapacityRatio")


@dataclass(frozen=True)
class ScoringStrategy:
    """How NodeResourcesFit scores nodes (default LeastAllocated on cpu and memory)."""

    type: str = "LeastAllocated"
    resources: tuple[ResourceSpec, ...] = _DEFAULT_RESOURCES
    requested_to_capacity_ratio: RequestedToCapacityRatioParam | None = None

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"type": self.type,
                               "resources": [r.to_dict() for r in self.resources]}
        if self.requested_to_capacity_ratio is not None:
            out["requestedToCapacityRatio"] = self.requested_to_capacity_ratio.to_dict()
        return out


@dataclass(frozen=True)
class NodeResourcesFitArgs:
    """Args of NodeResourcesFit."""

    KIND: ClassVar[str] = "NodeResourcesFitArgs"
    ignored_resources: tuple[str, ...] = ()
    ignored_resource_groups: tuple[str, ...] = ()
    scoring_strategy: ScoringStrategy = ScoringStrategy()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> NodeResourcesFitArgs:
        m = _mapping(data, "", _ARGS_META + ("ignoredResources", "ignoredResourceGroups",
                                              "scoringStrategy"))
        _args_kind_check(m, cls.KIND)
        ignored = tuple(_str(v, f"ignoredResources[{i}]")
                        for i, v in enumerate(_list(m.get("ignoredResources"),
                                                    "ignoredResources")))
        groups = tuple(_str(v, f"ignoredResourceGroups[{i}]")
                       for i, v in enumerate(_list(m.get("ignoredResourceGroups"),
                                                   "ignoredResourceGroups")))
        raw = m.get("scoringStrategy")
        if raw is None:
            strategy = ScoringStrategy()
        else:
            s = _mapping(raw, "scoringStrategy", ("type", "resources", "requestedToCapacityRatio"))
            rtcr = None
            if s.get("requestedToCapacityRatio") is not None:
                p = "scoringStrategy.requestedToCapacityRatio"
                r = _mapping(s["requestedToCapacityRatio"], p, ("shape",))
                rtcr = RequestedToCapacityRatioParam(_shape(r.get("shape"), f"{p}.shape"))
            strategy = ScoringStrategy(
                type=_str(s.get("type"), "scoringStrategy.type"),
                resources=_resources(s.get("resources"), "scoringStrategy.resources"),
                requested_to_capacity_ratio=rtcr)
        args = cls(ignored, groups, strategy)
        args.validate()
        return args

    def validate(self) -> None:
        for i, res in enumerate(self.ignored_resources):
            _check_label_name(res, f"ignoredResources[{i}]")
        for i, group in enumerate(self.ignored_resource_groups):
            path = f"ignoredResourceGroups[{i}]"
            if "/" in group:
                raise _fail(f"resource group name {group!r} can't contain '/'", path)
            _check_label_name(group, path)
        s = self.scoring_strategy
        if s.type not in SCORING_STRATEGY_TYPES:
            raise _fail(f"unsupported scoring strategy {s.type!r}; supported: "
                        f"{', '.join(SCORING_STRATEGY_TYPES)}", "scoringStrategy.type")
        for i, res in enumerate(s.resources):
            if not 0 < res.weight <= 100:
                raise _fail(f"resource weight of {res.name} must be in the range (0, 100], "
                            f"got {res.weight}", f"scoringStrategy.resources[{i}].weight")
        path = "scoringStrategy.requestedToCapacityRatio"
        if s.requested_to_capacity_ratio is not None:
            _validate_shape(s.requested_to_capacity_ratio.shape, f"{path}.shape")
        elif s.type == "RequestedToCapacityRatio":
            # Validation lets this through, but the plugin cannot be built without a shape.
            raise _fail("is required by the RequestedToCapacityRatio scoring strategy", path)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {}
        if self.ignored_resources:
            out["ignoredResources"] = list(self.ignored_resources)
        if self.ignored_resource_groups:
            out["ignoredResourceGroups"] = list(self.ignored_resource_groups)
        out["scoringStrategy"] = self.scoring_strategy.to_dict()
        return out


@dataclass(frozen=True)
class NodeResourcesBalancedAllocationArgs:
    """Args of NodeResourcesBalancedAllocation (resources default to cpu and memory)."""

    KIND: ClassVar[str] = "NodeResourcesBalancedAllocationArgs"
    resources: tuple[ResourceSpec, ...] = _DEFAULT_RESOURCES

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> NodeResourcesBalancedAllocationArgs:
        m = _mapping(data, "", _ARGS_META + ("resources",))
        _args_kind_check(m, cls.KIND)
        args = cls(_resources(m.get("resources"), "resources"))
        args.validate()
        return args

    def validate(self) -> None:
        seen: set[str] = set()
        for i, res in enumerate(self.resources):
            if res.name in seen:
                raise _fail(f"duplicate resource {res.name!r}", f"resources[{i}].name")
            seen.add(res.name)
            if res.weight != 1:
                raise _fail(f"must be 1, got {res.weight}", f"resources[{i}].weight")

    def to_dict(self) -> dict:
        return {"resources": [r.to_dict() for r in self.resources]}


_WHEN_UNSATISFIABLE = ("DoNotSchedule", "ScheduleAnyway")
_TSC_KEYS = ("maxSkew", "topologyKey", "whenUnsatisfiable", "labelSelector", "minDomains",
             "nodeAffinityPolicy", "nodeTaintsPolicy", "matchLabelKeys")


@dataclass(frozen=True)
class TopologySpreadDefault:
    """A default topology spread constraint (a ``v1.TopologySpreadConstraint`` without a
    label selector: it is deduced from the pod's Services and controllers)."""

    max_skew: int
    topology_key: str
    when_unsatisfiable: str
    min_domains: int | None = None
    node_affinity_policy: str | None = None
    node_taints_policy: str | None = None
    match_label_keys: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"maxSkew": self.max_skew, "topologyKey": self.topology_key,
                               "whenUnsatisfiable": self.when_unsatisfiable}
        if self.min_domains is not None:
            out["minDomains"] = self.min_domains
        if self.node_affinity_policy is not None:
            out["nodeAffinityPolicy"] = self.node_affinity_policy
        if self.node_taints_policy is not None:
            out["nodeTaintsPolicy"] = self.node_taints_policy
        if self.match_label_keys:
            out["matchLabelKeys"] = list(self.match_label_keys)
        return out


#: The constraints ``defaultingType: System`` applies (podtopologyspread's
#: systemDefaultConstraints).
SYSTEM_DEFAULT_CONSTRAINTS: tuple[TopologySpreadDefault, ...] = (
    TopologySpreadDefault(3, "kubernetes.io/hostname", "ScheduleAnyway"),
    TopologySpreadDefault(5, "topology.kubernetes.io/zone", "ScheduleAnyway"),
)


@dataclass(frozen=True)
class PodTopologySpreadArgs:
    """Args of PodTopologySpread. ``default_constraints`` is what the user listed;
    :attr:`effective_default_constraints` is what the plugin applies."""

    KIND: ClassVar[str] = "PodTopologySpreadArgs"
    default_constraints: tuple[TopologySpreadDefault, ...] = ()
    defaulting_type: str = "System"

    @property
    def effective_default_constraints(self) -> tuple[TopologySpreadDefault, ...]:
        if self.defaulting_type == "System":
            return SYSTEM_DEFAULT_CONSTRAINTS
        return self.default_constraints

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> PodTopologySpreadArgs:
        m = _mapping(data, "", _ARGS_META + ("defaultConstraints", "defaultingType"))
        _args_kind_check(m, cls.KIND)
        constraints = []
        for i, raw in enumerate(_list(m.get("defaultConstraints"), "defaultConstraints")):
            p = f"defaultConstraints[{i}]"
            c = _mapping(raw, p, _TSC_KEYS)
            if c.get("labelSelector") is not None:
                raise _fail("must not be set: default constraints cannot define a selector, "
                            "it is deduced for each pod", join_field(p, "labelSelector"))
            keys = _list(c.get("matchLabelKeys"), join_field(p, "matchLabelKeys"))
            constraints.append(TopologySpreadDefault(
                max_skew=_opt_int(c.get("maxSkew"), join_field(p, "maxSkew")) or 0,
                topology_key=_str(c.get("topologyKey"), join_field(p, "topologyKey")),
                when_unsatisfiable=_str(c.get("whenUnsatisfiable"),
                                        join_field(p, "whenUnsatisfiable")),
                min_domains=_opt_int(c.get("minDomains"), join_field(p, "minDomains")),
                node_affinity_policy=_str(c.get("nodeAffinityPolicy"),
                                          join_field(p, "nodeAffinityPolicy"), None),
                node_taints_policy=_str(c.get("nodeTaintsPolicy"),
                                        join_field(p, "nodeTaintsPolicy"), None),
                match_label_keys=tuple(_str(k, f"{p}.matchLabelKeys[{j}]")
                                       for j, k in enumerate(keys))))
        args = cls(tuple(constraints), _str(m.get("defaultingType"), "defaultingType") or "System")
        args.validate()
        return args

    def validate(self) -> None:
        if self.defaulting_type not in ("System", "List"):
            raise _fail(f'unsupported value {self.defaulting_type!r}; supported: "System", '
                        '"List"', "defaultingType")
        if self.defaulting_type == "System" and self.default_constraints:
            raise _fail('must be "List" when defaultConstraints are not empty',
                        "defaultingType")
        for i, c in enumerate(self.default_constraints):
            p = f"defaultConstraints[{i}]"
            if c.max_skew <= 0:
                raise _fail(f"must be greater than zero, got {c.max_skew}", f"{p}.maxSkew")
            if not c.topology_key:
                raise _fail("is required", f"{p}.topologyKey")
            _check_label_name(c.topology_key, f"{p}.topologyKey")
            if not c.when_unsatisfiable:
                raise _fail("is required", f"{p}.whenUnsatisfiable")
            if c.when_unsatisfiable not in _WHEN_UNSATISFIABLE:
                raise _fail(f"unsupported value {c.when_unsatisfiable!r}; supported: "
                            '"DoNotSchedule", "ScheduleAnyway"', f"{p}.whenUnsatisfiable")
            for j in range(i):
                o = self.default_constraints[j]
                if (o.topology_key, o.when_unsatisfiable) == (c.topology_key,
                                                              c.when_unsatisfiable):
                    raise _fail(f"duplicate constraint {{{c.topology_key}, "
                                f"{c.when_unsatisfiable}}} (also defaultConstraints[{j}])", p)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"defaultingType": self.defaulting_type}
        if self.default_constraints:
            out["defaultConstraints"] = [c.to_dict() for c in self.default_constraints]
        return out


@dataclass(frozen=True)
class InterPodAffinityArgs:
    """Args of InterPodAffinity."""

    KIND: ClassVar[str] = "InterPodAffinityArgs"
    hard_pod_affinity_weight: int = 1
    ignore_preferred_terms_of_existing_pods: bool = False

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> InterPodAffinityArgs:
        m = _mapping(data, "", _ARGS_META + ("hardPodAffinityWeight",
                                              "ignorePreferredTermsOfExistingPods"))
        _args_kind_check(m, cls.KIND)
        weight = _opt_int(m.get("hardPodAffinityWeight"), "hardPodAffinityWeight")
        args = cls(1 if weight is None else weight,
                   _bool(m.get("ignorePreferredTermsOfExistingPods"),
                         "ignorePreferredTermsOfExistingPods"))
        args.validate()
        return args

    def validate(self) -> None:
        if not 0 <= self.hard_pod_affinity_weight <= 100:
            raise _fail(f"must be in the range [0, 100], got {self.hard_pod_affinity_weight}",
                        "hardPodAffinityWeight")

    def to_dict(self) -> dict:
        return {"hardPodAffinityWeight": self.hard_pod_affinity_weight,
                "ignorePreferredTermsOfExistingPods": self.ignore_preferred_terms_of_existing_pods}


_NODE_SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def _node_selector_term(value: Any, path: str) -> dict:
    """Decode and check a NodeSelectorTerm as nodeaffinity.NewNodeSelector does."""
    t = _mapping(value, path, ("matchExpressions", "matchFields"))
    out: dict[str, Any] = {}
    exprs = []
    for i, raw in enumerate(_list(t.get("matchExpressions"), join_field(path, "matchExpressions"))):
        p = f"{join_field(path, 'matchExpressions')}[{i}]"
        e = _mapping(raw, p, ("key", "operator", "values"))
        key = _str(e.get("key"), join_field(p, "key"))
        op = _str(e.get("operator"), join_field(p, "operator"))
        values = [_str(v, f"{p}.values[{j}]")
                  for j, v in enumerate(_list(e.get("values"), join_field(p, "values")))]
        if op not in _NODE_SELECTOR_OPERATORS:
            raise _fail(f"unsupported operator {op!r}; supported: "
                        f"{', '.join(_NODE_SELECTOR_OPERATORS)}", join_field(p, "operator"))
        _check_label_name(key, join_field(p, "key"))
        vpath = join_field(p, "values")
        if op in ("In", "NotIn") and not values:
            raise _fail(f"values must be non-empty for operator {op}", vpath)
        if op in ("Exists", "DoesNotExist") and values:
            raise _fail(f"values must be empty for operator {op}", vpath)
        if op in ("Gt", "Lt"):
            if len(values) != 1:
                raise _fail(f"exactly one value is required for operator {op}", vpath)
            if not re.fullmatch(r"[+-]?\d+", values[0]):
                raise _fail(f"the value for operator {op} must be an integer, got "
                            f"{values[0]!r}", f"{vpath}[0]")
        for j, v in enumerate(values):
            _check_label_value(v, f"{vpath}[{j}]")
        expr: dict[str, Any] = {"key": key, "operator": op}
        if e.get("values") is not None:
            expr["values"] = values
        exprs.append(expr)
    if t.get("matchExpressions") is not None:
        out["matchExpressions"] = exprs
    fields = []
    for i, raw in enumerate(_list(t.get("matchFields"), join_field(path, "matchFields"))):
        p = f"{join_field(path, 'matchFields')}[{i}]"
        e = _mapping(raw, p, ("key", "operator", "values"))
        key = _str(e.get("key"), join_field(p, "key"))
        op = _str(e.get("operator"), join_field(p, "operator"))
        values = [_str(v, f"{p}.values[{j}]")
                  for j, v in enumerate(_list(e.get("values"), join_field(p, "values")))]
        if key != "metadata.name":
            raise _fail(f'{key!r} is not a valid field selector key (only "metadata.name")',
                        join_field(p, "key"))
        if len(values) != 1:
            raise _fail("must have exactly one element", join_field(p, "values"))
        if op not in ("In", "NotIn"):
            raise _fail(f'unsupported operator {op!r}; supported: "In", "NotIn"',
                        join_field(p, "operator"))
        fields.append({"key": key, "operator": op, "values": values})
    if t.get("matchFields") is not None:
        out["matchFields"] = fields
    return out


@dataclass(frozen=True)
class NodeAffinityArgs:
    """Args of NodeAffinity. ``added_affinity`` is a validated ``v1.NodeAffinity`` as a
    plain dict (the scheduler decodes it with the object model), or ``None``."""

    KIND: ClassVar[str] = "NodeAffinityArgs"
    added_affinity: dict | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> NodeAffinityArgs:
        m = _mapping(data, "", _ARGS_META + ("addedAffinity",))
        _args_kind_check(m, cls.KIND)
        raw = m.get("addedAffinity")
        if raw is None:
            return cls(None)
        req_key = "requiredDuringSchedulingIgnoredDuringExecution"
        pref_key = "preferredDuringSchedulingIgnoredDuringExecution"
        a = _mapping(raw, "addedAffinity", (req_key, pref_key))
        out: dict[str, Any] = {}
        if a.get(req_key) is not None:
            p = f"addedAffinity.{req_key}"
            sel = _mapping(a[req_key], p, ("nodeSelectorTerms",))
            terms = [_node_selector_term(t, f"{p}.nodeSelectorTerms[{i}]")
                     for i, t in enumerate(_list(sel.get("nodeSelectorTerms"),
                                                 f"{p}.nodeSelectorTerms"))]
            out[req_key] = {"nodeSelectorTerms": terms}
        if a.get(pref_key) is not None:
            prefs = []
            for i, raw_term in enumerate(_list(a[pref_key], f"addedAffinity.{pref_key}")):
                p = f"addedAffinity.{pref_key}[{i}]"
                pt = _mapping(raw_term, p, ("weight", "preference"))
                prefs.append({"weight": _opt_int(pt.get("weight"), join_field(p, "weight")) or 0,
                              "preference": _node_selector_term(pt.get("preference"),
                                                                join_field(p, "preference"))})
            out[pref_key] = prefs
        return cls(out)

    def to_dict(self) -> dict:
        return {} if self.added_affinity is None else {
            "addedAffinity": copy.deepcopy(self.added_affinity)}


@dataclass(frozen=True)
class DefaultPreemptionArgs:
    """Args of DefaultPreemption: how many candidate nodes a preemption dry-run shortlists."""

    KIND: ClassVar[str] = "DefaultPreemptionArgs"
    min_candidate_nodes_percentage: int = 10
    min_candidate_nodes_absolute: int = 100

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DefaultPreemptionArgs:
        m = _mapping(data, "", _ARGS_META + ("minCandidateNodesPercentage",
                                              "minCandidateNodesAbsolute"))
        _args_kind_check(m, cls.KIND)
        pct = _opt_int(m.get("minCandidateNodesPercentage"), "minCandidateNodesPercentage")
        absolute = _opt_int(m.get("minCandidateNodesAbsolute"), "minCandidateNodesAbsolute")
        args = cls(10 if pct is None else pct, 100 if absolute is None else absolute)
        args.validate()
        return args

    def validate(self) -> None:
        if not 0 <= self.min_candidate_nodes_percentage <= 100:
            raise _fail(f"must be in the range [0, 100], got "
                        f"{self.min_candidate_nodes_percentage}", "minCandidateNodesPercentage")
        if self.min_candidate_nodes_absolute < 0:
            raise _fail(f"must not be negative, got {self.min_candidate_nodes_absolute}",
                        "minCandidateNodesAbsolute")
        if self.min_candidate_nodes_percentage == 0 and self.min_candidate_nodes_absolute == 0:
            raise _fail("cannot be zero at the same time as minCandidateNodesAbsolute",
                        "minCandidateNodesPercentage")

    def to_dict(self) -> dict:
        return {"minCandidateNodesPercentage": self.min_candidate_nodes_percentage,
                "minCandidateNodesAbsolute": self.min_candidate_nodes_absolute}


@dataclass(frozen=True)
class VolumeBindingArgs:
    """Args of VolumeBinding. ``shape`` needs the StorageCapacityScoring gate, which is off
    in v1.35, so setting it is an error."""

    KIND: ClassVar[str] = "VolumeBindingArgs"
    bind_timeout_seconds: int = 600

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> VolumeBindingArgs:
        m = _mapping(data, "", _ARGS_META + ("bindTimeoutSeconds", "shape"))
        _args_kind_check(m, cls.KIND)
        if "shape" in m:
            raise _fail("unexpected field: shape needs the StorageCapacityScoring feature gate, "
                        "which is off in kube-scheduler v1.35", "shape")
        timeout = _opt_int(m.get("bindTimeoutSeconds"), "bindTimeoutSeconds", _INT64)
        args = cls(600 if timeout is None else timeout)
        args.validate()
        return args

    def validate(self) -> None:
        if self.bind_timeout_seconds < 0:
            raise _fail(f"must not be negative, got {self.bind_timeout_seconds}",
                        "bindTimeoutSeconds")

    def to_dict(self) -> dict:
        return {"bindTimeoutSeconds": self.bind_timeout_seconds}


@dataclass(frozen=True)
class DynamicResourcesArgs:
    """Args of DynamicResources: the per-node Filter timeout, in nanoseconds (10s default;
    0 disables it)."""

    KIND: ClassVar[str] = "DynamicResourcesArgs"
    filter_timeout_ns: int = 10_000_000_000

    @property
    def filter_timeout_seconds(self) -> float:
        return self.filter_timeout_ns / 1e9

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> DynamicResourcesArgs:
        m = _mapping(data, "", _ARGS_META + ("filterTimeout", "bindingTimeout"))
        _args_kind_check(m, cls.KIND)
        if m.get("bindingTimeout") is not None:
            raise _fail("must not be set: it needs the DRADeviceBindingConditions feature gate, "
                        "which is off in kube-scheduler v1.35", "bindingTimeout")
        timeout = _duration(m.get("filterTimeout"), "filterTimeout")
        args = cls(10_000_000_000 if timeout is None else timeout)
        args.validate()
        return args

    def validate(self) -> None:
        if self.filter_timeout_ns < 0:
            shown = format_go_duration(self.filter_timeout_ns)
            raise _fail(f"must be zero or positive, got {shown}", "filterTimeout")

    def to_dict(self) -> dict:
        return {"filterTimeout": format_go_duration(self.filter_timeout_ns)}


# ---------------------------------------------------------------------------------------------
# In-tree plugins (names.go) and the default profile (default_plugins.go)
# ---------------------------------------------------------------------------------------------

_IN_TREE: tuple[tuple[str, tuple[ExtensionPoint, ...], type | None], ...] = (
    ("PrioritySort", (EP.QUEUE_SORT,), None),
    ("DefaultBinder", (EP.BIND,), None),
    ("DefaultPreemption", (EP.PRE_ENQUEUE, EP.POST_FILTER), DefaultPreemptionArgs),
    ("DynamicResources", (EP.PRE_ENQUEUE, EP.PRE_FILTER, EP.FILTER, EP.POST_FILTER, EP.SCORE,
                          EP.RESERVE, EP.PRE_BIND), DynamicResourcesArgs),
    ("ImageLocality", (EP.SCORE,), None),
    ("InterPodAffinity", (EP.PRE_FILTER, EP.FILTER, EP.PRE_SCORE, EP.SCORE),
     InterPodAffinityArgs),
    ("NodeAffinity", (EP.PRE_FILTER, EP.FILTER, EP.PRE_SCORE, EP.SCORE), NodeAffinityArgs),
    ("NodeName", (EP.FILTER,), None),
    ("NodePorts", (EP.PRE_FILTER, EP.FILTER), None),
    ("NodeResourcesBalancedAllocation", (EP.PRE_SCORE, EP.SCORE),
     NodeResourcesBalancedAllocationArgs),
    ("NodeResourcesFit", (EP.PRE_FILTER, EP.FILTER, EP.PRE_SCORE, EP.SCORE),
     NodeResourcesFitArgs),
    ("NodeUnschedulable", (EP.FILTER,), None),
    ("NodeVolumeLimits", (EP.PRE_FILTER, EP.FILTER), None),
    ("PodTopologySpread", (EP.PRE_FILTER, EP.FILTER, EP.PRE_SCORE, EP.SCORE),
     PodTopologySpreadArgs),
    ("SchedulingGates", (EP.PRE_ENQUEUE,), None),
    ("TaintToleration", (EP.FILTER, EP.PRE_SCORE, EP.SCORE), None),
    ("VolumeBinding", (EP.PRE_FILTER, EP.FILTER, EP.PRE_SCORE, EP.SCORE, EP.RESERVE,
                       EP.PRE_BIND), VolumeBindingArgs),
    ("VolumeRestrictions", (EP.PRE_FILTER, EP.FILTER), None),
    ("VolumeZone", (EP.PRE_FILTER, EP.FILTER), None),
    # Removed from kube-scheduler; schedbench implements it as an extra. Not in the defaults.
    ("SelectorSpread", (EP.PRE_SCORE, EP.SCORE), None),
)
for _name, _points, _args in _IN_TREE:
    register_plugin(_name, _points, _args, _builtin=True)
del _name, _points, _args

# schedbench's own score plugins (not in kube-scheduler), used by the built-in policies.
register_plugin("FirstFit", (EP.SCORE,))
register_plugin("Random", (EP.SCORE,))
register_plugin("DotProduct", (EP.PRE_SCORE, EP.SCORE))
# GPU sharing (Alibaba's annotations) and the FGD paper's (ATC '23) score plugins.
register_plugin("GpuShare", (EP.PRE_FILTER, EP.FILTER))
for _name in ("Atc23DotProd", "Atc23Packing", "Atc23BestFit", "Atc23Clustering", "Atc23Fgd"):
    register_plugin(_name, (EP.SCORE,))
del _name

#: kube-scheduler v1.35's default multiPoint list: (name, weight or None).
DEFAULT_MULTIPOINT: tuple[tuple[str, int | None], ...] = (
    ("SchedulingGates", None),
    ("PrioritySort", None),
    ("NodeUnschedulable", None),
    ("NodeName", None),
    ("TaintToleration", 3),
    ("NodeAffinity", 2),
    ("NodePorts", None),
    ("NodeResourcesFit", 1),
    ("VolumeRestrictions", None),
    ("NodeVolumeLimits", None),
    ("VolumeBinding", None),
    ("VolumeZone", None),
    ("PodTopologySpread", 2),
    ("InterPodAffinity", 2),
    ("DynamicResources", None),   # DynamicResourceAllocation: GA, locked on since v1.35
    ("DefaultPreemption", None),
    ("NodeResourcesBalancedAllocation", 1),
    ("ImageLocality", 1),
    ("DefaultBinder", None),
)


# ---------------------------------------------------------------------------------------------
# The loaded configuration
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Profile:
    """One scheduling profile, ready for the scheduler.

    ``plugins`` maps every :class:`ExtensionPoint` to its effective, ordered plugins (after
    defaults, merging and multiPoint expansion); ``plugin_args`` maps plugin names to their
    args (typed and defaulted for registered args types, a plain dict otherwise), including
    args given for plugins that end up unused, as kube-scheduler keeps them.
    ``percentage_of_nodes_to_score`` is the profile's own override (``None``: use the global
    value, see :meth:`SchedulerConfiguration.effective_percentage_of_nodes_to_score`)."""

    scheduler_name: str
    plugins: dict[ExtensionPoint, list[PluginRef]]
    plugin_args: dict[str, Any] = field(default_factory=dict)
    percentage_of_nodes_to_score: int | None = None

    def names(self, point: ExtensionPoint | str) -> list[str]:
        """Plugin names enabled at ``point``, in order."""
        return [ref.name for ref in self.plugins[_extension_point(point)]]

    @property
    def score_weights(self) -> dict[str, int]:
        return {ref.name: ref.weight for ref in self.plugins[EP.SCORE]}

    @property
    def queue_sort(self) -> str:
        return self.plugins[EP.QUEUE_SORT][0].name

    def enabled_plugins(self) -> list[str]:
        """Every plugin enabled at some extension point, in first-seen order."""
        seen: dict[str, None] = {}
        for point in EXTENSION_POINTS:
            for ref in self.plugins[point]:
                seen.setdefault(ref.name, None)
        return list(seen)

    def args(self, name: str) -> Any:
        """The args of plugin ``name`` (``None`` when it has none)."""
        return self.plugin_args.get(name)


@dataclass(frozen=True)
class SchedulerConfiguration:
    """A loaded, defaulted and validated ``KubeSchedulerConfiguration``.

    Fields that do not change scheduling decisions (``leaderElection``,
    ``clientConnection``, profiling, ``delayCacheUntilActive``) and ``extenders`` (which
    schedbench does not call) are checked and kept as given so that they round-trip."""

    profiles: list[Profile]
    parallelism: int = 16
    percentage_of_nodes_to_score: int = 0
    pod_initial_backoff_seconds: int = 1
    pod_max_backoff_seconds: int = 10
    extenders: list[dict] = field(default_factory=list)
    leader_election: dict | None = None
    client_connection: dict | None = None
    enable_profiling: bool | None = None
    enable_contention_profiling: bool | None = None
    delay_cache_until_active: bool | None = None
    source: str = field(default="<config>", compare=False)

    def profile(self, scheduler_name: str | None = None) -> Profile:
        """The profile for ``scheduler_name`` (the first profile when ``None``)."""
        if scheduler_name is None:
            return self.profiles[0]
        for prof in self.profiles:
            if prof.scheduler_name == scheduler_name:
                return prof
        raise KeyError(f"no profile with schedulerName {scheduler_name!r} (profiles: "
                       f"{', '.join(p.scheduler_name for p in self.profiles)})")

    def effective_percentage_of_nodes_to_score(self, scheduler_name: str | None = None) -> int:
        """The profile's percentageOfNodesToScore if set, else the global one (0 = adaptive)."""
        own = self.profile(scheduler_name).percentage_of_nodes_to_score
        return self.percentage_of_nodes_to_score if own is None else own


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------

class _StrictLoader(yaml.SafeLoader):
    """A YAML loader that rejects duplicate mapping keys, as strict decoding does."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:
            continue  # an unhashable key; SafeLoader reports it below
        if duplicate:
            raise ConfigError(f'duplicate key "{key}" at line {key_node.start_mark.line + 1}')
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_scheduler_config(path: str | Path) -> SchedulerConfiguration:
    """Read a ``KubeSchedulerConfiguration`` YAML or JSON file (what
    ``kube-scheduler --config`` reads)."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"cannot read: {getattr(err, 'strerror', None) or err}",
                          file=name) from None
    try:
        docs = [d for d in yaml.load_all(text, Loader=_StrictLoader) if d is not None]
    except ConfigError as err:
        raise err.located(file=name) from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"invalid YAML{where}: {problem}", file=name) from None
    if not docs:
        raise ConfigError("the file is empty; expected a KubeSchedulerConfiguration", file=name)
    if len(docs) > 1:
        raise ConfigError(f"expected one YAML document, found {len(docs)}", file=name)
    return parse_scheduler_config(docs[0], source=name)


def default_configuration() -> SchedulerConfiguration:
    """The configuration kube-scheduler v1.35 runs with when given no ``--config``."""
    return parse_scheduler_config({"apiVersion": API_VERSION, "kind": KIND}, "<default>")


def parse_scheduler_config(data: Any, source: str = "<config>") -> SchedulerConfiguration:
    """Decode, default and validate a ``KubeSchedulerConfiguration`` given as a dict (as
    parsed from YAML). Raises :class:`ConfigError`."""
    try:
        return _Parser(data, source).run()
    except ConfigError as err:
        raise err.located(file=source) from None


_TOP_KEYS = ("apiVersion", "kind", "parallelism", "leaderElection", "clientConnection",
             "enableProfiling", "enableContentionProfiling", "percentageOfNodesToScore",
             "podInitialBackoffSeconds", "podMaxBackoffSeconds", "profiles", "extenders",
             "delayCacheUntilActive")
_PROFILE_KEYS = ("schedulerName", "percentageOfNodesToScore", "plugins", "pluginConfig")
_LEADER_ELECTION_KEYS = ("leaderElect", "leaseDuration", "renewDeadline", "retryPeriod",
                         "resourceLock", "resourceName", "resourceNamespace")
_CLIENT_CONNECTION_KEYS = ("kubeconfig", "acceptContentTypes", "contentType", "qps", "burst")
_EXTENDER_KEYS = ("urlPrefix", "filterVerb", "preemptVerb", "prioritizeVerb", "weight",
                  "bindVerb", "enableHTTPS", "tlsConfig", "httpTimeout", "nodeCacheCapable",
                  "managedResources", "ignorable")
_TLS_KEYS = ("insecure", "serverName", "certFile", "keyFile", "caFile", "certData", "keyData",
             "caData")


@dataclass
class _Entry:
    """A plugin in an enabled list: its name, configured weight (None when unset) and its
    index in the user's list (None for a default plugin)."""

    name: str
    weight: int | None
    index: int | None


@dataclass
class _Set:
    enabled: list[_Entry] = field(default_factory=list)
    disabled: list[str] = field(default_factory=list)

    def key(self) -> tuple:
        """What apiequality.Semantic.DeepEqual compares (nil weight = 0)."""
        return (tuple((e.name, e.weight or 0) for e in self.enabled), tuple(self.disabled))


@dataclass
class _RawProfile:
    index: int
    scheduler_name: str | None
    percentage: int | None
    sets: dict[str, _Set]
    plugin_config: list[tuple[int, str, Any]]     # (index, name, args)

    @property
    def path(self) -> str:
        return f"profiles[{self.index}]"


def _merge(default: _Set, custom: _Set) -> _Set:
    """mergePluginSet: drop disabled defaults (all with '*'), let a custom entry replace a
    default of the same name in place, append the remaining custom entries."""
    disabled = list(custom.disabled) + list(default.disabled)
    off = set(disabled)
    latest = {e.name: pos for pos, e in enumerate(custom.enabled)}
    replaced: set[int] = set()
    out: list[_Entry] = []
    if "*" not in off:
        for entry in default.enabled:
            if entry.name in off:
                continue
            pos = latest.get(entry.name)
            if pos is not None:
                entry = custom.enabled[pos]
                replaced.add(pos)
            out.append(entry)
    out.extend(e for pos, e in enumerate(custom.enabled) if pos not in replaced)
    return _Set(out, disabled)


class _Parser:
    def __init__(self, data: Any, source: str) -> None:
        self.data = data
        self.source = source

    # -- stage 1: decoding -------------------------------------------------------------------

    def run(self) -> SchedulerConfiguration:
        data = self.data
        if not isinstance(data, Mapping):
            raise ConfigError(f"a KubeSchedulerConfiguration must be a mapping, got "
                              f"{_describe(data)}", obj=KIND)
        try:
            self._check_type_meta(data)
            top = _mapping(data, "", _TOP_KEYS)
            parallelism = _opt_int(top.get("parallelism"), "parallelism")
            pct = _opt_int(top.get("percentageOfNodesToScore"), "percentageOfNodesToScore")
            initial = _opt_int(top.get("podInitialBackoffSeconds"), "podInitialBackoffSeconds",
                               _INT64)
            maximum = _opt_int(top.get("podMaxBackoffSeconds"), "podMaxBackoffSeconds", _INT64)
            leader = self._leader_election(top.get("leaderElection"))
            client = self._client_connection(top.get("clientConnection"))
            extenders = self._extenders(top.get("extenders"))
            profiling = _bool(top.get("enableProfiling"), "enableProfiling", None)
            contention = _bool(top.get("enableContentionProfiling"),
                               "enableContentionProfiling", None)
            delay = _bool(top.get("delayCacheUntilActive"), "delayCacheUntilActive", None)
            raw_profiles = [self._decode_profile(i, p)
                            for i, p in enumerate(_list(top.get("profiles"), "profiles"))]
        except ConfigError as err:
            raise err.located(obj=KIND) from None

        # -- stage 2: defaulting (SetDefaults_KubeSchedulerConfiguration) ---------------------
        if not raw_profiles:
            raw_profiles = [_RawProfile(0, None, None, {}, [])]
        if len(raw_profiles) == 1 and raw_profiles[0].scheduler_name is None:
            raw_profiles[0].scheduler_name = DEFAULT_SCHEDULER_NAME
        parallelism = 16 if parallelism is None else parallelism
        pct = 0 if pct is None else pct
        initial = 1 if initial is None else initial
        maximum = 10 if maximum is None else maximum
        defaults = {MULTI_POINT: _Set([_Entry(n, w, None) for n, w in DEFAULT_MULTIPOINT])}
        merged = [{key: _merge(defaults.get(key, _Set()), rp.sets.get(key, _Set()))
                   for key in _PLUGINS_KEYS} for rp in raw_profiles]

        # -- stage 3: validation (ValidateKubeSchedulerConfiguration) ------------------------
        try:
            if parallelism <= 0:
                raise _fail(f"must be greater than zero, got {parallelism}", "parallelism")
            seen_names: dict[str, int] = {}
            for rp in raw_profiles:
                self._validate_profile(rp)
                if rp.scheduler_name in seen_names:
                    raise _fail(f"duplicate schedulerName {rp.scheduler_name!r} (also "
                                f"profiles[{seen_names[rp.scheduler_name]}])",
                                f"{rp.path}.schedulerName").located(
                                    obj=f"{KIND}/{rp.scheduler_name}")
                seen_names[rp.scheduler_name] = rp.index
            self._validate_common_queue_sort(raw_profiles, merged)
            if not 0 <= pct <= 100:
                raise _fail(f"must be in the range [0, 100], got {pct}",
                            "percentageOfNodesToScore")
            if initial <= 0:
                raise _fail(f"must be greater than 0, got {initial}", "podInitialBackoffSeconds")
            if maximum < initial:
                raise _fail(f"must be greater than or equal to podInitialBackoffSeconds "
                            f"({initial}), got {maximum}", "podMaxBackoffSeconds")
        except ConfigError as err:
            raise err.located(obj=KIND) from None

        # -- stage 4: framework construction (NewFramework, profile.NewMap) ------------------
        profiles = []
        for rp, sets in zip(raw_profiles, merged):
            obj = f"{KIND}/{rp.scheduler_name}"
            try:
                profiles.append(self._build_profile(rp, sets))
            except ConfigError as err:
                raise err.located(obj=obj) from None
        first = profiles[0]
        for rp, prof in zip(raw_profiles[1:], profiles[1:]):
            if prof.queue_sort != first.queue_sort:
                raise ConfigError(
                    f"queue sort plugin {prof.queue_sort!r} differs from {first.queue_sort!r} "
                    f"of profiles[0]; all profiles must use the same queue sort plugin",
                    obj=f"{KIND}/{rp.scheduler_name}", field=f"{rp.path}.plugins.queueSort")
            if prof.plugin_args.get(prof.queue_sort) != first.plugin_args.get(first.queue_sort):
                raise ConfigError(
                    f"args of queue sort plugin {prof.queue_sort!r} differ from profiles[0]; "
                    "all profiles must use the same queue sort args",
                    obj=f"{KIND}/{rp.scheduler_name}", field=f"{rp.path}.pluginConfig")

        return SchedulerConfiguration(
            profiles=profiles, parallelism=parallelism, percentage_of_nodes_to_score=pct,
            pod_initial_backoff_seconds=initial, pod_max_backoff_seconds=maximum,
            extenders=extenders, leader_election=leader, client_connection=client,
            enable_profiling=profiling, enable_contention_profiling=contention,
            delay_cache_until_active=delay, source=self.source)

    @staticmethod
    def _check_type_meta(data: Mapping[str, Any]) -> None:
        api_version = data.get("apiVersion")
        if api_version is None:
            raise _fail(f'is required: set it to "{API_VERSION}"', "apiVersion")
        if api_version != API_VERSION:
            if isinstance(api_version, str) and api_version.startswith(GROUP + "/"):
                raise _fail(f"{api_version!r} is not served by kube-scheduler v1.35 (the "
                            f"v1alpha*/v1beta* versions were removed); use {API_VERSION!r}",
                            "apiVersion")
            raise _fail(f"unsupported apiVersion {_describe(api_version)}; expected "
                        f"{API_VERSION!r}", "apiVersion")
        kind = data.get("kind")
        if kind is None:
            raise _fail(f'is required: set it to "{KIND}"', "kind")
        if kind != KIND:
            raise _fail(f"must be {KIND!r}, got {_describe(kind)}", "kind")

    @staticmethod
    def _leader_election(value: Any) -> dict | None:
        if value is None:
            return None
        m = _mapping(value, "leaderElection", _LEADER_ELECTION_KEYS)
        p = "leaderElection"
        elect = _bool(m.get("leaderElect"), f"{p}.leaderElect", True)
        durations = {}
        for key, default in (("leaseDuration", 15), ("renewDeadline", 10), ("retryPeriod", 2)):
            ns = _duration(m.get(key), f"{p}.{key}")
            durations[key] = default * 10**9 if ns is None else ns
        lock = _str(m.get("resourceLock"), f"{p}.resourceLock") or "leases"
        for key in ("resourceName", "resourceNamespace"):
            _str(m.get(key), f"{p}.{key}")
        if elect:
            for key, ns in durations.items():
                if ns <= 0:
                    raise _fail(f"must be greater than zero, got {format_go_duration(ns)}",
                                f"{p}.{key}")
            if durations["leaseDuration"] <= durations["renewDeadline"]:
                raise _fail("leaseDuration must be greater than renewDeadline",
                            f"{p}.leaseDuration")
            if lock != "leases":
                raise _fail(f'must be "leases", got {lock!r}', f"{p}.resourceLock")
        return copy.deepcopy(dict(m))

    @staticmethod
    def _client_connection(value: Any) -> dict | None:
        if value is None:
            return None
        p = "clientConnection"
        m = _mapping(value, p, _CLIENT_CONNECTION_KEYS)
        for key in ("kubeconfig", "acceptContentTypes", "contentType"):
            _str(m.get(key), f"{p}.{key}")
        if m.get("qps") is not None:
            _number(m["qps"], f"{p}.qps")
        burst = _opt_int(m.get("burst"), f"{p}.burst")
        if burst is not None and burst < 0:
            raise _fail(f"must not be negative, got {burst}", f"{p}.burst")
        return copy.deepcopy(dict(m))

    @staticmethod
    def _extenders(value: Any) -> list[dict]:
        out = []
        binders = 0
        managed: set[str] = set()
        for i, raw in enumerate(_list(value, "extenders")):
            p = f"extenders[{i}]"
            m = _mapping(raw, p, _EXTENDER_KEYS)
            for key in ("urlPrefix", "filterVerb", "preemptVerb", "prioritizeVerb", "bindVerb"):
                _str(m.get(key), f"{p}.{key}")
            for key in ("enableHTTPS", "nodeCacheCapable", "ignorable"):
                _bool(m.get(key), f"{p}.{key}")
            weight = _opt_int(m.get("weight"), f"{p}.weight", _INT64) or 0
            _duration(m.get("httpTimeout"), f"{p}.httpTimeout")
            tls = _mapping(m.get("tlsConfig"), f"{p}.tlsConfig", _TLS_KEYS)
            _bool(tls.get("insecure"), f"{p}.tlsConfig.insecure")
            for key in _TLS_KEYS[1:]:
                _str(tls.get(key), f"{p}.tlsConfig.{key}")
            if m.get("prioritizeVerb") and weight <= 0:
                raise _fail(f"must be positive when prioritizeVerb is set, got {weight}",
                            f"{p}.weight")
            if m.get("bindVerb"):
                binders += 1
            for j, res in enumerate(_list(m.get("managedResources"), f"{p}.managedResources")):
                rp = f"{p}.managedResources[{j}]"
                r = _mapping(res, rp, ("name", "ignoredByScheduler"))
                name = _str(r.get("name"), f"{rp}.name")
                _bool(r.get("ignoredByScheduler"), f"{rp}.ignoredByScheduler")
                problem = _qualified_name_problem(f"requests.{name}") if name else "is empty"
                if ("/" not in name or "kubernetes.io/" in name or name.startswith("requests.")
                        or problem):
                    raise _fail(f"{name!r} is not a valid extended resource name", f"{rp}.name")
                if name in managed:
                    raise _fail(f"duplicate extender managed resource {name!r}", f"{rp}.name")
                managed.add(name)
            out.append(copy.deepcopy(dict(m)))
        if binders > 1:
            raise _fail(f"only one extender can implement bind, found {binders}", "extenders")
        return out

    def _decode_profile(self, index: int, value: Any) -> _RawProfile:
        path = f"profiles[{index}]"
        m = _mapping(value, path, _PROFILE_KEYS)
        name = _str(m.get("schedulerName"), f"{path}.schedulerName", None)
        pct = _opt_int(m.get("percentageOfNodesToScore"), f"{path}.percentageOfNodesToScore")
        sets: dict[str, _Set] = {}
        plugins = _mapping(m.get("plugins"), f"{path}.plugins", _PLUGINS_KEYS)
        for key, raw_set in plugins.items():
            if raw_set is not None:
                sets[key] = self._decode_set(raw_set, f"{path}.plugins.{key}")
        plugin_config = []
        for i, raw in enumerate(_list(m.get("pluginConfig"), f"{path}.pluginConfig")):
            p = f"{path}.pluginConfig[{i}]"
            pc = _mapping(raw, p, ("name", "args"))
            pname = _str(pc.get("name"), f"{p}.name")
            if not pname:
                raise _fail("is required", f"{p}.name")
            plugin_config.append((i, pname, self._decode_args(pname, pc.get("args"),
                                                              f"{p}.args")))
        return _RawProfile(index, name, pct, sets, plugin_config)

    @staticmethod
    def _decode_set(value: Any, path: str) -> _Set:
        m = _mapping(value, path, ("enabled", "disabled"))
        out = _Set()
        for key in ("enabled", "disabled"):
            for i, raw in enumerate(_list(m.get(key), f"{path}.{key}")):
                p = f"{path}.{key}[{i}]"
                plugin = _mapping(raw, p, ("name", "weight"))
                name = _str(plugin.get("name"), f"{p}.name")
                if not name:
                    raise _fail("is required", f"{p}.name")
                weight = _opt_int(plugin.get("weight"), f"{p}.weight")
                if key == "enabled":
                    out.enabled.append(_Entry(name, weight, i))
                else:
                    out.disabled.append(name)
        return out

    @staticmethod
    def _decode_args(name: str, value: Any, path: str) -> Any:
        """decodeNestedObjects: args of a plugin with a registered args type are decoded
        strictly into it (and defaulted); other args are kept as given."""
        if name in REMOVED_PLUGINS:
            return copy.deepcopy(value)   # reported by validation with a better message
        spec = _REGISTRY.get(name)
        if spec is None or spec.args_type is None:
            if value is not None and not isinstance(value, Mapping):
                raise _fail(f"must be a mapping, got {_describe(value)}", path)
            return copy.deepcopy(dict(value)) if value is not None else {}
        try:
            return spec.args_type.from_dict({} if value is None else value)
        except ConfigError as err:
            raise err.located(field=path) from None

    # -- stage 3 helpers ---------------------------------------------------------------------

    @staticmethod
    def _validate_profile(rp: _RawProfile) -> None:
        obj = f"{KIND}/{rp.scheduler_name}" if rp.scheduler_name else KIND
        try:
            if not rp.scheduler_name:
                raise _fail("is required (every profile needs a unique schedulerName when "
                            "there is more than one)" if rp.scheduler_name is None
                            else "must not be empty", f"{rp.path}.schedulerName")
            if rp.percentage is not None and not 0 <= rp.percentage <= 100:
                raise _fail(f"must be in the range [0, 100], got {rp.percentage}",
                            f"{rp.path}.percentageOfNodesToScore")
            for key, plugin_set in rp.sets.items():
                for entry in plugin_set.enabled:
                    if entry.name in REMOVED_PLUGINS:
                        raise _fail(_removed_message(entry.name),
                                    f"{rp.path}.plugins.{key}.enabled[{entry.index}].name")
            seen: dict[str, int] = {}
            for i, name, _ in rp.plugin_config:
                path = f"{rp.path}.pluginConfig[{i}].name"
                if name in seen:
                    raise _fail(f"duplicate pluginConfig for plugin {name!r} (also "
                                f"pluginConfig[{seen[name]}])", path)
                seen[name] = i
                if name in REMOVED_PLUGINS:
                    raise _fail(_removed_message(name), path)
        except ConfigError as err:
            raise err.located(obj=obj) from None

    @staticmethod
    def _validate_common_queue_sort(raw_profiles: list[_RawProfile],
                                    merged: list[dict[str, _Set]]) -> None:
        """validateCommonQueueSort: the queueSort plugin sets as configured must be equal."""
        canon = merged[0][str(EP.QUEUE_SORT)]
        if len(canon.enabled) > 1:
            raise _fail(f"only one queue sort plugin can be enabled, got {len(canon.enabled)}",
                        "profiles[0].plugins.queueSort.enabled")
        for rp, sets in zip(raw_profiles[1:], merged[1:]):
            if sets[str(EP.QUEUE_SORT)].key() != canon.key():
                raise _fail("must be the same for all profiles (differs from profiles[0])",
                            f"{rp.path}.plugins.queueSort").located(
                                obj=f"{KIND}/{rp.scheduler_name}")

    # -- stage 4 -----------------------------------------------------------------------------

    @staticmethod
    def _build_profile(rp: _RawProfile, sets: dict[str, _Set]) -> Profile:
        base = f"{rp.path}.plugins"

        def where(key: str, entry: _Entry) -> str:
            if entry.index is None:     # only defaults lack an index; they are all valid
                return f"{base}.{key}"
            return f"{base}.{key}.enabled[{entry.index}].name"

        def lookup(key: str, entry: _Entry) -> PluginSpec:
            spec = _REGISTRY.get(entry.name)
            if spec is None:
                if entry.name in REMOVED_PLUGINS:
                    raise _fail(_removed_message(entry.name), where(key, entry))
                raise _fail(f'unknown plugin "{entry.name}"{_suggest(entry.name, _REGISTRY)}',
                            where(key, entry))
            return spec

        # updatePluginList: the lists configured at each extension point.
        lists: dict[ExtensionPoint, list[str]] = {}
        for point in _FRAMEWORK_ORDER:
            key = str(point)
            names: list[str] = []
            for entry in sets[key].enabled:
                spec = lookup(key, entry)
                if point not in spec.extension_points:
                    has = ", ".join(p.value for p in EXTENSION_POINTS
                                    if p in spec.extension_points)
                    raise _fail(f'plugin "{entry.name}" does not implement the {key} extension '
                                f"point (it implements: {has})", where(key, entry))
                if entry.name in names:
                    raise _fail(f'plugin "{entry.name}" is enabled more than once at the {key} '
                                "extension point", where(key, entry))
                names.append(entry.name)
            lists[point] = names

        # expandMultiPointPlugins.
        multi = sets[MULTI_POINT].enabled
        if multi:
            for point in _FRAMEWORK_ORDER:
                key = str(point)
                configured = lists[point]
                off = set(sets[key].disabled)
                if "*" in off:
                    continue
                from_multi: list[str] = []
                overrides: set[str] = set()
                for entry in multi:
                    spec = lookup(MULTI_POINT, entry)
                    if point not in spec.extension_points or entry.name in off:
                        continue
                    if entry.name in configured:
                        overrides.add(entry.name)
                        continue
                    if entry.name in from_multi:
                        indexes = [e.index for e in multi
                                   if e.name == entry.name and e.index is not None]
                        last = _Entry(entry.name, None, max(indexes) if indexes else None)
                        raise _fail(f'plugin "{entry.name}" is enabled more than once in '
                                    "multiPoint", where(MULTI_POINT, last))
                    from_multi.append(entry.name)
                lists[point] = ([n for n in configured if n in overrides] + from_multi
                                + [n for n in configured if n not in overrides])

        if len(lists[EP.QUEUE_SORT]) != 1:
            got = lists[EP.QUEUE_SORT]
            raise _fail(f"exactly one queue sort plugin must be enabled, got {len(got)}"
                        + (f" ({', '.join(got)})" if got else ""), f"{base}.queueSort")
        if not lists[EP.BIND]:
            raise _fail("at least one bind plugin must be enabled", f"{base}.bind")

        # getScoreWeights: the score list's weights win over multiPoint's; 0 or unset is 1.
        weights: dict[str, int] = {}
        total = 0
        for entry in sets[str(EP.SCORE)].enabled + multi:
            spec = _REGISTRY.get(entry.name)
            if spec is None or EP.SCORE not in spec.extension_points or entry.name in weights:
                continue
            weight = entry.weight or 1
            weights[entry.name] = weight
            if weight * MAX_NODE_SCORE > MAX_TOTAL_SCORE - total:
                raise _fail("the total score of the score plugins could overflow "
                            "(weights too large)", f"{base}.score")
            total += weight * MAX_NODE_SCORE

        plugins = {point: [PluginRef(n, weights[n] if point is EP.SCORE else 0)
                           for n in lists[point]] for point in EXTENSION_POINTS}

        # setDefaults_KubeSchedulerProfile: default args for enabled plugins without config.
        args: dict[str, Any] = {name: value for _, name, value in rp.plugin_config}
        for key in _PLUGINS_KEYS:
            for entry in sets[key].enabled:
                spec = _REGISTRY.get(entry.name)
                if spec is not None and spec.args_type is not None and entry.name not in args:
                    args[entry.name] = spec.args_type.from_dict({})
        return Profile(rp.scheduler_name, plugins, args, rp.percentage)


def _removed_message(name: str) -> str:
    return (f'plugin "{name}" was removed from kube-scheduler and is invalid in {API_VERSION}; '
            f"{REMOVED_PLUGINS[name]} covers it")


# ---------------------------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------------------------

def _args_to_dict(args: Any) -> Any:
    if hasattr(args, "to_dict"):
        return args.to_dict()
    return copy.deepcopy(args)


def profile_to_dict(profile: Profile) -> dict:
    """A ``KubeSchedulerProfile`` dict that loads back to ``profile``: multiPoint defaults are
    disabled and every extension point lists its effective plugins explicitly."""
    out: dict[str, Any] = {"schedulerName": profile.scheduler_name}
    if profile.percentage_of_nodes_to_score is not None:
        out["percentageOfNodesToScore"] = profile.percentage_of_nodes_to_score
    plugins: dict[str, Any] = {MULTI_POINT: {"disabled": [{"name": "*"}]}}
    for point in EXTENSION_POINTS:
        refs = profile.plugins.get(point, [])
        if refs:
            plugins[str(point)] = {"enabled": [
                {"name": r.name, "weight": r.weight} if point is EP.SCORE else {"name": r.name}
                for r in refs]}
    out["plugins"] = plugins
    if profile.plugin_args:
        out["pluginConfig"] = [{"name": name, "args": _args_to_dict(args)}
                               for name, args in profile.plugin_args.items()]
    return out


def config_to_dict(cfg: SchedulerConfiguration) -> dict:
    """A ``KubeSchedulerConfiguration`` dict (YAML-able) that loads back to ``cfg``."""
    out: dict[str, Any] = {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "parallelism": cfg.parallelism,
        "percentageOfNodesToScore": cfg.percentage_of_nodes_to_score,
        "podInitialBackoffSeconds": cfg.pod_initial_backoff_seconds,
        "podMaxBackoffSeconds": cfg.pod_max_backoff_seconds,
    }
    if cfg.leader_election is not None:
        out["leaderElection"] = copy.deepcopy(cfg.leader_election)
    if cfg.client_connection is not None:
        out["clientConnection"] = copy.deepcopy(cfg.client_connection)
    for key, value in (("enableProfiling", cfg.enable_profiling),
                       ("enableContentionProfiling", cfg.enable_contention_profiling),
                       ("delayCacheUntilActive", cfg.delay_cache_until_active)):
        if value is not None:
            out[key] = value
    if cfg.extenders:
        out["extenders"] = copy.deepcopy(cfg.extenders)
    out["profiles"] = [profile_to_dict(p) for p in cfg.profiles]
    return out

