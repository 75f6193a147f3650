"""The Endpoints controller and a kube-proxy model: which pods serve a Service, and how many
requests each one gets.

:class:`EndpointsController` follows kube-controller-manager's endpoints controller
(pkg/controller/endpoint, ``syncService``): for every Service with a selector, the pods of its
namespace whose labels match are listed in an ``Endpoints`` object of the same name; a ready
pod (condition Ready=True) under ``addresses``, a bound, non-terminal pod that is not ready
under ``notReadyAddresses`` (all under ``addresses`` with ``spec.publishNotReadyAddresses``);
pods that are not bound, terminal (Succeeded/Failed) or being deleted are left out
(endpointsliceutil.ShouldPodBeInEndpoints). Service ports resolve to container ports by number
or by name (a pod without the named port does not serve that port) and addresses with the
same ports share a subset, sorted as ``RepackSubsets`` does. The object is only written when
it changes, and kept up to date pod by pod (a pod change costs O(log n), not a pass over the
Service's pods). A Service without a selector is left alone (its Endpoints, if any, are
managed by hand, also when a selector is removed from the Service). Differences from
Kubernetes: pods have no IPs here (an address is its pod), a Service without ports still
lists its pods (Kubernetes does so only for headless Services), and there is no
1000-address truncation.

:class:`KubeProxy` spreads each Service's request rate (``set_request_rate``) over the ready
addresses of its Endpoints, in discrete requests per ``interval`` seconds (1 s by default):

* ``round-robin`` (the default; kube-proxy's IPVS ``rr`` scheduler): the interval's requests go
  to the endpoints in turn, continuing where the previous interval stopped, so the counts of
  two endpoints differ by at most one request;
* ``random`` (kube-proxy's iptables and nftables modes pick an endpoint with equal
  probability): a multinomial draw per interval, from a generator seeded by the simulation
  seed, the Service and the interval index, so the draw does not depend on who asks or when.

Choose per Service with the annotation ``schedbench.io/load-balancing``. A Service without
ready endpoints drops its requests (counted as ``dropped``).
"""

from __future__ import annotations

import bisect
import math
import zlib
from typing import NamedTuple

import numpy as np

from ..errors import InputError
from ..model.objects import ObjectMeta, Pod, Service
from .controller import Context, Controller, split_key
from .objects import EndpointAddress, EndpointPort, Endpoints, EndpointSubset, ObjectReference
from .store import WatchEvent

__all__ = ["ANN_LOAD_BALANCING", "LB_MODES", "EndpointsController", "KubeProxy",
           "ServiceTraffic", "interval_requests", "random_counts", "round_robin_counts",
           "should_be_in_endpoints"]

ANN_LOAD_BALANCING = "schedbench.io/load-balancing"
LB_ROUND_ROBIN = "round-robin"
LB_RANDOM = "random"
LB_MODES = (LB_ROUND_ROBIN, LB_RANDOM)
HEADLESS_LABEL = "service.kubernetes.io/headless"
_SEED_DOMAIN = 0x6B70  # separates kube-proxy's streams from any other use of the seed
_EPS = 1e-9


# ---- endpoints ------------------------------------------------------------------------------

def should_be_in_endpoints(pod: Pod) -> bool:
    """endpointsliceutil.ShouldPodBeInEndpoints without the pod-IP test (pods have no IPs
    here): bound, not terminal, not being deleted."""
    return (bool(pod.spec.node_name) and pod.status.phase not in ("Succeeded", "Failed")
            and pod.metadata.deletion_timestamp is None)


def _pod_ip(pod: Pod) -> str:
    ip = pod.status.extra.get("podIP")
    return ip if isinstance(ip, str) else ""


def _endpoint_ports(service: Service, pod: Pod) -> tuple[tuple[str, int, str], ...] | None:
    """The (name, port, protocol) the pod serves for each Service port (podutil.FindPort: a
    numeric targetPort as is, a named one looked up among the containers' ports, none means
    ``port``); None when the Service has ports and the pod serves none of them."""
    ports = service.spec.ports
    if not ports:
        return ()
    out = []
    for sp in ports:
        target = sp.target_port
        if target is None or target == 0 or target == "":
            number: int | None = sp.port
        elif isinstance(target, int):
            number = target
        else:
            number = next((cp.container_port for c in pod.spec.containers for cp in c.ports
                           if cp.name == target and cp.protocol == sp.protocol), None)
        if number is not None:
            out.append((sp.name, number, sp.protocol))
    return tuple(sorted(out)) if out else None




