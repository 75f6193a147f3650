"""kube-scheduler's scheduling framework, vectorised over nodes.

A plugin is a class registered by name (:func:`register`) that implements some of the
extension points below. Where kube-scheduler calls ``Filter(pod, nodeInfo)`` once per node,
schedbench calls ``filter(state, pod, nodes)`` once per pod with an array of node indices and
gets an array of status codes back; the per-node loop lives in a Numba kernel. Reasons (the
strings kube-scheduler reports) are asked for lazily, per failing node, by ``filter_reasons``:
only explanations and final diagnoses need them.

Extension points (method names; a plugin defines the ones it implements):

- ``pre_filter(state, pod, nodes) -> (Status, allowed_nodes | None)``: per-pod set-up;
  ``allowed_nodes`` narrows the nodes (kube's PreFilterResult). ``Status.skip()`` skips
  the plugin's ``filter`` for this pod.
- ``filter(state, pod, nodes) -> int8[len(nodes)]`` of :class:`Code` values, and
  ``filter_reasons(state, pod, node) -> list[str]`` for one failing node.
- ``post_filter(state, pod, diagnosis) -> PostFilterResult`` (preemption), run by
  :meth:`Framework.run_post_filter` with kube's ``RunPostFilterPlugins`` semantics.
- ``pre_score(state, pod, nodes) -> Status``; ``Status.skip()`` skips ``score``.
- ``score(state, pod, nodes) -> int64[len(nodes)]`` and, optionally,
  ``normalize_score(state, pod, nodes, scores)`` in place.

Scores are integers; after normalisation each must be within 0..MaxNodeScore (100); the
framework multiplies by the profile's weight and sums (``RunScorePlugins``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from numba import njit

from ..config import EP, Profile
from ..errors import ConfigError

if TYPE_CHECKING:
    from ..cluster import Cluster
    from .snapshot import NodeSnapshot, PodInfo

MAX_NODE_SCORE = 100
MIN_NODE_SCORE = 0


class Code(enum.IntEnum):
    """framework.Code, with kube-scheduler's numbering."""

    SUCCESS = 0
    ERROR = 1
    UNSCHEDULABLE = 2
    UNSCHEDULABLE_AND_UNRESOLVABLE = 3
    WAIT = 4
    SKIP = 5
    PENDING = 6

    @property
    def label(self) -> str:
        return _CODE_LABELS[self]


_CODE_LABELS = {
    Code.SUCCESS: "Success", Code.ERROR: "Error", Code.UNSCHEDULABLE: "Unschedulable",
    Code.UNSCHEDULABLE_AND_UNRESOLVABLE: "UnschedulableAndUnresolvable", Code.WAIT: "Wait",
    Code.SKIP: "Skip", Code.PENDING: "Pending",
}

SUCCESS = np.int8(Code.SUCCESS)
UNSCHEDULABLE = np.int8(Code.UNSCHEDULABLE)
UNRESOLVABLE = np.int8(Code.UNSCHEDULABLE_AND_UNRESOLVABLE)


@dataclass(frozen=True)
class Status:
    """framework.Status: a code, the reasons, and the plugin that said it."""

    code: Code = Code.SUCCESS
    reasons: tuple[str, ...] = ()
    plugin: str = ""

    @classmethod
    def success(cls) -> Status:
        return _SUCCESS_STATUS

    @classmethod
    def skip(cls) -> Status:
        return _SKIP_STATUS

    @classmethod
    def unschedulable(cls, *reasons: str, resolvable: bool = True, plugin: str = "") -> Status:
        code = Code.UNSCHEDULABLE if resolvable else Code.UNSCHEDULABLE_AND_UNRESOLVABLE
        return cls(code, tuple(reasons), plugin)

    @property
    def is_success(self) -> bool:
        return self.code == Code.SUCCESS

    @property
    def is_skip(self) -> bool:
        return self.code == Code.SKIP

    @property
    def is_rejected(self) -> bool:
        return self.code in (Code.UNSCHEDULABLE, Code.UNSCHEDULABLE_AND_UNRESOLVABLE)

    def message(self) -> str:
        return ", ".join(self.reasons)


_SUCCESS_STATUS = Status()
_SKIP_STATUS = Status(Code.SKIP)


class CycleState(dict):
    """Per-pod, per-cycle plugin state (kube's CycleState), keyed by plugin name."""


