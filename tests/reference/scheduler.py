"""Plain-Python reference of a whole kube-scheduler v1.35 scheduling run, built from the
per-plugin references next to it and the model objects only (no snapshot, no numpy arrays,
nothing from ``schedbench.scheduler``). Slow and obvious on purpose: the run tests compare
whole runs of the scheduler with it, pod for pod.

The profile is plain data (:func:`make_profile`): the Filter plugins in order, the Score
plugins with their weights, the plugins' args as plain values, percentageOfNodesToScore.

One scheduling attempt (``schedulePod``):

- the nodes in NodeTree order: zones in order of first appearance of their zone key (region
  and zone labels, the ``failure-domain.beta`` ones first as kube's ``GetZoneKey`` reads
  them), one node of each zone in turn;
- PreFilter: NodeAffinity may reject the pod or narrow the nodes (``metadata.name`` fields);
  NodePorts, PodTopologySpread and InterPodAffinity may skip their Filter;
- Filter from the rotating start index ``next_start % len(nodes)``, plugin by plugin and
  node by node, until ``numFeasibleNodesToFind`` feasible nodes are found (all nodes below
  100, else the percentage - adaptive when 0 - but at least 100; 1 without Score plugins);
  then ``next_start = (next_start + processed) % len(all nodes)``;
- one feasible node is taken as it is; several are scored (PreScore skips, NormalizeScore,
  weights) and the highest total wins; ties are broken by :meth:`draw_below` over the tied
  nodes in the order they were evaluated, from ``numpy.random.default_rng(seed)``'s 64-bit
  outputs - the only numpy in here, to share the random stream;
- the pod is bound (this module's own bookkeeping, on copies of the pods).

The queue, as the scheduler simulates it on a virtual clock where an attempt takes no time
and nothing is preempted (pods that fit nowhere stay pending): PrioritySort (priority, then
queue timestamp, then arrival); a rejected pod is parked with the plugins that rejected it;
each bind is an ``AssignedPodAdd`` event which moves the parked pods that kube v1.35's
queueing hints say it may help (PodTopologySpread: a pod of the same namespace matching one of
the hard constraints; InterPodAffinity: a pod matching all the required affinity terms) to
backoffQ (1 s doubling to 10 s, expiries aligned to whole seconds), which is popped at once
when activeQ is empty. When both are empty, the clock jumps to the 30 s tick at which parked
pods are flushed back after 5 minutes - as long as some pod failed before the cluster last
changed (otherwise the run is over).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import fit_filter as fit
from . import inter_pod_affinity as ipa
from . import node_plugins as npl
from . import resource_scores as rsc
from . import spread as spr

SUCCESS, UNSCHEDULABLE, UNRESOLVABLE = 0, 2, 3
MAX_NODE_SCORE = 100
MIN_FEASIBLE_NODES_TO_FIND = 100
MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND = 5

BETA_ZONE = "failure-domain.beta.kubernetes.io/zone"
GA_ZONE = "topology.kubernetes.io/zone"
BETA_REGION = "failure-domain.beta.kubernetes.io/region"
GA_REGION = "topology.kubernetes.io/region"

INITIAL_BACKOFF = 1.0
MAX_BACKOFF = 10.0
MAX_IN_UNSCHEDULABLE = 300.0
FLUSH_PERIOD = 30.0

#: Plugins that never reject nor score a pod without volumes / resource claims.
INERT = frozenset({"VolumeRestrictions", "NodeVolumeLimits", "VolumeBinding", "VolumeZone",
                   "DynamicResources"})
KNOWN_FILTERS = frozenset({"NodeUnschedulable", "NodeName", "TaintToleration", "NodeAffinity",
                           "NodePorts", "NodeResourcesFit", "PodTopologySpread",
                           "InterPodAffinity"}) | INERT
KNOWN_SCORES = frozenset({"TaintToleration", "NodeAffinity", "NodeResourcesFit",
                          "PodTopologySpread", "InterPodAffinity",
                          "NodeResourcesBalancedAllocation", "ImageLocality", "SelectorSpread",
                          "FirstFit", "DotProduct", "Random"}) | INERT


# ------------------------------------------------------------------------------ profile


def make_profile(filters, scores, args=None, percentage=0,
                 scheduler_name="default-scheduler") -> dict:
    """A profile as plain data. ``scores``: (name, weight) pairs. ``args`` by plugin name:

    - NodeResourcesFit: ``{"strategy", "resources": [(name, weight)], "shape": [(u, s)],
      "ignored_resources": [...], "ignored_groups": [...]}``
    - NodeResourcesBalancedAllocation: ``{"resources": [name, ...]}``
    - PodTopologySpread: ``{"defaults": [dict, ...], "system_defaulted": bool}``
    - InterPodAffinity: ``{"hard_weight": int, "ignore_preferred": bool}``
    - NodeAffinity: ``{"added_required": NodeSelector | None,
      "added_preferred": [(weight, NodeSelectorTerm)]}``
    """
    filters = list(filters)
    scores = [(n, int(w)) for n, w in scores]
    for name in filters:
        if name not in KNOWN_FILTERS:
            raise NotImplementedError(f"reference has no Filter for {name}")
    for name, _ in scores:
        if name not in KNOWN_SCORES:
            raise NotImplementedError(f"reference has no Score for {name}")
    base = {
        "NodeResourcesFit": {"strategy": "LeastAllocated",
                             "resources": [("cpu", 1), ("memory", 1)], "shape": [],
                             "ignored_resources": (), "ignored_groups": ()},
        "NodeResourcesBalancedAllocation": {"resources": ["cpu", "memory"]},
        "PodTopologySpread": {"defaults": list(spr.SYSTEM_DEFAULTS), "system_defaulted": True},
        "InterPodAffinity": {"hard_weight": 1, "ignore_preferred": False},
        "NodeAffinity": {"added_required": None, "added_preferred": []},
    }
    for name, value in (args or {}).items():
        base[name] = {**base.get(name, {}), **value}
    return {"filters": filters, "scores": scores, "args": base,
            "percentage": int(percentage or 0), "scheduler_name": scheduler_name}


def num_feasible_nodes_to_find(percentage: int, num_nodes: int) -> int:
    if num_nodes < MIN_FEASIBLE_NODES_TO_FIND:
        return num_nodes
    if percentage <= 0:
        percentage = 50 - num_nodes // 125
        if percentage < MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND:
            percentage = MIN_FEASIBLE_NODES_PERCENTAGE_TO_FIND
    found = num_nodes * percentage // 100
    return found if found >= MIN_FEASIBLE_NODES_TO_FIND else MIN_FEASIBLE_NODES_TO_FIND


# ---------------------------------------------------------------------------- node tree


def zone_key(node) -> str:
    """kube's GetZoneKey: the beta zone / region labels when present, else the GA ones."""
    labels = node.metadata.labels
    zone = labels[BETA_ZONE] if BETA_ZONE in labels else labels.get(GA_ZONE, "")
    region = labels[BETA_REGION] if BETA_REGION in labels else labels.get(GA_REGION, "")
    if region == "" and zone == "":
        return ""
    return region + ":\x00:" + zone


