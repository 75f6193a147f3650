"""The ReplicaSet controller (schedbench.sim.replicaset) and the pod helpers it ranks with
(schedbench.sim.podutil): convergence, adoption and release, burst limit, status and
minReadySeconds, and the deletion order against a plain reference ranking.

``FakeKubelet`` (also used by test_sim_deployment) binds every new pod at once and walks it
through Running and Ready with fixed delays; a pod whose image starts with ``broken`` never
becomes ready.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from schedbench.model.labels import parse_selector
from schedbench.model.objects import (Container, ObjectMeta, OwnerReference, Pod, PodCondition,
                                      PodSpec, PodTemplateSpec, ReplicaSet, ReplicaSetSpec)
from schedbench.sim import podutil
from schedbench.sim.controller import Context
from schedbench.sim.engine import PRIO_KUBELET, PRIO_SCHEDULER, Engine
from schedbench.sim.replicaset import (BURST_REPLICAS, ReplicaSetController, pod_from_template,
                                       slow_start_batches)
from schedbench.sim.store import Store
from schedbench.sim.timefmt import stamp

# ---- harness --------------------------------------------------------------------------------


class FakeKubelet:
    """Scheduler and kubelets in one: a new pod is bound at once (round robin over
    ``nodes``; with no nodes it stays pending), Running ``startup`` (+ up to ``jitter``, drawn
    from the engine's rng) seconds later, Ready ``ready`` seconds after that; images
    starting with ``broken`` never get Ready."""

    def __init__(self, engine: Engine, store: Store, nodes: int = 3, startup: float = 2.0,
                 ready: float = 1.0, jitter: float = 0.0) -> None:
        self.engine, self.store = engine, store
        self.nodes = [f"node-{i}" for i in range(nodes)]
        self.startup, self.ready, self.jitter = startup, ready, jitter
        self.bound = 0
        store.watch("Pod", self._on_pod)

    def _on_pod(self, ev) -> None:
        pod = ev.obj
        if ev.type == "ADDED" and not pod.spec.node_name and podutil.is_pod_active(pod):
            self.engine.at(self.engine.now, self._bind, *self._id(pod), priority=PRIO_SCHEDULER)

    @staticmethod
    def _id(pod: Pod) -> tuple[str, str, str]:
        return pod.metadata.namespace, pod.metadata.name, pod.metadata.uid

    def _get(self, ns: str, name: str, uid: str) -> Pod | None:
        pod = self.store.try_get("Pod", ns, name)
        return pod if pod is not None and pod.metadata.uid == uid else None

    def _bind(self, *pid: str) -> None:
        pod = self._get(*pid)
        if pod is None or pod.spec.node_name or not self.nodes:
            return
        new = self.store.edit(pod)
        new.spec.node_name = self.nodes[self.bound % len(self.nodes)]
        self.bound += 1
        new.status.conditions.append(PodCondition(type="PodScheduled", status="True",
                                                  last_transition_time=stamp(self.engine.now)))
        self.store.update(new, cause="scheduled")
        delay = self.startup
        if self.jitter:  # whole milliseconds, as the timestamps
            delay += round(float(self.engine.rng.uniform(0, self.jitter)), 3)
        self.engine.after(delay, self._run, *pid, priority=PRIO_KUBELET)

    def _run(self, *pid: str) -> None:
        pod = self._get(*pid)
        if pod is None or not podutil.is_pod_active(pod):
            return
        new = self.store.edit(pod)
        new.status.phase = "Running"
        new.status.start_time = stamp(self.engine.now)
        self.store.update(new, cause="running")
        if not any(c.image.startswith("broken") for c in pod.spec.containers):
            self.engine.after(self.ready, self._ready, *pid, priority=PRIO_KUBELET)

    def _ready(self, *pid: str) -> None:
        pod = self._get(*pid)
        if pod is None or not podutil.is_pod_active(pod):
            return
        new = self.store.edit(pod)
        new.status.conditions.append(PodCondition(type="Ready", status="True",
                                                  last_transition_time=stamp(self.engine.now)))
        self.store.update(new, cause="ready")


def make_sim(seed: int = 0, **kubelet: float):
    """(engine, store, ctx, kubelet) with the fake kubelet registered first."""
    engine = Engine(seed=seed)
    store = Store(engine)
    ctx = Context(engine, store)
    fake = FakeKubelet(engine, store, **kubelet)
    return engine, store, ctx, fake


def template(labels: dict[str, str], image: str = "app:v1") -> PodTemplateSpec:
    return PodTemplateSpec(metadata=ObjectMeta(labels=dict(labels)),
                           spec=PodSpec(containers=[Container(name="app", image=image)]))


def make_rs(name: str, replicas: int, labels: dict[str, str] | None = None,
            min_ready_seconds: int = 0) -> ReplicaSet:
    labels = labels or {"app": name}
    sel = ",".join(f"{k}={v}" for k, v in labels.items())
    return ReplicaSet(metadata=ObjectMeta(name=name),
                      spec=ReplicaSetSpec(replicas=replicas, selector=parse_selector(sel),
                                          min_ready_seconds=min_ready_seconds,
                                          template=template(labels)))


def controlled_pods(store: Store, rs: ReplicaSet) -> list[Pod]:
    return [p for p in store.list("Pod", rs.metadata.namespace)
            if podutil.is_controlled_by(p, rs) and podutil.is_pod_active(p)]


def set_replicas(store: Store, name: str, replicas: int) -> None:
    rs = store.get("ReplicaSet", "default", name)
    new = store.edit(rs)
    new.spec.replicas = replicas
    store.update(new)


# ---- slow start -----------------------------------------------------------------------------


@given(st.integers(0, 3000))
def test_slow_start_batches_double_and_sum_to_count(count):
    batches = slow_start_batches(count)
    assert sum(batches) == count
    for i, size in enumerate(batches[:-1]):
        assert size == 2 ** i
    if batches:
        assert batches[0] == 1 and 1 <= batches[-1] <= 2 ** (len(batches) - 1)


# ---- availability ---------------------------------------------------------------------------


def _pod(uid: int, *, node: str = "n1", phase: str = "Running", ready_at: float | None = None,
         created: float = 0.0, restarts: int = 0, cost: int | None = None) -> Pod:
    conditions = []
    if ready_at is not None:
        conditions.append(PodCondition(type="Ready", status="True",
                                       last_transition_time=stamp(ready_at)))
    annotations = {}
    if cost is not None:
        annotations[podutil.POD_DELETION_COST_ANNOTATION] = str(cost)
    pod = Pod(metadata=ObjectMeta(name=f"p{uid}", namespace="default", uid=f"uid-{uid}",
                                  creation_timestamp=stamp(created), annotations=annotations),
              spec=PodSpec(containers=[Container(name="c")], node_name=node))
    pod.status.phase = phase
    pod.status.conditions = conditions
    if restarts:
        pod.status.extra["containerStatuses"] = [{"name": "c", "restartCount": restarts}]
    return pod


def test_available_only_strictly_after_min_ready_seconds():
    pod = _pod(1, ready_at=10.0)
    assert podutil.is_pod_available(pod, 0, 10.0)
    assert not podutil.is_pod_available(pod, 5, 15.0)  # ready + minReadySeconds == now
    assert podutil.is_pod_available(pod, 5, 15.001)
    not_ready = _pod(2)
    assert not podutil.is_pod_available(not_ready, 0, 100.0)
    assert podutil.pod_available_at(pod, 5) == 15.0


# ---- deletion ranking -----------------------------------------------------------------------

NOW = 10_000.0


def _reference_key(pod: Pod, rank: int) -> tuple:
    """The deletion order written as a sort key. Valid when every pod's ready time and
    creation time is distinct, so rule 6 (for ready pods) and rule 8 always decide."""
    ready = podutil.is_pod_ready(pod)
    head = (1 if pod.spec.node_name else 0,
            {"Pending": 0, "Unknown": 1, "Running": 2}[pod.status.phase],
            1 if ready else 0,
            podutil.deletion_cost(pod),
            -rank)
    if ready:
        t = podutil.pod_ready_time(pod)
        return head + (_bucket(t), pod.metadata.uid)
    return head + (-podutil.max_container_restarts(pod), _bucket(podutil.seconds(
        pod.metadata.creation_timestamp)), pod.metadata.uid)


def _bucket(t: float) -> int:
    """floor(log2(age in ns)), by repeated halving (not bit_length)."""
    d = round(NOW * 1e9) - round(t * 1e9)
    if d <= 0:
        return -1
    b = -1
    while d:
        d //= 2
        b += 1
    return b


pod_specs = st.lists(
    st.tuples(st.sampled_from(["", "n1", "n2", "n3"]),
              st.sampled_from(["Pending", "Unknown", "Running"]),
              st.booleans(),                      # ready
              st.integers(0, 3),                  # restarts
              st.sampled_from([None, -5, 0, 7])),  # deletion cost
    min_size=1, max_size=25)


@given(pod_specs, st.data())
def test_deletion_order_matches_reference_ranking(specs, data):
    n = len(specs)
    # distinct times (ms) spread over several power-of-two age buckets
    ready_times = data.draw(st.lists(st.integers(0, 9_999_000), min_size=n, max_size=n,
                                     unique=True))
    created = data.draw(st.lists(st.integers(0, 9_999_000), min_size=n, max_size=n,
                                 unique=True))
    uids = data.draw(st.permutations(range(1, n + 1)))
    pods = []
    for i, (node, phase, ready, restarts, cost) in enumerate(specs):
        pods.append(_pod(uids[i], node=node, phase=phase,
                         ready_at=ready_times[i] / 1000 if ready else None,
                         created=created[i] / 1000, restarts=restarts, cost=cost))
    related_extra = data.draw(st.lists(st.sampled_from(["n1", "n2", "n3"]), max_size=6))
    related = pods + [_pod(1000 + i, node=nd) for i, nd in enumerate(related_extra)]
    on_node: dict[str, int] = {}
    for p in related:
        on_node[p.spec.node_name] = on_node.get(p.spec.node_name, 0) + 1
    expected = sorted(pods, key=lambda p: _reference_key(p, on_node[p.spec.node_name]))
    got = podutil.rank_pods_for_deletion(pods, related, NOW)
    assert [p.metadata.uid for p in got] == [p.metadata.uid for p in expected]
    diff = data.draw(st.integers(0, n))
    assert [p.metadata.uid for p in podutil.pods_to_delete(pods, related, diff, NOW)] == \
        [p.metadata.uid for p in (expected[:diff] if diff < n else pods)]


def test_deletion_order_rules_one_by_one():
    rank = podutil.rank_pods_for_deletion
    # 1. unassigned first, whatever else
    a, b = _pod(1, node="", phase="Running", ready_at=1.0), _pod(2, phase="Pending")
    assert rank([b, a], [], NOW)[0] is a
    # 2. Pending < Unknown < Running
    p, u, r = _pod(1, phase="Running"), _pod(2, phase="Unknown"), _pod(3, phase="Pending")
    assert [x.metadata.uid for x in rank([p, u, r], [], NOW)] == ["uid-3", "uid-2", "uid-1"]
    # 3. not ready first
    a, b = _pod(1, ready_at=5.0), _pod(2)
    assert rank([a, b], [], NOW)[0] is b
    # 4. lower deletion cost first, before doubling up
    a, b = _pod(1, ready_at=5.0, cost=10, node="n1"), _pod(2, ready_at=5.0, node="n2")
    assert rank([a, b], [a, a, a, b], NOW)[0] is b
    # 5. more related active pods on the node first
    a, b = _pod(1, ready_at=5.0, node="n1"), _pod(2, ready_at=5.0, node="n2")
    assert rank([a, b], [a, b, _pod(9, node="n2")], NOW)[0] is b
    # 6. ready more recently first; one power-of-two age bucket ties -> lower uid first
    old, new = _pod(1, ready_at=NOW - 4000), _pod(2, ready_at=NOW - 10)
    assert rank([old, new], [], NOW)[0] is new
    x, y = _pod(7, ready_at=NOW - 20.0), _pod(3, ready_at=NOW - 21.0)  # same bucket (2^34 ns)
    assert podutil.log2_bucket(NOW - 20.0, NOW) == podutil.log2_bucket(NOW - 21.0, NOW)
    assert rank([x, y], [], NOW)[0] is y
    # 7. more restarts first (not ready pods)
    a, b = _pod(1, restarts=1, created=5.0), _pod(2, restarts=4, created=1.0)
    assert rank([a, b], [], NOW)[0] is b
    # 8. newer first; unset creation time first of all
    a, b = _pod(1, created=NOW - 5000), _pod(2, created=NOW - 3)
    assert rank([a, b], [], NOW)[0] is b
    c = _pod(3, created=NOW - 3)
    c.metadata.creation_timestamp = None
    assert rank([a, b, c], [], NOW)[0] is c
    # invalid deletion cost counts as 0
    bad = _pod(4)
    bad.metadata.annotations[podutil.POD_DELETION_COST_ANNOTATION] = "lots"
    assert podutil.deletion_cost(bad) == 0


# ---- the controller -------------------------------------------------------------------------


def test_pod_from_template_carries_owner_and_template():
    rs = make_rs("web", 2)
    rs.metadata.uid = "uid-77"
    rs.spec.template.metadata.annotations["a"] = "b"
    pod = pod_from_template(rs, rs.spec.template)
    assert pod.metadata.generate_name == "web-"
    assert pod.metadata.labels == {"app": "web"} and pod.metadata.annotations == {"a": "b"}
    ref = pod.metadata.owner_references[0]
    assert (ref.kind, ref.name, ref.uid, ref.controller, ref.api_version) == \
        ("ReplicaSet", "web", "uid-77", True, "apps/v1")
    pod.spec.containers.append(Container(name="x"))
    assert len(rs.spec.template.spec.containers) == 1  # the template is not shared


@given(st.integers(0, 8), st.lists(st.integers(0, 12), min_size=1, max_size=4),
       st.integers(0, 4), st.integers(0, 3), st.integers(0, 2))
def test_replicaset_converges_adopts_and_ignores_foreign_pods(
        initial, scales, orphans, foreign, terminal):
    engine, store, ctx, _ = make_sim()
    rsc = ReplicaSetController(ctx)
    rsc.start()
    for i in range(orphans):  # matching orphans: adopted
        store.create(Pod(metadata=ObjectMeta(name=f"orphan-{i}", labels={"app": "web"}),
                         spec=PodSpec(containers=[Container(name="c")])))
    for i in range(foreign):  # matching, but controlled by someone else: never touched
        store.create(Pod(metadata=ObjectMeta(
            name=f"foreign-{i}", labels={"app": "web"},
            owner_references=[OwnerReference(api_version="v1", kind="Other", name="x",
                                             uid="uid-elsewhere", controller=True)]),
            spec=PodSpec(containers=[Container(name="c")])))
    for i in range(terminal):  # succeeded matching orphans: ignored, kept
        pod = store.create(Pod(metadata=ObjectMeta(name=f"done-{i}", labels={"app": "web"}),
                               spec=PodSpec(containers=[Container(name="c")])))
        done = store.edit(pod)
        done.status.phase = "Succeeded"
        store.update(done)
    rs = store.create(make_rs("web", initial))
    engine.run(until=30)
    # every matching orphan was adopted; when there were too many, the excess went
    survivors = [p for p in (store.try_get("Pod", "default", f"orphan-{i}")
                             for i in range(orphans)) if p is not None]
    assert len(survivors) == min(orphans, initial)
    assert all(podutil.is_controlled_by(p, rs) for p in survivors)
    assert len(controlled_pods(store, rs)) == initial
    for step, replicas in enumerate(scales):
        set_replicas(store, "web", replicas)
        engine.run(until=30.0 * (step + 2))
        rs = store.get("ReplicaSet", "default", "web")
        pods = controlled_pods(store, rs)
        assert len(pods) == replicas
        assert all(rs.spec.selector.matches(p.metadata.labels) for p in pods)
        s = rs.status
        assert (s.replicas, s.fully_labeled_replicas, s.ready_replicas, s.available_replicas,
                s.observed_generation) == (replicas, replicas, replicas, replicas,
                                           rs.metadata.generation)
    for i in range(foreign):
        pod = store.get("Pod", "default", f"foreign-{i}")
        assert pod.metadata.owner_references[0].uid == "uid-elsewhere"
    for i in range(terminal):
        pod = store.get("Pod", "default", f"done-{i}")
        assert pod.status.phase == "Succeeded" and not pod.metadata.owner_references


def test_owned_pod_whose_labels_change_is_released_and_replaced():
    engine, store, ctx, _ = make_sim()
    ReplicaSetController(ctx).start()
    rs = store.create(make_rs("web", 3))
    engine.run(until=10)
    victim = controlled_pods(store, rs)[0]
    new = store.edit(victim)
    new.metadata.labels = {"app": "other"}
    store.update(new)
    engine.run(until=20)
    released = store.get("Pod", "default", victim.metadata.name)
    assert podutil.controller_ref(released) is None
    assert len(controlled_pods(store, rs)) == 3
    # relabelled back: adopted again, and the ReplicaSet is then one over: one pod goes
    back = store.edit(released)
    back.metadata.labels = {"app": "web"}
    store.update(back)
    engine.run(until=30)
    assert len(controlled_pods(store, rs)) == 3


def test_terminal_pods_do_not_count_and_are_kept():
    engine, store, ctx, _ = make_sim()
    ReplicaSetController(ctx).start()
    rs = store.create(make_rs("job", 2))
    engine.run(until=10)
    first = controlled_pods(store, rs)[0]
    done = store.edit(first)
    done.status.phase = "Failed"
    store.update(done)
    engine.run(until=20)
    assert len(controlled_pods(store, rs)) == 2
    assert store.get("Pod", "default", first.metadata.name).status.phase == "Failed"
    assert store.get("ReplicaSet", "default", "job").status.replicas == 2


def test_burst_limit_caps_creates_and_deletes_per_reconcile():
    engine, store, ctx, _ = make_sim()
    rsc = ReplicaSetController(ctx)  # not started: reconcile by hand, no watch follow-ups
    store.create(make_rs("big", 1200))
    rsc.reconcile("default/big")
    assert store.count("Pod") == BURST_REPLICAS
    rsc.reconcile("default/big")
    rsc.reconcile("default/big")
    assert store.count("Pod") == 1200
    assert store.get("ReplicaSet", "default", "big").status.replicas == 1200
    set_replicas(store, "big", 0)
    rsc.reconcile("default/big")
    assert store.count("Pod") == 700


def test_scale_down_deletes_unscheduled_and_unready_pods_first():
    engine, store, ctx, fake = make_sim(nodes=2)
    rsc = ReplicaSetController(ctx)
    rsc.start()
    store.create(make_rs("web", 4))
    engine.run(until=10)  # 4 ready pods
    ready = {p.metadata.name for p in store.list("Pod")}
    fake.nodes = []  # the scheduler stops: new pods stay pending
    set_replicas(store, "web", 6)
    engine.run(until=11)
    pending = {p.metadata.name for p in store.list("Pod") if not p.spec.node_name}
    assert len(pending) == 2
    set_replicas(store, "web", 5)
    engine.run(until=12)
    left = {p.metadata.name for p in store.list("Pod")}
    assert ready <= left and len(left & pending) == 1


def test_min_ready_seconds_status_follows_availability():
    engine, store, ctx, _ = make_sim(startup=2.0, ready=1.0)
    ReplicaSetController(ctx).start()
    store.create(make_rs("web", 3, min_ready_seconds=10))
    engine.run(until=5)  # ready at t=3
    rs = store.get("ReplicaSet", "default", "web")
    assert (rs.status.ready_replicas, rs.status.available_replicas) == (3, 0)
    engine.run(until=13.0)  # ready time + minReadySeconds: not yet (strictly after)
    assert store.get("ReplicaSet", "default", "web").status.available_replicas == 0
    engine.run(until=13.001)  # the re-check, 1 ms (the timestamps' resolution) later
    assert store.get("ReplicaSet", "default", "web").status.available_replicas == 3


def test_deleted_pods_are_replaced_and_recorded_with_a_cause():
    engine, store, ctx, _ = make_sim()
    ReplicaSetController(ctx).start()
    causes = []
    store.on_mutation.append(lambda ev: causes.append((ev.type, ev.obj.KIND, ev.cause)))
    rs = store.create(make_rs("web", 3))
    engine.run(until=10)
    victim = controlled_pods(store, rs)[0]
    store.delete("Pod", "default", victim.metadata.name, cause="deleted by scenario")
    engine.run(until=20)
    assert len(controlled_pods(store, rs)) == 3
    set_replicas(store, "web", 1)
    engine.run(until=30)
    assert ("DELETED", "Pod", "scaled down") in causes
    assert sum(1 for c in causes if c == ("DELETED", "Pod", "scaled down")) == 2


def test_same_seed_same_mutations():
    def run() -> list[tuple]:
        engine, store, ctx, _ = make_sim(seed=3)
        ReplicaSetController(ctx).start()
        log = []
        store.on_mutation.append(lambda ev: log.append(
            (engine.now, ev.type, ev.obj.KIND, ev.obj.metadata.name, ev.cause)))
        store.create(make_rs("web", 5))
        engine.run(until=10)
        set_replicas(store, "web", 2)
        engine.run(until=20)
        return log

    assert run() == run()


def test_failed_creates_stop_the_slow_start_and_set_replica_failure():
    engine, store, ctx, _ = make_sim()
    rsc = ReplicaSetController(ctx)  # reconciled by hand
    store.create(make_rs("web", 10))
    real_create = store.create
    attempts = []

    def flaky_create(obj, **kw):
        if obj.KIND == "Pod":
            attempts.append(obj.metadata.generate_name)
            if len(attempts) >= 4:  # the 4th create and later fail
                from schedbench.sim.store import AlreadyExists
                raise AlreadyExists("quota exceeded")
        return real_create(obj, **kw)

    store.create = flaky_create
    rsc.reconcile("default/web")
    # batches 1 and 2 succeed; the batch of 4 fails (at its first create): no batch of 3
    assert len(attempts) == 7 and store.count("Pod") == 3
    rs = store.get("ReplicaSet", "default", "web")
    (cond,) = rs.status.extra["conditions"]
    assert (cond["type"], cond["status"], cond["reason"]) == \
        ("ReplicaFailure", "True", "FailedCreate")
    assert rs.status.replicas == 3
    store.create = real_create
    rsc.reconcile("default/web")
    rs = store.get("ReplicaSet", "default", "web")
    assert store.count("Pod") == 10 and "conditions" not in rs.status.extra