class _ServiceEndpoints:
    """The endpoints of one Service, kept up to date pod by pod: per pod its entry (ports,
    ready, address), and per port set the ready and not-ready addresses in RepackSubsets
    order (sorted lists updated by bisection), so a pod change costs O(log n) plus a list
    copy when the Endpoints object is written, never a pass over all the pods."""

    __slots__ = ("entries", "groups", "dirty", "written_rv")

    def __init__(self) -> None:
        self.entries: dict[str, tuple[tuple, bool, EndpointAddress]] = {}
        # ports -> (ready keys, ready addresses, not-ready keys, not-ready addresses)
        self.groups: dict[tuple, tuple[list, list, list, list]] = {}
        self.dirty = True
        self.written_rv = ""

    def set(self, name: str, entry: tuple[tuple, bool, EndpointAddress] | None) -> bool:
        """Set (None: remove) a pod's entry; True when it changed."""
        old = self.entries.get(name)
        if old is not None and entry is not None and old[0] == entry[0] and \
                old[1] == entry[1] and old[2] is entry[2]:
            return False
        if old is None and entry is None:
            return False
        if old is not None:
            keys, addrs = self._lists(old[0], old[1])
            i = bisect.bisect_left(keys, _address_order(old[2]))
            del keys[i], addrs[i]
            group = self.groups[old[0]]
            if not group[0] and not group[2]:
                del self.groups[old[0]]
            del self.entries[name]
        if entry is not None:
            self.groups.setdefault(entry[0], ([], [], [], []))
            keys, addrs = self._lists(entry[0], entry[1])
            k = _address_order(entry[2])
            i = bisect.bisect_left(keys, k)
            keys.insert(i, k)
            addrs.insert(i, entry[2])
            self.entries[name] = entry
        self.dirty = True
        return True

    def _lists(self, ports: tuple, ready: bool) -> tuple[list, list]:
        g = self.groups[ports]
        return (g[0], g[1]) if ready else (g[2], g[3])

    def subsets(self) -> list[EndpointSubset]:
        return [EndpointSubset(addresses=list(g[1]), not_ready_addresses=list(g[3]),
                               ports=[EndpointPort(name=n, port=p, protocol=proto)
                                      for n, p, proto in ports])
                for ports, g in sorted(self.groups.items(), key=lambda item: item[0])]

    def counts(self) -> tuple[int, int]:
        return (sum(len(g[1]) for g in self.groups.values()),
                sum(len(g[3]) for g in self.groups.values()))


_NONE: frozenset = frozenset()


