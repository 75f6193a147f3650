"""The load model: how much CPU a pod uses, given the requests kube-proxy sends it, and what
metrics-server reports of it.

A running pod uses ``base + rate * cpu_per_request`` millicores, where ``rate`` is the
requests/s it receives from a Service (:class:`~schedbench.sim.endpoints.KubeProxy`), and
the Service's annotations give the parameters:

* ``schedbench.io/cpu-per-request``: millicores per request/s (default 10), i.e. CPU
  milliseconds each request costs;
* ``schedbench.io/base-cpu``: millicores a running pod uses without traffic (default 0).

A pod that serves several Services adds up their request terms and uses the largest base.
Utilisation is use / CPU request (the pod-level request if set, else the sum of its
containers and sidecars), as the HPA computes it.

:meth:`LoadModel.pod_metric` plays metrics-server: whole millicores for a Running pod on a
Ready node that started at least one metric resolution ago (CPU use is a rate, computed from
two samples); no metric otherwise (the HPA counts such a pod as missing). With
``node_reporting`` (e.g. ``Kubelet.is_alive``) pods of a node whose kubelet is down lose their
metrics at once, before the node lifecycle controller marks the node NotReady.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

from ..errors import InputError
from ..model.objects import Pod, Service
from .endpoints import KubeProxy
from .timefmt import seconds

__all__ = ["ANN_BASE_CPU", "ANN_CPU_PER_REQUEST", "DEFAULT_CPU_PER_REQUEST", "LoadModel",
           "LoadParams", "pod_cpu_request", "service_load_params"]

ANN_CPU_PER_REQUEST = "schedbench.io/cpu-per-request"
ANN_BASE_CPU = "schedbench.io/base-cpu"
DEFAULT_CPU_PER_REQUEST = 10.0
DEFAULT_BASE_CPU = 0.0
DEFAULT_METRIC_RESOLUTION = 15.0  # metrics-server --metric-resolution
_seconds = functools.lru_cache(maxsize=1 << 16)(seconds)


class LoadParams(tuple):
    """(cpu_per_request, base_cpu) of a Service, millicores."""

    __slots__ = ()

    def __new__(cls, cpu_per_request: float, base_cpu: float) -> LoadParams:
        return super().__new__(cls, (cpu_per_request, base_cpu))

    @property
    def cpu_per_request(self) -> float:
        return self[0]

    @property
    def base_cpu(self) -> float:
        return self[1]


def _annotation_number(svc: Service, key: str, default: float) -> float:
    text = svc.metadata.annotations.get(key)
    if text is None:
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InputError(f"must be a number of millicores >= 0 (e.g. \"10\" or \"2.5\"), got "
                         f"{text!r}", obj=svc.ref, field=f"metadata.annotations.{key}")
    return value


def service_load_params(svc: Service) -> LoadParams:
    """The Service's load parameters from its annotations (defaults: 10 millicores per
    request/s, no base use); a malformed value raises InputError naming the annotation."""
    return LoadParams(_annotation_number(svc, ANN_CPU_PER_REQUEST, DEFAULT_CPU_PER_REQUEST),
                      _annotation_number(svc, ANN_BASE_CPU, DEFAULT_BASE_CPU))


def pod_cpu_request(pod: Pod) -> int | None:
    """The pod's CPU request in millicores as the HPA sums it (replica_calculator.go,
    calculatePodRequests): the pod-level request if set, else the sum over containers and
    restartable init containers; None when one of those states no CPU request."""
    level = pod.spec.resources
    if level is not None and "cpu" in level.requests:
        return level.requests["cpu"]
    total = 0
    for c in [*pod.spec.containers, *(i for i in pod.spec.init_containers if i.is_sidecar)]:
        req = c.resources.requests.get("cpu")
        if req is None:
            return None
        total += req
    return total


class LoadModel:
    """CPU use and utilisation of pods from the traffic of a :class:`KubeProxy` (module
    docstring)."""

    def __init__(self, proxy: KubeProxy, *, metric_resolution: float | None = None,
                 node_reporting: Callable[[str], bool] | None = None) -> None:
        self.proxy = proxy
        self.node_reporting = node_reporting
        self.store = proxy.store
        self.engine = proxy.engine
        if metric_resolution is None:
            metric_resolution = getattr(proxy.config, "metric_resolution_seconds",
                                        DEFAULT_METRIC_RESOLUTION)
        self.metric_resolution = float(metric_resolution)
        self._params: dict[str, tuple[str, LoadParams]] = {}
        # Services by namespace (an informer of its own), and per namespace the Services with
        # a base CPU use, so a pod's base costs a look at those only
        self._services: dict[str, dict[str, Service]] = {}
        self._with_base: dict[str, list[tuple[Service, float]]] = {}
        self._ns_version: dict[str, int] = {}
        self._bases: dict[str, tuple[str, int, float]] = {}  # pod uid -> (rv, ns version, base)
        self.store.watch("Service", self._on_service)
        for svc in self.store.list("Service"):
            self._services.setdefault(svc.metadata.namespace, {})[svc.metadata.name] = svc

    def _on_service(self, ev) -> None:
        svc = ev.obj
        ns = svc.metadata.namespace
        if ev.type == "DELETED":
            self._services.get(ns, {}).pop(svc.metadata.name, None)
            self._params.pop(svc.key, None)
        else:
            self._services.setdefault(ns, {})[svc.metadata.name] = svc
        self._with_base.pop(ns, None)
        self._ns_version[ns] = self._ns_version.get(ns, 0) + 1

    def _base_services(self, ns: str) -> list[tuple[Service, float]]:
        found = self._with_base.get(ns)
        if found is None:
            found = [(svc, self.params(svc).base_cpu)
                     for svc in self._services.get(ns, {}).values()]
            found = [(svc, base) for svc, base in found if base > 0]
            self._with_base[ns] = found
        return found

    def params(self, svc: Service) -> LoadParams:
        """:func:`service_load_params`, cached per Service resourceVersion."""
        key = svc.key
        rv = svc.metadata.resource_version
        cached = self._params.get(key)
        if cached is not None and cached[0] == rv:
            return cached[1]
        p = service_load_params(svc)
        self._params[key] = (rv, p)
        return p

    def pod_cpu_usage(self, pod: Pod, _terms: dict | None = None) -> float:
        """Millicores the pod uses now: 0 unless Running; else the largest base of the
        Services selecting it plus, per Service it is a ready endpoint of, its request rate
        times the Service's CPU per request."""
        if pod.status.phase != "Running":
            return 0.0
        use = self._pod_base(pod)
        pod_key = pod.key
        terms = {} if _terms is None else _terms
        for svc_key in self.proxy.pod_services(pod_key):
            term = terms.get(svc_key)
            if term is None:
                term = terms[svc_key] = self._service_term(svc_key)
            split, cpr = term
            use += split.get(pod_key, 0.0) * cpr
        return use

    def _pod_base(self, pod: Pod) -> float:
        """The largest base CPU of the Services selecting the pod, cached per pod version
        and namespace Service version."""
        ns = pod.metadata.namespace
        meta = pod.metadata
        version = self._ns_version.get(ns, 0)
        cached = self._bases.get(meta.uid)
        if cached is not None and cached[0] == meta.resource_version and cached[1] == version:
            return cached[2]
        base = 0.0
        for svc, svc_base in self._base_services(ns):
            if svc_base > base and svc.selects(pod):
                base = svc_base
        if len(self._bases) > 200_000:   # forget pods long gone
            self._bases.clear()
        self._bases[meta.uid] = (meta.resource_version, version, base)
        return base

    def _service_term(self, svc_key: str) -> tuple[dict[str, float], float]:
        """(requests/s per endpoint, CPU per request) of a Service now."""
        svc_ns, _, svc_name = svc_key.partition("/")
        svc = self.store.try_get("Service", svc_ns, svc_name)
        cpr = self.params(svc).cpu_per_request if svc is not None else DEFAULT_CPU_PER_REQUEST
        return self.proxy.service_split(svc_key), cpr

    def pod_utilization(self, pod: Pod) -> float | None:
        """CPU use / CPU request (1.0 = 100 %); None when the pod has no (or a zero) CPU
        request."""
        req = pod_cpu_request(pod)
        if not req:
            return None
        return self.pod_cpu_usage(pod) / req

    def pod_metric(self, pod: Pod) -> int | None:
        """What metrics-server reports for the pod now (module docstring): whole millicores,
        or None when it has no sample."""
        return self.pod_metrics([pod]).get(pod.metadata.name)

    def pod_metrics(self, pods: list[Pod]) -> dict[str, int]:
        """:meth:`pod_metric` of many pods at once (as the metrics API lists a namespace):
        pod name -> millicores, for the pods that have a metric."""
        out: dict[str, int] = {}
        now = self.engine.now
        window = self.metric_resolution - 1e-9
        nodes: dict[str, bool] = {}
        terms: dict = {}
        for pod in pods:
            node_name = pod.spec.node_name
            if pod.status.phase != "Running" or not node_name:
                continue
            start = pod.status.start_time
            if start is None or now - _seconds(start) < window:
                continue
            ok = nodes.get(node_name)
            if ok is None:
                ok = self.node_reporting is None or self.node_reporting(node_name)
                if ok:
                    node = self.store.try_get("Node", "", node_name)
                    ok = node is not None and node.is_ready()
                nodes[node_name] = ok
            if ok:
                out[pod.metadata.name] = int(round(self.pod_cpu_usage(pod, terms)))
        return out
