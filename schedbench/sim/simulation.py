"""A whole simulated cluster: the engine, the store, every controller, the scheduler, the
event log, the timeline and the no-pod-lost accounting.

``Simulation(objects, seed=, profile=, config=)`` builds the :class:`~.engine.Engine` (the
virtual clock and the seeded generator), the :class:`~.store.Store` (API server + etcd), the
:class:`~.controller.Context` and the controllers of kube-controller-manager and the node
(kubelets and node lifecycle, ReplicaSet and Deployment, Endpoints with the kube-proxy load
model and the HorizontalPodAutoscaler), kube-scheduler (:mod:`.schedulerctl`) and a PodGC
(pods bound to a deleted node are deleted, as kube-controller-manager's PodGC does for
orphaned pods). The initial objects are created at t = 0, after every watch is registered.
:meth:`Simulation.run` advances the clock; the action methods (:meth:`scale`,
:meth:`set_image`, :meth:`fail_node`, ...) are what scenario timelines call, and are usable
directly from Python and tests.

**No pod is lost** (:meth:`Simulation.check_no_pod_lost`): every pod ever created is, at any
instant, bound to a node, terminal (Succeeded/Failed), pending with a reason (condition
``PodScheduled=False`` with a reason, or waiting for a scheduler this simulation does not
run), or deleted with a recorded cause. The accounting follows every store mutation
(:class:`PodAccounting`), so the check and the timeline's counts cost O(pods) and O(1).
"""

from __future__ import annotations

import dataclasses
import gc
import time as _time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..cluster import Cluster
from ..errors import InputError
from ..model.objects import KubeObject
from .controller import Context, Controller, SimConfig
from .engine import PRIO_ACTION, PRIO_SAMPLE, Engine
from .output import EventLog, Timeline, mutation_record
from .schedulerctl import SchedulerController
from .store import Store

#: Creation order of the initial objects (cluster-scoped and referenced kinds first).
KIND_ORDER = ("Namespace", "PriorityClass", "Node", "Service", "Endpoints", "Deployment",
              "ReplicaSet", "HorizontalPodAutoscaler", "Pod")
INITIAL_CAUSE = "initial cluster"
SCENARIO_CAUSE = "applied by scenario"
DELETE_CAUSE = "deleted by scenario"
TERMINAL = ("Succeeded", "Failed")


# ----------------------------------------------------------------------------- accounting

@dataclass
class LostPodCheck:
    """The result of :meth:`Simulation.check_no_pod_lost`: ``ok``, the pods that break the
    rule with why (``lost``), and the counts it saw."""

    ok: bool
    lost: list[str] = field(default_factory=list)
    checked: int = 0

    def __bool__(self) -> bool:
        return self.ok


_FLAGS = ("bound", "pending", "unschedulable", "running", "ready", "terminal")


def _pod_flags(pod) -> tuple[int, int, int, int, int, int]:
    phase = pod.status.phase
    terminal = phase in TERMINAL
    bound = bool(pod.spec.node_name) and not terminal
    pending = not pod.spec.node_name and not terminal
    unsched = ready = 0
    if pending or not terminal:
        for c in pod.status.conditions:
            if c.type == "PodScheduled" and c.status == "False" and pending:
                unsched = 1
            elif c.type == "Ready" and c.status == "True":
                ready = 1
    return (int(bound), int(pending), unsched, int(phase == "Running"), ready, int(terminal))


class PodAccounting:
    """Every pod's fate from the store's mutations: counts by state (incrementally), the
    cause of every deletion, and the deletions without one."""

    def __init__(self) -> None:
        self.created = 0
        self.deleted = 0
        self.flags: dict[str, tuple] = {}      # uid -> _pod_flags
        self.totals = [0] * len(_FLAGS)
        self.causes: dict[str, int] = {}
        self.uncaused: list[str] = []

    def on_mutation(self, ev) -> None:
        obj = ev.obj
        if obj.KIND != "Pod":
            return
        uid = obj.metadata.uid
        old = self.flags.get(uid)
        if old is not None:
            for i, v in enumerate(old):
                self.totals[i] -= v
        if ev.type == "DELETED":
            self.flags.pop(uid, None)
            self.deleted += 1
            cause = _cause_class(ev.cause)
            self.causes[cause] = self.causes.get(cause, 0) + 1
            if not ev.cause:
                self.uncaused.append(f"{obj.key} ({uid})")
            return
        if ev.type == "ADDED":
            self.created += 1
        new = _pod_flags(obj)
        self.flags[uid] = new
        for i, v in enumerate(new):
            self.totals[i] += v

    def counts(self) -> dict[str, int]:
        out = {"pods": len(self.flags)}
        out.update(zip(_FLAGS, self.totals))
        out["deleted"] = self.deleted
        return out

    def deletions_by_cause(self) -> dict[str, int]:
        return dict(sorted(self.causes.items(), key=lambda kv: (-kv[1], kv[0])))


