"""Kubernetes API objects as Python dataclasses.

Field names are Kubernetes' own in snake_case (``owner_references`` is ``ownerReferences`` in
YAML); :mod:`schedbench.model.codec` converts both ways. Quantities are stored as integers in
base units (CPU in millicores, everything else in units: bytes, pods, GPUs); selectors are
:class:`~schedbench.model.labels.Selector` / :class:`~schedbench.model.labels.NodeSelector`
objects. Kubernetes' API defaults are the dataclass defaults (``replicas`` 1,
``schedulerName`` default-scheduler, RollingUpdate 25%/25% ...), validation follows
``k8s.io/kubernetes/pkg/apis/core/validation`` for the fields the scheduler depends on.

Kinds and versions modelled: v1 Namespace, Pod, Node, Service; apps/v1 ReplicaSet, Deployment;
autoscaling/v1 and autoscaling/v2 HorizontalPodAutoscaler; scheduling.k8s.io/v1 PriorityClass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import InputError, ManifestError
from . import labels as _labels
from .codec import Codec, extra_field, kfield
from .quantity import format_quantity, resource_to_int

DEFAULT_SCHEDULER_NAME = "default-scheduler"
DEFAULT_NAMESPACE = "default"
# Scoring-only defaults for a container without a request (pkg/scheduler/util: DefaultMilliCPURequest,
# DefaultMemoryRequest). They never enter the NodeResourcesFit filter.
DEFAULT_MILLI_CPU_REQUEST = 100
DEFAULT_MEMORY_REQUEST = 200 * 1024 * 1024
# Pod-level resources (KEP-2837) may set these; others come from the containers.
_POD_LEVEL_RESOURCES = ("cpu", "memory")

# ---------------------------------------------------------------------------------------------
# Field codecs
# ---------------------------------------------------------------------------------------------

_RESOURCE_NAME = re.compile(
    r"^(([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def _decode_resources(value: Any, path: str) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ManifestError("expected a mapping of resource name to quantity")
    out = {}
    for name, qty in value.items():
        if not isinstance(name, str) or not _RESOURCE_NAME.match(name) or len(name) > 316:
            raise ManifestError(f"invalid resource name {name!r}")
        try:
            out[name] = resource_to_int(name, qty)
        except InputError as err:
            raise err.located(field=name)
    return out


def _encode_resources(value: dict[str, int]) -> dict[str, str]:
    return {name: format_quantity(v, name) for name, v in value.items()}


RESOURCE_LIST = Codec(_decode_resources, _encode_resources)


def _decode_string_map(value: Any, path: str, *, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise ManifestError(f"expected a mapping of {what}")
    for k, v in value.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise ManifestError(f"{what} must map strings to strings; {k!r}: {v!r} is not "
                                f"(quote it in YAML)")
    return dict(value)


def _decode_labels(value: Any, path: str) -> dict[str, str]:
    out = _decode_string_map(value, path, what="labels")
    for k, v in out.items():
        try:
            _labels.validate_label_key(k)
            _labels.validate_label_value(v)
        except InputError as err:
            raise err.located(field=k)
    return out


LABELS = Codec(_decode_labels, dict)
STRING_MAP = Codec(lambda v, p: _decode_string_map(v, p, what="strings"), dict)


def _decode_label_selector(value: Any, path: str) -> _labels.Selector:
    if not isinstance(value, dict):
        raise ManifestError("expected a label selector (matchLabels / matchExpressions)")
    return _labels.label_selector_from_dict(value)


LABEL_SELECTOR = Codec(_decode_label_selector, _labels.label_selector_to_dict)
NODE_SELECTOR = Codec(lambda v, p: _labels.node_selector_from_dict(v),
                      _labels.node_selector_to_dict)
NODE_SELECTOR_TERM = Codec(lambda v, p: _labels.node_selector_term_from_dict(v),
                           _labels.node_selector_term_to_dict)

_PERCENT = re.compile(r"^[0-9]+%$")


def _decode_int_or_percent(value: Any, path: str) -> int | str:
    if isinstance(value, bool):
        raise ManifestError(f"expected an integer or a percentage, got {value!r}")
    if isinstance(value, int):
        if value < 0:
            raise ManifestError(f"must be >= 0, got {value}")
        return value
    if isinstance(value, str) and _PERCENT.match(value):
        return value
    raise ManifestError(f"expected an integer or a percentage such as '25%', got {value!r}")


INT_OR_PERCENT = Codec(_decode_int_or_percent, lambda v: v)


def _check(cond: bool, message: str, field: str) -> None:
    if not cond:
        raise ManifestError(message, field=field)


def _check_one_of(value: Any, allowed: tuple, field: str) -> None:
    if value not in allowed:
        options = ", ".join(repr(a) for a in allowed if a != "")
        raise ManifestError(f"unsupported value {value!r}: supported values are {options}",
                            field=field)


# ---------------------------------------------------------------------------------------------
# Metadata
# ---------------------------------------------------------------------------------------------


@dataclass
class OwnerReference:
    api_version: str = kfield("", required=True)
    kind: str = kfield("", required=True)
    name: str = kfield("", required=True)
    uid: str = kfield("")
    controller: bool | None = kfield(None)
    block_owner_deletion: bool | None = kfield(None)
    extra: dict = extra_field()


@dataclass
class ObjectMeta:
    PASSTHROUGH: ClassVar[frozenset] = frozenset({
        "selfLink", "deletionGracePeriodSeconds", "managedFields"})

    name: str = kfield("")
    generate_name: str = kfield("")
    namespace: str = kfield("")
    labels: dict[str, str] = kfield(default_factory=dict, codec=LABELS)
    annotations: dict[str, str] = kfield(default_factory=dict, codec=STRING_MAP)
    uid: str = kfield("")
    resource_version: str = kfield("")
    generation: int = kfield(0)
    creation_timestamp: str | None = kfield(None)
    deletion_timestamp: str | None = kfield(None)
    owner_references: list[OwnerReference] = kfield(default_factory=list)
    finalizers: list[str] = kfield(default_factory=list)
    extra: dict = extra_field()

    def controller_ref(self) -> OwnerReference | None:
        """The owner reference with ``controller: true`` (at most one, as Kubernetes requires)."""
        return next((o for o in self.owner_references if o.controller), None)


# ---------------------------------------------------------------------------------------------
# Pods
# ---------------------------------------------------------------------------------------------


@dataclass
class ResourceRequirements:
    requests: dict[str, int] = kfield(default_factory=dict, codec=RESOURCE_LIST)
    limits: dict[str, int] = kfield(default_factory=dict, codec=RESOURCE_LIST)
    extra: dict = extra_field()


@dataclass
class ContainerPort:
    container_port: int = kfield(0, required=True)
    host_port: int = kfield(0)
    protocol: str = kfield("TCP")
    host_ip: str = kfield("", key="hostIP")
    name: str = kfield("")
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(1 <= self.container_port <= 65535, "must be between 1 and 65535", "containerPort")
        _check(0 <= self.host_port <= 65535, "must be between 0 and 65535", "hostPort")
        _check_one_of(self.protocol, ("TCP", "UDP", "SCTP"), "protocol")


@dataclass
class Container:
    PASSTHROUGH: ClassVar[frozenset] = frozenset({
        "args", "command", "env", "envFrom", "imagePullPolicy", "lifecycle", "livenessProbe",
        "readinessProbe", "startupProbe", "resizePolicy", "securityContext", "stdin",
        "stdinOnce", "terminationMessagePath", "terminationMessagePolicy", "tty",
        "volumeDevices", "volumeMounts", "workingDir", "restartPolicyRules"})

    name: str = kfield("", required=True)
    image: str = kfield("")
    resources: ResourceRequirements = kfield(default_factory=ResourceRequirements)
    ports: list[ContainerPort] = kfield(default_factory=list)
    restart_policy: str | None = kfield(None)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(bool(self.name), "must not be empty", "name")
        if self.restart_policy is not None:
            _check_one_of(self.restart_policy, ("Always",), "restartPolicy")
        for res, lim in self.resources.limits.items():
            req = self.resources.requests.get(res)
            if req is not None and req > lim:
                raise ManifestError(f"request {format_quantity(req, res)} must be less than or "
                                    f"equal to {res} limit {format_quantity(lim, res)}",
                                    field=f"resources.requests.{res}")

    @property
    def is_sidecar(self) -> bool:
        """A restartable init container (``restartPolicy: Always``, KEP-753)."""
        return self.restart_policy == "Always"


TOLERATION_OPERATORS = ("Equal", "Exists")
TAINT_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


@dataclass
class Toleration:
    key: str = kfield("")
    operator: str = kfield("Equal")
    value: str = kfield("")
    effect: str = kfield("")
    toleration_seconds: int | None = kfield(None)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check_one_of(self.operator, TOLERATION_OPERATORS, "operator")
        if self.key:
            try:
                _labels.validate_label_key(self.key)
            except InputError as err:
                raise err.located(field="key")
        else:
            _check(self.operator == "Exists", "operator must be Exists when key is empty",
                   "operator")
        if self.operator == "Exists":
            _check(not self.value, "value must be empty when operator is Exists", "value")
        if self.effect:
            _check_one_of(self.effect, TAINT_EFFECTS, "effect")
        if self.toleration_seconds is not None:
            _check(self.effect == "NoExecute", "may only be set when effect is NoExecute",
                   "tolerationSeconds")

    def tolerates(self, taint: Taint) -> bool:
        """v1.Toleration.ToleratesTaint: effect (empty matches all), key (empty with Exists
        matches all keys), then Exists, or Equal on the value."""
        if self.effect and self.effect != taint.effect:
            return False
        if self.key and self.key != taint.key:
            return False
        if self.operator == "Exists":
            return True
        return self.value == taint.value


@dataclass
class PreferredSchedulingTerm:
    weight: int = kfield(0, required=True)
    preference: _labels.NodeSelectorTerm = kfield(None, required=True, codec=NODE_SELECTOR_TERM)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(1 <= self.weight <= 100, f"must be in the range 1-100, got {self.weight}",
               "weight")


@dataclass
class NodeAffinity:
    required_during_scheduling_ignored_during_execution: _labels.NodeSelector | None = kfield(
        None, codec=NODE_SELECTOR)
    preferred_during_scheduling_ignored_during_execution: list[PreferredSchedulingTerm] = kfield(
        default_factory=list)
    extra: dict = extra_field()

    @property
    def required(self) -> _labels.NodeSelector | None:
        return self.required_during_scheduling_ignored_during_execution

    @property
    def preferred(self) -> list[PreferredSchedulingTerm]:
        return self.preferred_during_scheduling_ignored_during_execution


@dataclass
class PodAffinityTerm:
    label_selector: _labels.Selector | None = kfield(None, codec=LABEL_SELECTOR)
    namespaces: list[str] = kfield(default_factory=list)
    topology_key: str = kfield("", required=True)
    namespace_selector: _labels.Selector | None = kfield(None, codec=LABEL_SELECTOR)
    match_label_keys: list[str] = kfield(default_factory=list)
    mismatch_label_keys: list[str] = kfield(default_factory=list)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(bool(self.topology_key), "can not be empty", "topologyKey")
        try:
            _labels.validate_label_key(self.topology_key)
        except InputError as err:
            raise err.located(field="topologyKey")
        overlap = set(self.match_label_keys) & set(self.mismatch_label_keys)
        _check(not overlap, f"keys {sorted(overlap)} are in both matchLabelKeys and "
               "mismatchLabelKeys", "matchLabelKeys")
        if self.match_label_keys or self.mismatch_label_keys:
            _check(self.label_selector is not None,
                   "labelSelector is required when matchLabelKeys or mismatchLabelKeys is set",
                   "labelSelector")


@dataclass
class WeightedPodAffinityTerm:
    weight: int = kfield(0, required=True)
    pod_affinity_term: PodAffinityTerm = kfield(None, required=True)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(1 <= self.weight <= 100, f"must be in the range 1-100, got {self.weight}",
               "weight")


@dataclass
class PodAffinity:
    """Used for both ``podAffinity`` and ``podAntiAffinity`` (same shape)."""

    required_during_scheduling_ignored_during_execution: list[PodAffinityTerm] = kfield(
        default_factory=list)
    preferred_during_scheduling_ignored_during_execution: list[WeightedPodAffinityTerm] = kfield(
        default_factory=list)
    extra: dict = extra_field()

    @property
    def required(self) -> list[PodAffinityTerm]:
        return self.required_during_scheduling_ignored_during_execution

    @property
    def preferred(self) -> list[WeightedPodAffinityTerm]:
        return self.preferred_during_scheduling_ignored_during_execution


@dataclass
class Affinity:
    node_affinity: NodeAffinity | None = kfield(None)
    pod_affinity: PodAffinity | None = kfield(None)
    pod_anti_affinity: PodAffinity | None = kfield(None)
    extra: dict = extra_field()


@dataclass
class TopologySpreadConstraint:
    max_skew: int = kfield(0, required=True)
    topology_key: str = kfield("", required=True)
    when_unsatisfiable: str = kfield("", required=True)
    label_selector: _labels.Selector | None = kfield(None, codec=LABEL_SELECTOR)
    min_domains: int | None = kfield(None)
    node_affinity_policy: str | None = kfield(None)
    node_taints_policy: str | None = kfield(None)
    match_label_keys: list[str] = kfield(default_factory=list)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(self.max_skew > 0, f"must be greater than zero, got {self.max_skew}", "maxSkew")
        _check(bool(self.topology_key), "can not be empty", "topologyKey")
        _check_one_of(self.when_unsatisfiable, ("DoNotSchedule", "ScheduleAnyway"),
                      "whenUnsatisfiable")
        if self.min_domains is not None:
            _check(self.min_domains > 0, f"must be greater than zero, got {self.min_domains}",
                   "minDomains")
            _check(self.when_unsatisfiable == "DoNotSchedule",
                   "can only use minDomains when whenUnsatisfiable is DoNotSchedule",
                   "minDomains")
        if self.node_affinity_policy is not None:
            _check_one_of(self.node_affinity_policy, ("Honor", "Ignore"), "nodeAffinityPolicy")
        if self.node_taints_policy is not None:
            _check_one_of(self.node_taints_policy, ("Honor", "Ignore"), "nodeTaintsPolicy")
        if self.label_selector is not None:
            keys = {r.key for r in self.label_selector.requirements}
            clash = keys & set(self.match_label_keys)
            _check(not clash, f"keys {sorted(clash)} exist in both matchLabelKeys and "
                   "labelSelector", "matchLabelKeys")

    @property
    def effective_node_affinity_policy(self) -> str:
        return self.node_affinity_policy or "Honor"

    @property
    def effective_node_taints_policy(self) -> str:
        return self.node_taints_policy or "Ignore"


@dataclass
class PodSchedulingGate:
    name: str = kfield("", required=True)
    extra: dict = extra_field()


@dataclass
class PodSpec:
    PASSTHROUGH: ClassVar[frozenset] = frozenset({
        "activeDeadlineSeconds", "automountServiceAccountToken", "dnsConfig", "dnsPolicy",
        "enableServiceLinks", "ephemeralContainers", "hostAliases", "hostIPC", "hostNetwork",
        "hostPID", "hostUsers", "hostname", "imagePullSecrets", "os", "readinessGates",
        "resourceClaims", "runtimeClassName", "securityContext", "serviceAccount",
        "serviceAccountName", "setHostnameAsFQDN", "shareProcessNamespace", "subdomain",
        "terminationGracePeriodSeconds", "volumes", "hostnameOverride"})

    containers: list[Container] = kfield(default_factory=list, required=True)
    init_containers: list[Container] = kfield(default_factory=list)
    resources: ResourceRequirements | None = kfield(None)
    overhead: dict[str, int] = kfield(default_factory=dict, codec=RESOURCE_LIST)
    node_name: str = kfield("")
    node_selector: dict[str, str] = kfield(default_factory=dict, codec=STRING_MAP)
    affinity: Affinity | None = kfield(None)
    tolerations: list[Toleration] = kfield(default_factory=list)
    topology_spread_constraints: list[TopologySpreadConstraint] = kfield(default_factory=list)
    priority: int | None = kfield(None)
    priority_class_name: str = kfield("")
    preemption_policy: str | None = kfield(None)
    scheduler_name: str = kfield(DEFAULT_SCHEDULER_NAME)
    restart_policy: str = kfield("Always")
    scheduling_gates: list[PodSchedulingGate] = kfield(default_factory=list)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(len(self.containers) > 0, "must have at least one container", "containers")
        names: set[str] = set()
        for i, c in enumerate(self.init_containers + self.containers):
            where = (f"initContainers[{i}]" if i < len(self.init_containers)
                     else f"containers[{i - len(self.init_containers)}]")
            _check(c.name not in names, f"duplicate container name {c.name!r}", f"{where}.name")
            names.add(c.name)
            if i >= len(self.init_containers):
                _check(c.restart_policy is None,
                       "restartPolicy may only be set on init containers",
                       f"{where}.restartPolicy")
        _check_one_of(self.restart_policy, ("Always", "OnFailure", "Never"), "restartPolicy")
        if self.preemption_policy is not None:
            _check_one_of(self.preemption_policy, ("PreemptLowerPriority", "Never"),
                          "preemptionPolicy")
        if self.priority is not None:
            _check(-(2 ** 31) <= self.priority < 2 ** 31, "must fit in a 32-bit integer",
                   "priority")
        for k, v in self.node_selector.items():
            try:
                _labels.validate_label_key(k)
                _labels.validate_label_value(v)
            except InputError as err:
                raise err.located(field=f"nodeSelector.{k}")
        seen = set()
        for i, c in enumerate(self.topology_spread_constraints):
            pair = (c.topology_key, c.when_unsatisfiable)
            _check(pair not in seen, f"duplicate constraint on topologyKey {c.topology_key!r} "
                   f"with whenUnsatisfiable {c.when_unsatisfiable!r}",
                   f"topologySpreadConstraints[{i}]")
            seen.add(pair)


@dataclass
class PodCondition:
    type: str = kfield("", required=True)
    status: str = kfield("", required=True)
    reason: str = kfield("")
    message: str = kfield("")
    last_transition_time: str | None = kfield(None)
    last_probe_time: str | None = kfield(None)
    extra: dict = extra_field()


POD_PHASES = ("Pending", "Running", "Succeeded", "Failed", "Unknown")


@dataclass
class PodStatus:
    phase: str = kfield("")
    conditions: list[PodCondition] = kfield(default_factory=list)
    nominated_node_name: str = kfield("")
    reason: str = kfield("")
    message: str = kfield("")
    start_time: str | None = kfield(None)
    extra: dict = extra_field()

    def validate(self) -> None:
        if self.phase:
            _check_one_of(self.phase, POD_PHASES, "phase")


def _add(into: dict[str, int], more: dict[str, int]) -> None:
    for k, v in more.items():
        into[k] = into.get(k, 0) + v


def _max_into(into: dict[str, int], other: dict[str, int]) -> None:
    for k, v in other.items():
        into[k] = max(into.get(k, v), v)


def _with_defaults(requests: dict[str, int], non_missing: dict[str, int] | None) -> dict[str, int]:
    if not non_missing:
        return requests
    out = dict(requests)
    for k, v in non_missing.items():
        if k not in requests:  # an explicit request, even 0, is kept
            out[k] = v
    return out


def pod_requests(pod_spec: PodSpec, non_missing: dict[str, int] | None = None,
                 *, include_overhead: bool = True) -> dict[str, int]:
    """The effective request of a pod, as ``resourcehelper.PodRequests`` computes it.

    Regular containers and sidecars (restartable init containers) add up; each init container
    phase needs the sidecars started before it plus itself; the pod needs the larger of the two
    per resource. Pod-level ``spec.resources.requests`` (cpu, memory) replace the aggregate for
    the resources they name. Overhead is added last. ``non_missing`` fills requests a container
    does not state (the scheduler's scoring defaults), never an explicit one, even if 0.
    """
    total: dict[str, int] = {}
    for c in pod_spec.containers:
        _add(total, _with_defaults(c.resources.requests, non_missing))
    sidecars: dict[str, int] = {}
    init_peak: dict[str, int] = {}
    for c in pod_spec.init_containers:
        reqs = _with_defaults(c.resources.requests, non_missing)
        if c.is_sidecar:
            _add(total, reqs)
            _add(sidecars, reqs)
            phase = sidecars
        else:
            phase = dict(reqs)
            _add(phase, sidecars)
        _max_into(init_peak, phase)
    _max_into(total, init_peak)
    pod_level = pod_level_requests(pod_spec)
    total.update(pod_level)
    if include_overhead:
        _add(total, pod_spec.overhead)
    return total


def pod_level_requests(pod_spec: PodSpec) -> dict[str, int]:
    """The pod-level requests that Kubernetes honours (cpu, memory, hugepages-*)."""
    if pod_spec.resources is None:
        return {}
    return {k: v for k, v in pod_spec.resources.requests.items()
            if k in _POD_LEVEL_RESOURCES or k.startswith("hugepages-")}


def pod_non_zero_requests(pod_spec: PodSpec) -> dict[str, int]:
    """The request the score plugins see (``framework.calculateResource``): as
    :func:`pod_requests`, but a container with no CPU (memory) request counts as 100m (200Mi).
    When pod-level requests are set, the defaults fill only resources neither level states."""
    plain = pod_requests(pod_spec)
    if pod_level_requests(pod_spec):
        non_missing = {}
        if "cpu" not in plain:
            non_missing["cpu"] = DEFAULT_MILLI_CPU_REQUEST
        if "memory" not in plain:
            non_missing["memory"] = DEFAULT_MEMORY_REQUEST
    else:
        non_missing = {"cpu": DEFAULT_MILLI_CPU_REQUEST, "memory": DEFAULT_MEMORY_REQUEST}
    if not non_missing:
        return plain
    return pod_requests(pod_spec, non_missing)


# ---------------------------------------------------------------------------------------------
# Top-level objects
# ---------------------------------------------------------------------------------------------


@dataclass
class KubeObject:
    """Common base: ``apiVersion``, ``kind``, ``metadata``. Subclasses set KIND and
    API_VERSIONS (the first one is written by default) and NAMESPACED."""

    KIND: ClassVar[str] = ""
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("v1",)
    NAMESPACED: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return self.metadata.name

    @property
    def namespace(self) -> str:
        return self.metadata.namespace

    @property
    def labels(self) -> dict[str, str]:
        return self.metadata.labels

    @property
    def key(self) -> str:
        """``namespace/name`` (or ``name`` for cluster-scoped kinds), as Kubernetes' cache key."""
        return f"{self.metadata.namespace}/{self.metadata.name}" if self.NAMESPACED \
            else self.metadata.name

    @property
    def ref(self) -> str:
        """``Kind/namespace/name``: how errors and reports name the object."""
        return f"{self.KIND}/{self.key}"


@dataclass
class Namespace(KubeObject):
    KIND: ClassVar[str] = "Namespace"
    NAMESPACED: ClassVar[bool] = False

    metadata: ObjectMeta = kfield(default_factory=ObjectMeta, required=True)
    spec: dict[str, Any] = kfield(default_factory=dict)
    status: dict[str, Any] = kfield(default_factory=dict)
    extra: dict = extra_field()


@dataclass
class Pod(KubeObject):
    KIND: ClassVar[str] = "Pod"

    metadata: ObjectMeta = kfield(default_factory=ObjectMeta, required=True)
    spec: PodSpec = kfield(default_factory=PodSpec, required=True)
    status: PodStatus = kfield(default_factory=PodStatus)
    extra: dict = extra_field()

    @property
    def node_name(self) -> str:
        return self.spec.node_name

    @property
    def is_bound(self) -> bool:
        return bool(self.spec.node_name)

    @property
    def is_terminated(self) -> bool:
        return self.status.phase in ("Succeeded", "Failed")

    @property
    def is_pending_scheduling(self) -> bool:
        """Waiting for the scheduler: not bound and not terminated."""
        return not self.is_bound and not self.is_terminated

    def requests(self) -> dict[str, int]:
        """Effective request (filtering view): see :func:`pod_requests`."""
        return pod_requests(self.spec)

    def non_zero_requests(self) -> dict[str, int]:
        """Effective request with the scoring-only defaults: see :func:`pod_non_zero_requests`."""
        return pod_non_zero_requests(self.spec)

    def effective_priority(self, priority_classes: dict[str, PriorityClass] | None = None) -> int:
        """``spec.priority`` if set, else the value of ``priorityClassName``, else the global
        default PriorityClass's value, else 0 (the Priority admission plugin's rule)."""
        if self.spec.priority is not None:
            return self.spec.priority
        classes = priority_classes or {}
        if self.spec.priority_class_name:
            pc = classes.get(self.spec.priority_class_name)
            if pc is None:
                raise InputError(f"no PriorityClass named {self.spec.priority_class_name!r}",
                                 obj=self.ref, field="spec.priorityClassName")
            return pc.value
        default = [pc for pc in classes.values() if pc.global_default]
        return default[0].value if default else 0

    def is_ready(self) -> bool:
        return any(c.type == "Ready" and c.status == "True" for c in self.status.conditions)


@dataclass
class Taint:
    key: str = kfield("", required=True)
    value: str = kfield("")
    effect: str = kfield("", required=True)
    time_added: str | None = kfield(None)
    extra: dict = extra_field()

    def validate(self) -> None:
        try:
            _labels.validate_label_key(self.key)
            if self.value:
                _labels.validate_label_value(self.value)
        except InputError as err:
            raise err.located(field="key" if not self.value else "value")
        _check_one_of(self.effect, TAINT_EFFECTS, "effect")


@dataclass
class NodeSpec:
    PASSTHROUGH: ClassVar[frozenset] = frozenset({
        "podCIDR", "podCIDRs", "providerID", "configSource", "externalID"})

    unschedulable: bool = kfield(False)
    taints: list[Taint] = kfield(default_factory=list)
    extra: dict = extra_field()


@dataclass
class NodeCondition:
    type: str = kfield("", required=True)
    status: str = kfield("", required=True)
    reason: str = kfield("")
    message: str = kfield("")
    last_heartbeat_time: str | None = kfield(None)
    last_transition_time: str | None = kfield(None)
    extra: dict = extra_field()


@dataclass
class ContainerImage:
    names: list[str] = kfield(default_factory=list)
    size_bytes: int = kfield(0)
    extra: dict = extra_field()


@dataclass
class NodeStatus:
    PASSTHROUGH: ClassVar[frozenset] = frozenset({
        "addresses", "daemonEndpoints", "nodeInfo", "phase", "volumesAttached", "volumesInUse",
        "config", "runtimeHandlers", "features", "declaredFeatures"})

    capacity: dict[str, int] = kfield(default_factory=dict, codec=RESOURCE_LIST)
    allocatable: dict[str, int] | None = kfield(None, codec=RESOURCE_LIST)
    conditions: list[NodeCondition] = kfield(default_factory=list)
    images: list[ContainerImage] = kfield(default_factory=list)
    extra: dict = extra_field()


@dataclass
class Node(KubeObject):
    KIND: ClassVar[str] = "Node"
    NAMESPACED: ClassVar[bool] = False

    metadata: ObjectMeta = kfield(default_factory=ObjectMeta, required=True)
    spec: NodeSpec = kfield(default_factory=NodeSpec)
    status: NodeStatus = kfield(default_factory=NodeStatus)
    extra: dict = extra_field()

    @property
    def allocatable(self) -> dict[str, int]:
        """``status.allocatable``; a manifest that states only ``capacity`` gets capacity (a
        real kubelet always reports both; hand-written cluster files often give one)."""
        if self.status.allocatable is not None:
            return self.status.allocatable
        return self.status.capacity

    @property
    def taints(self) -> list[Taint]:
        return self.spec.taints

    def is_ready(self) -> bool:
        """The Ready condition is True; a node without conditions counts as ready (a
        hand-written cluster file rarely states them)."""
        for c in self.status.conditions:
            if c.type == "Ready":
                return c.status == "True"
        return True


@dataclass
class PodTemplateSpec:
    metadata: ObjectMeta = kfield(default_factory=ObjectMeta)
    spec: PodSpec = kfield(default_factory=PodSpec, required=True)
    extra: dict = extra_field()


def _check_selector_matches_template(selector: _labels.Selector, template: PodTemplateSpec,
                                     field: str) -> None:
    _check(not selector.empty, "empty selector is invalid for a workload", "spec.selector")
    _check(selector.matches(template.metadata.labels),
           "selector does not match template labels", field)


@dataclass
class ReplicaSetSpec:
    replicas: int = kfield(1, omit_default=False)
    min_ready_seconds: int = kfield(0)
    selector: _labels.Selector = kfield(None, required=True, codec=LABEL_SELECTOR)
    template: PodTemplateSpec = kfield(default_factory=PodTemplateSpec, required=True)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(self.replicas >= 0, "must be greater than or equal to 0", "replicas")
        _check(self.min_ready_seconds >= 0, "must be greater than or equal to 0",
               "minReadySeconds")
        _check_selector_matches_template(self.selector, self.template, "template.metadata.labels")


@dataclass
class ReplicaSetStatus:
    replicas: int = kfield(0)
    fully_labeled_replicas: int = kfield(0)
    ready_replicas: int = kfield(0)
    available_replicas: int = kfield(0)
    observed_generation: int = kfield(0)
    extra: dict = extra_field()


@dataclass
class ReplicaSet(KubeObject):
    KIND: ClassVar[str] = "ReplicaSet"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)

    metadata: ObjectMeta = kfield(default_factory=ObjectMeta, required=True)
    spec: ReplicaSetSpec = kfield(None, required=True)
    status: ReplicaSetStatus = kfield(default_factory=ReplicaSetStatus)
    extra: dict = extra_field()