class EndpointsController(Controller):
    """Keeps an ``Endpoints`` object per Service with a selector (module docstring).

    Informer caches: Services and pods by namespace; per Service its endpoints, updated
    incrementally on every pod event (:class:`_ServiceEndpoints`) and rebuilt when the
    Service itself changes. A sync writes the object only when something changed."""

    name = "endpoints"

    def __init__(self, sim_ctx: Context) -> None:
        super().__init__(sim_ctx)
        self._services: dict[str, dict[str, Service]] = {}
        self._pods: dict[str, dict[str, Pod]] = {}
        self._state: dict[str, _ServiceEndpoints] = {}
        # one EndpointAddress per pod, reused while its node, IP and uid stay: lists of
        # addresses then compare by identity, not field by field
        self._addresses: dict[tuple[str, str], EndpointAddress] = {}
        # the Services whose endpoints hold a pod, and (per namespace) the Services whose
        # selector matches a label set: a pod event then looks at those Services only
        self._member_of: dict[tuple[str, str], set[str]] = {}
        self._selecting_cache: dict[str, dict[frozenset, frozenset[str]]] = {}

    def start(self) -> None:
        self.store.watch("Service", self._on_service)
        self.store.watch("Pod", self._on_pod)
        self.store.watch("Endpoints", self._on_endpoints)
        for pod in self.store.list("Pod"):
            self._pods.setdefault(pod.metadata.namespace, {})[pod.metadata.name] = pod
        for svc in self.store.list("Service"):
            self._set_service(svc)
            self.enqueue(svc.key)

    # ---- informer handlers ---------------------------------------------------------------

    def _address(self, pod: Pod) -> EndpointAddress:
        key = (pod.metadata.namespace, pod.metadata.name)
        addr = self._addresses.get(key)
        ip, node, uid = _pod_ip(pod), pod.spec.node_name, pod.metadata.uid
        if addr is None or addr.ip != ip or addr.node_name != node or \
                addr.target_ref.uid != uid:
            addr = EndpointAddress(ip=ip, node_name=node, target_ref=ObjectReference(
                kind="Pod", namespace=key[0], name=key[1], uid=uid))
            self._addresses[key] = addr
        return addr

    def _entry(self, svc: Service, pod: Pod) -> tuple[tuple, bool, EndpointAddress] | None:
        """The pod's place in the Service's endpoints, None if it has none."""
        if not svc.selects(pod) or not should_be_in_endpoints(pod):
            return None
        ports = _endpoint_ports(svc, pod)
        if ports is None:
            return None
        ready = svc.spec.extra.get("publishNotReadyAddresses") is True or pod.is_ready()
        return (ports, ready, self._address(pod))

    def _set_service(self, svc: Service) -> None:
        ns = svc.metadata.namespace
        self._services.setdefault(ns, {})[svc.metadata.name] = svc
        old = self._state.get(svc.key)
        state = _ServiceEndpoints()
        if old is not None:
            state.written_rv = old.written_rv
        self._selecting_cache.pop(ns, None)
        sname = svc.metadata.name
        for name, pod in self._pods.get(ns, {}).items():
            entry = self._entry(svc, pod)
            state.set(name, entry)
            self._note_member(ns, name, sname, entry is not None)
        self._state[svc.key] = state

    def _on_service(self, ev: WatchEvent) -> None:
        svc = ev.obj
        if ev.type == "DELETED":
            ns_services = self._services.get(svc.metadata.namespace)
            if ns_services is not None:
                ns_services.pop(svc.metadata.name, None)
            self._selecting_cache.pop(svc.metadata.namespace, None)
            state = self._state.pop(svc.key, None)
            if state is not None:
                for name in state.entries:
                    self._note_member(svc.metadata.namespace, name, svc.metadata.name, False)
        else:
            self._set_service(svc)
        self.enqueue(svc.key)

    def _on_pod(self, ev: WatchEvent) -> None:
        pod = ev.obj
        ns, name = pod.metadata.namespace, pod.metadata.name
        ns_pods = self._pods.setdefault(ns, {})
        deleted = ev.type == "DELETED"
        if deleted:
            ns_pods.pop(name, None)
        else:
            ns_pods[name] = pod
        services = self._services.get(ns)
        if services:
            selecting = _NONE if deleted else self._selecting(ns, services, pod.metadata.labels)
            member = self._member_of.get((ns, name), ())
            # the Services that hold the pod or select it, in the namespace's Service order
            targets = selecting if not member else selecting | member
            if len(targets) > 1:
                order = self._service_order(ns, services)
                targets = sorted(targets, key=lambda n: order.get(n, -1))
            for sname in targets:
                svc = services.get(sname)
                if svc is None:
                    continue
                entry = None if deleted else self._entry(svc, pod)
                if self._state[svc.key].set(name, entry):
                    self.enqueue(svc.key)
                self._note_member(ns, name, sname, entry is not None)
        if deleted:
            self._addresses.pop((ns, name), None)
            self._member_of.pop((ns, name), None)

    def _selecting(self, ns: str, services: dict[str, Service], labels: dict) -> frozenset:
        """Names of the namespace's Services whose selector matches ``labels`` (memoised per
        label set until a Service of the namespace changes)."""
        cache = self._selecting_cache.setdefault(ns, {})
        key = frozenset(labels.items())
        got = cache.get(key)
        if got is None:
            probe = Pod(metadata=ObjectMeta(namespace=ns, labels=dict(labels)))
            got = cache[key] = frozenset(n for n, svc in services.items()
                                         if svc.selects(probe))
        return got

    def _service_order(self, ns: str, services: dict[str, Service]) -> dict[str, int]:
        """Position of each Service of the namespace in ``services`` (memoised with the
        selecting cache, which every Service change clears)."""
        cache = self._selecting_cache.setdefault(ns, {})
        got = cache.get(None)
        if got is None:
            got = cache[None] = {n: i for i, n in enumerate(services)}
        return got

    def _note_member(self, ns: str, pod: str, service: str, member: bool) -> None:
        if member:
            self._member_of.setdefault((ns, pod), set()).add(service)
        else:
            got = self._member_of.get((ns, pod))
            if got is not None:
                got.discard(service)

    def _on_endpoints(self, ev: WatchEvent) -> None:
        if ev.type == "DELETED":  # deleted by someone else: put it back
            ns, name = ev.obj.metadata.namespace, ev.obj.metadata.name
            if name in self._services.get(ns, {}):
                self.enqueue(f"{ns}/{name}")

    # ---- sync ----------------------------------------------------------------------------

    def desired_subsets(self, service_key: str) -> list[EndpointSubset]:
        """The subsets the Service's selected pods make now (module docstring)."""
        state = self._state.get(service_key)
        return state.subsets() if state is not None else []

    def reconcile(self, key: str) -> None:
        ns, name = split_key(key)
        svc = self._services.get(ns, {}).get(name)
        current = self.store.try_get("Endpoints", ns, name)
        if svc is None:
            if current is not None:
                self.store.delete("Endpoints", ns, name, cause=f"Service {key} deleted")
            return
        if not svc.spec.selector:
            return  # endpoints of a Service without a selector are managed by hand
        state = self._state[key]
        labels = dict(svc.metadata.labels)
        if svc.spec.cluster_ip == "None":
            labels[HEADLESS_LABEL] = ""
        if current is not None and not state.dirty and \
                current.metadata.resource_version == state.written_rv and \
                current.metadata.labels == labels:
            return
        subsets = state.subsets()
        ready, not_ready = state.counts()
        if current is None:
            written = self.store.create(
                Endpoints(metadata=ObjectMeta(name=name, namespace=ns, labels=labels),
                          subsets=subsets),
                cause=f"endpoints of Service {key}: {ready} ready, {not_ready} not ready")
        elif current.subsets == subsets and current.metadata.labels == labels:
            written = current
        else:
            new = self.store.edit(current)
            new.subsets = subsets
            new.metadata.labels = labels
            before = sum(len(s.addresses) for s in current.subsets)
            written = self.store.update(
                new, cause=f"endpoints of Service {key}: ready {before} -> {ready}, "
                           f"{not_ready} not ready")
        state.dirty = False
        state.written_rv = written.metadata.resource_version