class Plugin:
    """Base class of every plugin. Subclasses set ``name`` and implement extension points.

    ``args`` is the plugin's args object from the profile (config dataclass or dict, or None),
    ``handle`` gives access to the snapshot, the cluster objects and the random generator.
    """

    name: ClassVar[str] = ""
    #: Cluster events after which a pod this plugin rejected may fit (kube's EventsToRegister):
    #: subset of {"AssignedPodAdd", "AssignedPodDelete", "NodeAdd", "NodeUpdate", "NodeDelete"}.
    events: ClassVar[frozenset[str]] = frozenset({"AssignedPodDelete", "NodeAdd", "NodeUpdate"})

    #: The plugin's typed args class (with ``from_dict``), if it takes args: ``None`` becomes
    #: the defaults and a plain dict is decoded, so ``self.args`` is always typed.
    args_type: ClassVar[Any] = None

    def __init__(self, args: Any, handle: Handle) -> None:
        if self.args_type is not None:
            if args is None:
                args = self.args_type()
            elif isinstance(args, dict):
                args = self.args_type.from_dict(args)
        self.args = args
        self.handle = handle

    def filter_reasons(self, state: CycleState, pod: PodInfo, node: int) -> list[str]:
        raise NotImplementedError(f"{self.name} does not explain its filter verdicts")


@dataclass
class Handle:
    """What plugins may use: the snapshot, the cluster's other objects (services, replica
    sets, namespaces: for SelectorSpread, default spreading and namespace selectors), the
    seeded random generator, and the framework itself (preemption re-runs filters)."""

    snapshot: NodeSnapshot
    cluster: Cluster
    rng: np.random.Generator
    framework: Framework | None = None
    #: Uniform integer draws from ``rng`` (tie-breaks, preemption's offset): set by the
    #: scheduler, or made from ``rng`` on first use.
    draws: Any = None
    extra: dict = field(default_factory=dict)
    #: The pods nominated to nodes by preemption (kube's PodNominator; the scheduling queue's
    #: :class:`~schedbench.scheduler.queue.Nominator`), None when there is none.
    nominator: Any = None


PLUGINS: dict[str, type[Plugin]] = {}

#: PreFilter plugins whose cycle state does not depend on the pods bound to nodes (only on the
#: pod being scheduled): their state stays valid when pods are added to or removed from the
#: snapshot (nominated pods, preemption dry runs). A plugin may say so itself with a class
#: attribute ``prefilter_reads_pods = False`` (or ``True`` to be re-run).
PREFILTER_INDEPENDENT_OF_PODS = frozenset({
    "NodeResourcesFit", "NodeAffinity", "NodePorts", "NodeName", "NodeUnschedulable",
    "TaintToleration", "VolumeBinding", "VolumeRestrictions", "VolumeZone", "NodeVolumeLimits",
    "DynamicResources"})

#: CycleState key under which the scheduler records the plugins whose PreFilter skipped
#: (kube's ``CycleState.SkipFilterPlugins``), for PostFilter plugins.
SKIP_FILTER_KEY = "\x00SkipFilterPlugins"


def prefilter_reads_pods(plugin: Plugin) -> bool:
    """Whether the plugin's PreFilter state depends on the pods bound to nodes."""
    flag = getattr(plugin, "prefilter_reads_pods", None)
    if flag is not None:
        return bool(flag)
    return plugin.name not in PREFILTER_INDEPENDENT_OF_PODS


def node_change(event: str, other) -> tuple | None:
    """The (old node, new node) of a node event for a queueing hint: ``NodeAdd`` carries the
    node (old None), ``NodeUpdate`` the pair (old, new); None when the old node of an update
    is not known (a hint then queues the pod, as kube does on an error)."""
    if isinstance(other, tuple) and len(other) == 2:
        return other
    if event == "NodeAdd" and other is not None:
        return None, other
    return None


def register(cls: type[Plugin]) -> type[Plugin]:
    """Class decorator: make a plugin available to profiles by its ``name``."""
    if not cls.name:
        raise TypeError(f"{cls.__qualname__} has no name")
    PLUGINS[cls.name] = cls
    return cls


def implements(plugin: Plugin | type[Plugin], method: str) -> bool:
    return callable(getattr(plugin, method, None))


