"""The Deployment controller (schedbench.sim.deployment): rolling updates within maxSurge /
maxUnavailable at every instant, Recreate without overlap, rollback, pause, proportional
scaling, revision history, progress deadline, and the arithmetic and hash helpers.

The pods run on test_sim_replicaset's FakeKubelet (bind at once, Running after 2 s, Ready
1 s later; images starting with ``broken`` never get Ready).
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.errors import InputError
from schedbench.model.labels import parse_selector
from schedbench.model.objects import (Deployment, DeploymentSpec, DeploymentStrategy,
                                      ObjectMeta, ReplicaSet, ReplicaSetSpec,
                                      RollingUpdateDeployment)
from schedbench.sim import deployment as dep
from schedbench.sim import podutil
from schedbench.sim.deployment import (DeploymentController, compute_hash, get_condition,
                                       pause, resolve_fenceposts, resume, rollback, scale,
                                       scaled_value, set_image)
from schedbench.sim.replicaset import ReplicaSetController
from test_sim_replicaset import make_sim, template

KEY = "default/web"


def make_deployment(replicas: int = 4, *, surge: int | str = "25%",
                    unavailable: int | str = "25%", strategy: str = "RollingUpdate",
                    min_ready_seconds: int = 0, history: int = 10,
                    deadline: int = 600, image: str = "app:v1") -> Deployment:
    strat = DeploymentStrategy(type=strategy, rolling_update=(
        RollingUpdateDeployment(max_surge=surge, max_unavailable=unavailable)
        if strategy == "RollingUpdate" else None))
    return Deployment(metadata=ObjectMeta(name="web"), spec=DeploymentSpec(
        replicas=replicas, selector=parse_selector("app=web"),
        template=template({"app": "web"}, image), strategy=strat,
        min_ready_seconds=min_ready_seconds, revision_history_limit=history,
        progress_deadline_seconds=deadline))


def start(seed: int = 0, **kubelet):
    """A simulation with the ReplicaSet controller started before the Deployment
    controller (as the simulation assembles them)."""
    engine, store, ctx, fake = make_sim(seed, **kubelet)
    rsc = ReplicaSetController(ctx)
    rsc.start()
    dc = DeploymentController(ctx)
    dc.start()
    return engine, store, dc


def active_pods(store) -> list:
    return [p for p in store.list("Pod") if podutil.is_pod_active(p)]


def images(store) -> set[str]:
    return {p.spec.containers[0].image for p in active_pods(store)}


def replicasets(store) -> list:
    return store.list("ReplicaSet")


class Watcher:
    """Checks the rolling-update bounds after every engine event."""

    def __init__(self, store, d: Deployment) -> None:
        self.store = store
        self.mrs = d.spec.min_ready_seconds
        self.max_total = d.spec.replicas + dep.max_surge(d)
        self.min_available = d.spec.replicas - dep.max_unavailable(d)
        self.worst_total = 0
        self.worst_available = math.inf

    def __call__(self, now: float) -> bool:
        pods = active_pods(self.store)
        available = sum(podutil.is_pod_available(p, self.mrs, now) for p in pods)
        self.worst_total = max(self.worst_total, len(pods))
        self.worst_available = min(self.worst_available, available)
        assert len(pods) <= self.max_total, (now, len(pods))
        assert available >= self.min_available, (now, available)
        return False


# ---- arithmetic -----------------------------------------------------------------------------


@given(st.integers(0, 200), st.integers(0, 500), st.booleans())
def test_scaled_value_rounds_percentages(pct, total, up):
    exact = pct * total / 100
    expected = math.ceil(exact - 1e-9) if up else math.floor(exact + 1e-9)
    assert scaled_value(f"{pct}%", total, up) == expected
    assert scaled_value(pct, total, up) == pct


@given(st.one_of(st.integers(0, 5), st.integers(0, 100).map(lambda p: f"{p}%")),
       st.one_of(st.integers(0, 5), st.integers(0, 100).map(lambda p: f"{p}%")),
       st.integers(0, 40))
def test_fenceposts(surge, unavailable, desired):
    s, u = resolve_fenceposts(surge, unavailable, desired)
    assert s == scaled_value(surge, desired, True)
    if s == 0 and scaled_value(unavailable, desired, False) == 0:
        assert u == 1
    else:
        assert u == scaled_value(unavailable, desired, False)


def test_fenceposts_examples():
    assert resolve_fenceposts("25%", "25%", 10) == (3, 2)   # surge up, unavailable down
    assert resolve_fenceposts("25%", "25%", 1) == (1, 0)
    assert resolve_fenceposts(0, "10%", 5) == (0, 1)        # both 0 -> unavailable 1
    d = make_deployment(3, surge=0, unavailable=5)
    assert dep.max_unavailable(d) == 3                      # capped at replicas
    assert dep.max_surge(make_deployment(4, strategy="Recreate")) == 0
    with pytest.raises(InputError):
        scaled_value("x%", 3, True)


def test_template_hash_is_deterministic_and_sensitive():
    a = template({"app": "web"}, "app:v1")
    h = compute_hash(a)
    assert h == compute_hash(template({"app": "web"}, "app:v1"))
    assert h != compute_hash(template({"app": "web"}, "app:v2"))
    assert h != compute_hash(a, collision_count=1)
    assert compute_hash(a, 1) != compute_hash(a, 2)
    assert set(h) <= set("bcdfghjklmnpqrstvwxz2456789") and 1 <= len(h) <= 10


# ---- rollouts -------------------------------------------------------------------------------

int_or_pct = st.one_of(st.integers(0, 4), st.sampled_from(["0%", "10%", "25%", "50%", "100%"]))


@given(replicas=st.integers(1, 9), surge=int_or_pct, unavailable=int_or_pct,
       mrs=st.sampled_from([0, 0, 3]), seed=st.integers(0, 3),
       jitter=st.sampled_from([0.0, 5.0]))
def test_rolling_update_stays_in_bounds_completes_and_rolls_back(replicas, surge, unavailable,
                                                                 mrs, seed, jitter):
    if surge in (0, "0%") and unavailable in (0, "0%"):
        unavailable = 1  # validation refuses maxSurge 0 with maxUnavailable 0
    engine, store, dc = start(seed, jitter=jitter)
    d = store.create(make_deployment(replicas, surge=surge, unavailable=unavailable,
                                     min_ready_seconds=mrs))
    engine.run(until=60)
    assert images(store) == {"app:v1"} and len(active_pods(store)) == replicas
    original = store.get("Deployment", "default", "web").spec.template
    watch = Watcher(store, d)
    set_image(store, KEY, "app", "app:v2")
    engine.run(until=600, on_step=watch)
    d = store.get("Deployment", "default", "web")
    assert images(store) == {"app:v2"} and len(active_pods(store)) == replicas
    s = d.status
    assert (s.replicas, s.updated_replicas, s.available_replicas, s.unavailable_replicas) == \
        (replicas, replicas, replicas, 0)
    assert s.observed_generation == d.metadata.generation
    assert get_condition(s, "Progressing")["reason"] == "NewReplicaSetAvailable"
    assert get_condition(s, "Available")["status"] == "True"
    assert d.metadata.annotations[dep.REVISION] == "2"
    rollback(store, KEY)
    engine.run(until=1200, on_step=watch)
    d = store.get("Deployment", "default", "web")
    assert d.spec.template == original
    assert images(store) == {"app:v1"} and len(active_pods(store)) == replicas
    assert d.metadata.annotations[dep.REVISION] == "3"
    back = [rs for rs in replicasets(store) if rs.spec.replicas == replicas]
    assert len(back) == 1 and back[0].metadata.annotations[dep.REVISION_HISTORY] == "1"
    assert watch.worst_available >= watch.min_available


def test_rolling_update_uses_its_whole_budget():
    """The bounds of the property test are reached, not just respected: with 10 replicas,
    maxSurge 3 and maxUnavailable 2 the rollout runs 13 pods and drops to 8 available."""
    engine, store, dc = start()
    d = store.create(make_deployment(10, surge=3, unavailable=2))
    engine.run(until=30)
    watch = Watcher(store, d)
    set_image(store, KEY, "app", "app:v2")
    engine.run(until=300, on_step=watch)
    assert (watch.worst_total, watch.worst_available) == (13, 8)
    assert images(store) == {"app:v2"}


def test_orphan_replicaset_with_the_template_is_adopted_not_duplicated():
    engine, store, dc = start()
    d = make_deployment(3)
    h = compute_hash(d.spec.template)
    orphan = ReplicaSet(metadata=ObjectMeta(name="handmade", labels={"app": "web"}),
                        spec=ReplicaSetSpec(replicas=3, selector=parse_selector("app=web"),
                                            template=template({"app": "web"})))
    store.create(orphan)
    engine.run(until=10)
    assert len(active_pods(store)) == 3
    d = store.create(d)
    engine.run(until=60)
    (rs,) = replicasets(store)
    assert rs.metadata.name == "handmade" and podutil.is_controlled_by(rs, d)
    assert rs.metadata.annotations[dep.REVISION] == "1" and h not in rs.metadata.name
    assert len(active_pods(store)) == 3
    assert store.get("Deployment", "default", "web").status.available_replicas == 3


@given(replicas=st.integers(1, 8), mrs=st.sampled_from([0, 2]))
def test_recreate_never_overlaps(replicas, mrs):
    engine, store, dc = start()
    store.create(make_deployment(replicas, strategy="Recreate", min_ready_seconds=mrs))
    engine.run(until=60)

    def no_overlap(now: float) -> bool:
        assert len(images(store)) <= 1, now
        return False

    set_image(store, KEY, "app", "app:v2")
    engine.run(until=300, on_step=no_overlap)
    assert images(store) == {"app:v2"} and len(active_pods(store)) == replicas
    d = store.get("Deployment", "default", "web")
    assert d.status.updated_replicas == replicas == d.status.available_replicas


def test_paused_blocks_rollout_but_not_scaling():
    engine, store, dc = start()
    store.create(make_deployment(4))
    engine.run(until=30)
    pause(store, KEY)
    set_image(store, KEY, "app", "app:v2")
    engine.run(until=200)
    assert images(store) == {"app:v1"} and len(replicasets(store)) == 1
    d = store.get("Deployment", "default", "web")
    assert get_condition(d.status, "Progressing")["reason"] == "DeploymentPaused"
    with pytest.raises(InputError, match="paused"):
        rollback(store, KEY)
    scale(store, "Deployment", KEY, 6)
    engine.run(until=260)
    assert images(store) == {"app:v1"} and len(active_pods(store)) == 6
    resume(store, KEY)
    engine.run(until=600)
    assert images(store) == {"app:v2"} and len(active_pods(store)) == 6
    d = store.get("Deployment", "default", "web")
    assert get_condition(d.status, "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_proportional_scaling_mid_rollout():
    """Kubernetes' documented example: 10 replicas, maxSurge 3, maxUnavailable 2, a rollout
    to an image that never gets ready stalls at old 8 / new 5; scaling to 15 adds 3 to the
    old ReplicaSet and 2 to the new one."""
    engine, store, dc = start()
    store.create(make_deployment(10, surge=3, unavailable=2))
    engine.run(until=30)
    set_image(store, KEY, "app", "broken:v2")
    engine.run(until=120)
    sizes = {rs.spec.template.spec.containers[0].image: rs.spec.replicas
             for rs in replicasets(store)}
    assert sizes == {"app:v1": 8, "broken:v2": 5}
    scale(store, "Deployment", KEY, 15)
    engine.run(until=200)
    sizes = {rs.spec.template.spec.containers[0].image: rs.spec.replicas
             for rs in replicasets(store)}
    assert sizes == {"app:v1": 11, "broken:v2": 7}
    assert len(active_pods(store)) == 18
    for rs in replicasets(store):
        assert rs.metadata.annotations[dep.DESIRED_REPLICAS] == "15"
        assert rs.metadata.annotations[dep.MAX_REPLICAS] == "18"


def test_progress_deadline_exceeded_on_a_stuck_rollout():
    engine, store, dc = start()
    store.create(make_deployment(3, deadline=30))
    engine.run(until=20)
    set_image(store, KEY, "app", "broken:v2")
    engine.run(until=40)
    cond = get_condition(store.get("Deployment", "default", "web").status, "Progressing")
    assert cond["status"] == "True"
    engine.run(until=100)
    cond = get_condition(store.get("Deployment", "default", "web").status, "Progressing")
    assert (cond["status"], cond["reason"]) == ("False", "ProgressDeadlineExceeded")
    # a fixed image makes progress again
    set_image(store, KEY, "app", "app:v3")
    engine.run(until=300)
    d = store.get("Deployment", "default", "web")
    assert images(store) == {"app:v3"}
    assert get_condition(d.status, "Progressing")["reason"] == "NewReplicaSetAvailable"


def test_revision_history_limit_cleans_old_replicasets():
    engine, store, dc = start()
    store.create(make_deployment(2, history=2))
    engine.run(until=30)
    for i in range(2, 7):
        set_image(store, KEY, "app", f"app:v{i}")
        engine.run(until=30.0 * i + 60)
        assert images(store) == {f"app:v{i}"}
    rss = replicasets(store)
    revisions = sorted(int(rs.metadata.annotations[dep.REVISION]) for rs in rss)
    assert revisions == [4, 5, 6]  # the current one and revisionHistoryLimit = 2 old ones
    with pytest.raises(InputError, match="revision 2"):
        rollback(store, KEY, revision=2)
    rollback(store, KEY, revision=4)
    engine.run(until=600)
    assert images(store) == {"app:v4"}
    assert store.get("Deployment", "default", "web").metadata.annotations[dep.REVISION] == "7"


def test_kubectl_verbs_validate_input():
    engine, store, dc = start()
    store.create(make_deployment(2))
    engine.run(until=10)
    with pytest.raises(InputError, match="no rollout history"):
        rollback(store, KEY)
    with pytest.raises(InputError, match="container"):
        set_image(store, KEY, "nope", "x:1")
    with pytest.raises(InputError):
        scale(store, "Deployment", KEY, -1)
    with pytest.raises(InputError, match="not found"):
        scale(store, "ReplicaSet", "default/missing", 1)
    with pytest.raises(InputError):
        scale(store, "Pod", KEY, 1)
    assert set_image(store, KEY, None, "app:v9").spec.template.spec.containers[0].image == \
        "app:v9"
    engine.run(until=100)
    assert rollback(store, KEY, revision=0).spec.template.spec.containers[0].image == "app:v1"
    # already at that revision's template: nothing to do
    before = store.get("Deployment", "default", "web").metadata.resource_version
    assert rollback(store, KEY, revision=1).metadata.resource_version == before


def test_replicaset_names_and_labels_carry_the_template_hash():
    engine, store, dc = start()
    d = store.create(make_deployment(2))
    engine.run(until=10)
    (rs,) = replicasets(store)
    h = rs.metadata.labels[dep.POD_TEMPLATE_HASH]
    assert h == compute_hash(d.spec.template)
    assert rs.metadata.name == f"web-{h}"
    assert rs.spec.selector.matches({"app": "web", dep.POD_TEMPLATE_HASH: h})
    assert not rs.spec.selector.matches({"app": "web"})
    assert podutil.is_controlled_by(rs, d)
    assert all(p.metadata.labels[dep.POD_TEMPLATE_HASH] == h for p in active_pods(store))


def test_same_seed_same_mutations():
    def run() -> list[tuple]:
        engine, store, dc = start(seed=5)
        log = []
        store.on_mutation.append(lambda ev: log.append(
            (engine.now, ev.type, ev.obj.KIND, ev.obj.metadata.name,
             ev.obj.metadata.resource_version, ev.cause)))
        store.create(make_deployment(5, surge=2, unavailable=1, min_ready_seconds=2))
        engine.run(until=30)
        set_image(store, KEY, "app", "app:v2")
        engine.run(until=200)
        return log

    assert run() == run()


actions = st.lists(st.one_of(
    st.tuples(st.just("image"), st.sampled_from(["app:v1", "app:v2", "app:v3", "broken:v4"])),
    st.tuples(st.just("scale"), st.integers(0, 7)),
    st.tuples(st.just("pause"), st.none()),
    st.tuples(st.just("resume"), st.none()),
    st.tuples(st.just("rollback"), st.integers(0, 3)),
    st.tuples(st.just("wait"), st.sampled_from([0.5, 3.0, 20.0]))), max_size=8)


@given(actions, st.sampled_from(["RollingUpdate", "Recreate"]), st.integers(0, 2))
def test_random_actions_converge_to_the_current_template(steps, strategy, seed):
    """Whatever happens, once resumed with a good image the Deployment ends with exactly
    ``replicas`` pods of its current template, one active ReplicaSet, and a status that says
    so."""
    engine, store, dc = start(seed, jitter=2.0)
    store.create(make_deployment(3, strategy=strategy, surge=1, unavailable=1))
    engine.run(until=10)
    for kind, arg in steps:
        try:
            if kind == "image":
                set_image(store, KEY, "app", arg)
            elif kind == "scale":
                scale(store, "Deployment", KEY, arg)
            elif kind == "pause":
                pause(store, KEY)
            elif kind == "resume":
                resume(store, KEY)
            elif kind == "rollback":
                rollback(store, KEY, arg)
            else:
                engine.run(until=engine.now + arg)
        except InputError:
            pass  # paused, or no such revision: refused without effect
    resume(store, KEY)
    d = store.get("Deployment", "default", "web")
    if d.spec.template.spec.containers[0].image.startswith("broken"):
        set_image(store, KEY, "app", "app:v5")
    engine.run(until=engine.now + 900)
    d = store.get("Deployment", "default", "web")
    want = d.spec.template.spec.containers[0].image
    pods = active_pods(store)
    assert len(pods) == d.spec.replicas and images(store) <= {want}
    live = [rs for rs in replicasets(store) if rs.spec.replicas > 0]
    assert len(live) == (1 if d.spec.replicas else 0)
    s = d.status
    assert (s.replicas, s.updated_replicas, s.available_replicas) == (d.spec.replicas,) * 3
    assert s.observed_generation == d.metadata.generation