@dataclass
class RollingUpdateDeployment:
    max_surge: int | str = kfield("25%", codec=INT_OR_PERCENT)
    max_unavailable: int | str = kfield("25%", codec=INT_OR_PERCENT)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(not (_is_zero(self.max_surge) and _is_zero(self.max_unavailable)),
               "may not be 0 when maxSurge is 0", "maxUnavailable")
        if isinstance(self.max_unavailable, str):
            _check(int(self.max_unavailable[:-1]) <= 100, "must not be greater than 100%",
                   "maxUnavailable")


def _is_zero(v: int | str) -> bool:
    return v == 0 or (isinstance(v, str) and int(v[:-1]) == 0)


@dataclass
class DeploymentStrategy:
    type: str = kfield("RollingUpdate")
    rolling_update: RollingUpdateDeployment | None = kfield(None)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check_one_of(self.type, ("RollingUpdate", "Recreate"), "type")
        if self.type == "Recreate":
            _check(self.rolling_update is None, "may not be specified when strategy type is "
                   "'Recreate'", "rollingUpdate")

    @property
    def effective_rolling_update(self) -> RollingUpdateDeployment:
        return self.rolling_update or RollingUpdateDeployment()


@dataclass
class DeploymentSpec:
    replicas: int = kfield(1, omit_default=False)
    selector: _labels.Selector = kfield(None, required=True, codec=LABEL_SELECTOR)
    template: PodTemplateSpec = kfield(default_factory=PodTemplateSpec, required=True)
    strategy: DeploymentStrategy = kfield(default_factory=DeploymentStrategy)
    min_ready_seconds: int = kfield(0)
    revision_history_limit: int = kfield(10)
    paused: bool = kfield(False)
    progress_deadline_seconds: int = kfield(600)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(self.replicas >= 0, "must be greater than or equal to 0", "replicas")
        _check(self.min_ready_seconds >= 0, "must be greater than or equal to 0",
               "minReadySeconds")
        _check(self.revision_history_limit >= 0, "must be greater than or equal to 0",
               "revisionHistoryLimit")
        _check(self.progress_deadline_seconds > self.min_ready_seconds,
               "must be greater than minReadySeconds", "progressDeadlineSeconds")
        _check_selector_matches_template(self.selector, self.template, "template.metadata.labels")