@dataclass
class FilterOutcome:
    """Result of running the filter plugins over nodes.

    ``codes[i]`` is the final code of ``nodes[i]``; ``failed_by[i]`` the index (into
    :attr:`Framework.filter_plugins`) of the first plugin that rejected it, -1 if feasible.
    With ``all_plugins=True`` (explanations), ``per_plugin[name]`` holds every plugin's codes
    over all nodes (SKIP for a plugin whose pre_filter skipped)."""

    nodes: np.ndarray
    codes: np.ndarray
    failed_by: np.ndarray
    per_plugin: dict[str, np.ndarray] = field(default_factory=dict)
    #: Verdicts explained when they were reached (nodes that failed only with their nominated
    #: pods added): node -> (plugin name, reasons); :meth:`Framework.filter_reasons` uses them.
    explained: dict[int, tuple[str, list[str]]] = field(default_factory=dict)

    @property
    def feasible(self) -> np.ndarray:
        return self.nodes[self.codes == SUCCESS]


@dataclass
class PreFilterOutcome:
    status: Status
    allowed: np.ndarray | None  # node indices (sorted), None = all nodes
    skipped: frozenset[str]
    #: Plugins whose PreFilter result narrowed the nodes, sorted (kube's pluginsWithNodes).
    narrowing: tuple[str, ...] = ()


@dataclass
class ScoreOutcome:
    nodes: np.ndarray
    total: np.ndarray                          # int64, weighted sum
    raw: dict[str, np.ndarray] = field(default_factory=dict)
    normalized: dict[str, np.ndarray] = field(default_factory=dict)
    skipped: frozenset[str] = frozenset()