def node_tree_order(nodes) -> list:
    """Zones in order of first appearance, one node of each zone in turn."""
    zones: dict[str, list] = {}
    for n in nodes:
        zones.setdefault(zone_key(n), []).append(n)
    out: list = []
    depth = 0
    while len(out) < len(nodes):
        for members in zones.values():
            if depth < len(members):
                out.append(members[depth])
        depth += 1
    return out


# --------------------------------------------------------------------------- the cluster


def pod_priority(pod, priority_classes: dict) -> int:
    return pod.effective_priority(priority_classes)


def _bound_copy(pod, node_name: str):
    out = copy.copy(pod)
    out.spec = copy.copy(pod.spec)
    out.spec.node_name = node_name
    return out


class ClusterState:
    """The nodes and the pods bound to them (copies with ``spec.nodeName`` set), plus the
    Services, ReplicaSets and Namespaces plugins read."""

    def __init__(self, nodes, pods=(), services=(), replica_sets=(), namespaces=()) -> None:
        self.nodes = list(nodes)
        self.by_name = {n.metadata.name: n for n in self.nodes}
        self.position = {n.metadata.name: i for i, n in enumerate(self.nodes)}
        self.tree_order = node_tree_order(self.nodes)
        self.pods_on: dict[str, list] = {n.metadata.name: [] for n in self.nodes}
        self.bound: dict[str, Any] = {}
        self.services = list(services)
        self.replica_sets = list(replica_sets)
        self.namespaces = {ns.metadata.name: dict(ns.metadata.labels) for ns in namespaces}
        for p in pods:
            if p.spec.node_name and p.spec.node_name in self.by_name and \
                    p.status.phase not in ("Succeeded", "Failed"):
                self._add(p)

    @classmethod
    def of(cls, cluster) -> ClusterState:
        return cls(cluster.nodes, cluster.pods, cluster.services, cluster.replica_sets,
                   cluster.namespaces)

    def _add(self, pod) -> None:
        key = pod.key
        if key in self.bound:
            raise ValueError(f"{key} is already bound")
        self.bound[key] = pod
        self.pods_on[pod.spec.node_name].append(pod)

    def bind(self, pod, node_name: str):
        """Bind (a copy of) ``pod`` to ``node_name``; returns the bound copy."""
        bound = _bound_copy(pod, node_name)
        self._add(bound)
        return bound

    def remove(self, key: str):
        pod = self.bound.pop(key)
        self.pods_on[pod.spec.node_name].remove(pod)
        return pod

    def bound_pods(self) -> list:
        return list(self.bound.values())

    def labels_by_node(self) -> dict:
        return {n.metadata.name: n.metadata.labels for n in self.nodes}

    def bound_pairs(self) -> list:
        return [(p, p.spec.node_name) for p in self.bound.values()]

    def used(self, node_name: str) -> dict[str, int]:
        """Requests of the pods on the node (``pods`` = their number)."""
        out: dict[str, int] = {"pods": len(self.pods_on[node_name])}
        for p in self.pods_on[node_name]:
            for r, q in p.requests().items():
                if r != "pods":
                    out[r] = out.get(r, 0) + q
        return out


