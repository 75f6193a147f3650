"""Endpoints controller, kube-proxy model and load model.

Properties: after every instant of the virtual clock (all events of one time delivered),
each Service's Endpoints list exactly the ready, bound, non-terminal pods its selector
matches (and the not-ready ones as notReadyAddresses), over random sequences of pod, label,
readiness and Service changes; round-robin splits sum to the interval's requests and differ by
at most one request (also cumulatively); random splits are reproducible from the seed and do
not depend on who asks first.
"""

from __future__ import annotations

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from schedbench.errors import InputError
from schedbench.manifests import dumps_manifests
from schedbench.model.codec import decode_object
from schedbench.model.objects import (Container, ContainerPort, Node, NodeCondition,
                                      NodeStatus, ObjectMeta, Pod, PodCondition, PodSpec,
                                      ResourceRequirements, Service, ServicePort, ServiceSpec)
from schedbench.sim.controller import Context
from schedbench.sim.endpoints import (ANN_LOAD_BALANCING, EndpointsController, KubeProxy,
                                      interval_requests, random_counts, round_robin_counts)
from schedbench.sim.engine import Engine
from schedbench.sim.load import (ANN_BASE_CPU, ANN_CPU_PER_REQUEST, LoadModel,
                                 pod_cpu_request, service_load_params)
from schedbench.sim.objects import (EndpointAddress, EndpointPort, Endpoints, EndpointSubset,
                                    ObjectReference)
from schedbench.sim.store import Store
from schedbench.sim.timefmt import stamp

APPS = ("web", "api", "db")


# ---- helpers --------------------------------------------------------------------------------

def make_ctx(seed: int = 0) -> Context:
    engine = Engine(seed=seed)
    return Context(engine=engine, store=Store(engine))


def start_proxy(ctx: Context, **kw) -> KubeProxy:
    """An Endpoints controller and a kube-proxy (``kw``: its options) running on ``ctx``."""
    EndpointsController(ctx).start()
    proxy = KubeProxy(ctx, **kw)
    proxy.start()
    return proxy


def make_pod(name: str, labels: dict, node: str = "", ready: bool = False, phase: str = "",
             ns: str = "default", cpu: int | None = 500, ports=()) -> Pod:
    requests = {"cpu": cpu} if cpu is not None else {}
    pod = Pod(metadata=ObjectMeta(name=name, namespace=ns, labels=dict(labels)),
              spec=PodSpec(containers=[Container(
                  name="c", resources=ResourceRequirements(requests=requests),
                  ports=[ContainerPort(container_port=p, name=n) for n, p in ports])],
                  node_name=node))
    pod.status.phase = phase or ("Running" if node else "Pending")
    if ready:
        pod.status.conditions = [PodCondition(type="Ready", status="True",
                                              last_transition_time=stamp(0))]
    return pod


def make_service(name: str, selector: dict | None, ns: str = "default", annotations=None,
                 ports=()) -> Service:
    return Service(metadata=ObjectMeta(name=name, namespace=ns,
                                       annotations=dict(annotations or {})),
                   spec=ServiceSpec(selector=selector, ports=list(ports)))


def set_ready(store: Store, ns: str, name: str, ready: bool) -> None:
    pod = store.edit(store.get("Pod", ns, name))
    pod.status.conditions = [PodCondition(type="Ready", status="True" if ready else "False",
                                          last_transition_time=stamp(store.engine.now))]
    store.update(pod)


def expected_endpoints(store: Store, svc: Service) -> tuple[list[str], list[str]]:
    """The plain rule: pods of the Service's namespace whose labels contain the selector,
    bound, not terminal; ready ones and the others."""
    ready, not_ready = [], []
    for pod in store.list("Pod", svc.metadata.namespace):
        if not all(pod.metadata.labels.get(k) == v for k, v in svc.spec.selector.items()):
            continue
        if not pod.spec.node_name or pod.status.phase in ("Succeeded", "Failed"):
            continue
        is_ready = any(c.type == "Ready" and c.status == "True"
                       for c in pod.status.conditions)
        (ready if is_ready else not_ready).append(pod.key)
    return sorted(ready), sorted(not_ready)