@dataclass
class DeploymentStatus:
    observed_generation: int = kfield(0)
    replicas: int = kfield(0)
    updated_replicas: int = kfield(0)
    ready_replicas: int = kfield(0)
    available_replicas: int = kfield(0)
    unavailable_replicas: int = kfield(0)
    extra: dict = extra_field()


@dataclass
class Deployment(KubeObject):
    KIND: ClassVar[str] = "Deployment"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("apps/v1",)

    metadata: ObjectMeta = kfield(default_factory=ObjectMeta, required=True)
    spec: DeploymentSpec = kfield(None, required=True)
    status: DeploymentStatus = kfield(default_factory=DeploymentStatus)
    extra: dict = extra_field()


@dataclass
class ServicePort:
    port: int = kfield(0, required=True)
    name: str = kfield("")
    protocol: str = kfield("TCP")
    target_port: int | str | None = kfield(None)
    node_port: int = kfield(0)
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(1 <= self.port <= 65535, "must be between 1 and 65535", "port")
        _check_one_of(self.protocol, ("TCP", "UDP", "SCTP"), "protocol")


@dataclass
class ServiceSpec:
    selector: dict[str, str] | None = kfield(None, codec=STRING_MAP)
    ports: list[ServicePort] = kfield(default_factory=list)
    type: str = kfield("ClusterIP")
    cluster_ip: str = kfield("", key="clusterIP")
    session_affinity: str = kfield("None")
    extra: dict = extra_field()

    def validate(self) -> None:
        _check_one_of(self.type, ("ClusterIP", "NodePort", "LoadBalancer", "ExternalName"),
                      "type")
        _check_one_of(self.session_affinity, ("None", "ClientIP"), "sessionAffinity")