def _address_order(addr: EndpointAddress) -> tuple[str, str]:
    """RepackSubsets orders addresses by IP, then by target; pods have no IPs here, so
    effectively by pod name."""
    return (addr.ip, addr.target_ref.name if addr.target_ref is not None else "")


# ---- kube-proxy model -----------------------------------------------------------------------

def interval_requests(rate: float, interval: float, index: int) -> tuple[int, int]:
    """Requests arriving in interval ``index`` (``[index * interval, (index + 1) * interval)``)
    at ``rate`` requests/s, and requests before it: ``floor(rate * interval * i)`` requests
    arrive by the start of interval ``i``, so a fractional rate is dithered exactly (10.5
    req/s over 1 s intervals: 10, 11, 10, 11, ...)."""
    per = rate * interval
    before = math.floor(per * index + _EPS)
    return math.floor(per * (index + 1) + _EPS) - before, before


def round_robin_counts(requests: int, n: int, cursor: int) -> list[int]:
    """``requests`` handed to ``n`` endpoints in turn, the first to endpoint ``cursor % n``:
    each gets ``requests // n``, the ``requests % n`` following the cursor one more."""
    if n <= 0:
        return []
    base, extra = divmod(requests, n)
    counts = [base] * n
    start = cursor % n
    for j in range(extra):
        counts[(start + j) % n] += 1
    return counts


def random_counts(requests: int, n: int, rng: np.random.Generator) -> list[int]:
    """``requests`` each sent to one of ``n`` endpoints with equal probability (a
    multinomial draw)."""
    if n <= 0:
        return []
    return [int(c) for c in rng.multinomial(requests, np.full(n, 1.0 / n))]


