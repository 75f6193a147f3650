"""The placement problem as data: pod classes, nodes, capacities and the pod-to-pod rules.

Pods that are alike for every rule the scheduler applies - the same namespace and labels, the
same request vector and GPU request, priority, node selection, tolerations, pod (anti-)affinity,
spread constraints and host ports - form one *class*; the solver decides how many pods of each
class go to each node (an integer per feasible (class, node) pair), which removes the symmetry
between identical pods and keeps 1,000 pods of a few dozen shapes small. Within a class, pods
are placed in input order.

Resources: every column that NodeResourcesFit checks for some pending pod is modelled as a
per-node capacity (allocatable minus what the bound pods request), divided by the greatest
common divisor of the pending requests in that column (exact: ``sum(q x) <= free`` iff
``sum(q/g x) <= floor(free/g)``); the ``pods`` count is a capacity too. GPUs (GpuShare in the
profile): per node, the milli left on each GPU.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..scheduler.framework import Framework
from ..scheduler.plugins.node_ports import pod_host_ports
from ..scheduler.podaffinity import Term, pod_terms, resolve_namespaces
from ..scheduler.snapshot import MILLI_PER_GPU, NodeSnapshot, PodInfo
from .mask import feasibility_row


@dataclass
class PodClass:
    """Pods alike for every scheduling rule (see the module docstring)."""

    rep: PodInfo
    members: list[int]                 # positions in the batch, input order
    weight: int = 1                    # of the "placed" objective (priority level, from 1)
    must_place: bool = False           # a bound pod that may move but not be evicted
    request: np.ndarray | None = None  # scaled, over Instance.columns
    num_gpu: int = 0
    gpu_milli: int = 0
    ports: tuple = ()

    @property
    def count(self) -> int:
        return len(self.members)

    @property
    def gpu_share(self) -> bool:
        """One GPU, part of it (GpuShare's share pods); else whole GPUs."""
        return self.num_gpu == 1 and self.gpu_milli < MILLI_PER_GPU


@dataclass
class AntiRule:
    """Class ``owner`` carries a required anti-affinity term: no pod of ``matching`` (other
    than itself) in the owner's domain of ``key``."""

    owner: int
    key_id: int
    matching: list[int]
    self_match: bool


@dataclass
class AffinityRule:
    """Class ``owner`` carries required affinity terms ``terms`` (a pod matching all of them
    must share the owner's domain of each term's key: kube's ``satisfyPodAffinity``).

    Modelled as the scheduler reaches it one pod at a time: a pod of the owner goes to a
    domain holding an *anchor* - a bound pod matching the terms, or a pending pod of a class
    matching them that carries no required affinity itself (``anchors``) - or, when no bound
    pod matches the terms (``bound_total`` 0) and the owner matches its own terms (kube's
    exception for the first pod of such a group), to the one *seed* domain per term key that
    the owners with the same terms share; a seed domain must hold two matching pods unless
    only one matching pod is placed at all. ``bound[k][d]``: bound matching pods per domain."""

    owner: int
    terms: tuple
    key_ids: list[int]
    matching: list[int]
    anchors: list[int]
    bound: list[dict[int, int]]
    bound_total: int
    self_match: bool


@dataclass
class SpreadRule:
    """A DoNotSchedule topology spread constraint of class ``owner`` (PodTopologySpread's
    PreFilter state on the bound-only snapshot): domains ``dom[n]`` over the instance's nodes
    (-1: node not counted), the bound matching pods per domain, the eligible domains, the
    matching pending classes."""

    owner: int
    dom: np.ndarray
    owner_dom: np.ndarray
    bound: dict[int, int]
    domains: list[int]
    matching: list[int]
    self_match: bool
    max_skew: int
    min_domains: int


@dataclass
class Instance:
    snapshot: NodeSnapshot
    pods: list[PodInfo]
    nodes: np.ndarray                   # snapshot node indices (alive), in index order
    classes: list[PodClass]
    mask: np.ndarray                    # bool[C, N]
    columns: list[int]                  # modelled resource columns (snapshot ids)
    scale: np.ndarray                   # int64[R]: divisor of each column
    cap: np.ndarray                     # int64[N, R]: free capacity, scaled
    slots: np.ndarray                   # int64[N]: free pod slots
    occupied: np.ndarray                # bool[N]: has bound pods
    gpu: bool                           # per-GPU share modelled
    gpu_free: np.ndarray                # int64[N, G] milli left per GPU (-1: no such GPU)
    ub: np.ndarray                      # int64[C, N]: most pods of the class the node takes
    anti: list[AntiRule] = field(default_factory=list)
    affinity: list[AffinityRule] = field(default_factory=list)
    spread: list[SpreadRule] = field(default_factory=list)
    port_groups: list[list[int]] = field(default_factory=list)  # classes sharing a host port
    alloc: np.ndarray | None = None     # int64[N, R] allocatable, scaled (balance objective)
    used0: np.ndarray | None = None     # int64[N, R] requested by bound pods, scaled
    node_pref: np.ndarray | None = None  # int64[C, N] preference score (NodeAffinity raw)

    @property
    def num_vars(self) -> int:
        return int(np.count_nonzero(self.ub))


def _class_key(p: PodInfo, must_place: bool, label_sig: tuple, terms, spread) -> tuple:
    """What the scheduler's rules see of a pod. Labels enter only through ``label_sig``:
    which of the selectors in play (the pending pods' required terms and spread selectors,
    the bound pods' anti-affinity terms) match the pod."""
    s = p.pod.spec
    na = s.affinity.node_affinity if s.affinity is not None else None
    required = na.required_during_scheduling_ignored_during_execution if na else None
    return (p.namespace, label_sig, tuple(p.request_vector.tolist()), p.num_gpu, p.gpu_milli,
            p.gpu_models, p.priority, s.node_name, repr(required), repr(s.tolerations),
            repr(s.node_selector), terms, spread, tuple(pod_host_ports(p)), must_place,
            s.scheduler_name)


def _preferred_key(p: PodInfo) -> str:
    s = p.pod.spec
    na = s.affinity.node_affinity if s.affinity is not None else None
    return repr(na.preferred_during_scheduling_ignored_during_execution) if na else ""


def _class_keys(framework: Framework, pods: list[PodInfo], must_place, preferences: bool
                ) -> list[tuple]:
    cluster = framework.handle.cluster
    nslabels = {ns.metadata.name: ns.metadata.labels for ns in cluster.namespaces} \
        if cluster is not None else {}
    spread_plugin = framework.instances.get("PodTopologySpread")
    if spread_plugin is not None and spread_plugin not in framework.filter_plugins:
        spread_plugin = None
    ipa = framework.instances.get("InterPodAffinity")
    if ipa is not None and ipa not in framework.filter_plugins:
        ipa = None
    per_pod = []
    selectors: dict = {}
    for p in pods:
        if ipa is not None:
            t = pod_terms(p)
            terms = (t.required_affinity, t.required_anti_affinity)
            for term in _resolved(framework, terms[0] + terms[1]):
                selectors.setdefault(("t", term), None)
        else:
            terms = ((), ())
        cons = tuple(spread_plugin.constraints(p, "DoNotSchedule")) if spread_plugin else ()
        for c in cons:
            selectors.setdefault(("s", p.namespace, c.selector), None)
        per_pod.append((terms, cons))
    if ipa is not None:
        for term in ipa.index.anti_terms:
            selectors.setdefault(("b", term), None)
    sel_list = list(selectors)
    keys = []
    for p, (terms, cons) in zip(pods, per_pod):
        sig = []
        for sel in sel_list:
            if sel[0] == "s":
                sig.append(sel[1] == p.namespace and sel[2].matches(p.labels))
            else:
                sig.append(sel[1].matches(p.namespace, p.labels,
                                          nslabels.get(p.namespace, {})))
        key = _class_key(p, p.key in must_place, tuple(sig), terms, cons)
        if preferences:
            key += (_preferred_key(p),)
        keys.append(key)
    return keys


def _resolved(framework: Framework, terms) -> list[Term]:
    cluster = framework.handle.cluster
    nsmap = {ns.metadata.name: ns.metadata.labels for ns in cluster.namespaces} \
        if cluster is not None else {}
    return [resolve_namespaces(t, nsmap) for t in terms]


def build_instance(framework: Framework, pods: list[PodInfo], *,
                   must_place: frozenset[str] = frozenset(),
                   preferences: bool = False) -> Instance:
    """The problem of placing ``pods`` (not bound) on the live nodes of the framework's
    snapshot, with the pods bound there fixed (``must_place``: keys of pods that must be
    placed, the bound pods of a solve that allows moves)."""
    snap = framework.handle.snapshot
    nodes = snap.alive_nodes()
    n_nodes = nodes.size
    for p in pods:  # every pod's request over every column (new columns may have appeared)
        snap.request_vectors(p)
    n_cols = snap.num_resources
    for p in pods:
        if p.request_vector.shape[0] < n_cols:
            p.request_vector = snap._vector(p.requests)

    by_key: dict[tuple, PodClass] = {}
    classes: list[PodClass] = []
    for i, (p, key) in enumerate(zip(pods, _class_keys(framework, pods, must_place,
                                                        preferences))):
        c = by_key.get(key)
        if c is None:
            c = by_key[key] = PodClass(p, [], must_place=p.key in must_place,
                                       num_gpu=p.num_gpu, gpu_milli=p.gpu_milli,
                                       ports=tuple(pod_host_ports(p)))
            classes.append(c)
        c.members.append(i)
    levels = sorted({c.rep.priority for c in classes})
    for c in classes:
        c.weight = levels.index(c.rep.priority) + 1

    mask = np.zeros((len(classes), n_nodes), np.bool_)
    for ci, c in enumerate(classes):
        mask[ci] = feasibility_row(framework, c.rep, nodes)

    # resource columns NodeResourcesFit checks, scaled by the gcd of the pending requests
    fit = framework.instances.get("NodeResourcesFit")
    reqs = np.array([c.rep.request_vector[:n_cols] for c in classes], np.int64).reshape(
        len(classes), n_cols)
    checked = np.zeros(n_cols, np.bool_)
    if fit is not None and fit in framework.filter_plugins:
        for c in classes:
            checked |= fit._checked_columns(snap, c.rep.request_vector[:n_cols])
    # (cpu and memory always: the balance objective reads the bound pods' use too)
    columns = [r for r in range(n_cols) if (checked[r] and reqs[:, r].any()) or r < 2]
    scale = np.ones(len(columns), np.int64)
    for j, r in enumerate(columns):
        g = 0
        for q in reqs[:, r].tolist():
            g = math.gcd(g, int(q))
        scale[j] = max(g, 1)
    free = (snap.allocatable[nodes][:, columns] - snap.requested[nodes][:, columns])
    cap = np.maximum(free, 0) // scale
    alloc = snap.allocatable[nodes][:, columns] // scale
    used0 = -(-snap.requested[nodes][:, columns] // scale)
    req = np.zeros((len(classes), len(columns)), np.int64)
    for ci, c in enumerate(classes):
        if fit is not None:
            chk = fit._checked_columns(snap, c.rep.request_vector[:n_cols])
        else:
            chk = np.zeros(n_cols, np.bool_)
        c.request = np.array([reqs[ci, r] // scale[j] if chk[r] else 0
                              for j, r in enumerate(columns)], np.int64)
        req[ci] = c.request
    slots = np.maximum(snap.allowed_pods[nodes] - snap.pod_count[nodes], 0)
    if fit is None or fit not in framework.filter_plugins:
        slots = np.full(n_nodes, max(len(pods), 1), np.int64)
    occupied = snap.pod_count[nodes] > 0

    gpu = "GpuShare" in [pl.name for pl in framework.filter_plugins] and any(
        c.num_gpu for c in classes)
    g = max(snap.max_gpus, 1)
    gpu_free = np.full((n_nodes, g), -1, np.int64)
    gpu_free[:, : snap.max_gpus] = snap.gpu_free[nodes]

    # the most pods of each class each node can take
    ub = np.zeros((len(classes), n_nodes), np.int64)
    for ci, c in enumerate(classes):
        u = np.minimum(np.full(n_nodes, c.count, np.int64), slots)
        for j in range(len(columns)):
            q = req[ci, j]
            if q > 0:
                u = np.minimum(u, cap[:, j] // q)
        if gpu and c.num_gpu:
            if c.gpu_share:
                per = np.where(gpu_free >= 0, np.maximum(gpu_free, 0) // c.gpu_milli, 0)
                u = np.minimum(u, per.sum(axis=1))
            else:
                whole = (gpu_free == MILLI_PER_GPU).sum(axis=1)
                u = np.minimum(u, whole // c.num_gpu)
        if c.ports:
            u = np.minimum(u, 1)
        u[~mask[ci]] = 0
        ub[ci] = u
    mask &= ub > 0

    inst = Instance(snap, pods, nodes, classes, mask, columns, scale, cap, slots, occupied,
                    gpu, gpu_free, ub, alloc=alloc, used0=used0)
    _pod_rules(framework, inst)
    _port_groups(inst)
    if preferences:
        inst.node_pref = _node_preferences(framework, inst)
    return inst


def _node_domains(snap: NodeSnapshot, nodes: np.ndarray, key: str) -> tuple[int, np.ndarray]:
    k = snap.vocab.key_id(key)
    if k < 0:
        return k, np.full(nodes.size, -1, np.int64)
    return k, snap.labels[nodes, k].astype(np.int64)


def _pod_rules(framework: Framework, inst: Instance) -> None:
    """Required inter-pod (anti-)affinity and DoNotSchedule spread constraints of the
    classes, with the pending classes and bound pods each one counts."""
    snap, nodes, classes = inst.snapshot, inst.nodes, inst.classes
    cluster = framework.handle.cluster
    nslabels = {ns.metadata.name: ns.metadata.labels for ns in cluster.namespaces} \
        if cluster is not None else {}
    names = [pl.name for pl in framework.filter_plugins]
    if "InterPodAffinity" in names:
        for ci, c in enumerate(classes):
            terms = pod_terms(c.rep)
            for t in _resolved(framework, terms.required_anti_affinity):
                matching = [bi for bi, b in enumerate(classes)
                            if t.matches(b.rep.namespace, b.rep.labels,
                                         nslabels.get(b.rep.namespace, {}))]
                k = snap.vocab.key_id(t.topology_key)
                if k < 0:
                    continue  # no node has the key: nothing shares a domain
                inst.anti.append(AntiRule(ci, k, matching, ci in matching))
            # existing terms of other pending classes against this one: covered by their own
            # AntiRule (the final placement is checked from both sides)
            req = _resolved(framework, terms.required_affinity)
            if not req:
                continue
            matching = [bi for bi, b in enumerate(classes)
                        if all(t.matches(b.rep.namespace, b.rep.labels,
                                         nslabels.get(b.rep.namespace, {})) for t in req)]
            key_ids = [snap.vocab.key_id(t.topology_key) for t in req]
            if any(k < 0 for k in key_ids):
                inst.mask[ci] = False
                inst.ub[ci] = 0
                continue
            bound: list[dict[int, int]] = [dict() for _ in req]
            total = 0
            for q in snap.pods.values():
                if all(t.matches(q.namespace, q.labels, nslabels.get(q.namespace, {}))
                       for t in req):
                    has_all = True
                    for j, k in enumerate(key_ids):
                        d = int(snap.labels[q.node, k])
                        if d < 0:
                            has_all = False
                            continue
                        bound[j][d] = bound[j].get(d, 0) + 1
                    total += 1 if has_all else 0
            for k in key_ids:  # nodes without a term's key never pass
                lab = snap.labels[nodes, k]
                inst.mask[ci] &= lab >= 0
                inst.ub[ci][lab < 0] = 0
            self_match = ci in matching
            inst.affinity.append(AffinityRule(ci, tuple(req), key_ids, matching, [], bound,
                                              total, self_match))
        owners = {r.owner for r in inst.affinity}
        for r in inst.affinity:
            r.anchors = [b for b in r.matching if b not in owners]
    if "PodTopologySpread" in names:
        plugin = framework.instances["PodTopologySpread"]
        alive = snap.alive_nodes()
        for ci, c in enumerate(classes):
            cons = plugin.constraints(c.rep, "DoNotSchedule")
            if not cons:
                continue
            st = plugin.filter_state(c.rep, cons, alive)
            eligible, _, _ = plugin._eligibility(c.rep, cons, alive)
            has_all = np.all(st.dom[:, nodes] >= 0, axis=0)
            for j, con in enumerate(cons):
                raw = st.dom[j, nodes].astype(np.int64)
                counted = has_all & eligible[j, nodes]
                dom = np.where(counted, raw, -1)
                domains = sorted(int(d) for d in np.flatnonzero(st.seen[j]))
                bound = {d: int(st.sums[j, d]) for d in domains}
                matching = [bi for bi, b in enumerate(classes)
                            if b.rep.namespace == c.rep.namespace
                            and con.selector.matches(b.rep.labels)]
                inst.spread.append(SpreadRule(ci, dom, raw, bound, domains, matching,
                                              bool(st.self_match[j]), int(con.max_skew),
                                              int(con.min_domains)))


def _port_groups(inst: Instance) -> None:
    """Classes sharing a (protocol, port) may not share a node (stricter than kube only for
    two pods binding the same port on two different specific host IPs)."""
    by_port: dict[tuple[str, int], list[int]] = {}
    for ci, c in enumerate(inst.classes):
        for _ip, proto, port in c.ports:
            lst = by_port.setdefault((proto, port), [])
            if ci not in lst:
                lst.append(ci)
    inst.port_groups = [v for _, v in sorted(by_port.items())]


def _node_preferences(framework: Framework, inst: Instance) -> np.ndarray:
    """NodeAffinity's raw preferred score (sum of the weights of the matching preferred terms)
    of each class on each node."""
    from ..scheduler.framework import CycleState

    plugin = framework.instances.get("NodeAffinity")
    out = np.zeros(inst.mask.shape, np.int64)
    if plugin is None:
        return out
    for ci, c in enumerate(inst.classes):
        state = CycleState()
        if plugin.pre_score(state, c.rep, inst.nodes).is_skip:
            continue
        out[ci] = np.asarray(plugin.score(state, c.rep, inst.nodes), np.int64)
    return out