@dataclass
class Service(KubeObject):
    KIND: ClassVar[str] = "Service"

    metadata: ObjectMeta = kfield(default_factory=ObjectMeta, required=True)
    spec: ServiceSpec = kfield(default_factory=ServiceSpec)
    status: dict[str, Any] = kfield(default_factory=dict)
    extra: dict = extra_field()

    def selects(self, pod: Pod) -> bool:
        """A Service selects pods of its namespace whose labels contain its selector; a Service
        without a selector selects nothing (its endpoints are managed by hand)."""
        sel = self.spec.selector
        if not sel or pod.namespace != self.namespace:
            return False
        return all(pod.labels.get(k) == v for k, v in sel.items())


@dataclass
class CrossVersionObjectReference:
    kind: str = kfield("", required=True)
    name: str = kfield("", required=True)
    api_version: str = kfield("")
    extra: dict = extra_field()


@dataclass
class MetricTarget:
    type: str = kfield("", required=True)
    average_utilization: int | None = kfield(None)
    average_value: str | None = kfield(None)
    value: str | None = kfield(None)
    extra: dict = extra_field()


@dataclass
class ResourceMetricSource:
    name: str = kfield("", required=True)
    target: MetricTarget = kfield(None, required=True)
    extra: dict = extra_field()


@dataclass
class MetricSpec:
    type: str = kfield("", required=True)
    resource: ResourceMetricSource | None = kfield(None)
    extra: dict = extra_field()