# ------------------------------------------------------------------- one pod, one state


class PodCycle:
    """PreFilter and Filter of one pod against one cluster state (per-plugin verdicts
    computed lazily, once)."""

    def __init__(self, state: ClusterState, pod, profile: dict) -> None:
        self.state = state
        self.pod = pod
        self.profile = profile
        self.args = profile["args"]
        self._pts: dict | None | bool = False
        self._ipa: dict | None | bool = False
        self.skipped: set[str] = set()
        self.allowed: set[str] | None = None
        self.prefilter_rejected_by: str | None = None
        self.narrowing: list[str] = []
        self._prefilter()

    def _prefilter(self) -> None:
        filters = self.profile["filters"]
        pod = self.pod
        if "NodeAffinity" in filters:
            code, _, allowed = npl.node_affinity_pre_filter(
                pod, self.args["NodeAffinity"]["added_required"])
            if code == npl.SKIP:
                self.skipped.add("NodeAffinity")
            elif code != SUCCESS:
                self.prefilter_rejected_by = "NodeAffinity"
                return
            elif allowed is not None:
                self.allowed = set(allowed)
                self.narrowing.append("NodeAffinity")
        if "NodePorts" in filters and npl.node_ports_pre_filter(pod)[0] == npl.SKIP:
            self.skipped.add("NodePorts")

    def nodes(self) -> list:
        """The nodes Filter runs on, in NodeTree order."""
        order = self.state.tree_order
        if self.allowed is None:
            return list(order)
        return [n for n in order if n.metadata.name in self.allowed]

    def _pts_verdicts(self):
        if self._pts is False:
            a = self.args["PodTopologySpread"]
            self._pts = spr.filter_verdicts(self.state.nodes, self.state.bound_pods(), self.pod,
                                            a["defaults"], self.state.services,
                                            self.state.replica_sets)
        return self._pts

    def _ipa_verdicts(self):
        if self._ipa is False:
            skip, verdicts = ipa.filter_nodes(self.state.labels_by_node(),
                                              self.state.bound_pairs(), self.state.namespaces,
                                              self.pod)
            self._ipa = None if skip else verdicts
        return self._ipa

    def plugin_code(self, name: str, node) -> int:
        """The Filter verdict of one plugin on one node (Success when its PreFilter
        skipped)."""
        pod, node_name = self.pod, node.metadata.name
        if name in self.skipped or name in INERT:
            return SUCCESS
        if name == "NodeUnschedulable":
            return npl.node_unschedulable_filter(pod, node)[0]
        if name == "NodeName":
            return npl.node_name_filter(pod, node)[0]
        if name == "TaintToleration":
            return npl.taint_toleration_filter(pod, node)[0]
        if name == "NodeAffinity":
            return npl.node_affinity_filter(pod, node,
                                            self.args["NodeAffinity"]["added_required"])[0]
        if name == "NodePorts":
            return npl.node_ports_filter(pod, self.state.pods_on[node_name])[0]
        if name == "NodeResourcesFit":
            a = self.args["NodeResourcesFit"]
            return fit.fit_filter(node, self.state.pods_on[node_name], pod,
                                  a.get("ignored_resources", ()),
                                  a.get("ignored_groups", ()))[0]
        if name == "PodTopologySpread":
            verdicts = self._pts_verdicts()
            return SUCCESS if verdicts is None else verdicts[node_name][0]
        if name == "InterPodAffinity":
            verdicts = self._ipa_verdicts()
            return SUCCESS if verdicts is None else verdicts[node_name][0]
        raise NotImplementedError(name)

    def first_rejection(self, node) -> str | None:
        """The first Filter plugin that rejects the node, None when it passes them all."""
        for name in self.profile["filters"]:
            if self.plugin_code(name, node) != SUCCESS:
                return name
        return None

    def rejections(self, node) -> dict[str, int]:
        """Every Filter plugin's non-Success verdict on the node."""
        out = {}
        for name in self.profile["filters"]:
            code = self.plugin_code(name, node)
            if code != SUCCESS:
                out[name] = code
        return out