def check_endpoints(store: Store) -> None:
    services = {s.key: s for s in store.list("Service")}
    for ep in store.list("Endpoints"):
        assert ep.key in services, f"Endpoints {ep.key} outlived its Service"
    for key, svc in services.items():
        ep = store.try_get("Endpoints", svc.metadata.namespace, svc.metadata.name)
        if not svc.spec.selector:
            continue  # not managed by the controller (Kubernetes leaves the object as is)
        assert ep is not None, f"no Endpoints for {key}"
        ready, not_ready = expected_endpoints(store, svc)
        assert sorted(ep.ready_pod_keys()) == ready
        assert sorted(ep.not_ready_pod_keys()) == not_ready
        for addr in ep.ready_addresses() + ep.not_ready_addresses():
            pod = store.get("Pod", addr.target_ref.namespace, addr.target_ref.name)
            assert addr.node_name == pod.spec.node_name
            assert addr.target_ref.uid == pod.metadata.uid


# ---- the Endpoints object -------------------------------------------------------------------

def test_endpoints_object_dumps_and_loads_as_kubernetes_yaml():
    ep = Endpoints(metadata=ObjectMeta(name="web", namespace="shop"), subsets=[EndpointSubset(
        addresses=[EndpointAddress(node_name="n1", target_ref=ObjectReference(
            kind="Pod", namespace="shop", name="web-1", uid="uid-7"))],
        not_ready_addresses=[EndpointAddress(node_name="n2", target_ref=ObjectReference(
            kind="Pod", namespace="shop", name="web-2", uid="uid-8"))],
        ports=[EndpointPort(port=8080, name="http")])])
    doc = yaml.safe_load(dumps_manifests([ep]))
    assert doc["apiVersion"] == "v1" and doc["kind"] == "Endpoints"
    subset = doc["subsets"][0]
    assert subset["addresses"] == [{"nodeName": "n1", "targetRef": {
        "kind": "Pod", "namespace": "shop", "name": "web-1", "uid": "uid-7"}}]
    assert subset["notReadyAddresses"][0]["targetRef"]["name"] == "web-2"
    assert subset["ports"] == [{"port": 8080, "name": "http"}]
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    assert decode_object(Endpoints, body) == ep
    assert ep.ready_pod_keys() == ["shop/web-1"]
    assert ep.not_ready_pod_keys() == ["shop/web-2"]


# ---- the controller -------------------------------------------------------------------------

def test_endpoints_follow_readiness_labels_and_service_lifecycle():
    ctx = make_ctx()
    store, engine = ctx.store, ctx.engine
    store.create(make_pod("a", {"app": "web"}, node="n1", ready=True))
    ctl = EndpointsController(ctx)
    store.create(make_service("web", {"app": "web"}))
    ctl.start()
    store.create(make_pod("b", {"app": "web"}, node="n2"))
    store.create(make_pod("c", {"app": "web"}))                     # not bound
    store.create(make_pod("d", {"app": "api"}, node="n1", ready=True))
    engine.run()
    ep = store.get("Endpoints", "default", "web")
    assert ep.ready_pod_keys() == ["default/a"]
    assert ep.not_ready_pod_keys() == ["default/b"]
    set_ready(store, "default", "b", True)
    engine.run()
    assert store.get("Endpoints", "default", "web").ready_pod_keys() == ["default/a",
                                                                         "default/b"]
    pod = store.edit(store.get("Pod", "default", "a"))
    pod.metadata.labels = {"app": "api"}
    store.update(pod)
    engine.run()
    assert store.get("Endpoints", "default", "web").ready_pod_keys() == ["default/b"]
    rv = store.get("Endpoints", "default", "web").metadata.resource_version
    pod = store.edit(store.get("Pod", "default", "b"))
    pod.metadata.annotations = {"unrelated": "x"}
    store.update(pod)
    engine.run()
    assert store.get("Endpoints", "default", "web").metadata.resource_version == rv
    store.delete("Endpoints", "default", "web")      # deleted by hand: put back
    engine.run()
    assert store.get("Endpoints", "default", "web").ready_pod_keys() == ["default/b"]
    store.delete("Service", "default", "web")
    engine.run()
    assert store.try_get("Endpoints", "default", "web") is None