class ServiceTraffic(NamedTuple):
    """A Service's traffic in the current interval, in requests/s: ``offered`` (the rate
    set), ``served`` (requests that reached an endpoint), ``dropped`` (no ready endpoint);
    ``endpoints`` is the number of ready endpoints."""

    offered: float
    served: float
    dropped: float
    endpoints: int


def _lb_mode(svc: Service) -> str:
    mode = svc.metadata.annotations.get(ANN_LOAD_BALANCING, LB_ROUND_ROBIN)
    if mode not in LB_MODES:
        raise InputError(f"must be one of {', '.join(LB_MODES)}, got {mode!r}", obj=svc.ref,
                         field=f"metadata.annotations.{ANN_LOAD_BALANCING}")
    return mode


def normalize_service_key(key: str) -> str:
    """``name`` -> ``default/name``; ``ns/name`` unchanged."""
    if not isinstance(key, str) or not key or key.count("/") > 1 or key.startswith("/") \
            or key.endswith("/"):
        raise InputError(f"a Service is named NAMESPACE/NAME or NAME, got {key!r}")
    return key if "/" in key else f"default/{key}"


class KubeProxy(Controller):
    """Splits Services' request rates over their ready endpoints (module docstring).

    Watches Services (for the load-balancing annotation) and Endpoints (the ready addresses,
    in the order the Endpoints object lists them). Rates are per Service key
    (``namespace/name``); a rate may be set before the Service exists."""

    name = "kube-proxy"

    def __init__(self, sim_ctx: Context, *, interval: float | None = None) -> None:
        super().__init__(sim_ctx)
        if interval is None:
            interval = getattr(sim_ctx.config, "proxy_interval_seconds", 1.0)
        if not (isinstance(interval, (int, float)) and math.isfinite(interval)
                and interval > 0):
            raise InputError(f"the kube-proxy interval must be a positive number of seconds, "
                             f"got {interval!r}")
        self.interval = float(interval)
        self._seed = int(getattr(self.engine, "seed", 0))
        self._rates: dict[str, float] = {}
        self._modes: dict[str, str] = {}
        # Endpoints objects by Service key; their ready pod keys and the pod -> Services index
        # are derived lazily (an Endpoints update is O(1) here, however many pods it lists)
        self._eps: dict[str, Endpoints] = {}
        self._keys: dict[str, tuple[str, tuple[str, ...]]] = {}
        self._pod_services: dict[str, dict[str, None]] = {}
        self._index_stale = False
        self._split_cache: dict[str, tuple[tuple, dict[str, int], int]] = {}

    def start(self) -> None:
        self.store.watch("Service", self._on_service)
        self.store.watch("Endpoints", self._on_endpoints)
        for svc in self.store.list("Service"):
            self._modes[svc.key] = _lb_mode(svc)
        for ep in self.store.list("Endpoints"):
            self._eps[ep.key] = ep
        self._index_stale = True

    def reconcile(self, key: str) -> None:  # event-driven only; nothing to reconcile
        return None

    # ---- informer handlers ---------------------------------------------------------------

    def _on_service(self, ev: WatchEvent) -> None:
        if ev.type == "DELETED":
            self._modes.pop(ev.obj.key, None)
        else:
            self._modes[ev.obj.key] = _lb_mode(ev.obj)

    def _on_endpoints(self, ev: WatchEvent) -> None:
        key = ev.obj.key
        if ev.type == "DELETED":
            self._eps.pop(key, None)
        else:
            self._eps[key] = ev.obj
        self._index_stale = True

    def _ready_keys(self, svc_key: str) -> tuple[str, ...]:
        ep = self._eps.get(svc_key)
        if ep is None:
            return ()
        rv = ep.metadata.resource_version
        cached = self._keys.get(svc_key)
        if cached is not None and cached[0] == rv:
            return cached[1]
        keys = tuple(dict.fromkeys(f"{a.target_ref.namespace}/{a.target_ref.name}"
                                   for s in ep.subsets for a in s.addresses
                                   if a.target_ref is not None))
        self._keys[svc_key] = (rv, keys)
        return keys

    def _pod_index(self) -> dict[str, dict[str, None]]:
        if self._index_stale:
            index: dict[str, dict[str, None]] = {}
            for svc_key in self._eps:
                for pk in self._ready_keys(svc_key):
                    index.setdefault(pk, {})[svc_key] = None
            self._pod_services = index
            self._keys = {k: v for k, v in self._keys.items() if k in self._eps}
            self._index_stale = False
        return self._pod_services

    # ---- rates ---------------------------------------------------------------------------

    def set_request_rate(self, service_key: str, rate: float) -> None:
        """Offer ``rate`` requests/s to the Service from now on."""
        key = normalize_service_key(service_key)
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) \
                or not math.isfinite(rate) or rate < 0:
            raise InputError(f"a request rate must be a number >= 0 (requests/s), got "
                             f"{rate!r}", obj=f"Service/{key}")
        self._rates[key] = float(rate)

    def request_rate(self, service_key: str) -> float:
        """The offered rate of the Service (0 if never set)."""
        return self._rates.get(normalize_service_key(service_key), 0.0)

    def endpoints(self, service_key: str) -> tuple[str, ...]:
        """The ready endpoints (pod keys) kube-proxy routes the Service to."""
        return self._ready_keys(normalize_service_key(service_key))

    def lb_mode(self, service_key: str) -> str:
        return self._modes.get(normalize_service_key(service_key), LB_ROUND_ROBIN)

    def interval_index(self, t: float | None = None) -> int:
        """The index of the interval holding time ``t`` (now by default)."""
        return math.floor((self.engine.now if t is None else t) / self.interval + _EPS)

    def _split(self, key: str) -> tuple[dict[str, int], int]:
        """(requests per ready endpoint, requests) of the current interval."""
        rate = self._rates.get(key, 0.0)
        pods = self._ready_keys(key)
        mode = self._modes.get(key, LB_ROUND_ROBIN)
        k = self.interval_index()
        ep = self._eps.get(key)
        stamp = (k, rate, ep.metadata.resource_version if ep is not None else "", mode)
        cached = self._split_cache.get(key)
        if cached is not None and cached[0] == stamp:
            return cached[1], cached[2]
        requests, before = interval_requests(rate, self.interval, k)
        n = len(pods)
        if n == 0 or requests == 0:
            counts = [0] * n
        elif mode == LB_RANDOM:
            rng = np.random.default_rng([self._seed, _SEED_DOMAIN,
                                         zlib.crc32(key.encode()), k])
            counts = random_counts(requests, n, rng)
        else:
            counts = round_robin_counts(requests, n, before)
        split = dict(zip(pods, counts))
        self._split_cache[key] = (stamp, split, requests)
        return split, requests

    def service_split(self, service_key: str) -> dict[str, float]:
        """requests/s per ready endpoint (pod key) of the Service in the current interval."""
        split, _ = self._split(normalize_service_key(service_key))
        return {pk: c / self.interval for pk, c in split.items()}

    def traffic(self, service_key: str) -> ServiceTraffic:
        key = normalize_service_key(service_key)
        split, requests = self._split(key)
        rate = requests / self.interval
        n = len(split)
        return ServiceTraffic(offered=self._rates.get(key, 0.0), served=rate if n else 0.0,
                              dropped=0.0 if n else rate, endpoints=n)

    def services(self) -> list[str]:
        """Keys of the Services with a rate set, in the order they got one."""
        return list(self._rates)

    def pod_services(self, pod_key: str) -> tuple[str, ...]:
        """Keys of the Services the pod is a ready endpoint of."""
        return tuple(self._pod_index().get(pod_key, ()))

    def pod_service_rates(self, pod_key: str) -> dict[str, float]:
        """requests/s the pod receives from each Service it is a ready endpoint of."""
        out = {}
        for svc_key in self._pod_index().get(pod_key, ()):
            if svc_key in self._rates:
                split, _ = self._split(svc_key)
                out[svc_key] = split.get(pod_key, 0) / self.interval
        return out

    def pod_request_rate(self, pod_key: str) -> float:
        """requests/s the pod receives in the current interval, over all its Services."""
        return sum(self.pod_service_rates(pod_key).values())

    def pod_request_rates(self) -> dict[str, float]:
        """requests/s per pod (every ready endpoint of a Service with a rate), Services in
        the order their rates were set, pods in Endpoints order."""
        out: dict[str, float] = {}
        for svc_key in self._rates:
            split, _ = self._split(svc_key)
            for pk, c in split.items():
                out[pk] = out.get(pk, 0.0) + c / self.interval
        return out
