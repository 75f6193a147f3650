"""The cluster as the scheduler sees it: nodes as struct-of-arrays, pods compiled once.

kube-scheduler keeps a ``NodeInfo`` per node (allocatable, requested, non-zero requested, pods,
ports, images). :class:`NodeSnapshot` keeps the same facts as numpy columns so that filter and
score kernels loop over arrays, never over Python objects:

- ``allocatable[n, r]``, ``requested[n, r]`` (int64; column ``r`` of :attr:`resources`, CPU in
  millicores, everything else in base units) and ``nonzero_requested[n, r]`` (the scoring view:
  containers without a CPU/memory request count 100m/200Mi; other columns equal ``requested``);
- ``pod_count[n]`` and ``allowed_pods[n]`` (the ``pods`` resource, kept apart as kube does);
- ``labels[n, k]``: the value id of label key ``k`` on node ``n`` (-1 when absent), ids from
  :class:`LabelVocabulary`; topology domains are these value ids (domain of ``zone`` = value id
  of the ``topology.kubernetes.io/zone`` label);
- taints in CSR form: ``taint_ptr[n]..taint_ptr[n+1]`` index ``taint_key``, ``taint_value``,
  ``taint_effect`` (:data:`EFFECT_IDS`);
- ``unschedulable[n]``, ``alive[n]`` (removed nodes keep their index, marked dead).

Binding or removing a pod (:meth:`add_pod`, :meth:`remove_pod`) updates the columns in
O(resources) and notifies :class:`SnapshotListener`s (the plugins that keep per-domain counts),
never rebuilding anything. Node indices are stable for the life of the snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from ..model.objects import Node, Pod, PriorityClass

EFFECT_IDS = {"NoSchedule": 0, "PreferNoSchedule": 1, "NoExecute": 2}
EFFECT_NAMES = {v: k for k, v in EFFECT_IDS.items()}
# Pseudo label key under which every node's name is interned, so that ``matchFields`` on
# ``metadata.name`` is matched by the same kernel as label requirements.
NODE_NAME_KEY = "\x00metadata.name"
CPU, MEMORY = 0, 1  # fixed resource columns


class Interner:
    """Strings to dense integer ids, in order of first appearance."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}
        self.names: list[str] = []

    def intern(self, name: str) -> int:
        i = self.ids.get(name)
        if i is None:
            i = self.ids[name] = len(self.names)
            self.names.append(name)
        return i

    def get(self, name: str) -> int:
        """The id of ``name``, or -1 if it was never interned."""
        return self.ids.get(name, -1)

    def __len__(self) -> int:
        return len(self.names)


class LabelVocabulary:
    """Label keys to ids, and per key the values to ids."""

    def __init__(self) -> None:
        self.keys = Interner()
        self.values: list[Interner] = []

    def key_id(self, key: str, create: bool = False) -> int:
        if create:
            k = self.keys.intern(key)
            while len(self.values) <= k:
                self.values.append(Interner())
            return k
        return self.keys.get(key)

    def value_id(self, key_id: int, value: str, create: bool = False) -> int:
        if key_id < 0:
            return -1
        vocab = self.values[key_id]
        return vocab.intern(value) if create else vocab.get(value)


class SnapshotListener(Protocol):
    """Receives every change of bound pods (for incremental per-node / per-domain counts)."""

    def pod_added(self, snapshot: NodeSnapshot, pod: PodInfo, node: int) -> None: ...

    def pod_removed(self, snapshot: NodeSnapshot, pod: PodInfo, node: int) -> None: ...


@dataclass(eq=False)
class PodInfo:
    """A pod with what every plugin needs precomputed: request vectors (in the snapshot's
    resource columns), priority, and a per-plugin cache (``cache[plugin_name]``) for compiled
    selectors and terms. Built by :meth:`NodeSnapshot.pod_info`; equality is identity."""

    pod: Pod
    key: str
    priority: int
    requests: dict[str, int]
    nonzero_requests: dict[str, int]
    request_vector: np.ndarray
    nonzero_vector: np.ndarray
    arrival: int = 0                       # queue order among equal priorities
    node: int = -1                         # index of the node it is bound to, -1 if none
    cache: dict = field(default_factory=dict)

    @property
    def namespace(self) -> str:
        return self.pod.metadata.namespace

    @property
    def labels(self) -> dict[str, str]:
        return self.pod.metadata.labels

    @property
    def name(self) -> str:
        return self.pod.metadata.name


