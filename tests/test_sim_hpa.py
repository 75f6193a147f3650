"""The HorizontalPodAutoscaler: the replica calculation against a plain reference of
Kubernetes' documented rules on random inputs, the tolerance band, the scale-down
stabilisation window, the min/max and rate clamps, and a scale-out end to end (traffic ->
endpoints -> load -> HPA -> ReplicaSet) with a fake ReplicaSet controller and kubelet."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.errors import InputError
from schedbench.model.labels import label_selector_from_dict
from schedbench.model.objects import (Container, CrossVersionObjectReference,
                                      HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
                                      MetricSpec, MetricTarget, Node, NodeCondition,
                                      ObjectMeta, Pod, PodCondition, PodSpec, PodTemplateSpec,
                                      ReplicaSet, ReplicaSetSpec, ResourceMetricSource,
                                      ResourceRequirements, Service, ServiceSpec)
from schedbench.sim.controller import Context, Controller, SimConfig, split_key
from schedbench.sim.endpoints import EndpointsController, KubeProxy
from schedbench.sim.engine import Engine
from schedbench.sim.hpa import (DEFAULT_SCALE_DOWN, DEFAULT_SCALE_UP, HPAController,
                                MetricUnavailable, PodInfo, Recommendation, ScaleEvent,
                                Tolerance, calculate_scale_down_limit,
                                calculate_scale_up_limit, convert_with_behavior,
                                convert_with_rules, parse_behavior, plain_metric_replicas,
                                resource_utilization_replicas, stabilize_legacy,
                                stabilize_with_behavior)
from schedbench.sim.load import ANN_CPU_PER_REQUEST, LoadModel
from schedbench.sim.store import Store
from schedbench.sim.timefmt import stamp

TIMING = {"cpu_initialization_period": 300.0, "initial_readiness_delay": 30.0,
          "metric_window": 15.0}


# ---- a plain reference of the replica calculation -------------------------------------------

def reference_replicas(current, target, pods, usage, now, tol=0.1):
    """Kubernetes' documented HPA algorithm (horizontal-pod-autoscale docs, "Algorithm
    details"), written out plainly. ``pods``: PodInfo; ``usage``: name -> millicores for the
    pods with a metric. Returns the replica count or None when no recommendation exists."""
    if not usage or not pods:
        return None
    counted, unready, missing = {}, [], []
    for p in pods:
        if p.deleting or p.phase in ("Failed", "Succeeded", "Pending"):
            continue
        if p.name not in usage:
            missing.append(p)
            continue
        if p.ready is None or p.start_time is None:
            unready.append(p)
            continue
        since = p.ready_since if p.ready_since is not None else p.start_time
        if now - p.start_time < 300:   # initialisation: only samples taken while Ready
            bad = p.ready == "False" or now - since < 15
        else:                           # afterwards: only pods that never became ready
            bad = p.ready == "False" and since - p.start_time < 30
        if bad:
            unready.append(p)
        else:
            counted[p.name] = p
    if not counted:
        return None
    if any(p.request is None for p in pods):
        return None
    req = {p.name: p.request for p in pods}

    def ratio_of(values):
        total_req = sum(req[n] for n in values)
        if total_req == 0:
            return None
        return (sum(values.values()) * 100 // total_req) / target

    values = {n: usage[n] for n in counted}
    ratio = ratio_of(values)
    if ratio is None:
        return None
    up_unready = bool(unready) and ratio > 1
    if not up_unready and not missing:
        return current if abs(ratio - 1) <= tol + 1e-12 else math.ceil(ratio * len(counted))
    for p in missing:
        if ratio < 1:
            values[p.name] = p.request * max(100, target) // 100
        elif ratio > 1:
            values[p.name] = 0
    if up_unready:
        for p in unready:
            values[p.name] = 0
    new_ratio = ratio_of(values)
    if abs(new_ratio - 1) <= tol + 1e-12 or (ratio < 1 < new_ratio) or (ratio > 1 > new_ratio):
        return current
    n = math.ceil(new_ratio * len(values))
    if (new_ratio < 1 and n > current) or (new_ratio > 1 and n < current):
        return current
    return n


@st.composite
def pod_sets(draw, all_ready: bool = False):
    now = 1000.0
    pods, usage = [], {}
    for i in range(draw(st.integers(1, 12))):
        request = draw(st.sampled_from((100, 250, 500, 1000)))
        name = f"p{i}"
        if all_ready:
            pods.append(PodInfo(name, "Running", False, "True", 100.0, 50.0, request))
            usage[name] = draw(st.integers(0, 3 * request))
            continue
        phase = draw(st.sampled_from(("Running", "Running", "Running", "Pending", "Failed")))
        start = draw(st.sampled_from((None, 0.0, 900.0, 990.0)))
        ready = draw(st.sampled_from((None, "True", "True", "False")))
        since = draw(st.sampled_from((None, 10.0, 500.0, 995.0)))
        pods.append(PodInfo(name, phase, draw(st.booleans()) and draw(st.booleans()), ready,
                            since, start, request))
        if draw(st.integers(0, 4)) > 0:
            usage[name] = draw(st.integers(0, 3 * request))
    return now, pods, usage


@given(pod_sets(all_ready=True), st.integers(1, 20), st.sampled_from((30, 50, 80, 100, 150)))
def test_desired_replicas_match_the_plain_formula(data, current, target):
    now, pods, usage = data
    got = resource_utilization_replicas(current, target, pods, usage, now, **TIMING)
    util = sum(usage.values()) * 100 // sum(p.request for p in pods)
    expected = current if 0.9 <= util / target <= 1.1 else math.ceil(util / target * len(pods))
    assert got.replicas == expected
    assert got.utilization == util


@given(pod_sets(), st.integers(1, 20), st.sampled_from((50, 80, 120)))
def test_replica_calculation_with_unready_and_missing_pods_matches_the_reference(
        data, current, target):
    now, pods, usage = data
    usage = {n: v for n, v in usage.items()}
    expected = reference_replicas(current, target, pods, usage, now)
    try:
        got = resource_utilization_replicas(current, target, pods, usage, now,
                                            **TIMING).replicas
    except MetricUnavailable:
        got = None
    assert got == expected


def _ready_pods(n, request=100):
    return [PodInfo(f"p{i}", "Running", False, "True", 100.0, 50.0, request) for i in range(n)]


def test_tolerance_band_keeps_the_current_count():
    pods = _ready_pods(4)
    def desired(per_pod_usage, tol=Tolerance()):
        usage = {p.name: per_pod_usage for p in pods}
        return resource_utilization_replicas(4, 50, pods, usage, 1000.0, tol,
                                             **TIMING).replicas
    assert desired(55) == 4      # ratio 1.10: inside the band
    assert desired(45) == 4      # ratio 0.90: inside
    assert desired(56) == 5      # ratio 1.12 -> ceil(4.48)
    assert desired(44) == 4      # ratio 0.88 -> ceil(3.52) = 4
    assert desired(40) == 4      # ratio 0.80 -> ceil(3.2) = 4
    assert desired(37) == 3      # ratio 0.74 -> ceil(2.96) = 3
    assert desired(100) == 8
    assert desired(56, Tolerance(up=0.2, down=0.1)) == 4   # a wider scale-up tolerance


def test_missing_and_unready_pods_damp_a_scale_up_and_a_scale_down():
    now = 1000.0
    ready = _ready_pods(2)
    fresh = PodInfo("new", "Running", False, "True", 995.0, 990.0, 100)   # ready 5 s ago
    usage = {"p0": 100, "p1": 100, "new": 100}
    # ready pods at 200 % of a 100 % target: fast path would give 4; the unready new pod
    # counts as 0 -> ratio (200 + 0) / 300 * 100 % = 66 %... recomputed over 3 pods.
    got = resource_utilization_replicas(2, 50, ready + [fresh], usage, now, **TIMING)
    assert got.replicas == math.ceil((200 * 100 // 300) / 50 * 3)
    # scale-down with a missing pod: it counts as using 100 % of its request
    gone = PodInfo("lost", "Running", False, "True", 100.0, 50.0, 100)
    got = resource_utilization_replicas(3, 50, ready + [gone], {"p0": 10, "p1": 10}, now,
                                        **TIMING)
    assert got.replicas == math.ceil(((10 + 10 + 100) * 100 // 300) / 50 * 3)
    # ... or its target when that is above 100 %: (10 + 10 + 150) / 300 = 56 % of 150 %
    got = resource_utilization_replicas(3, 150, ready + [gone], {"p0": 10, "p1": 10}, now,
                                        **TIMING)
    assert got.replicas == math.ceil((56 / 150) * 3) == 2
    with pytest.raises(MetricUnavailable, match="no metrics"):
        resource_utilization_replicas(3, 50, ready, {}, now, **TIMING)


# ---- normalisation --------------------------------------------------------------------------

@given(st.integers(0, 20), st.lists(st.tuples(st.integers(0, 120), st.integers(0, 20)),
                                    min_size=1, max_size=40),
       st.sampled_from((60.0, 300.0)))
def test_stabilisation_window_keeps_the_highest_recent_recommendation(start, steps, window):
    recs = [Recommendation(start, 0.0)]
    history = [(start, 0.0)]
    now = 0.0
    for dt, desired in steps:
        now += dt
        got = stabilize_legacy(recs, desired, now, window)
        history.append((desired, now))
        assert got == max(r for r, t in history if t >= now - window)
        assert len(recs) <= len(history)


@given(st.integers(1, 20), st.lists(st.tuples(st.integers(1, 60), st.integers(0, 20)),
                                    min_size=1, max_size=30),
       st.integers(0, 120), st.integers(0, 400))
def test_behavior_stabilisation_uses_both_windows(current, steps, up_window, down_window):
    recs: list[Recommendation] = []
    history = []
    now = 0.0
    for dt, desired in steps:
        now += dt
        got = stabilize_with_behavior(recs, desired, current, now, up_window, down_window)
        history.append((desired, now))
        up = min(r for r, t in history if t > now - up_window or t == now)
        down = max(r for r, t in history if t > now - down_window or t == now)
        assert got == min(max(current, up), down)


@given(st.integers(1, 30), st.integers(0, 200), st.integers(1, 10), st.integers(0, 40))
def test_min_max_and_rate_clamps_without_behavior(current, desired, lo, extra):
    hi = lo + extra
    current = min(max(current, lo), hi)
    got, reason, _ = convert_with_rules(current, desired, lo, hi)
    assert got == min(max(desired, lo), min(hi, max(2 * current, 4)))
    assert lo <= got <= hi
    assert (reason != "") == (got != desired)


def test_default_behavior_limits_scale_up_per_15s_and_scale_down():
    assert calculate_scale_up_limit(1, [], [], DEFAULT_SCALE_UP, 0.0) == 5     # +4 pods
    assert calculate_scale_up_limit(10, [], [], DEFAULT_SCALE_UP, 0.0) == 20   # +100 %
    events = [ScaleEvent(4, 0.0, False)]
    # 2 -> 6 at t=0: within the 15 s period the start count is 2, the limit max(6, 4) = 6
    assert calculate_scale_up_limit(6, events, [], DEFAULT_SCALE_UP, 10.0) == 6
    assert calculate_scale_up_limit(6, events, [], DEFAULT_SCALE_UP, 15.0) == 12
    assert calculate_scale_down_limit(8, [], [], DEFAULT_SCALE_DOWN, 0.0) == 0
    behavior = parse_behavior(_hpa(behavior={"scaleUp": {"policies": [
        {"type": "Pods", "value": 1, "periodSeconds": 60}]}}))
    assert convert_with_behavior(3, 10, 1, 20, behavior, [], [], 0.0)[:2] == (4, "ScaleUpLimit")
    assert convert_with_behavior(3, 1, 2, 20, behavior, [], [], 0.0)[:2] == (2, "TooFewReplicas")
    assert convert_with_behavior(3, 30, 1, 3, behavior, [], [], 0.0)[0] == 3


def test_behavior_is_validated():
    for bad, field in (({"scaleUp": {"policies": []}}, "scaleUp.policies"),
                       ({"scaleUp": {"selectPolicy": "Most"}}, "scaleUp.selectPolicy"),
                       ({"scaleDown": {"stabilizationWindowSeconds": 4000}},
                        "scaleDown.stabilizationWindowSeconds"),
                       ({"scaleDown": {"policies": [{"type": "Pods", "value": 0,
                                                     "periodSeconds": 15}]}},
                        "scaleDown.policies[0].value"),
                       ({"scaleSideways": {}}, "scaleSideways")):
        with pytest.raises(InputError) as err:
            parse_behavior(_hpa(behavior=bad))
        assert err.value.field == f"spec.behavior.{field}"
    b = parse_behavior(_hpa(behavior={"scaleDown": {"stabilizationWindowSeconds": 60}}))
    assert b.scale_up == DEFAULT_SCALE_UP
    assert b.scale_down.stabilization_window_seconds == 60
    assert b.scale_down.policies == DEFAULT_SCALE_DOWN.policies
    assert parse_behavior(_hpa()) is None


# ---- end to end -----------------------------------------------------------------------------

def _hpa(name="web", target_kind="ReplicaSet", lo=2, hi=10, util=50, behavior=None,
         api_version="autoscaling/v2"):
    spec = HorizontalPodAutoscalerSpec(
        scale_target_ref=CrossVersionObjectReference(kind=target_kind, name=name,
                                                     api_version="apps/v1"),
        min_replicas=lo, max_replicas=hi, behavior=dict(behavior or {}))
    if api_version == "autoscaling/v1":
        spec.target_cpu_utilization_percentage = util
    else:
        spec.metrics = [MetricSpec(type="Resource", resource=ResourceMetricSource(
            name="cpu", target=MetricTarget(type="Utilization", average_utilization=util)))]
    return HorizontalPodAutoscaler(metadata=ObjectMeta(name=name, namespace="default"),
                                   spec=spec, api_version=api_version)


class FakeReplicaSets(Controller):
    """Just enough of a ReplicaSet controller and kubelet: pods on node n1, Running after
    ``startup`` seconds, Ready ``ready`` seconds later; scale-down deletes the newest."""

    name = "fake-replicasets"

    def __init__(self, ctx, startup=2.0, ready=1.0):
        super().__init__(ctx)
        self.startup, self.ready = startup, ready
        self.counter = 0

    def start(self):
        self.store.watch("ReplicaSet", lambda ev: self.enqueue(ev.obj.key))

    def reconcile(self, key):
        ns, name = split_key(key)
        rs = self.store.try_get("ReplicaSet", ns, name)
        if rs is None:
            return
        pods = self.store.list("Pod", ns, label_selector=rs.spec.selector)
        for pod in pods[rs.spec.replicas:][::-1]:
            self.store.delete("Pod", ns, pod.metadata.name, cause="scaled down")
        for _ in range(rs.spec.replicas - len(pods)):
            self.counter += 1
            t = rs.spec.template
            pod = Pod(metadata=ObjectMeta(name=f"{name}-{self.counter}", namespace=ns,
                                          labels=dict(t.metadata.labels)),
                      spec=PodSpec(containers=list(t.spec.containers), node_name="n1"))
            created = self.store.create(pod)
            self.engine.after(self.startup, self._running, ns, created.metadata.name)

    def _running(self, ns, name):
        pod = self.store.try_get("Pod", ns, name)
        if pod is None:
            return
        pod = self.store.edit(pod)
        pod.status.phase = "Running"
        pod.status.start_time = stamp(self.engine.now)
        self.store.update(pod)
        self.engine.after(self.ready, self._ready, ns, name)

    def _ready(self, ns, name):
        pod = self.store.try_get("Pod", ns, name)
        if pod is None:
            return
        pod = self.store.edit(pod)
        pod.status.conditions = [PodCondition(type="Ready", status="True",
                                              last_transition_time=stamp(self.engine.now))]
        self.store.update(pod)


def _cluster(hpa: HorizontalPodAutoscaler, replicas: int = 2, seed: int = 0):
    engine = Engine(seed=seed)
    store = Store(engine)
    log: list[dict] = []
    ctx = Context(engine=engine, store=store, config=SimConfig(), log=log.append)
    store.create(Node(metadata=ObjectMeta(name="n1"), status=None or Node().status))
    node = store.edit(store.get("Node", "", "n1"))
    node.status.conditions = [NodeCondition(type="Ready", status="True")]
    store.update(node)
    proxy = KubeProxy(ctx)
    load = LoadModel(proxy)
    controllers = [EndpointsController(ctx), proxy, HPAController(ctx, load),
                   FakeReplicaSets(ctx)]
    for c in controllers:
        c.start()
    labels = {"app": "web"}
    store.create(Service(metadata=ObjectMeta(name="web", namespace="default",
                                             annotations={ANN_CPU_PER_REQUEST: "10"}),
                         spec=ServiceSpec(selector=labels)))
    store.create(ReplicaSet(metadata=ObjectMeta(name="web", namespace="default"),
                            spec=ReplicaSetSpec(
                                replicas=replicas, selector=label_selector_from_dict(
                                    {"matchLabels": labels}),
                                template=PodTemplateSpec(
                                    metadata=ObjectMeta(labels=labels),
                                    spec=PodSpec(containers=[Container(
                                        name="app", resources=ResourceRequirements(
                                            requests={"cpu": 100}))])))))
    store.create(hpa)
    return ctx, proxy, log


def _replicas(store):
    return store.get("ReplicaSet", "default", "web").spec.replicas


def test_scale_out_under_rising_rate_then_stabilised_scale_in():
    ctx, proxy, log = _cluster(_hpa(lo=2, hi=10, util=50))
    engine, store = ctx.engine, ctx.store
    timeline = []

    def sample(now):
        timeline.append((now, _replicas(store)))

    for t in range(0, 1500, 5):
        engine.at(float(t), lambda: sample(engine.now), priority=90)
    engine.at(60.0, proxy.set_request_rate, "web", 20.0)     # 2 pods at 100 % of request
    engine.at(200.0, proxy.set_request_rate, "web", 60.0)    # needs 12 pods > max 10
    engine.at(600.0, proxy.set_request_rate, "web", 5.0)     # needs 1 pod < min 2
    engine.run(until=1500.0)
    counts = [r for _, r in timeline]
    assert counts[0] == 2
    assert max(counts) == 10                     # scaled out, clamped at maxReplicas
    up = [(t, r) for t, r in timeline if t < 600]
    assert all(b >= a for (_, a), (_, b) in zip(up, up[1:]))   # no scale-in while rising
    scales = [r for r in log if r["event"] == "hpa" and "desired" in r]
    assert scales, "the HPA never scaled"
    for rec in scales:
        assert rec["desired"] <= max(2 * rec["current"], 4) and rec["desired"] <= 10
        assert rec["t"] % 15 == 0                # on the sync period
    assert min(r["t"] for r in scales) >= 60     # nothing to do before traffic arrives
    downs = [rec for rec in scales if rec["desired"] < rec["current"]]
    assert downs and min(r["t"] for r in downs) >= 600 + 300 - 15   # stabilisation window
    assert counts[-1] == 2                       # back to minReplicas
    hpa = store.get("HorizontalPodAutoscaler", "default", "web")
    st_ = hpa.status
    assert st_["currentReplicas"] == 2 and st_["desiredReplicas"] == 2
    assert st_["currentMetrics"][0]["resource"]["name"] == "cpu"
    assert st_["lastScaleTime"] == stamp(downs[-1]["t"])
    assert {c["type"] for c in st_["conditions"]} == {"AbleToScale", "ScalingActive",
                                                     "ScalingLimited"}


def test_same_seed_same_hpa_decisions_and_random_balancing_differs_by_seed():
    def run(seed):
        ctx, proxy, log = _cluster(_hpa(lo=1, hi=20, util=60), replicas=3, seed=seed)
        svc = ctx.store.edit(ctx.store.get("Service", "default", "web"))
        svc.metadata.annotations["schedbench.io/load-balancing"] = "random"
        ctx.store.update(svc)
        ctx.engine.at(30.0, proxy.set_request_rate, "web", 37.0)
        ctx.engine.run(until=400.0)
        return [(r["t"], r.get("current"), r.get("desired")) for r in log]
    assert run(3) == run(3)


def test_missing_target_and_v1_status():
    ctx, proxy, log = _cluster(_hpa(name="other", target_kind="Deployment"))
    ctx.engine.run(until=100.0)
    hpa = ctx.store.get("HorizontalPodAutoscaler", "default", "other")
    cond = {c["type"]: c for c in hpa.status["conditions"]}
    assert cond["AbleToScale"]["status"] == "False"
    assert cond["AbleToScale"]["reason"] == "FailedGetScale"
    assert sum(1 for r in log if r.get("reason") == "FailedGetScale") == 1   # logged once
    ctx, proxy, log = _cluster(_hpa(api_version="autoscaling/v1", util=50))
    ctx.engine.at(20.0, proxy.set_request_rate, "web", 10.0)
    ctx.engine.run(until=100.0)
    status = ctx.store.get("HorizontalPodAutoscaler", "default", "web").status
    assert status["currentCPUUtilizationPercentage"] == 50   # 5 req/s * 10m / 100m
    assert "conditions" not in status and status["currentReplicas"] == 2


def test_behavior_rate_limit_end_to_end():
    policy = {"scaleUp": {"policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}]}}
    ctx, proxy, log = _cluster(_hpa(lo=2, hi=10, util=50, behavior=policy))
    ctx.engine.at(20.0, proxy.set_request_rate, "web", 60.0)   # wants 12 pods at once
    ctx.engine.run(until=600.0)
    ups = [r for r in log if r["event"] == "hpa" and r.get("desired", 0) > r.get("current", 0)]
    assert len(ups) >= 5
    for rec in ups:
        added = sum(u["desired"] - u["current"] for u in ups if rec["t"] - 60 < u["t"] <= rec["t"])
        assert added <= 1                     # at most one pod per 60 s
    assert _replicas(ctx.store) == 2 + len(ups) <= 10


@given(pod_sets(all_ready=True), st.integers(1, 20), st.sampled_from((50, 200, 750)))
def test_average_value_target_matches_the_plain_formula(data, current, target_milli):
    now, pods, usage = data
    got = plain_metric_replicas(current, target_milli, pods, usage, now, **TIMING)
    average = sum(usage.values()) // len(usage)
    ratio = average / target_milli
    expected = current if 0.9 <= ratio <= 1.1 else math.ceil(ratio * len(pods))
    assert got.replicas == expected and got.average == average


def test_an_unavailable_metric_blocks_scale_down_but_not_scale_up():
    hpa = _hpa(lo=1, hi=10, util=50)
    hpa.spec.metrics.insert(0, MetricSpec(type="Resource", resource=ResourceMetricSource(
        name="memory", target=MetricTarget(type="Utilization", average_utilization=60))))
    ctx, proxy, log = _cluster(hpa, replicas=4)
    ctx.engine.run(until=200.0)            # no traffic: cpu says 1 replica, memory unknown
    assert _replicas(ctx.store) == 4
    status = ctx.store.get("HorizontalPodAutoscaler", "default", "web").status
    active = next(c for c in status["conditions"] if c["type"] == "ScalingActive")
    assert active["status"] == "False" and "memory" in active["message"]
    ctx.engine.at(200.0, proxy.set_request_rate, "web", 60.0)   # cpu says 12
    ctx.engine.run(until=300.0)
    assert _replicas(ctx.store) == 10