class Framework:
    """The plugins of one profile, instantiated, with the runners of kube's framework."""

    def __init__(self, profile: Profile, handle: Handle) -> None:
        from . import plugins  # noqa: F401  (registers the built-in plugins)

        self.profile = profile
        self.handle = handle
        handle.framework = self
        self.instances: dict[str, Plugin] = {}
        for name in profile.enabled_plugins():
            cls = PLUGINS.get(name)
            if cls is None:
                raise ConfigError(f"plugin {name!r} is not implemented by schedbench",
                                  obj=f"profile {profile.scheduler_name}")
            self.instances[name] = cls(profile.plugin_args.get(name), handle)

        def at(point: EP, method: str) -> list[Plugin]:
            out = []
            for ref in profile.plugins[point]:
                plugin = self.instances[ref.name]
                if implements(plugin, method):
                    out.append(plugin)
            return out

        self.pre_filter_plugins = at(EP.PRE_FILTER, "pre_filter")
        self.filter_plugins = at(EP.FILTER, "filter")
        self.post_filter_plugins = at(EP.POST_FILTER, "post_filter")
        self.pre_score_plugins = at(EP.PRE_SCORE, "pre_score")
        self.score_plugins = at(EP.SCORE, "score")
        self.score_weights = {ref.name: ref.weight for ref in profile.plugins[EP.SCORE]}
        self.pre_enqueue_plugins = at(EP.PRE_ENQUEUE, "pre_enqueue")

    @property
    def name(self) -> str:
        return self.profile.scheduler_name

    # ------------------------------------------------------------------------- pre_filter

    def run_pre_filter(self, state: CycleState, pod: PodInfo, nodes: np.ndarray
                       ) -> PreFilterOutcome:
        """RunPreFilterPlugins: every plugin runs unless one is UnschedulableAndUnresolvable;
        node sets are intersected; an empty intersection is UnschedulableAndUnresolvable.
        ``narrowing`` lists the plugins that narrowed the nodes, sorted (``sets.List``)."""
        allowed: np.ndarray | None = None
        narrowing: set[str] = set()
        skipped: set[str] = set()
        result_status = Status.success()
        for plugin in self.pre_filter_plugins:
            status, nodes_ok = plugin.pre_filter(state, pod, nodes)
            if status.is_skip:
                skipped.add(plugin.name)
                continue
            if not status.is_success:
                status = Status(status.code, status.reasons, plugin.name)
                if status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                    return PreFilterOutcome(status, allowed, frozenset(skipped))
                result_status = status
                continue
            if nodes_ok is not None:
                narrowing.add(plugin.name)
                allowed = nodes_ok if allowed is None else np.intersect1d(allowed, nodes_ok)
                if allowed.size == 0:
                    names = sorted(narrowing)
                    msg = (f"node(s) didn't satisfy plugin {names[0]}" if len(names) == 1
                           else f"node(s) didn't satisfy plugin(s) [{' '.join(names)}] "
                                "simultaneously")
                    return PreFilterOutcome(Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (msg,)),
                                            allowed, frozenset(skipped), tuple(names))
        return PreFilterOutcome(result_status, allowed, frozenset(skipped),
                                tuple(sorted(narrowing)))

    # ----------------------------------------------------------------------------- filter

    def run_filters(self, state: CycleState, pod: PodInfo, nodes: np.ndarray,
                    skipped: frozenset[str] = frozenset(), *, all_plugins: bool = False
                    ) -> FilterOutcome:
        """RunFilterPlugins over ``nodes``: each node meets the plugins in order and stops at
        the first rejection (``all_plugins`` runs every plugin on every node, for explain)."""
        nodes = np.asarray(nodes, np.int64)
        codes = np.zeros(nodes.size, np.int8)
        failed_by = np.full(nodes.size, -1, np.int16)
        per_plugin: dict[str, np.ndarray] = {}
        live = np.arange(nodes.size)  # positions not rejected yet
        for j, plugin in enumerate(self.filter_plugins):
            if plugin.name in skipped:
                if all_plugins:
                    per_plugin[plugin.name] = np.full(nodes.size, Code.SKIP, np.int8)
                continue
            if all_plugins:
                c = np.asarray(plugin.filter(state, pod, nodes), np.int8)
                per_plugin[plugin.name] = c
                newly = (c != SUCCESS) & (failed_by < 0)
                codes[newly] = c[newly]
                failed_by[newly] = j
                continue
            if live.size == 0:
                break
            c = plugin.filter(state, pod, nodes if live.size == nodes.size else nodes[live])
            bad = np.flatnonzero(c)  # every code but Success (0) rejects
            if bad.size:
                rejected = live[bad]
                codes[rejected] = c[bad]
                failed_by[rejected] = j
                live = np.delete(live, bad)
        return FilterOutcome(nodes, codes, failed_by, per_plugin)

    def filter_reasons(self, state: CycleState, pod: PodInfo, outcome: FilterOutcome
                       ) -> dict[int, tuple[str, list[str]]]:
        """For each rejected node: (plugin name, reasons). A plugin with
        ``filter_reasons_batch(state, pod, nodes) -> list[list[str]]`` explains all the nodes
        it rejected in one call (the same reasons as ``filter_reasons`` node by node)."""
        out = {}
        batches: dict[int, list[int]] = {}
        has_batch: dict[int, bool] = {}
        nodes_of = outcome.nodes.tolist()
        failed_by = outcome.failed_by.tolist()
        explained = outcome.explained
        for i in np.flatnonzero(outcome.codes != SUCCESS).tolist():
            node = nodes_of[i]
            if explained and node in explained:
                out[node] = explained[node]
                continue
            j = failed_by[i]
            plugin = self.filter_plugins[j]
            batch = has_batch.get(j)
            if batch is None:
                batch = has_batch[j] = _has_batch_reasons(plugin)
            if batch:
                out[node] = None  # keeps the node order; filled below
                batches.setdefault(j, []).append(node)
            else:
                out[node] = (plugin.name, plugin.filter_reasons(state, pod, node))
        for j, nodes in batches.items():
            plugin = self.filter_plugins[j]
            reasons = plugin.filter_reasons_batch(state, pod, np.array(nodes, np.int64))
            for node, why in zip(nodes, reasons):
                out[node] = (plugin.name, why)
        return out

    # ------------------------------------------------------- filter with nominated pods

    def refresh_pre_filter(self, state: CycleState, pod: PodInfo,
                           skipped: frozenset[str] = frozenset()
                           ) -> tuple[CycleState, frozenset[str], Status]:
        """The cycle state as PreFilter sees the snapshot now, after pods were added to or
        removed from it (kube clones the state and calls the PreFilter extensions ``AddPod`` /
        ``RemovePod``; schedbench re-runs the PreFilter of the plugins whose state depends on
        other pods, on a copy). Plugins skipped at PreFilter stay skipped, as kube's cloned
        ``SkipFilterPlugins`` do; one that skips now is added. Returns (state copy, skipped,
        status of the first re-run PreFilter that did not succeed, else Success)."""
        out = CycleState(state)
        skip = set(skipped)
        nodes: np.ndarray | None = None
        for plugin in self.pre_filter_plugins:
            if plugin.name in skipped or not prefilter_reads_pods(plugin):
                continue
            if nodes is None:
                nodes = self.handle.snapshot.evaluation_order()
            status, _ = plugin.pre_filter(out, pod, nodes)
            if status.is_skip:
                skip.add(plugin.name)
            elif not status.is_success:
                return out, frozenset(skip), Status(status.code, status.reasons, plugin.name)
        return out, frozenset(skip), Status.success()

    def nominated_pods_for(self, pod: PodInfo, node: int) -> list[PodInfo]:
        """Pods nominated to ``node`` with priority >= the pod's, other than the pod itself
        (``addGENominatedPods``), in nomination order."""
        nominator = self.handle.nominator
        if nominator is None:
            return []
        snap = self.handle.snapshot
        return [p for p in nominator.pods_for_node(snap.node_names[node])
                if p.priority >= pod.priority and p.key != pod.key and p.key not in snap.pods]

    def run_filters_with_nominated_pods(self, state: CycleState, pod: PodInfo,
                                        nodes: np.ndarray, skipped: frozenset[str] = frozenset()
                                        ) -> FilterOutcome:
        """RunFilterPluginsWithNominatedPods over ``nodes``. A node to which pods of higher or
        equal priority are nominated must pass the filters twice: with those pods added (to the
        snapshot and, through :meth:`refresh_pre_filter`, to the PreFilter state) and without;
        a failure with them added is the node's verdict (explained at once, in
        ``outcome.explained``). Other nodes take the vectorised path unchanged."""
        outcome = self.run_filters(state, pod, nodes, skipped)
        nominator = self.handle.nominator
        if nominator is None or not nominator.node_names():
            return outcome
        snap = self.handle.snapshot
        names = nominator.node_names()
        for i in range(outcome.nodes.size):
            node = int(outcome.nodes[i])
            if snap.node_names[node] not in names:
                continue
            pods = self.nominated_pods_for(pod, node)
            if not pods:
                continue
            code, failed_by, why = self._filter_with_pods_added(state, pod, node, skipped, pods)
            if code != SUCCESS:
                outcome.codes[i] = code
                outcome.failed_by[i] = failed_by
                outcome.explained[node] = why
        return outcome

    def _filter_with_pods_added(self, state: CycleState, pod: PodInfo, node: int,
                                skipped: frozenset[str], pods: list[PodInfo]):
        snap = self.handle.snapshot
        added: list[PodInfo] = []
        try:
            for p in pods:
                snap.add_pod(p, node)
                added.append(p)
            st, sk, pst = self.refresh_pre_filter(state, pod, skipped)
            if not pst.is_success:
                return np.int8(pst.code), -1, (pst.plugin, list(pst.reasons))
            out = self.run_filters(st, pod, np.array([node], np.int64), sk)
            code = out.codes[0]
            if code == SUCCESS:
                return code, -1, None
            plugin = self.filter_plugins[out.failed_by[0]]
            return code, int(out.failed_by[0]), (plugin.name,
                                                 plugin.filter_reasons(st, pod, node))
        finally:
            for p in reversed(added):
                snap.remove_pod(p)

    def filter_status(self, state: CycleState, pod: PodInfo, node: int,
                      skipped: frozenset[str] = frozenset(), *, explain: bool = True) -> Status:
        """RunFilterPluginsWithNominatedPods on one node, as a Status (with the failing
        plugin and its reasons unless ``explain`` is False)."""
        out = self.run_filters_with_nominated_pods(state, pod, np.array([node], np.int64),
                                                   skipped)
        code = int(out.codes[0])
        if code == SUCCESS:
            return Status.success()
        if not explain:
            return Status(Code(code))
        plugin, reasons = self.filter_reasons(state, pod, out)[node]
        return Status(Code(code), tuple(reasons), plugin)

    # ------------------------------------------------------------------------ post_filter

    def run_post_filter(self, state: CycleState, pod: PodInfo, diagnosis: Any):
        """RunPostFilterPlugins: plugins run in order until one returns Success (its result
        is returned), UnschedulableAndUnresolvable (returned, with the plugin) or anything that
        is not a rejection (an Error, with the plugin, and no result). When every plugin returns
        Unschedulable, the status is Unschedulable with all their reasons in order (its message
        joins them with ", ") and the first such plugin; the result is the last one that is
        not a no-op (``mode != "noop"``)."""
        from .scheduler import PostFilterResult

        result = None
        reasons: list[str] = []
        rejector = ""
        for plugin in self.post_filter_plugins:
            r = plugin.post_filter(state, pod, diagnosis)
            s = r.status
            if s.is_success:
                return r
            if s.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                r.status = Status(s.code, s.reasons, plugin.name)
                return r
            if not s.is_rejected:
                return PostFilterResult(Status(Code.ERROR, s.reasons, plugin.name))
            if r.mode != "noop":
                result = r
            reasons.extend(s.reasons)
            if not rejector:
                rejector = plugin.name
        status = Status(Code.UNSCHEDULABLE, tuple(reasons), rejector)
        if result is None:
            return PostFilterResult(status)
        return PostFilterResult(status, result.nominated_node, list(result.victims),
                                mode=result.mode)

    # ------------------------------------------------------------------------------ score

    def run_pre_score(self, state: CycleState, pod: PodInfo, nodes: np.ndarray
                      ) -> frozenset[str]:
        """RunPreScorePlugins; returns the plugins that asked to skip Score."""
        skipped = set()
        for plugin in self.pre_score_plugins:
            if plugin.pre_score(state, pod, nodes).is_skip:
                skipped.add(plugin.name)
        return frozenset(skipped)

    def run_scores(self, state: CycleState, pod: PodInfo, nodes: np.ndarray,
                   skipped: frozenset[str] = frozenset(), *, keep: bool = False
                   ) -> ScoreOutcome:
        """RunScorePlugins: score, normalise, check 0..100, weight, sum."""
        total = np.zeros(nodes.size, np.int64)
        out = ScoreOutcome(nodes, total, skipped=skipped)
        for plugin in self.score_plugins:
            if plugin.name in skipped:
                continue
            scores = plugin.score(state, pod, nodes)
            if scores.dtype != np.int64:
                scores = scores.astype(np.int64)
            if keep:
                out.raw[plugin.name] = scores.copy()
            normalize: Callable | None = getattr(plugin, "normalize_score", None)
            if normalize is not None:
                normalize(state, pod, nodes, scores)
            bad = _add_weighted(total, scores, self.score_weights[plugin.name])
            if bad >= 0:
                raise RuntimeError(
                    f"plugin {plugin.name} returns an invalid score {int(scores[bad])} for node "
                    f"{self.handle.snapshot.node_names[nodes[bad]]}, it should in the range of "
                    f"[{MIN_NODE_SCORE}, {MAX_NODE_SCORE}] after normalizing")
            if keep:
                out.normalized[plugin.name] = scores.copy()
        return out