class NodeSnapshot:
    """Struct-of-arrays view of the nodes and the pods bound to them (see module docstring)."""

    def __init__(self, nodes: Iterable[Node] = (), *,
                 priority_classes: dict[str, PriorityClass] | None = None) -> None:
        self.resources = Interner()
        self.resources.intern("cpu")
        self.resources.intern("memory")
        self.vocab = LabelVocabulary()
        self.taint_strings = Interner()  # taint keys and values (tolerations match on these)
        self.priority_classes = dict(priority_classes or {})
        self.node_names: list[str] = []
        self.node_index: dict[str, int] = {}
        self.nodes: list[Node] = []
        self.pods_on_node: list[dict[str, PodInfo]] = []
        self.pods: dict[str, PodInfo] = {}  # bound pods by key
        self.listeners: list[SnapshotListener] = []
        self.generation = 0
        self._capacity = 0
        self._n = 0
        # Backing arrays with spare rows; the public attributes are views of the first _n rows.
        self._alloc = np.zeros((0, 2), np.int64)
        self._req = np.zeros((0, 2), np.int64)
        self._nz = np.zeros((0, 2), np.int64)
        self._pods = np.zeros(0, np.int64)
        self._allowed = np.zeros(0, np.int64)
        self._unsched = np.zeros(0, np.bool_)
        self._alive = np.zeros(0, np.bool_)
        self._labels = np.full((0, 1), -1, np.int32)
        self._refresh_views()
        self._taints: list[list[tuple[int, int, int]]] = []
        self._taint_arrays: tuple[np.ndarray, ...] | None = None
        self._zone_order: np.ndarray | None = None
        self.vocab.key_id(NODE_NAME_KEY, create=True)
        for node in nodes:
            self.add_node(node)

    # ------------------------------------------------------------------------------ sizes

    @property
    def num_nodes(self) -> int:
        """Number of node slots (including removed nodes, which are not alive)."""
        return self._n

    @property
    def num_resources(self) -> int:
        return len(self.resources)

    def _view(self, arr: np.ndarray) -> np.ndarray:
        return arr[: self._n]

    def _grow_rows(self, need: int) -> None:
        if need <= self._capacity:
            return
        cap = max(need, 2 * self._capacity, 16)

        def grow(a: np.ndarray, fill) -> np.ndarray:
            shape = (cap,) + a.shape[1:]
            out = np.full(shape, fill, a.dtype)
            out[: a.shape[0]] = a
            return out

        for name, fill in (("_alloc", 0), ("_req", 0), ("_nz", 0), ("_pods", 0),
                           ("_allowed", 0), ("_unsched", False), ("_alive", False),
                           ("_labels", -1)):
            setattr(self, name, grow(getattr(self, name), fill))
        self._capacity = cap

    def _ensure_resource_columns(self) -> None:
        r = len(self.resources)
        if self._alloc.shape[1] < r:
            for name in ("_alloc", "_req", "_nz"):
                a = getattr(self, name)
                b = np.zeros((a.shape[0], r), np.int64)
                b[:, : a.shape[1]] = a
                setattr(self, name, b)

    def _ensure_label_columns(self) -> None:
        k = len(self.vocab.keys)
        if self._labels.shape[1] < k:
            b = np.full((self._labels.shape[0], k), -1, np.int32)
            b[:, : self._labels.shape[1]] = self._labels
            self._labels = b

    def _refresh_views(self) -> None:
        n = self._n
        self.allocatable = self._alloc[:n]
        self.requested = self._req[:n]
        self.nonzero_requested = self._nz[:n]
        self.pod_count = self._pods[:n]
        self.allowed_pods = self._allowed[:n]
        self.unschedulable = self._unsched[:n]
        self.alive = self._alive[:n]
        self.labels = self._labels[:n]

    def resource_id(self, name: str, create: bool = False) -> int:
        """Column of resource ``name``; with ``create`` a new zero column is added."""
        if create and name not in self.resources.ids:
            self.resources.intern(name)
            self._ensure_resource_columns()
            self._refresh_views()
        return self.resources.get(name)

    def label_key_id(self, key: str, create: bool = False) -> int:
        """Column of label key ``key`` in :attr:`labels`; with ``create`` a new column (all
        absent) is added, so that selectors on keys no node has still compile."""
        k = self.vocab.key_id(key, create=create)
        if create:
            self._ensure_label_columns()
            self._refresh_views()
        return k

    # ------------------------------------------------------------------------------ nodes

    def add_node(self, node: Node) -> int:
        """Add a node; returns its index. Its bound pods are added with :meth:`add_pod`."""
        name = node.metadata.name
        if name in self.node_index and self._alive[self.node_index[name]]:
            raise ValueError(f"node {name!r} is already in the snapshot")
        for res in node.allocatable:
            if res != "pods":
                self.resource_id(res, create=True)
        for key in node.metadata.labels:
            self.label_key_id(key, create=True)
        i = self._n
        self._grow_rows(i + 1)
        self._ensure_resource_columns()
        self._ensure_label_columns()
        self._n += 1
        self._refresh_views()
        self.node_names.append(name)
        self.node_index[name] = i
        self.nodes.append(node)
        self.pods_on_node.append({})
        self._taints.append([])
        self._set_node_fields(i, node)
        self._invalidate()
        return i

    def _set_node_fields(self, i: int, node: Node) -> None:
        alloc = node.allocatable
        self._alloc[i, :] = 0
        for res, v in alloc.items():
            if res != "pods":
                self._alloc[i, self.resources.ids[res]] = v
        self._allowed[i] = alloc.get("pods", 0)
        self._unsched[i] = node.spec.unschedulable
        self._alive[i] = True
        self._labels[i, :] = -1
        for key, value in node.metadata.labels.items():
            k = self.vocab.key_id(key, create=True)
            self._labels[i, k] = self.vocab.value_id(k, value, create=True)
        k = self.vocab.key_id(NODE_NAME_KEY)
        self._labels[i, k] = self.vocab.value_id(k, node.metadata.name, create=True)
        self._taints[i] = [(self.taint_strings.intern(t.key), self.taint_strings.intern(t.value),
                            EFFECT_IDS[t.effect]) for t in node.spec.taints]

    def update_node(self, node: Node) -> int:
        """Replace a node's spec/status/labels (allocatable, taints, labels, cordon), keeping
        its bound pods. Listeners see the node's pods removed and re-added, so per-domain
        counts follow label changes."""
        i = self.node_index[node.metadata.name]
        pods = list(self.pods_on_node[i].values())
        for p in pods:
            self.remove_pod(p)
        for res in node.allocatable:
            if res != "pods":
                self.resource_id(res, create=True)
        for key in node.metadata.labels:
            self.label_key_id(key, create=True)
        self.nodes[i] = node
        self._set_node_fields(i, node)
        self._invalidate()
        for p in pods:
            self.add_pod(p, i)
        return i

    def remove_node(self, name: str) -> list[PodInfo]:
        """Mark a node dead; returns the pods that were bound to it (now unbound)."""
        i = self.node_index[name]
        pods = list(self.pods_on_node[i].values())
        for p in pods:
            self.remove_pod(p)
        self._alive[i] = False
        self._invalidate()
        return pods

    def alive_nodes(self) -> np.ndarray:
        """Indices of live nodes, ascending."""
        return np.flatnonzero(self.alive).astype(np.int64)

    def _invalidate(self) -> None:
        self.generation += 1
        self._taint_arrays = None
        self._zone_order = None

    @property
    def taint_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(taint_ptr[n+1], taint_key[t], taint_value[t], taint_effect[t]) in CSR form."""
        if self._taint_arrays is None:
            counts = np.fromiter((len(t) for t in self._taints[: self._n]), np.int64, self._n)
            ptr = np.zeros(self._n + 1, np.int64)
            np.cumsum(counts, out=ptr[1:])
            flat = [t for ts in self._taints[: self._n] for t in ts]
            arr = np.array(flat, np.int64).reshape(-1, 3)
            self._taint_arrays = (ptr, arr[:, 0].copy(), arr[:, 1].copy(),
                                  arr[:, 2].astype(np.int8))
        return self._taint_arrays

    def evaluation_order(self) -> np.ndarray:
        """Live nodes in kube-scheduler's NodeTree order: zones in order of first appearance,
        one node from each zone in turn (zone key: :func:`.spreading.zone_key`)."""
        if self._zone_order is None:
            from .spreading import zone_key  # (spreading imports this module)

            zones: dict[str, list[int]] = {}
            for i in range(self._n):
                if self._alive[i]:
                    zones.setdefault(zone_key(self.nodes[i].metadata.labels), []).append(i)
            order: list[int] = []
            lists = list(zones.values())
            depth = max((len(x) for x in lists), default=0)
            for j in range(depth):
                for lst in lists:
                    if j < len(lst):
                        order.append(lst[j])
            self._zone_order = np.array(order, np.int64)
        return self._zone_order

    # ------------------------------------------------------------------------------- pods

    def pod_info(self, pod: Pod, arrival: int = 0) -> PodInfo:
        """Compile a pod: its request vectors over the snapshot's resource columns (new
        resource names get new columns, so an unknown extended resource is 'Insufficient')."""
        requests = pod.requests()
        nonzero = pod.non_zero_requests()
        for res in requests:
            if res != "pods":
                self.resource_id(res, create=True)
        return PodInfo(pod=pod, key=pod.key, priority=pod.effective_priority(self.priority_classes),
                       requests=requests, nonzero_requests=nonzero,
                       request_vector=self._vector(requests),
                       nonzero_vector=self._nonzero_vector(requests, nonzero), arrival=arrival)

    def _vector(self, requests: dict[str, int]) -> np.ndarray:
        v = np.zeros(len(self.resources), np.int64)
        for res, q in requests.items():
            if res != "pods":
                v[self.resources.ids[res]] = q
        return v

    def _nonzero_vector(self, requests: dict[str, int], nonzero: dict[str, int]) -> np.ndarray:
        v = self._vector(requests)
        v[CPU] = nonzero.get("cpu", 0)
        v[MEMORY] = nonzero.get("memory", 0)
        return v

    def request_vectors(self, pod: PodInfo) -> tuple[np.ndarray, np.ndarray]:
        """The pod's request and non-zero request vectors padded to the current columns."""
        r = len(self.resources)
        if pod.request_vector.shape[0] < r:
            pod.request_vector = self._vector(pod.requests)
            pod.nonzero_vector = self._nonzero_vector(pod.requests, pod.nonzero_requests)
        return pod.request_vector, pod.nonzero_vector

    def add_pod(self, pod: PodInfo, node: int) -> None:
        """Account a pod bound (or assumed) on ``node``: O(resources) + listeners."""
        if pod.key in self.pods:
            raise ValueError(f"pod {pod.key} is already bound to {self.node_names[pod.node]}")
        req, nz = self.request_vectors(pod)
        self._req[node, : req.shape[0]] += req
        self._nz[node, : nz.shape[0]] += nz
        self._pods[node] += 1
        pod.node = node
        self.pods[pod.key] = pod
        self.pods_on_node[node][pod.key] = pod
        for listener in self.listeners:
            listener.pod_added(self, pod, node)

    def remove_pod(self, pod: PodInfo) -> None:
        """Undo :meth:`add_pod` (a pod deleted, evicted, or an assumption forgotten)."""
        node = pod.node
        if node < 0 or self.pods.get(pod.key) is not pod:
            raise ValueError(f"pod {pod.key} is not bound in this snapshot")
        req, nz = self.request_vectors(pod)
        self._req[node, : req.shape[0]] -= req
        self._nz[node, : nz.shape[0]] -= nz
        self._pods[node] -= 1
        del self.pods[pod.key]
        del self.pods_on_node[node][pod.key]
        for listener in self.listeners:
            listener.pod_removed(self, pod, node)
        pod.node = -1

    def add_listener(self, listener: SnapshotListener) -> None:
        """Register a listener and replay the pods already bound to it."""
        self.listeners.append(listener)
        for pod in self.pods.values():
            listener.pod_added(self, pod, pod.node)