def test_endpoints_ports_headless_label_and_publish_not_ready():
    ctx = make_ctx()
    store, engine = ctx.store, ctx.engine
    ctl = EndpointsController(ctx)
    ctl.start()
    svc = make_service("web", {"app": "web"}, ports=[ServicePort(port=80, target_port="http")])
    svc.spec.cluster_ip = "None"
    svc.spec.extra["publishNotReadyAddresses"] = True
    store.create(svc)
    store.create(make_pod("a", {"app": "web"}, node="n1", ports=[("http", 8080)]))
    store.create(make_pod("b", {"app": "web"}, node="n1", ready=True, ports=[("http", 9090)]))
    store.create(make_pod("c", {"app": "web"}, node="n1", ready=True))   # no port "http"
    engine.run()
    ep = store.get("Endpoints", "default", "web")
    assert [(s.ports[0].port, [a.target_ref.name for a in s.addresses]) for s in ep.subsets] \
        == [(8080, ["a"]), (9090, ["b"])]
    assert ep.not_ready_pod_keys() == []
    assert ep.metadata.labels == {"service.kubernetes.io/headless": ""}


@st.composite
def endpoint_scripts(draw):
    """Random operations on pods and Services, each at its own virtual time."""
    ops = []
    n_pods = 0
    for _ in range(draw(st.integers(1, 30))):
        kind = draw(st.sampled_from(("pod", "pod", "pod", "ready", "ready", "label", "bind",
                                     "finish", "delete_pod", "service", "selector",
                                     "delete_service")))
        if kind == "pod":
            ops.append(("pod", f"p{n_pods}", draw(st.sampled_from(APPS)),
                        draw(st.sampled_from(("", "n1", "n2"))), draw(st.booleans()),
                        draw(st.sampled_from(("default", "other")))))
            n_pods += 1
        elif kind in ("service", "selector"):
            ops.append((kind, draw(st.sampled_from(("s1", "s2", "s3"))),
                        draw(st.sampled_from(APPS + (None,)))))
        elif kind == "delete_service":
            ops.append((kind, draw(st.sampled_from(("s1", "s2", "s3")))))
        else:
            ops.append((kind, draw(st.integers(0, 40)), draw(st.sampled_from(APPS)),
                        draw(st.booleans())))
        ops[-1] = (*ops[-1], draw(st.integers(0, 2)))  # time step before the op
    return ops


def _apply(store: Store, op: tuple) -> None:
    kind = op[0]
    pods = store.list("Pod")
    if kind == "pod":
        _, name, app, node, ready, ns, _ = op
        store.create(make_pod(name, {"app": app}, node=node, ready=ready and bool(node),
                              ns=ns))
        return
    if kind in ("service", "selector"):
        _, name, app, _ = op
        selector = {"app": app} if app else None
        current = store.try_get("Service", "default", name)
        if current is None:
            store.create(make_service(name, selector))
        else:
            svc = store.edit(current)
            svc.spec.selector = selector
            store.update(svc)
        return
    if kind == "delete_service":
        store.delete("Service", "default", op[1])
        return
    if not pods:
        return
    _, idx, app, flag, _ = op
    pod = pods[idx % len(pods)]
    if kind == "delete_pod":
        store.delete("Pod", pod.metadata.namespace, pod.metadata.name)
        return
    new = store.edit(pod)
    if kind == "ready":
        if not pod.spec.node_name or pod.status.phase != "Running":
            return
        new.status.conditions = [PodCondition(type="Ready", status="True" if flag else "False",
                                              last_transition_time=stamp(store.engine.now))]
    elif kind == "label":
        new.metadata.labels = {"app": app} if flag else {"app": app, "tier": "x"}
    elif kind == "bind":
        if pod.spec.node_name:
            return
        new.spec.node_name = "n1"
        new.status.phase = "Running"
    elif kind == "finish":
        new.status.phase = "Succeeded" if flag else "Failed"
        new.status.conditions = []
    store.update(new)