@dataclass
class HorizontalPodAutoscalerSpec:
    scale_target_ref: CrossVersionObjectReference = kfield(None, required=True)
    min_replicas: int = kfield(1)
    max_replicas: int = kfield(0, required=True)
    target_cpu_utilization_percentage: int | None = kfield(
        None, key="targetCPUUtilizationPercentage")  # autoscaling/v1
    metrics: list[MetricSpec] = kfield(default_factory=list)  # autoscaling/v2
    behavior: dict[str, Any] = kfield(default_factory=dict)  # autoscaling/v2
    extra: dict = extra_field()

    def validate(self) -> None:
        _check(self.min_replicas >= 1, "must be greater than or equal to 1", "minReplicas")
        _check(self.max_replicas >= self.min_replicas,
               "must be greater than or equal to minReplicas", "maxReplicas")
        if self.target_cpu_utilization_percentage is not None:
            _check(self.target_cpu_utilization_percentage >= 1,
                   "must be greater than or equal to 1", "targetCPUUtilizationPercentage")


@dataclass
class HorizontalPodAutoscaler(KubeObject):
    KIND: ClassVar[str] = "HorizontalPodAutoscaler"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("autoscaling/v2", "autoscaling/v1")

    metadata: ObjectMeta = kfield(default_factory=ObjectMeta, required=True)
    spec: HorizontalPodAutoscalerSpec = kfield(None, required=True)
    status: dict[str, Any] = kfield(default_factory=dict)
    api_version: str = kfield("autoscaling/v2", omit_default=False)
    extra: dict = extra_field()

    def validate(self) -> None:
        s = self.spec
        if self.api_version == "autoscaling/v1":
            _check(not s.metrics, "metrics is an autoscaling/v2 field", "spec.metrics")
        else:
            _check(s.target_cpu_utilization_percentage is None,
                   "targetCPUUtilizationPercentage is an autoscaling/v1 field; use metrics",
                   "spec.targetCPUUtilizationPercentage")

    def target_cpu_utilization(self) -> int | None:
        """The CPU utilisation target in percent: v1's field, or v2's Resource metric on cpu
        with an Utilization target. autoscaling/v1 without a target defaults to 80%."""
        s = self.spec
        if self.api_version == "autoscaling/v1":
            return s.target_cpu_utilization_percentage or 80
        for m in s.metrics:
            if (m.type == "Resource" and m.resource and m.resource.name == "cpu"
                    and m.resource.target.type == "Utilization"):
                return m.resource.target.average_utilization
        if not s.metrics:
            return 80  # autoscaling/v2 defaulting: no metrics -> 80% CPU utilisation
        return None