_BATCH_REASONS: dict[type, bool] = {}


def _has_batch_reasons(plugin: Plugin) -> bool:
    """Whether the plugin's ``filter_reasons_batch`` stands for its ``filter_reasons``: both
    defined by the same class (not a subclass overriding only one), neither replaced on the
    instance."""
    cls = type(plugin)
    ok = _BATCH_REASONS.get(cls)
    if ok is None:
        ok = False
        for klass in cls.__mro__:
            d = klass.__dict__
            if "filter_reasons" in d or "filter_reasons_batch" in d:
                ok = "filter_reasons" in d and "filter_reasons_batch" in d
                break
        _BATCH_REASONS[cls] = ok
    if ok:
        d = vars(plugin)
        return "filter_reasons" not in d and "filter_reasons_batch" not in d
    return False


@njit(cache=True)
def _add_weighted(total, scores, weight):
    """``total += scores * weight`` after checking every score is within 0..MaxNodeScore;
    returns the index of the first out-of-range score (nothing added), or -1."""
    for i in range(scores.size):
        if scores[i] < MIN_NODE_SCORE or scores[i] > MAX_NODE_SCORE:
            return i
    for i in range(scores.size):
        total[i] += scores[i] * weight
    return -1


def default_normalize_score(scores: np.ndarray, max_priority: int = MAX_NODE_SCORE,
                            reverse: bool = False) -> None:
    """helper.DefaultNormalizeScore: scale so that the highest score becomes ``max_priority``
    (integer division); with ``reverse`` subtract from ``max_priority``. All zero stays zero
    (or becomes ``max_priority`` everywhere when reversed)."""
    if scores.size == 0:
        return
    max_count = max(0, int(scores.max()))
    if max_count == 0:
        if reverse:
            scores[:] = max_priority
        return
    scores[:] = scores * max_priority // max_count
    if reverse:
        scores[:] = max_priority - scores
