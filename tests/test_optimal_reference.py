"""Small random placement instances and a plain exhaustive search over them, for the optimal
baseline's tests (and hand-checked cases of the search itself).

An instance is plain data (:class:`Spec`): nodes (capacity, zone, a ``dedicated`` taint,
cordoned, GPUs), pod templates (requests, a toleration, a zone selector, a GPU request, a
priority, an app), per app its rules (required anti-affinity to its own app by hostname or
zone, required zone affinity to its own app, a DoNotSchedule zone spread with maxSkew 1 over
its own app), the pending pods (templates) and bound pods (template, node; bound pods carry
no rules and no GPU request). :func:`to_cluster` writes it as Kubernetes objects;
:func:`exhaustive_optimum` finds the lexicographic optimum (priority-weighted pods placed,
then fewest nodes used) by trying every assignment, written from the rules' definitions, not
from the solver's code.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

from schedbench.cluster import Cluster
from tests.scheduler_helpers import make_node, make_pod

ZONE = "topology.kubernetes.io/zone"
HOST = "kubernetes.io/hostname"


@dataclass
class Spec:
    nodes: list[dict]
    templates: list[dict]
    apps: dict[str, dict]
    pending: list[int]
    bound: list[tuple[int, int]]


@st.composite
def specs(draw, max_nodes: int = 6, max_pods: int = 10, gpus: bool = True) -> Spec:
    n_nodes = draw(st.integers(1, max_nodes))
    nodes = []
    for i in range(n_nodes):
        nodes.append({
            "name": f"n{i}", "cpu": draw(st.sampled_from([2000, 4000])),
            "mem": draw(st.sampled_from([4096, 8192])),
            "pods": draw(st.sampled_from([2, 3, 110])),
            "zone": draw(st.sampled_from(["a", "b", "c"])),
            "tainted": draw(st.integers(0, 3)) == 0,
            "unsched": draw(st.integers(0, 9)) == 0,
            "gpus": draw(st.sampled_from([0, 0, 2])) if gpus else 0})
    apps = {}
    for a in ("a", "b", "c"):
        apps[a] = {"anti": draw(st.sampled_from([None, None, HOST, ZONE])),
                   "aff": draw(st.integers(0, 4)) == 0,
                   "spread": draw(st.integers(0, 3)) == 0}
    n_templates = draw(st.integers(1, 4))
    templates = []
    for _ in range(n_templates):
        templates.append({
            "cpu": draw(st.sampled_from([500, 1000, 1500, 2500])),
            "mem": draw(st.sampled_from([1024, 2048, 3072])),
            "app": draw(st.sampled_from(["a", "b", "c"])),
            "tolerate": draw(st.booleans()),
            "zone_sel": draw(st.sampled_from([None, None, "a"])),
            "gpu": draw(st.sampled_from([0, 0, 500, 1000])) if gpus else 0,
            "prio": draw(st.sampled_from([0, 0, 10]))})
    pending = draw(st.lists(st.integers(0, n_templates - 1), min_size=1, max_size=max_pods))
    bound = draw(st.lists(st.tuples(st.integers(0, n_templates - 1),
                                    st.integers(0, n_nodes - 1)), max_size=3))
    return Spec(nodes, templates, apps, pending, bound)


def _pod(spec: Spec, t: int, name: str, node: str = "", rules: bool = True):
    tpl = spec.templates[t]
    app = tpl["app"]
    rule = spec.apps[app]
    body: dict = {}
    if tpl["tolerate"]:
        body["tolerations"] = [{"key": "dedicated", "operator": "Exists",
                                "effect": "NoSchedule"}]
    if tpl["zone_sel"]:
        body["nodeSelector"] = {ZONE: tpl["zone_sel"]}
    if tpl["prio"]:
        body["priority"] = tpl["prio"]
    sel = {"matchLabels": {"app": app}}
    if rules:
        affinity = {}
        if rule["anti"]:
            affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": sel, "topologyKey": rule["anti"]}]}
        if rule["aff"]:
            affinity["podAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": sel, "topologyKey": ZONE}]}
        if affinity:
            body["affinity"] = affinity
        if rule["spread"]:
            body["topologySpreadConstraints"] = [{
                "maxSkew": 1, "topologyKey": ZONE, "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": sel}]
    pod = make_pod(name, cpu=f"{tpl['cpu']}m", memory=f"{tpl['mem']}Mi", labels={"app": app},
                   node=node, **body)
    if tpl["gpu"] and rules:
        pod.metadata.annotations["alibabacloud.com/gpu-milli"] = str(tpl["gpu"])
        pod.metadata.annotations["alibabacloud.com/gpu-count"] = "1"
    return pod


def to_cluster(spec: Spec) -> Cluster:
    nodes = []
    for nd in spec.nodes:
        extra = {"alibabacloud.com/gpu-count": str(nd["gpus"])} if nd["gpus"] else {}
        nodes.append(make_node(
            nd["name"], cpu=f"{nd['cpu']}m", memory=f"{nd['mem']}Mi", pods=nd["pods"],
            labels={HOST: nd["name"], ZONE: nd["zone"]},
            taints=[{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]
            if nd["tainted"] else [], unschedulable=nd["unsched"], extra=extra))
    pods = []
    for j, (t, n) in enumerate(spec.bound):
        pods.append(_pod(spec, t, f"bound{j}", node=spec.nodes[n]["name"], rules=False))
    for j, t in enumerate(spec.pending):
        pods.append(_pod(spec, t, f"p{j}"))
    return Cluster(nodes=nodes, pods=pods)


def bound_fits(spec: Spec) -> bool:
    """Whether the bound pods fit their nodes (cpu, memory, pod slots)."""
    for n, nd in enumerate(spec.nodes):
        mine = [spec.templates[t] for t, m in spec.bound if m == n]
        if sum(t["cpu"] for t in mine) > nd["cpu"] or sum(t["mem"] for t in mine) > nd["mem"] \
                or len(mine) > nd["pods"]:
            return False
    return True


# ------------------------------------------------------------------------- exhaustive search


def _static_ok(spec: Spec, t: int, n: int) -> bool:
    tpl, nd = spec.templates[t], spec.nodes[n]
    if nd["unsched"] or (nd["tainted"] and not tpl["tolerate"]):
        return False
    if tpl["zone_sel"] and nd["zone"] != tpl["zone_sel"]:
        return False
    if tpl["gpu"] and not nd["gpus"]:
        return False
    return True


def _domain(spec: Spec, n: int, key: str) -> str:
    return spec.nodes[n]["name"] if key == HOST else spec.nodes[n]["zone"]


def _gpus_fit(spec: Spec, pods: list[int], n: int) -> bool:
    """Share pods (500 milli) pair up on a GPU; whole pods take one each."""
    whole = sum(1 for t in pods if spec.templates[t]["gpu"] == 1000)
    half = sum(1 for t in pods if spec.templates[t]["gpu"] == 500)
    return whole + (half + 1) // 2 <= spec.nodes[n]["gpus"]


def _final_ok(spec: Spec, where: list[int | None]) -> bool:
    """Required affinity and spread rules on the final placement (anti-affinity and
    capacities are checked while searching)."""
    everyone = [(spec.templates[t]["app"], n) for t, n in spec.bound]
    everyone += [(spec.templates[t]["app"], n) for t, n in zip(spec.pending, where)
                 if n is not None]
    for t, n in zip(spec.pending, where):
        if n is None:
            continue
        tpl = spec.templates[t]
        app = tpl["app"]
        rule = spec.apps[app]
        if rule["aff"]:
            # kube, one pod at a time: a pod goes next to an A pod already there, and only
            # when no A pod is bound may the first pending one go anywhere
            bound_zones = {spec.nodes[m]["zone"] for t2, m in spec.bound
                           if spec.templates[t2]["app"] == app}
            placed_zones = {spec.nodes[m]["zone"] for t2, m in zip(spec.pending, where)
                            if m is not None and spec.templates[t2]["app"] == app}
            if bound_zones:
                if spec.nodes[n]["zone"] not in bound_zones:
                    return False
            elif len(placed_zones) > 1:
                return False
        if rule["spread"]:
            eligible = [m for m in range(len(spec.nodes))
                        if not tpl["zone_sel"] or spec.nodes[m]["zone"] == tpl["zone_sel"]]
            count = {spec.nodes[m]["zone"]: 0 for m in eligible}
            for a, m in everyone:
                if a == app and m in eligible:
                    count[spec.nodes[m]["zone"]] += 1
            if count[spec.nodes[n]["zone"]] - min(count.values()) > 1:
                return False
    return True


def exhaustive_optimum(spec: Spec) -> tuple[int, int]:
    """(weighted pods placed, nodes used) of the lexicographic optimum, by depth-first
    search over every assignment (identical pods in non-decreasing node order), pruned only
    by capacities, anti-affinity and the objective's optimistic value. Weights: 1 for the
    lowest priority among the pending pods, 2 for the next, ..."""
    levels = sorted({spec.templates[t]["prio"] for t in spec.pending})
    order = sorted(range(len(spec.pending)), key=lambda i: spec.pending[i])
    pods = [spec.pending[i] for i in order]
    weight = [levels.index(spec.templates[t]["prio"]) + 1 for t in pods]
    N = len(spec.nodes)
    cpu = [nd["cpu"] for nd in spec.nodes]
    mem = [nd["mem"] for nd in spec.nodes]
    slots = [nd["pods"] for nd in spec.nodes]
    used = [0] * N
    on_node: list[list[int]] = [[] for _ in range(N)]  # pending templates placed there
    apps_at: list[list[str]] = [[] for _ in range(N)]
    for t, n in spec.bound:
        cpu[n] -= spec.templates[t]["cpu"]
        mem[n] -= spec.templates[t]["mem"]
        slots[n] -= 1
        used[n] += 1
        apps_at[n].append(spec.templates[t]["app"])
    best = [(-1, 0)]
    where: list[int | None] = [None] * len(pods)
    suffix = [0] * (len(pods) + 1)
    for i in range(len(pods) - 1, -1, -1):
        suffix[i] = suffix[i + 1] + weight[i]

    def anti_ok(t: int, n: int) -> bool:
        app = spec.templates[t]["app"]
        key = spec.apps[app]["anti"]
        if not key:
            return True
        d = _domain(spec, n, key)
        return not any(app in apps_at[m] for m in range(N) if _domain(spec, m, key) == d)

    def visit(i: int, w: int) -> None:
        nodes_used = sum(1 for u in used if u)
        if (w + suffix[i], -nodes_used) <= best[0]:
            return
        if i == len(pods):
            placed_where: list[int | None] = [None] * len(pods)
            for k, j in enumerate(order):
                placed_where[j] = where[k]
            if _final_ok(spec, placed_where):
                best[0] = (w, -nodes_used)
            return
        t = pods[i]
        tpl = spec.templates[t]
        lo = 0
        if i > 0 and pods[i - 1] == t:
            lo = N if where[i - 1] is None else where[i - 1]
        for n in range(lo, N + 1):
            if n == N:
                where[i] = None
                visit(i + 1, w)
                continue
            if not _static_ok(spec, t, n) or cpu[n] < tpl["cpu"] or mem[n] < tpl["mem"] \
                    or slots[n] < 1 or not anti_ok(t, n):
                continue
            if tpl["gpu"] and not _gpus_fit(spec, on_node[n] + [t], n):
                continue
            cpu[n] -= tpl["cpu"]
            mem[n] -= tpl["mem"]
            slots[n] -= 1
            used[n] += 1
            on_node[n].append(t)
            apps_at[n].append(tpl["app"])
            where[i] = n
            visit(i + 1, w + weight[i])
            apps_at[n].pop()
            on_node[n].pop()
            used[n] -= 1
            slots[n] += 1
            mem[n] += tpl["mem"]
            cpu[n] += tpl["cpu"]
        where[i] = None

    visit(0, 0)
    w, neg_nodes = best[0]
    return w, -neg_nodes


# --------------------------------------------------------------- the reference, hand-checked


def _two_zones(**app_a) -> Spec:
    nodes = [{"name": f"n{i}", "cpu": 4000, "mem": 8192, "pods": 110, "zone": z,
              "tainted": False, "unsched": False, "gpus": 0} for i, z in enumerate("ab")]
    apps = {a: {"anti": None, "aff": False, "spread": False} for a in "abc"}
    apps["a"].update(app_a)
    tpl = {"cpu": 1500, "mem": 1024, "app": "a", "tolerate": False, "zone_sel": None,
           "gpu": 0, "prio": 0}
    return Spec(nodes, [tpl], apps, [0, 0, 0], [])


def test_reference_packs_and_counts_nodes():
    # 1.5 cores each on two 4-core nodes: two fit on one node, the third needs the other
    assert exhaustive_optimum(_two_zones()) == (3, 2)


def test_reference_anti_affinity_by_host_and_zone():
    assert exhaustive_optimum(_two_zones(anti=HOST)) == (2, 2)
    assert exhaustive_optimum(_two_zones(anti=ZONE)) == (2, 2)


def test_reference_affinity_keeps_pods_in_one_zone():
    # kube places the first pod anywhere, then the others only next to it
    spec = _two_zones(aff=True)
    spec.templates[0]["cpu"] = 1000
    spec.pending = [0] * 6
    assert exhaustive_optimum(spec) == (4, 1)
    spec.bound = [(0, 1)]  # an A pod bound in zone b: pods go there (3 more fit)
    assert exhaustive_optimum(spec) == (3, 1)


def test_reference_spread_skew():
    spec = _two_zones(spread=True)
    spec.templates[0]["cpu"] = 1000
    spec.nodes[1]["cpu"] = 1000  # zone b takes one pod: zone a at most two (skew 1)
    spec.pending = [0] * 5
    assert exhaustive_optimum(spec) == (3, 2)


def test_reference_priority_weights_and_gpus():
    spec = _two_zones()
    spec.nodes = spec.nodes[:1]
    spec.nodes[0]["gpus"] = 1
    spec.templates[0].update(cpu=500, gpu=500)
    spec.templates.append(dict(spec.templates[0], gpu=1000, prio=10))
    spec.pending = [0, 0, 1]  # one GPU: two halves (weight 1 each) or the whole (weight 2)
    assert exhaustive_optimum(spec) == (2, 1)
    spec.templates[1]["prio"] = 0
    spec.templates[0]["prio"] = 10
    assert exhaustive_optimum(spec) == (4, 1)