@given(endpoint_scripts())
def test_endpoints_only_list_ready_matching_pods(script):
    ctx = make_ctx()
    store, engine = ctx.store, ctx.engine
    EndpointsController(ctx).start()
    t = 0.0
    for op in script:
        t += op[-1]
        engine.at(t, _apply, store, op)
    checks = []

    def after_event(now: float) -> None:
        nxt = engine.peek()
        if nxt is None or nxt > now:      # the instant is complete: every event delivered
            check_endpoints(store)
            checks.append(now)

    engine.run(on_step=after_event)
    assert checks, "the invariant was never checked"
    check_endpoints(store)


# ---- kube-proxy: splitting requests ---------------------------------------------------------

@given(st.floats(0, 5000, allow_nan=False), st.integers(1, 50), st.integers(0, 10 ** 6),
       st.sampled_from((0.25, 1.0, 5.0, 15.0)))
def test_round_robin_shares_sum_to_the_requests_and_differ_by_at_most_one(rate, n, k, interval):
    requests, before = interval_requests(rate, interval, k)
    counts = round_robin_counts(requests, n, before)
    assert sum(counts) == requests
    assert max(counts) - min(counts) <= 1
    # the interval's requests are what a constant rate delivers, within one request
    assert abs(requests - rate * interval) <= 1 + 1e-6 * rate * interval


@given(st.floats(0, 200, allow_nan=False), st.integers(1, 12), st.integers(1, 40))
def test_round_robin_continues_across_intervals(rate, n, intervals):
    totals = np.zeros(n, dtype=np.int64)
    all_requests = 0
    for k in range(intervals):
        requests, before = interval_requests(rate, 1.0, k)
        assert before == all_requests            # no request lost or counted twice
        all_requests += requests
        totals += round_robin_counts(requests, n, before)
    assert totals.sum() == all_requests
    assert totals.max() - totals.min() <= 1      # cumulative shares stay within one request
    assert abs(all_requests - rate * intervals) <= 1


def test_random_counts_are_a_multinomial_split():
    rng = np.random.default_rng(1)
    counts = np.array([random_counts(100, 4, rng) for _ in range(2000)])
    assert (counts.sum(axis=1) == 100).all()
    assert np.allclose(counts.mean(axis=0), 25, atol=0.5)
    assert counts.std() > 2            # really random, not an even split


def _proxy_with_service(seed: int, mode: str, n: int, rate: float = 97.0):
    ctx = make_ctx(seed)
    store, engine = ctx.store, ctx.engine
    proxy = start_proxy(ctx)
    ann = {ANN_LOAD_BALANCING: mode}
    for name in ("web", "api"):
        store.create(make_service(name, {"app": name}, annotations=ann))
        for i in range(n):
            store.create(make_pod(f"{name}-{i}", {"app": name}, node="n1", ready=True))
        proxy.set_request_rate(name, rate)
    engine.run()
    return ctx, proxy


def _splits(ctx, proxy, order, steps=20):
    out = []
    for k in range(steps):
        ctx.engine.run(until=float(k))
        out.append(tuple(tuple(sorted(proxy.service_split(s).items())) for s in order))
    return out