# ----------------------------------------------------------------------------- scoring


def _dot_product(state: ClusterState, pod, nodes):
    """DotProduct: sum over cpu and memory of (request / alloc) * (free / alloc), x 10^6,
    truncated, then DefaultNormalizeScore. None (PreScore skips) when the pod requests
    neither."""
    req = pod.requests()
    wanted = [("cpu", req.get("cpu", 0)), ("memory", req.get("memory", 0))]
    if all(q == 0 for _, q in wanted):
        return None
    raw = []
    for node in nodes:
        used = state.used(node.metadata.name)
        total = 0.0
        for r, q in wanted:
            alloc = node.allocatable.get(r, 0)
            if alloc <= 0:
                continue
            free = alloc - used.get(r, 0)
            total += (float(q) / float(alloc)) * (free / alloc)
        raw.append(int(total * 1_000_000))
    return npl.normalize(raw)


def _first_fit(state: ClusterState, nodes):
    first = min(nodes, key=lambda n: state.position[n.metadata.name])
    return [MAX_NODE_SCORE if n is first else 0 for n in nodes]


def plugin_scores(name: str, state: ClusterState, pod, nodes: list, args: dict):
    """Normalised scores of one Score plugin over the feasible ``nodes`` (a list in their
    evaluation order), or None when its PreScore skips."""
    names = [n.metadata.name for n in nodes]
    if name in INERT:
        return None
    if name == "TaintToleration":
        return npl.taint_toleration_scores(pod, nodes)
    if name == "NodeAffinity":
        return npl.node_affinity_scores(pod, nodes, args["NodeAffinity"]["added_preferred"])
    if name == "NodeResourcesFit":
        a = args["NodeResourcesFit"]
        got = rsc.fit_scores(nodes, state.bound_pods(), pod, a["strategy"],
                             list(a["resources"]), list(a.get("shape") or []))
        return [got[n] for n in names]
    if name == "NodeResourcesBalancedAllocation":
        got = rsc.balanced_scores(nodes, state.bound_pods(), pod,
                                  list(args["NodeResourcesBalancedAllocation"]["resources"]))
        return None if got is None else [got[n] for n in names]
    if name == "ImageLocality":
        got = rsc.image_locality_scores(state.nodes, pod)
        return [got[n] for n in names]
    if name == "PodTopologySpread":
        a = args["PodTopologySpread"]
        got = spr.normalized_scores(state.nodes, state.bound_pods(), pod, names, a["defaults"],
                                    a["system_defaulted"], state.services, state.replica_sets)
        return None if got is None else [got[n] for n in names]
    if name == "InterPodAffinity":
        a = args["InterPodAffinity"]
        skipped, _, norm = ipa.score_nodes(state.labels_by_node(), state.bound_pairs(),
                                           state.namespaces, pod, names, a["hard_weight"],
                                           a["ignore_preferred"])
        return None if skipped else [norm[n] for n in names]
    if name == "SelectorSpread":
        got = spr.selector_spread_scores(state.nodes, state.bound_pods(), pod, names,
                                         state.services, state.replica_sets)
        return None if got is None else [got[n] for n in names]
    if name == "FirstFit":
        return _first_fit(state, nodes)
    if name == "Random":  # every node the same: the tie-break decides
        return [0] * len(nodes)
    if name == "DotProduct":
        return _dot_product(state, pod, nodes)
    raise NotImplementedError(name)