def _cause_class(cause: str) -> str:
    """A deletion cause without the object names (for the summary's table)."""
    if not cause:
        return "(no cause)"
    if cause.startswith("preempted by "):
        return "preempted"
    if cause.startswith("garbage collected (owner "):
        kind = cause[len("garbage collected (owner "):].split("/", 1)[0]
        return f"garbage collected (owner {kind} deleted)"
    if cause.startswith("evicted: drain"):
        return "evicted: drain node"
    return cause.split(" (", 1)[0]


# ---------------------------------------------------------------------------------- PodGC

class PodGC(Controller):
    """kube-controller-manager's PodGC, orphaned pods only: pods bound to a node that no
    longer exists are deleted (``gcOrphaned``; kube waits a 40 s quarantine to be sure the
    node is gone, the simulation knows at once)."""

    name = "podgc"

    def start(self) -> None:
        self.store.watch("Node", self._on_node)

    def _on_node(self, ev) -> None:
        if ev.type == "DELETED":
            self.enqueue(ev.obj.metadata.name)

    def reconcile(self, key: str) -> None:
        if self.store.try_get("Node", "", key) is not None:
            return
        for pod in self.store.pods_on_node(key):
            self.store.delete("Pod", pod.metadata.namespace, pod.metadata.name,
                              cause=f"garbage collected (node {key} deleted)")


# ----------------------------------------------------------------------------- simulation

def _objects_of(source) -> tuple[list[KubeObject], Cluster | None]:
    if source is None:
        return [], None
    if isinstance(source, Cluster):
        return source.objects(), source
    return list(source), None


def _kind_rank(obj: KubeObject) -> int:
    try:
        return KIND_ORDER.index(obj.KIND)
    except ValueError:
        return len(KIND_ORDER)