@given(st.integers(0, 2 ** 32), st.integers(1, 8))
def test_random_split_is_reproducible_from_the_seed_and_query_order_free(seed, n):
    ctx1, p1 = _proxy_with_service(seed, "random", n)
    ctx2, p2 = _proxy_with_service(seed, "random", n)
    a = _splits(ctx1, p1, ("web", "api"))
    b = _splits(ctx2, p2, ("api", "web"))
    assert a == [(y, x) for x, y in b]
    for per_interval in a:
        for split in per_interval:
            assert len(split) == n
            assert sum(v for _, v in split) in (97.0,)


def test_random_split_changes_with_the_seed_and_round_robin_does_not():
    r0 = _splits(*_proxy_with_service(0, "random", 5), ("web",))
    r1 = _splits(*_proxy_with_service(1, "random", 5), ("web",))
    assert r0 != r1
    q0 = _splits(*_proxy_with_service(0, "round-robin", 5), ("web",))
    q1 = _splits(*_proxy_with_service(1, "round-robin", 5), ("web",))
    assert q0 == q1
    for (split,) in q0:
        values = [v for _, v in split]
        assert sum(values) == 97.0 and max(values) - min(values) <= 1.0


def test_traffic_without_endpoints_is_dropped_and_rates_reach_pods():
    ctx = make_ctx()
    store, engine = ctx.store, ctx.engine
    proxy = start_proxy(ctx, interval=2.0)
    store.create(make_service("web", {"app": "web"}))
    proxy.set_request_rate("default/web", 10.5)
    engine.run()
    assert proxy.traffic("web") == (10.5, 0.0, 10.5, 0)
    store.create(make_pod("a", {"app": "web"}, node="n1", ready=True))
    store.create(make_pod("b", {"app": "web"}, node="n1", ready=False))
    engine.run()
    assert proxy.endpoints("web") == ("default/a",)
    served = proxy.traffic("web")
    assert served.endpoints == 1 and served.dropped == 0.0 and served.served == 10.5
    assert proxy.pod_request_rate("default/a") == 10.5
    assert proxy.pod_request_rate("default/b") == 0.0
    assert proxy.pod_request_rates() == {"default/a": 10.5}
    with pytest.raises(InputError):
        proxy.set_request_rate("web", -1)
    with pytest.raises(InputError):
        proxy.set_request_rate("a/b/c", 1)


def test_bad_load_balancing_annotation_is_an_input_error():
    ctx = make_ctx()
    proxy = KubeProxy(ctx)
    proxy.start()
    ctx.store.create(make_service("web", {"app": "web"},
                                  annotations={ANN_LOAD_BALANCING: "least-conn"}))
    with pytest.raises(InputError, match="load-balancing"):
        ctx.engine.run()


# ---- the load model -------------------------------------------------------------------------

def test_pod_cpu_use_is_base_plus_rate_times_cpu_per_request():
    ctx = make_ctx()
    store, engine = ctx.store, ctx.engine
    proxy = start_proxy(ctx)
    load = LoadModel(proxy)
    store.create(make_service("web", {"app": "web"}, annotations={
        ANN_CPU_PER_REQUEST: "4", ANN_BASE_CPU: "50"}))
    for i in range(3):
        store.create(make_pod(f"w{i}", {"app": "web"}, node="n1", ready=i < 2, cpu=200))
    proxy.set_request_rate("web", 30)
    engine.run()
    pods = {p.metadata.name: p for p in store.list("Pod")}
    assert load.pod_cpu_usage(pods["w0"]) == 50 + 15 * 4
    assert load.pod_cpu_usage(pods["w2"]) == 50          # not ready: no traffic, base only
    assert load.pod_utilization(pods["w0"]) == pytest.approx(110 / 200)
    pending = make_pod("x", {"app": "web"})
    assert load.pod_cpu_usage(pending) == 0.0
    assert load.pod_metric(pods["w0"]) is None            # no start time: no CPU sample yet