def total_scores(state: ClusterState, pod, nodes: list, profile: dict) -> list[int]:
    totals = [0] * len(nodes)
    for name, weight in profile["scores"]:
        scores = plugin_scores(name, state, pod, nodes, profile["args"])
        if scores is None:
            continue
        for i, s in enumerate(scores):
            if not 0 <= s <= MAX_NODE_SCORE:
                raise AssertionError(f"{name} scored {s} on {nodes[i].metadata.name}")
            totals[i] += s * weight
    return totals


# ------------------------------------------------------------------------------- queue


def backoff_duration(attempts: int) -> float:
    if attempts <= 0:
        return 0.0
    return min(INITIAL_BACKOFF * 2 ** (attempts - 1), MAX_BACKOFF)


@dataclass(eq=False)
class QueueEntry:
    pod: Any
    key: str
    priority: int
    timestamp: float = 0.0
    stamp: int = 0
    attempts: int = 0
    plugins: frozenset = frozenset()
    version: int = 0

    def expiry(self) -> float:
        return math.floor(self.timestamp + backoff_duration(self.attempts))

    def backing_off(self, now: float) -> bool:
        return self.attempts > 0 and self.expiry() >= math.floor(now)


@dataclass
class Attempt:
    """One scheduling attempt: the pod, where it went (None: rejected), when, and (on a
    rejection) the plugins blamed."""

    key: str
    node: str | None
    time: float
    plugins: frozenset = frozenset()
    evaluated: int = 0
    feasible: int = 0


