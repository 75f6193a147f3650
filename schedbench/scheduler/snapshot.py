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
- ``unschedulable[n]``, ``alive[n]`` (removed nodes keep their index, marked dead);
- GPU sharing (Alibaba's GPU-share convention, :data:`GPU_COUNT` and friends): a node's GPUs
  are its allocatable extended resource ``alibabacloud.com/gpu-count``, each of
  :data:`MILLI_PER_GPU` milli-GPU, of the model in its label ``alibabacloud.com/gpu-card-model``.
  ``gpu_free[n, g]`` is the milli left on GPU ``g`` of node ``n`` (-1 for a GPU the node does
  not have; ``gpu_count[n]`` says how many it has), ``gpu_model[n]`` the model id
  (:attr:`gpu_models`, -1 none). A pod's GPU request comes from its annotations
  (:func:`parse_gpu_request`): the total milli is also the resource column
  ``alibabacloud.com/gpu-milli`` (node allocatable = GPUs x 1000), so NodeResourcesFit keeps the
  sum right, while the GpuShare plugin checks the single GPUs.

Binding or removing a pod (:meth:`add_pod`, :meth:`remove_pod`) updates the columns in
O(resources) and notifies :class:`SnapshotListener`s (the plugins that keep per-domain counts),
never rebuilding anything. Node indices are stable for the life of the snapshot.

GPU indices (the Reserve step of Alibaba's Open-Gpu-Share): :meth:`add_pod` gives a GPU pod
the GPUs it holds - the ones it already holds on that node when it is bound there
(``spec.nodeName``, indices from the ``alibabacloud.com/gpu-index`` annotation such as ``0-1``
or from an earlier add), otherwise the ones :attr:`NodeSnapshot.gpu_chooser` picks
(default :func:`choose_gpus`: a share pod takes the fitting GPU with the least milli left,
first index on ties; whole-GPU pods the lowest-indexed fully free GPUs). The choice is
recorded on the pod (``PodInfo.gpu_indices`` and the annotation) and released by
:meth:`remove_pod`; a bound pod removed and added back (preemption dry runs, node updates)
gets the same GPUs again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
from numba import njit

from ..errors import InputError
from ..model.objects import (
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    Node,
    Pod,
    PriorityClass,
)

EFFECT_IDS = {"NoSchedule": 0, "PreferNoSchedule": 1, "NoExecute": 2}
EFFECT_NAMES = {v: k for k, v in EFFECT_IDS.items()}
# Pseudo label key under which every node's name is interned, so that ``matchFields`` on
# ``metadata.name`` is matched by the same kernel as label requirements.
NODE_NAME_KEY = "\x00metadata.name"
CPU, MEMORY = 0, 1  # fixed resource columns
_NO_PRIORITY = np.iinfo(np.int64).max  # lowest_priority of a node without pods
_EXACT_LIMIT = 1 << 44  # (columns.EXACT_LIMIT: the float columns are exact below it)
#: The layout of the float columns' state (``NodeSnapshot._cols_state``, read by the kernels).
COLS_INEXACT, COLS_NONZERO_DIFFERS, COLS_ZERO_ALLOC = 0, 1, 3

#: GPU sharing (Alibaba's Open-Gpu-Share names): node allocatable GPU count and pod GPU count.
GPU_COUNT = "alibabacloud.com/gpu-count"
#: Pod annotation: milli-GPU per GPU (1..1000); also the snapshot's resource column of the
#: total milli-GPU (node: GPUs x 1000; pod: GPUs x per-GPU milli).
GPU_MILLI = "alibabacloud.com/gpu-milli"
#: Node label: the GPU model; pod annotation: the allowed models joined by ``|``.
GPU_MODEL = "alibabacloud.com/gpu-card-model"
#: Pod annotation: the GPU indices a bound pod holds, joined by ``-`` (``0-1``).
GPU_INDEX = "alibabacloud.com/gpu-index"
MILLI_PER_GPU = 1000


def _gpu_error(pod: Pod, key: str, message: str) -> InputError:
    return InputError(message, obj=pod.ref, field=f"metadata.annotations.{key}")


def _parse_int(pod: Pod, key: str, text: str) -> int:
    t = text.strip()
    if not t or not (t.isdigit() or (t[0] in "+-" and t[1:].isdigit())):
        raise _gpu_error(pod, key, f"expected an integer, got {text!r}")
    return int(t)


def parse_gpu_request(pod: Pod) -> tuple[int, int, tuple[str, ...]]:
    """(GPU count, milli per GPU, allowed models) from a pod's annotations
    (:data:`GPU_COUNT`, :data:`GPU_MILLI`, :data:`GPU_MODEL`); (0, 0, ()) for a pod that asks
    for no GPU. A count without milli means whole GPUs (1000), a milli without count one GPU (none
    for milli 0).
    Malformed values raise :class:`InputError` naming the pod and the annotation."""
    ann = pod.metadata.annotations
    if not ann:
        return 0, 0, ()
    count_s = ann.get(GPU_COUNT)
    milli_s = ann.get(GPU_MILLI)
    if count_s is None and milli_s is None:
        return 0, 0, ()
    milli = _parse_int(pod, GPU_MILLI, milli_s) if milli_s is not None else MILLI_PER_GPU
    count = _parse_int(pod, GPU_COUNT, count_s) if count_s is not None else (1 if milli else 0)
    if count < 0:
        raise _gpu_error(pod, GPU_COUNT, f"must be >= 0, got {count}")
    if count == 0:
        if milli_s is not None and milli != 0:
            raise _gpu_error(pod, GPU_MILLI, f"must be 0 when {GPU_COUNT} is 0, got {milli}")
        return 0, 0, ()
    if not 1 <= milli <= MILLI_PER_GPU:
        raise _gpu_error(pod, GPU_MILLI, f"must be between 1 and {MILLI_PER_GPU}, got {milli}")
    if count > 1 and milli != MILLI_PER_GPU:
        raise _gpu_error(pod, GPU_MILLI, f"a share below {MILLI_PER_GPU} needs {GPU_COUNT} 1, "
                                         f"got {count} GPUs of {milli}")
    models = tuple(m.strip() for m in ann.get(GPU_MODEL, "").split("|") if m.strip())
    return count, milli, models


def parse_gpu_index(pod: Pod) -> tuple[int, ...]:
    """The GPU indices of the :data:`GPU_INDEX` annotation (``"0-1"`` -> (0, 1)); () when
    absent. Malformed values raise :class:`InputError`."""
    text = pod.metadata.annotations.get(GPU_INDEX) if pod.metadata.annotations else None
    if text is None or not text.strip():
        return ()
    out = []
    for part in text.split("-"):
        p = part.strip()
        if not p.isdigit():
            raise _gpu_error(pod, GPU_INDEX, f"expected GPU indices joined by '-' (like 0-1), "
                                             f"got {text!r}")
        out.append(int(p))
    if len(set(out)) != len(out):
        raise _gpu_error(pod, GPU_INDEX, f"repeats a GPU index: {text!r}")
    return tuple(out)


def choose_gpus(free: np.ndarray, count: int, num_gpu: int, milli: int) -> tuple[int, ...]:
    """Open-Gpu-Share's default GPU choice on one node (``free``: milli left per GPU, the
    first ``count`` exist): a share pod (one GPU, milli < 1000) takes the fitting GPU with the
    least milli left (first index on ties); other pods the lowest-indexed GPUs with at least
    ``milli`` left (for whole GPUs: fully free). () when the node cannot host the pod."""
    if num_gpu == 1 and milli < MILLI_PER_GPU:
        best, best_free = -1, 0
        for j in range(count):
            f = int(free[j])
            if f >= milli and (best < 0 or f < best_free):
                best, best_free = j, f
        return (best,) if best >= 0 else ()
    out = []
    for j in range(count):
        if free[j] >= milli:
            out.append(j)
            if len(out) == num_gpu:
                return tuple(out)
    return ()


def _fallback_gpus(free: np.ndarray, count: int, num_gpu: int) -> tuple[int, ...]:
    """GPUs for a pod added where it does not fit (a nominated pod in a filter dry run, a
    profile without GpuShare): the ones with the most milli left, lowest index first."""
    order = sorted(range(count), key=lambda j: (-int(free[j]), j))
    return tuple(sorted(order[:num_gpu]))


def _requests_pair(pod: Pod) -> tuple[dict[str, int], dict[str, int]]:
    """(``pod.requests()``, ``pod.non_zero_requests()``) in one pass over the containers for
    pods without init containers or pod-level resources (the same dicts, keys in the same
    order); the general functions otherwise."""
    spec = pod.spec
    if spec.init_containers or spec.resources is not None:
        return pod.requests(), pod.non_zero_requests()
    total: dict[str, int] = {}
    nonzero: dict[str, int] = {}
    for c in spec.containers:
        r = c.resources.requests
        for k, q in r.items():
            total[k] = total.get(k, 0) + q
            nonzero[k] = nonzero.get(k, 0) + q
        if "cpu" not in r:
            nonzero["cpu"] = nonzero.get("cpu", 0) + DEFAULT_MILLI_CPU_REQUEST
        if "memory" not in r:
            nonzero["memory"] = nonzero.get("memory", 0) + DEFAULT_MEMORY_REQUEST
    for k, q in spec.overhead.items():
        total[k] = total.get(k, 0) + q
        nonzero[k] = nonzero.get(k, 0) + q
    return total, nonzero


@njit(cache=True, boundscheck=True)
def _account(requested, nonzero_requested, pod_count, node, req, nz, sign, cols, state):
    """A pod's request vectors added to (sign 1) or taken from (-1) row ``node``, and the
    row copied to the float columns (``state``: the snapshot's column state, its
    COLS_INEXACT set when a value leaves the range where they are exact, its
    COLS_NONZERO_DIFFERS counts kept)."""
    for k in range(2):
        if nz[k] != req[k]:
            state[COLS_NONZERO_DIFFERS + k] += sign
    for k in range(req.size):
        requested[node, k] += sign * req[k]
        nonzero_requested[node, k] += sign * nz[k]
        r = requested[node, k]
        z = nonzero_requested[node, k]
        cols[1, k, node] = r
        cols[2, k, node] = z
        if r < 0 or r >= _EXACT_LIMIT or z < 0 or z >= _EXACT_LIMIT:
            state[COLS_INEXACT] = 1
    pod_count[node] += sign


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
    num_gpu: int = 0                       # GPUs asked for (annotations, see parse_gpu_request)
    gpu_milli: int = 0                     # milli-GPU per GPU (1..1000), 0 without GPUs
    gpu_models: tuple[str, ...] = ()       # allowed GPU models, () = any
    gpu_indices: tuple[int, ...] = ()      # GPUs held (or last held) on node ``node``

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
        self._gpu_free = np.full((0, 0), -1, np.int64)
        self._gpu_count = np.zeros(0, np.int64)
        self._gpu_model = np.zeros(0, np.int64)
        # Float64 column copies of allocatable, requested, non-zero requested and
        # 1/allocatable for the vectorised score kernels (:mod:`.columns`): [4, resource, node].
        self._cols = np.zeros((4, 2, 0), np.float64)
        # [COLS_INEXACT]: some quantity left the range where the float columns are exact
        # (kept set); [COLS_NONZERO_DIFFERS + k], k = CPU, MEMORY: bound pods whose non-zero
        # request differs from their request there (none: the non-zero requested column equals
        # the requested one, and the score kernels read one of them);
        # [COLS_ZERO_ALLOC + k]: some node slot has allocatable 0 in column k (the score
        # kernels' plain loop skips kube's "resource not on this node" cases when neither
        # column has one)
        self._cols_state = np.zeros(COLS_ZERO_ALLOC + 2, np.int64)
        self._lowest = np.zeros(0, np.int64)
        #: GPU model names to ids (``gpu_model[n]``).
        self.gpu_models = Interner()
        #: ``chooser(snapshot, pod, node) -> tuple of GPU indices`` (or () to use the default
        #: :func:`choose_gpus`): set by a plugin that picks GPUs its own way.
        self.gpu_chooser = None
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
                           ("_lowest", _NO_PRIORITY),
                           ("_allowed", 0), ("_unsched", False), ("_alive", False),
                           ("_labels", -1), ("_gpu_free", -1), ("_gpu_count", 0),
                           ("_gpu_model", -1)):
            setattr(self, name, grow(getattr(self, name), fill))
        cols = np.zeros(self._cols.shape[:2] + (cap,), np.float64)
        cols[:, :, : self._cols.shape[2]] = self._cols
        self._cols = cols
        self._capacity = cap

    def _ensure_resource_columns(self) -> None:
        r = len(self.resources)
        if self._alloc.shape[1] < r:
            for name in ("_alloc", "_req", "_nz"):
                a = getattr(self, name)
                b = np.zeros((a.shape[0], r), np.int64)
                b[:, : a.shape[1]] = a
                setattr(self, name, b)
            cols = np.zeros((4, r, self._cols.shape[2]), np.float64)
            cols[:, : self._cols.shape[1]] = self._cols
            self._cols = cols
            state = np.zeros(COLS_ZERO_ALLOC + r, np.int64)
            state[: self._cols_state.size] = self._cols_state
            state[self._cols_state.size:] = 1 if self._n else 0  # 0 on the existing nodes
            self._cols_state = state

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
        #: the lowest priority of a pod bound to the node (int64 max without pods): a node
        #: whose lowest is not below a preemptor's has no preemption victims
        self.lowest_priority = self._lowest[:n]
        self.allowed_pods = self._allowed[:n]
        self.unschedulable = self._unsched[:n]
        self.alive = self._alive[:n]
        self.labels = self._labels[:n]
        self.gpu_free = self._gpu_free[:n]
        self.gpu_count = self._gpu_count[:n]
        self.gpu_model = self._gpu_model[:n]

    @property
    def columns(self) -> np.ndarray:
        """float64 ``[k, r, n]`` copies for the vectorised score kernels (:mod:`.columns`):
        k = 0 allocatable, 1 requested, 2 non-zero requested, 3 ``1 / allocatable`` (0 where
        it is 0). Valid for ``r < num_resources`` and ``n < num_nodes`` (the backing array has
        spare rows); exact while :attr:`columns_exact`."""
        return self._cols

    @property
    def zero_allocatable_seen(self) -> np.ndarray:
        """Per resource column: 1 when some node slot has (or had) allocatable 0 there. The
        score kernels run their plain loop only on columns where this is 0."""
        return self._cols_state[COLS_ZERO_ALLOC:]

    @property
    def nonzero_differs(self) -> np.ndarray:
        """Per CPU and memory: the bound pods whose non-zero request differs from their
        request (0: ``nonzero_requested`` equals ``requested`` in that column on every
        node)."""
        return self._cols_state[COLS_NONZERO_DIFFERS:COLS_NONZERO_DIFFERS + 2]

    @property
    def columns_exact(self) -> bool:
        """Every allocatable and requested quantity has stayed within ``[0, 2**44)``."""
        return not self._cols_state[COLS_INEXACT]

    @property
    def max_gpus(self) -> int:
        """G: the columns of :attr:`gpu_free` (at least the most GPUs any node has)."""
        return self._gpu_free.shape[1]

    def _ensure_gpu_columns(self, g: int) -> None:
        if self._gpu_free.shape[1] < g:
            b = np.full((self._gpu_free.shape[0], g), -1, np.int64)
            b[:, : self._gpu_free.shape[1]] = self._gpu_free
            self._gpu_free = b
            self._refresh_views()

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
        gpus = int(alloc.get(GPU_COUNT, 0))
        if gpus > 0:
            self.resource_id(GPU_MILLI, create=True)
        self._alloc[i, :] = 0
        for res, v in alloc.items():
            if res != "pods":
                self._alloc[i, self.resources.ids[res]] = v
        self._ensure_gpu_columns(gpus)
        self._gpu_free[i, :] = -1
        self._gpu_count[i] = gpus
        self._gpu_model[i] = -1
        if gpus > 0:
            self._alloc[i, self.resources.ids[GPU_MILLI]] = gpus * MILLI_PER_GPU
            self._gpu_free[i, :gpus] = MILLI_PER_GPU
            model = node.metadata.labels.get(GPU_MODEL, "")
            if model:
                self._gpu_model[i] = self.gpu_models.intern(model)
        row = self._alloc[i]
        self._cols[0, : row.size, i] = row
        with np.errstate(divide="ignore"):
            self._cols[3, : row.size, i] = np.where(row != 0, 1.0 / row, 0.0)
        if (row < 0).any() or (row >= _EXACT_LIMIT).any():
            self._cols_state[COLS_INEXACT] = 1
        self._cols_state[COLS_ZERO_ALLOC: COLS_ZERO_ALLOC + row.size] |= row == 0
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
        requests, nonzero = _requests_pair(pod)
        num_gpu, milli, models = parse_gpu_request(pod) if pod.metadata.annotations \
            else (0, 0, ())
        if num_gpu:
            requests[GPU_MILLI] = nonzero[GPU_MILLI] = num_gpu * milli
        ids = self.resources.ids
        for res in requests:
            if res not in ids and res != "pods":
                self.resource_id(res, create=True)
        v = np.zeros(len(self.resources.names), np.int64)
        for res, q in requests.items():
            if res != "pods":
                v[ids[res]] = q
        nzv = v.copy()
        nzv[CPU] = nonzero.get("cpu", 0)
        nzv[MEMORY] = nonzero.get("memory", 0)
        info = PodInfo(pod, pod.key, pod.effective_priority(self.priority_classes),
                       requests, nonzero, v, nzv, arrival)
        if num_gpu:
            info.num_gpu, info.gpu_milli, info.gpu_models = num_gpu, milli, models
            if pod.spec.node_name:
                info.gpu_indices = parse_gpu_index(pod)
        return info

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
        key = pod.key
        if key in self.pods:
            raise ValueError(f"pod {key} is already bound to {self.node_names[pod.node]}")
        req = pod.request_vector
        if req.shape[0] < len(self.resources.names):
            req, nz = self.request_vectors(pod)
        else:
            nz = pod.nonzero_vector
        _account(self._req, self._nz, self._pods, node, req, nz, 1, self._cols,
                 self._cols_state)
        if pod.priority < self._lowest[node]:
            self._lowest[node] = pod.priority
        if pod.num_gpu:
            self._take_gpus(pod, node)
        pod.node = node
        self.pods[key] = pod
        self.pods_on_node[node][key] = pod
        for listener in self.listeners:
            listener.pod_added(self, pod, node)

    def remove_pod(self, pod: PodInfo) -> None:
        """Undo :meth:`add_pod` (a pod deleted, evicted, or an assumption forgotten)."""
        node = pod.node
        if node < 0 or self.pods.get(pod.key) is not pod:
            raise ValueError(f"pod {pod.key} is not bound in this snapshot")
        req, nz = self.request_vectors(pod)
        _account(self._req, self._nz, self._pods, node, req, nz, -1, self._cols,
                 self._cols_state)
        if pod.num_gpu:
            self._release_gpus(pod, node)
        del self.pods[pod.key]
        on_node = self.pods_on_node[node]
        del on_node[pod.key]
        if pod.priority == self._lowest[node]:
            self._lowest[node] = min((p.priority for p in on_node.values()),
                                     default=_NO_PRIORITY)
        for listener in self.listeners:
            listener.pod_removed(self, pod, node)
        pod.node = -1

    def _take_gpus(self, pod: PodInfo, node: int) -> None:
        """The Reserve step: the GPUs ``pod`` holds on ``node`` (see the module docstring)."""
        count = int(self._gpu_count[node])
        free = self._gpu_free[node]
        idx = pod.gpu_indices
        if idx and pod.pod.spec.node_name == self.node_names[node]:
            if len(idx) != pod.num_gpu or max(idx) >= count:
                raise _gpu_error(pod.pod, GPU_INDEX,
                                 f"{pod.num_gpu} GPU(s) asked for, but the indices {idx} do "
                                 f"not name that many of the {count} GPU(s) of node "
                                 f"{self.node_names[node]}")
            for j in idx:
                if free[j] < pod.gpu_milli:
                    raise _gpu_error(pod.pod, GPU_INDEX,
                                     f"GPU {j} of node {self.node_names[node]} has "
                                     f"{int(free[j])} milli left, the pod needs "
                                     f"{pod.gpu_milli}")
        else:
            idx = ()
            if self.gpu_chooser is not None:
                idx = tuple(self.gpu_chooser(self, pod, node))
            if not idx:
                idx = choose_gpus(free, count, pod.num_gpu, pod.gpu_milli)
            if not idx:
                idx = _fallback_gpus(free, count, pod.num_gpu)
            pod.gpu_indices = idx
        for j in idx:
            free[j] -= pod.gpu_milli
        if idx:
            pod.pod.metadata.annotations[GPU_INDEX] = "-".join(map(str, idx))

    def _release_gpus(self, pod: PodInfo, node: int) -> None:
        free = self._gpu_free[node]
        for j in pod.gpu_indices:
            free[j] += pod.gpu_milli
        if pod.pod.spec.node_name != self.node_names[node]:
            # not bound there (an assumption or a dry run): the choice is forgotten
            pod.gpu_indices = ()
            pod.pod.metadata.annotations.pop(GPU_INDEX, None)

    def gpu_arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(cpu_free[N], gpu_free[N, G], gpu_model[N]) as :mod:`schedbench.gpushare` takes them
        (G at least 1; every GPU column -1 for a dead node)."""
        cpu_free = self.allocatable[:, CPU] - self.requested[:, CPU]
        g = max(self.max_gpus, 1)
        gpu_free = np.full((self._n, g), -1, np.int64)
        gpu_free[:, : self.max_gpus] = self.gpu_free
        gpu_free[~self.alive] = -1
        return cpu_free, gpu_free, self.gpu_model.copy()

    def add_listener(self, listener: SnapshotListener) -> None:
        """Register a listener and replay the pods already bound to it."""
        self.listeners.append(listener)
        for pod in self.pods.values():
            listener.pod_added(self, pod, pod.node)