def test_load_parameters_are_validated_and_requests_summed_as_the_hpa_does():
    assert service_load_params(make_service("s", {"a": "b"})) == (10.0, 0.0)
    assert service_load_params(make_service("s", {"a": "b"}, annotations={
        ANN_CPU_PER_REQUEST: "2.5"})) == (2.5, 0.0)
    for bad in ("-1", "ten", "nan", "inf"):
        with pytest.raises(InputError, match="cpu-per-request"):
            service_load_params(make_service("s", {"a": "b"},
                                             annotations={ANN_CPU_PER_REQUEST: bad}))
    pod = make_pod("p", {}, cpu=250)
    pod.spec.containers.append(Container(name="d", resources=ResourceRequirements(
        requests={"cpu": 100})))
    assert pod_cpu_request(pod) == 350
    pod.spec.containers.append(Container(name="e"))
    assert pod_cpu_request(pod) is None


def test_fractional_rates_are_dithered_exactly():
    assert [interval_requests(10.5, 1.0, k)[0] for k in range(4)] == [10, 11, 10, 11]
    assert [interval_requests(0.25, 1.0, k)[0] for k in range(8)] == [0, 0, 0, 1] * 2
    assert sum(interval_requests(0.7, 1.0, k)[0] for k in range(100)) == 70


def test_metrics_server_model_reports_running_pods_of_reporting_nodes():
    ctx = make_ctx()
    store, engine = ctx.store, ctx.engine
    store.create(Node(metadata=ObjectMeta(name="n1"), status=NodeStatus(conditions=[
        NodeCondition(type="Ready", status="True")])))
    store.create(Node(metadata=ObjectMeta(name="n2"), status=NodeStatus(conditions=[
        NodeCondition(type="Ready", status="Unknown")])))
    proxy = start_proxy(ctx)
    down: set[str] = set()
    load = LoadModel(proxy, node_reporting=lambda node: node not in down)
    store.create(make_service("web", {"app": "web"}))
    for name, node in (("a", "n1"), ("b", "n2")):
        pod = make_pod(name, {"app": "web"}, node=node, ready=True)
        pod.status.start_time = stamp(0)
        store.create(pod)
    proxy.set_request_rate("web", 9)
    engine.run(until=10.0)
    a = store.get("Pod", "default", "a")
    assert load.pod_metric(a) is None                 # one sample only: no rate yet
    engine.run(until=20.0)
    assert load.pod_metric(a) == round(load.pod_cpu_usage(a)) > 0
    assert load.pod_metric(store.get("Pod", "default", "b")) is None   # node not Ready
    down.add("n1")
    assert load.pod_metric(a) is None                 # its kubelet stopped reporting


def test_a_pod_serving_two_services_adds_their_load():
    ctx = make_ctx()
    store, engine = ctx.store, ctx.engine
    proxy = start_proxy(ctx)
    load = LoadModel(proxy)
    store.create(make_service("web", {"app": "web"}, annotations={
        ANN_CPU_PER_REQUEST: "2", ANN_BASE_CPU: "30"}))
    store.create(make_service("all", {"tier": "x"}, annotations={
        ANN_CPU_PER_REQUEST: "5", ANN_BASE_CPU: "40"}))
    store.create(make_pod("a", {"app": "web", "tier": "x"}, node="n1", ready=True))
    store.create(make_pod("b", {"app": "web"}, node="n1", ready=True))
    proxy.set_request_rate("web", 10)
    proxy.set_request_rate("all", 4)
    engine.run()
    a, b = store.get("Pod", "default", "a"), store.get("Pod", "default", "b")
    assert proxy.pod_service_rates("default/a") == {"default/web": 5.0, "default/all": 4.0}
    assert load.pod_cpu_usage(a) == 40 + 5 * 2 + 4 * 5     # largest base, both request terms
    assert load.pod_cpu_usage(b) == 30 + 5 * 2
    assert proxy.pod_request_rates() == {"default/a": 9.0, "default/b": 5.0}