class Simulation:
    """A simulated cluster (module docstring).

    ``objects``: a :class:`~schedbench.cluster.Cluster` or any iterable of objects, created
    at t = 0. ``profile``: a built-in policy name, a KubeSchedulerConfiguration file or None
    (kube-scheduler's default profile). ``config``: :class:`~.controller.SimConfig`.
    ``log_path``: where the event log is streamed (atomically renamed into place by
    :meth:`close`); ``keep_log`` keeps its lines in memory (``log.lines``).
    ``explain_failures=False`` makes failed scheduling attempts cheaper (FitError messages
    without the per-node reason histogram)."""

    def __init__(self, objects: Cluster | Iterable[KubeObject] | None = None, *,
                 seed: int = 0, profile: str | None = None,
                 config: SimConfig | None = None, name: str = "simulation",
                 log_path: str | None = None, keep_log: bool = False,
                 explain_failures: bool = True, sample: bool = True) -> None:
        from ..scheduler.profiles import resolve_profile

        t0 = _time.perf_counter()
        self.name = name
        self.seed = int(seed)
        self.config = config or SimConfig()
        self.engine = Engine(self.seed)
        self.store = Store(self.engine,
                           default_toleration_seconds=self.config.default_toleration_seconds)
        self.log = EventLog(log_path, keep=keep_log)
        self.ctx = Context(self.engine, self.store, self.config, self.log.append)
        self.accounting = PodAccounting()
        self.store.on_mutation.append(self.accounting.on_mutation)
        self.store.on_mutation.append(self._log_mutation)
        objs, cluster = _objects_of(objects)
        sched_cfg, sched_profile, _ = resolve_profile(profile)
        self.profile = profile or "default"
        # the controllers, in the order kube's components would start
        self.controllers: dict[str, Any] = {}
        self._build_controllers()
        self.scheduler_controller = SchedulerController(
            self.ctx, profile=sched_profile, config=sched_cfg, seed=self.seed,
            cluster=cluster, explain_failures=explain_failures)
        self.controllers["scheduler"] = self.scheduler_controller
        for c in self.controllers.values():
            c.start()
        self.timeline = Timeline(self)
        self._sampling = sample
        self.wall_seconds = 0.0
        for obj in sorted(objs, key=_kind_rank):
            self._create(obj, INITIAL_CAUSE, where="initial cluster")
        if sample:
            self.engine.at(0.0, self._sample, priority=PRIO_SAMPLE)
        self.wall_seconds += _time.perf_counter() - t0

    # ---------------------------------------------------------------------- assembly

    def _build_controllers(self) -> None:
        """kubelets, node lifecycle and taint eviction (core), ReplicaSet + Deployment
        (workloads), Endpoints, kube-proxy, the load model and the HPA (traffic), PodGC;
        the scheduler is added after them."""
        from . import deployment, endpoints, hpa, kubelet, load, nodelifecycle, replicaset

        ctx = self.ctx
        add = self.controllers.__setitem__
        self.kubelet = kubelet.Kubelet(ctx)
        add("kubelet", self.kubelet)
        add("nodelifecycle", nodelifecycle.NodeLifecycleController(ctx, self.kubelet))
        add("taint-eviction", nodelifecycle.TaintEvictionController(ctx))
        add("replicaset", replicaset.ReplicaSetController(ctx))
        add("deployment", deployment.DeploymentController(ctx))
        add("endpoints", endpoints.EndpointsController(ctx))
        self.kube_proxy = endpoints.KubeProxy(ctx)
        add("kube-proxy", self.kube_proxy)
        self.load = load.LoadModel(self.kube_proxy)
        add("hpa", hpa.HPAController(ctx, self.load))
        add("podgc", PodGC(ctx))

    @property
    def scheduler(self):
        """The :class:`~schedbench.scheduler.scheduler.Scheduler` (its snapshot, queue)."""
        return self.scheduler_controller.scheduler

    # ------------------------------------------------------------------------ running

    def run(self, until: float | None = None,
            on_step: Callable[[float], Any] | None = None) -> float:
        """Run every event up to ``until`` (seconds of virtual time); returns the clock.
        The cyclic garbage collector is frozen during the run (the cluster's objects are
        long-lived; see :meth:`Scheduler.run`)."""
        t0 = _time.perf_counter()
        frozen = gc.isenabled() and gc.get_freeze_count() == 0
        if frozen:
            gc.freeze()
        try:
            return self.engine.run(until, on_step)
        finally:
            if frozen:
                gc.unfreeze()
            self.wall_seconds += _time.perf_counter() - t0

    def _sample(self) -> None:
        self.timeline.sample()
        step = self.config.sample_seconds
        if step > 0:
            self.engine.at(self.engine.now + step, self._sample, priority=PRIO_SAMPLE)

    def close(self) -> None:
        """Finish the event log (atomic rename into place)."""
        self.log.close()

    # ------------------------------------------------------------------------ logging

    def _log_mutation(self, ev) -> None:
        self.log.append(mutation_record(self.engine.now, ev))

    def record(self, event: str, **details: Any) -> None:
        self.log.append({"t": self.engine.now, "event": event, **details})

    # ---------------------------------------------------------------- the pod check

    def check_no_pod_lost(self) -> LostPodCheck:
        """Every pod created is bound, terminal, pending with a reason, or deleted with a
        recorded cause (module docstring); also that the store and the accounting agree."""
        lost: list[str] = [f"{p}: deleted without a cause" for p in self.accounting.uncaused]
        served = {self.scheduler_controller.scheduler_name}
        pods = self.store.list("Pod")
        for pod in pods:
            if pod.spec.node_name or pod.status.phase in TERMINAL:
                continue
            if pod.spec.scheduler_name not in served:
                continue  # waits for a scheduler this simulation does not run
            reason = None
            for c in pod.status.conditions:
                if c.type == "PodScheduled" and c.status == "False" and c.reason:
                    reason = c.reason
            if reason is None:
                lost.append(f"{pod.key}: pending without a reason")
        acc = self.accounting
        if len(pods) != len(acc.flags) or acc.created != len(pods) + acc.deleted:
            lost.append(f"accounting: {acc.created} created, {len(pods)} live, "
                        f"{acc.deleted} deleted")
        return LostPodCheck(ok=not lost, lost=lost, checked=acc.created)

    # -------------------------------------------------------------------- object helpers

    def _create(self, obj: KubeObject, cause: str, where: str = "") -> KubeObject:
        from .store import AlreadyExists

        try:
            return self.store.create(obj, cause=cause)
        except AlreadyExists as err:
            raise InputError(str(err), obj=obj.ref, field=where or None) from None

    def _get(self, kind: str, namespace: str, name: str, where: str = "") -> KubeObject:
        obj = self.store.try_get(kind, namespace, name)
        if obj is None:
            ref = f"{kind}/{namespace}/{name}" if namespace else f"{kind}/{name}"
            raise InputError(f"{kind} not found at t={self.engine.now:g}s", obj=ref,
                             field=where or None)
        return obj

    def _update(self, obj: KubeObject, cause: str) -> KubeObject:
        return self.store.update(obj, cause=cause)

    # ------------------------------------------------------------------------ actions

    def apply(self, objects: Iterable[KubeObject], *, cause: str = SCENARIO_CAUSE) -> None:
        """``kubectl apply``: create what does not exist; for what does, replace labels,
        annotations and the spec (status is kept; a Pod's spec is immutable except for the
        removal of scheduling gates, as in Kubernetes; a Node's capacity and allocatable are
        taken too)."""
        for obj in sorted(objects, key=_kind_rank):
            ns = obj.metadata.namespace if obj.NAMESPACED else ""
            cur = self.store.try_get(obj.KIND, ns, obj.metadata.name)
            if cur is None:
                self._create(obj, cause)
                continue
            new = self.store.edit(cur)
            new.metadata.labels = dict(obj.metadata.labels)
            keep = {k: v for k, v in cur.metadata.annotations.items()
                    if k.startswith("deployment.kubernetes.io/")}
            new.metadata.annotations = {**keep, **obj.metadata.annotations}
            if obj.KIND == "Pod":
                gates = obj.spec.scheduling_gates
                if len(gates) <= len(cur.spec.scheduling_gates) and \
                        all(g in cur.spec.scheduling_gates for g in gates):
                    new.spec = dataclasses.replace(new.spec, scheduling_gates=list(gates))
            else:
                for attr in ("spec", "value", "global_default", "preemption_policy",
                             "subsets"):
                    if attr in type(obj).__dataclass_fields__:
                        value = getattr(obj, attr)
                        setattr(new, attr, dataclasses.replace(value)
                                if dataclasses.is_dataclass(value) else value)
            if obj.KIND == "Node":
                new.status = dataclasses.replace(cur.status,
                                                 capacity=dict(obj.status.capacity),
                                                 allocatable=obj.status.allocatable)
            self._update(new, cause)

    def delete(self, kind: str, namespace: str, name: str, *,
               cause: str = DELETE_CAUSE) -> None:
        """Delete one object (its dependents are garbage collected)."""
        self._get(kind, namespace, name)
        self.store.delete(kind, namespace, name, cause=cause)

    def delete_objects(self, objects: Iterable[KubeObject], *,
                       cause: str = DELETE_CAUSE) -> None:
        """Delete the objects named by manifests (each must exist)."""
        for obj in objects:
            ns = obj.metadata.namespace if obj.NAMESPACED else ""
            self.delete(obj.KIND, ns, obj.metadata.name, cause=cause)

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> None:
        """``kubectl scale``: set spec.replicas of a Deployment or ReplicaSet."""
        from . import deployment

        self._get(kind, namespace, name)
        deployment.scale(self.store, kind, f"{namespace}/{name}", int(replicas))

    def set_image(self, namespace: str, name: str, image: str,
                  container: str | None = None) -> None:
        """``kubectl set image``: a new pod template (a rollout)."""
        from . import deployment

        self._get("Deployment", namespace, name)
        deployment.set_image(self.store, f"{namespace}/{name}", container, image)

    def rollback(self, namespace: str, name: str, revision: int = 0) -> None:
        """``kubectl rollout undo [--to-revision=N]``: the template of that revision's
        ReplicaSet (0: the one before the newest) becomes the Deployment's."""
        from . import deployment

        self._get("Deployment", namespace, name)
        deployment.rollback(self.store, f"{namespace}/{name}", revision)

    def pause(self, namespace: str, name: str) -> None:
        """``kubectl rollout pause``."""
        from . import deployment

        self._get("Deployment", namespace, name)
        deployment.pause(self.store, f"{namespace}/{name}")

    def resume(self, namespace: str, name: str) -> None:
        """``kubectl rollout resume``."""
        from . import deployment

        self._get("Deployment", namespace, name)
        deployment.resume(self.store, f"{namespace}/{name}")

    def fail_node(self, name: str) -> None:
        """The node's kubelet stops (no more heartbeats; the node lifecycle controller
        notices after the grace period)."""
        self._get("Node", "", name)
        self.kubelet.fail_node(name)

    def recover_node(self, name: str) -> None:
        self._get("Node", "", name)
        self.kubelet.recover_node(name)

    def add_node(self, name: str, like: str) -> None:
        """A new node shaped like an existing one (labels, allocatable, taints other than
        node.kubernetes.io/*), named ``name``."""
        from ..model.objects import Node, NodeSpec, NodeStatus, ObjectMeta

        src = self._get("Node", "", like)
        labels = dict(src.metadata.labels)
        if "kubernetes.io/hostname" in labels:
            labels["kubernetes.io/hostname"] = name
        taints = [dataclasses.replace(t) for t in src.spec.taints
                  if not t.key.startswith("node.kubernetes.io/")]
        node = Node(metadata=ObjectMeta(name=name, labels=labels,
                                        annotations=dict(src.metadata.annotations)),
                    spec=NodeSpec(taints=taints),
                    status=NodeStatus(capacity=dict(src.status.capacity),
                                      allocatable=dict(src.allocatable),
                                      images=list(src.status.images)))
        self._create(node, f"added by scenario (like {like})")

    def drain_node(self, name: str) -> None:
        """``kubectl drain``: cordon (spec.unschedulable), then evict every pod on the node
        that has not finished."""
        node = self.store.edit(self._get("Node", "", name))
        node.spec = dataclasses.replace(node.spec, unschedulable=True)
        self._update(node, "cordoned by scenario (drain)")
        for pod in self.store.pods_on_node(name):
            if pod.status.phase not in TERMINAL:
                self.store.delete("Pod", pod.metadata.namespace, pod.metadata.name,
                                  cause=f"evicted: drain node {name}")

    def set_request_rate(self, namespace: str, service: str, rate: float) -> None:
        """The Service's incoming request rate (requests/s) for the load model."""
        self._get("Service", namespace, service)
        self.kube_proxy.set_request_rate(f"{namespace}/{service}", float(rate))

    # -------------------------------------------------------------------- scenarios

    def schedule_actions(self, actions) -> None:
        """Put a scenario's actions on the clock (:data:`~.engine.PRIO_ACTION`)."""
        for action in actions:
            self.engine.at(action.time, self.perform, action, priority=PRIO_ACTION)

    def perform(self, action) -> None:
        """Carry out one scenario action now (logged first as an ``action`` event)."""
        a = action.args
        self.record("action", action=action.kind, index=action.index, **action.describe())
        try:
            self._perform(action.kind, a)
        except InputError as err:
            raise err.located(field=action.where) from None

    def _perform(self, kind: str, a: dict) -> None:
        if kind == "apply":
            self.apply(a["objects"])
        elif kind == "delete":
            if "objects" in a:
                self.delete_objects(a["objects"])
            else:
                self.delete(a["kind"], a["namespace"], a["name"])
        elif kind == "scale":
            self.scale(a["kind"], a["namespace"], a["name"], a["replicas"])
        elif kind == "set-image":
            self.set_image(a["namespace"], a["deployment"], a["image"], a.get("container"))
        elif kind == "rollback":
            self.rollback(a["namespace"], a["deployment"], a["revision"])
        elif kind == "pause":
            self.pause(a["namespace"], a["deployment"])
        elif kind == "resume":
            self.resume(a["namespace"], a["deployment"])
        elif kind == "fail-node":
            self.fail_node(a["node"])
        elif kind == "recover-node":
            self.recover_node(a["node"])
        elif kind == "drain-node":
            self.drain_node(a["node"])
        elif kind == "add-node":
            if "objects" in a:
                self.apply(a["objects"], cause="added by scenario")
            else:
                self.add_node(a["node"], a["like"])
        elif kind == "set-request-rate":
            self.set_request_rate(a["namespace"], a["service"], a["rate"])
        elif kind == "advance":
            pass  # the timeline's clock moved; nothing happens in the cluster
        else:  # pragma: no cover
            raise InputError(f"unknown action {kind!r}")


def simulate_scenario(scenario, *, until: float | None = None, seed: int | None = None,
                      log_path: str | None = None, keep_log: bool = False,
                      on_step=None) -> Simulation:
    """Build and run a :class:`~.scenario.Scenario`; the event log is closed (moved into
    place) when the run ends, and discarded if it fails."""
    sim = Simulation(scenario.objects, seed=scenario.seed if seed is None else seed,
                     profile=scenario.profile, config=scenario.sim_config(),
                     name=scenario.name, log_path=log_path, keep_log=keep_log)
    try:
        sim.schedule_actions(scenario.actions)
        sim.run(scenario.end if until is None else until, on_step)
        if sim._sampling and (not sim.timeline.rows or sim.timeline.rows[-1]["t"] <
                              round(sim.engine.now, 6)):
            sim.timeline.sample()
    except InputError as err:
        sim.log.discard()
        raise err.located(file=scenario.path) from None
    except BaseException:
        sim.log.discard()
        raise
    sim.close()
    return sim

