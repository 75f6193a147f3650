"""ImageLocality: favour nodes that already have the pod's container images (kube's
imagelocality/image_locality.go, v1.35). Score only, no PreScore, no NormalizeScore.

For every container of the pod, init containers included, whose image (normalised: ``:latest``
is appended when the reference has no tag, i.e. when its last ``:`` is not after its last ``/``)
is listed in the node's ``status.images`` names, the image adds ``int64(size * (nodesWithImage /
totalNodes))`` (float64 arithmetic, truncated), where ``nodesWithImage`` is the number of live
nodes listing that name and ``totalNodes`` the number of live nodes. The sum is clamped to
``[23 MiB, 1000 MiB * (number of containers and init containers)]`` and scaled to 0..100 with
integer arithmetic: ``100 * (sum - 23Mi) / (max - 23Mi)``.

Node image names are matched as the node reports them (not normalised). When a node lists the
same name under several images, the last listing's size is used for that node, and each node
uses its own reported size, as kube's ``cache.NewSnapshot`` builds ``ImageStates`` (the running
scheduler's cache instead keeps one size per image name, the one first reported by any node;
the two differ only when nodes report different sizes for the same name).

The per-node image data (CSR arrays of image ids sorted per node, sizes, and per-image node
counts) is derived from ``snapshot.nodes`` and rebuilt whenever ``snapshot.generation`` changes;
the per-node loop is :func:`_image_scores` (Numba).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from ..framework import MAX_NODE_SCORE, CycleState, Plugin, register
from ..snapshot import NodeSnapshot, PodInfo

MB = 1024 * 1024
MIN_THRESHOLD = 23 * MB
MAX_CONTAINER_THRESHOLD = 1000 * MB


def normalized_image_name(name: str) -> str:
    """normalizedImageName: append ``:latest`` when the reference names no tag."""
    if name.rfind(":") <= name.rfind("/"):
        return name + ":latest"
    return name


class ImageIndex:
    """Per-node image data of one snapshot generation."""

    def __init__(self, snapshot: NodeSnapshot) -> None:
        self.snapshot = snapshot
        self.generation = snapshot.generation
        self.ids: dict[str, int] = {}
        n = snapshot.num_nodes
        per_node: list[dict[int, int]] = []
        for i in range(n):
            sizes: dict[int, int] = {}
            if snapshot.alive[i]:
                for image in snapshot.nodes[i].status.images:
                    for name in image.names:
                        k = self.ids.get(name)
                        if k is None:
                            k = self.ids[name] = len(self.ids)
                        sizes[k] = int(image.size_bytes)
            per_node.append(sizes)
        counts = np.fromiter((len(d) for d in per_node), np.int64, n)
        self.ptr = np.zeros(n + 1, np.int64)
        np.cumsum(counts, out=self.ptr[1:])
        self.image = np.empty(int(self.ptr[-1]), np.int64)
        self.size = np.empty(int(self.ptr[-1]), np.int64)
        self.num_nodes = np.zeros(len(self.ids), np.int64)
        for i, d in enumerate(per_node):
            at = int(self.ptr[i])
            for j, k in enumerate(sorted(d)):
                self.image[at + j] = k
                self.size[at + j] = d[k]
                self.num_nodes[k] += 1
        self.total_nodes = int(np.count_nonzero(snapshot.alive))

    def pod_images(self, pod: PodInfo) -> np.ndarray:
        """Image ids of the pod's init containers and containers (-1: on no node)."""
        spec = pod.pod.spec
        return np.array([self.ids.get(normalized_image_name(c.image), -1)
                         for c in spec.init_containers + spec.containers], np.int64)


@njit(cache=True)
def _image_scores(nodes, ptr, image, size, num_nodes, total_nodes, pod_images):
    max_threshold = MAX_CONTAINER_THRESHOLD * pod_images.size
    out = np.zeros(nodes.size, np.int64)
    for j in range(nodes.size):
        n = nodes[j]
        lo0 = ptr[n]
        hi0 = ptr[n + 1]
        total = 0
        for c in range(pod_images.size):
            k = pod_images[c]
            if k < 0:
                continue
            lo = lo0
            hi = hi0
            while lo < hi:  # binary search of k in image[lo0:hi0] (sorted)
                mid = (lo + hi) >> 1
                if image[mid] < k:
                    lo = mid + 1
                else:
                    hi = mid
            if lo < hi0 and image[lo] == k:
                spread = np.float64(num_nodes[k]) / np.float64(total_nodes)
                total += np.int64(np.float64(size[lo]) * spread)
        if total < MIN_THRESHOLD:
            total = MIN_THRESHOLD
        elif total > max_threshold:
            total = max_threshold
        out[j] = MAX_NODE_SCORE * (total - MIN_THRESHOLD) // (max_threshold - MIN_THRESHOLD)
    return out


@register
class ImageLocality(Plugin):
    name = "ImageLocality"
    events = frozenset()  # score-only: never rejects a pod

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        self._index: ImageIndex | None = None

    def index(self) -> ImageIndex:
        """The image data of the current snapshot generation (rebuilt when it changed)."""
        snapshot = self.handle.snapshot
        idx = self._index
        if idx is None or idx.snapshot is not snapshot or idx.generation != snapshot.generation:
            idx = self._index = ImageIndex(snapshot)
        return idx

    def score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
        nodes = np.ascontiguousarray(nodes, np.int64)
        idx = self.index()
        cached = pod.cache.get(self.name)
        if cached is None or cached[0] is not idx:
            cached = pod.cache[self.name] = (idx, idx.pod_images(pod))
        images = cached[1]
        if nodes.size == 0 or images.size == 0 or idx.total_nodes == 0:
            return np.zeros(nodes.size, np.int64)
        return _image_scores(nodes, idx.ptr, idx.image, idx.size, idx.num_nodes,
                             idx.total_nodes, images)