@dataclass
class ReferenceScheduler:
    """A whole run (see the module docstring). ``cluster`` is read, never changed."""

    cluster: Any
    profile: dict
    seed: int = 0
    state: ClusterState = field(init=False)
    attempts: list[Attempt] = field(default_factory=list, init=False)

    def draw_below(self, k: int) -> int:
        """Uniform in [0, k): the next 64-bit output x of ``rng``'s bit generator (taken 256
        at a time), ``x * k // 2**64``."""
        if not self._raw:
            self._raw = [int(x) for x in self.rng.bit_generator.random_raw(256)][::-1]
        return self._raw.pop() * k // 2**64

    def __post_init__(self) -> None:
        self.state = ClusterState.of(self.cluster)
        self.rng = np.random.default_rng(self.seed)
        self._raw: list[int] = []
        self.next_start = 0
        self.version = 0
        self.clock = 0.0
        self._stamps = 0
        self.priority_classes = self.cluster.priority_class_map()
        self.active: list[QueueEntry] = []
        self.backoff: list[QueueEntry] = []
        self.parked: dict[str, QueueEntry] = {}
        self.pending: dict[str, QueueEntry] = {}
        for pod in self.cluster.pods:
            if pod.spec.node_name or pod.status.phase in ("Succeeded", "Failed"):
                continue
            if pod.spec.scheduler_name != self.profile["scheduler_name"]:
                continue
            if pod.spec.scheduling_gates or pod.metadata.deletion_timestamp:
                raise NotImplementedError("gated or deleted pods are not modelled")
            e = QueueEntry(pod, pod.key, pod_priority(pod, self.priority_classes),
                           stamp=self._stamp())
            self.pending[e.key] = e
            self.active.append(e)

    def _stamp(self) -> int:
        self._stamps += 1
        return self._stamps

    # ---------------------------------------------------------------------------- run

    def run(self) -> dict[str, str | None]:
        """Schedule until nothing can make progress; returns pod key -> node (None:
        pending)."""
        while True:
            entry = self._pop()
            if entry is None:
                wake = self._next_wake()
                if wake is None:
                    break
                self.clock = max(self.clock, wake)
                continue
            self._attempt(entry)
        return self.placements()

    def placements(self) -> dict[str, str | None]:
        out = {key: None for key in self.pending}
        for a in self.attempts:
            out[a.key] = a.node
        return out

    def _pop(self) -> QueueEntry | None:
        now = self.clock
        for e in list(self.backoff):
            if not e.backing_off(now):
                self.backoff.remove(e)
                self.active.append(e)
        tick = math.floor(now / FLUSH_PERIOD) * FLUSH_PERIOD
        for key, e in list(self.parked.items()):
            if tick - e.timestamp > MAX_IN_UNSCHEDULABLE:
                del self.parked[key]
                (self.backoff if e.backing_off(tick) else self.active).append(e)
        if self.active:
            e = min(self.active, key=lambda x: (-x.priority, x.timestamp, x.stamp))
            self.active.remove(e)
        elif self.backoff:
            e = min(self.backoff, key=lambda x: (x.expiry(), -x.priority, x.timestamp, x.stamp))
            self.backoff.remove(e)
        else:
            return None
        e.attempts += 1
        return e

    def _next_wake(self) -> float | None:
        times = [e.expiry() + 1.0 for e in self.backoff if e.version < self.version]
        for e in self.parked.values():
            if e.version < self.version:
                due = e.timestamp + MAX_IN_UNSCHEDULABLE
                times.append((math.floor(due / FLUSH_PERIOD) + 1) * FLUSH_PERIOD)
        return min(times) if times else None

    # ------------------------------------------------------------------------ attempt

    def _attempt(self, e: QueueEntry) -> None:
        node, plugins, evaluated, feasible = self.schedule_pod(e.pod)
        self.attempts.append(Attempt(e.key, node, self.clock, plugins, evaluated, feasible))
        if node is None:
            if not plugins:
                raise AssertionError(f"{e.key} rejected without a plugin to blame")
            e.timestamp = self.clock
            e.stamp = self._stamp()
            e.plugins = plugins
            e.version = self.version
            self.parked[e.key] = e
            return
        bound = self.state.bind(e.pod, node)
        self.version += 1
        for key, other in list(self.parked.items()):
            if self.worth_requeuing(other, bound):
                del self.parked[key]
                (self.backoff if other.backing_off(self.clock) else self.active).append(other)

    def worth_requeuing(self, e: QueueEntry, added) -> bool:
        """kube v1.35's queueing hints (``isSchedulableAfterPodChange``) for an assigned pod
        added; of the plugins that can reject a pod here only these two register the event.

        - InterPodAffinity: the added pod matches *all* the required affinity terms, each
          matched with nil namespace labels (a namespace selector is not resolved here);
        - PodTopologySpread: the added pod is in the pod's namespace and its labels match the
          selector of one of the hard (DoNotSchedule) constraints."""
        pod = e.pod
        if "InterPodAffinity" in e.plugins:
            aff = pod.spec.affinity
            terms = [] if aff is None or aff.pod_affinity is None else \
                aff.pod_affinity.required_during_scheduling_ignored_during_execution
            if terms and all(ipa.RefTerm(t, pod).matches(added, {}) for t in terms):
                return True
        if "PodTopologySpread" in e.plugins and \
                added.metadata.namespace == pod.metadata.namespace:
            a = self.profile["args"]["PodTopologySpread"]
            hard = spr.constraints_of(pod, "DoNotSchedule", a["defaults"], self.state.services,
                                      self.state.replica_sets)
            if any(c["selector"].matches(added.metadata.labels) for c in hard):
                return True
        return False

    def schedule_pod(self, pod):
        """One attempt: (node or None, plugins that rejected it, nodes evaluated, feasible
        nodes found)."""
        state, profile = self.state, self.profile
        n_all = len(state.tree_order)
        if n_all == 0:
            return None, frozenset(), 0, 0
        cycle = PodCycle(state, pod, profile)
        if cycle.prefilter_rejected_by is not None:
            return None, frozenset({cycle.prefilter_rejected_by}), 0, 0
        nodes = cycle.nodes()
        if not nodes:  # the PreFilter result names no node of the cluster
            return None, frozenset(cycle.narrowing), 0, 0
        n = len(nodes)
        to_find = num_feasible_nodes_to_find(profile["percentage"], n)
        if not profile["scores"]:
            to_find = 1
        start = self.next_start % n
        feasible, rejected_by = [], set()
        processed = 0
        for i in range(n):
            node = nodes[(start + i) % n]
            processed += 1
            why = cycle.first_rejection(node)
            if why is None:
                feasible.append(node)
                if len(feasible) == to_find:
                    break
            else:
                rejected_by.add(why)
        self.next_start = (self.next_start + processed) % n_all
        if not feasible:
            return None, frozenset(rejected_by | set(cycle.narrowing)), processed, 0
        if len(feasible) == 1:
            return feasible[0].metadata.name, frozenset(), processed, 1
        if profile["scores"]:
            totals = total_scores(state, pod, feasible, profile)
        else:
            totals = [1] * len(feasible)
        best = max(totals)
        ties = [node for node, t in zip(feasible, totals) if t == best]
        chosen = ties[0] if len(ties) == 1 else ties[self.draw_below(len(ties))]
        return chosen.metadata.name, frozenset(), processed, len(feasible)