@dataclass
class PriorityClass(KubeObject):
    KIND: ClassVar[str] = "PriorityClass"
    API_VERSIONS: ClassVar[tuple[str, ...]] = ("scheduling.k8s.io/v1",)
    NAMESPACED: ClassVar[bool] = False

    metadata: ObjectMeta = kfield(default_factory=ObjectMeta, required=True)
    value: int = kfield(0, required=True)
    global_default: bool = kfield(False)
    preemption_policy: str = kfield("PreemptLowerPriority")
    description: str = kfield("")
    extra: dict = extra_field()

    @classmethod
    def from_value(cls, name: str, value: int, *, global_default: bool = False) -> PriorityClass:
        return cls(metadata=ObjectMeta(name=name), value=value, global_default=global_default)

    def validate(self) -> None:
        _check(self.value <= 1_000_000_000 or self.metadata.name.startswith("system-"),
               "must be no greater than 1000000000 for user priority classes", "value")
        _check_one_of(self.preemption_policy, ("PreemptLowerPriority", "Never"),
                      "preemptionPolicy")


KINDS: dict[str, type[KubeObject]] = {cls.KIND: cls for cls in (
    Namespace, Pod, Node, Service, ReplicaSet, Deployment, HorizontalPodAutoscaler,
    PriorityClass)}
