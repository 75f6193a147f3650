"""The object model: decoding, validation, and the effective-request rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.errors import InputError, ManifestError
from schedbench.manifests import object_from_dict
from schedbench.model.objects import (
    DEFAULT_MEMORY_REQUEST,
    DEFAULT_MILLI_CPU_REQUEST,
    Container,
    Pod,
    PodSpec,
    ResourceRequirements,
    Taint,
    Toleration,
    pod_non_zero_requests,
    pod_requests,
)

Mi = 1024 ** 2
Gi = 1024 ** 3


def pod(spec: dict, name: str = "p", **meta) -> Pod:
    return object_from_dict({"apiVersion": "v1", "kind": "Pod",
                             "metadata": {"name": name, **meta}, "spec": spec})


def container(name: str, requests: dict | None = None, **extra) -> dict:
    c = {"name": name, "image": "x"}
    if requests is not None:
        c["resources"] = {"requests": requests}
    c.update(extra)
    return c


# ------------------------------------------------------------------------- effective requests


def test_requests_sum_regular_containers():
    p = pod({"containers": [container("a", {"cpu": "100m", "memory": "1Gi"}),
                            container("b", {"cpu": "1.5", "nvidia.com/gpu": "1"})]})
    assert p.requests() == {"cpu": 1600, "memory": Gi, "nvidia.com/gpu": 1}


def test_init_container_peak_dominates_when_larger():
    # The Kubernetes documentation's example: init containers run one at a time, so the pod
    # needs the largest init request if that exceeds the sum of the app containers.
    p = pod({"initContainers": [container("i1", {"cpu": "2"}), container("i2", {"cpu": "1"})],
             "containers": [container("a", {"cpu": "500m", "memory": "1Gi"})]})
    assert p.requests() == {"cpu": 2000, "memory": Gi}


def test_sidecars_add_to_steady_state_and_to_later_init_phases():
    # KEP-753: a restartable init container keeps running, so it adds to the app containers and
    # to every init container started after it, but not to the ones before it.
    p = pod({"initContainers": [
        container("before", {"cpu": "1"}),
        container("sidecar", {"cpu": "300m", "memory": "100Mi"}, restartPolicy="Always"),
        container("after", {"cpu": "800m"}),
    ], "containers": [container("app", {"cpu": "200m", "memory": "50Mi"})]})
    # steady: 200m + 300m = 500m; phases: before=1000m, sidecar=300m, after=800m+300m=1100m
    assert p.requests() == {"cpu": 1100, "memory": 150 * Mi}


def test_overhead_is_added_after_everything():
    p = pod({"overhead": {"cpu": "250m", "memory": "120Mi"},
             "containers": [container("a", {"cpu": "1"})]})
    assert p.requests() == {"cpu": 1250, "memory": 120 * Mi}
    assert pod_requests(p.spec, include_overhead=False) == {"cpu": 1000}


def test_pod_level_requests_replace_aggregate_for_cpu_and_memory_only():
    p = pod({"resources": {"requests": {"cpu": "2", "memory": "1Gi"}},
             "containers": [container("a", {"cpu": "500m", "memory": "100Mi",
                                            "nvidia.com/gpu": "1"})]})
    assert p.requests() == {"cpu": 2000, "memory": Gi, "nvidia.com/gpu": 1}


def test_non_zero_defaults_apply_only_to_missing_requests():
    p = pod({"containers": [container("none"), container("cpu-only", {"cpu": "300m"}),
                            container("explicit-zero", {"cpu": "0", "memory": "0"})]})
    assert p.requests() == {"cpu": 300, "memory": 0}
    assert p.non_zero_requests() == {
        "cpu": DEFAULT_MILLI_CPU_REQUEST + 300 + 0,
        "memory": DEFAULT_MEMORY_REQUEST * 2 + 0,
    }


def test_non_zero_defaults_with_pod_level_requests_fill_only_unstated_resources():
    p = pod({"resources": {"requests": {"cpu": "1"}}, "containers": [container("a")]})
    assert p.non_zero_requests() == {"cpu": 1000, "memory": DEFAULT_MEMORY_REQUEST}
    assert p.requests() == {"cpu": 1000}


def test_best_effort_pod_requests_nothing_but_scores_as_defaults():
    p = pod({"containers": [container("a")]})
    assert p.requests() == {}
    assert p.non_zero_requests() == {"cpu": 100, "memory": 200 * Mi}


# Reference for the property below: written per resource from KEP-753's formula
#   request(r) = max( sum(app) + sum(sidecars), max_i init_phase_i ) + overhead
# where init_phase_i = own(i) + sum(sidecars before i) for an ordinary init container and
# sum(sidecars up to and including i) for a sidecar; pod-level cpu/memory replace the max.

RESOURCES = ("cpu", "memory", "example.com/foo")
_requests = st.dictionaries(st.sampled_from(RESOURCES), st.integers(0, 5000), max_size=3)


def reference_requests(containers, inits, overhead, pod_level, defaults=None):
    def req(c, r):
        if r in c["requests"]:
            return c["requests"][r]
        return (defaults or {}).get(r)

    names = set(overhead) | set(pod_level)
    for c in containers + [i for i, _ in inits]:
        names |= set(c["requests"]) | set(defaults or {})
    out = {}
    for r in names:
        present = [v for v in (req(c, r) for c in containers) if v is not None]
        sidecar_vals = []
        phases = []
        steady = sum(present)
        seen_any = bool(present)
        for c, is_sidecar in inits:
            v = req(c, r)
            seen_any |= v is not None
            if is_sidecar:
                sidecar_vals.append(v or 0)
                steady += v or 0
                phases.append(sum(sidecar_vals))
            else:
                phases.append((v or 0) + sum(sidecar_vals))
        value = max([steady] + phases) if seen_any else None
        if r in pod_level:
            value = pod_level[r]
        if r in overhead:
            value = (value or 0) + overhead[r]
        if value is not None:
            out[r] = value
    return out


@given(st.lists(_requests, min_size=1, max_size=4),
       st.lists(st.tuples(_requests, st.booleans()), max_size=4),
       st.dictionaries(st.sampled_from(RESOURCES), st.integers(0, 500), max_size=2),
       st.dictionaries(st.sampled_from(("cpu", "memory")), st.integers(0, 9000), max_size=2))
def test_pod_requests_match_reference_formula(app, inits, overhead, pod_level):
    containers = [{"requests": r} for r in app]
    init_list = [({"requests": r}, s) for r, s in inits]
    spec = PodSpec(
        containers=[Container(name=f"c{i}", resources=ResourceRequirements(requests=dict(r)))
                    for i, r in enumerate(app)],
        init_containers=[Container(name=f"i{i}", restart_policy="Always" if s else None,
                                   resources=ResourceRequirements(requests=dict(r)))
                         for i, (r, s) in enumerate(inits)],
        overhead=dict(overhead),
        resources=ResourceRequirements(requests=dict(pod_level)) if pod_level else None)
    assert pod_requests(spec) == reference_requests(containers, init_list, overhead, pod_level)
    if not pod_level:
        defaults = {"cpu": DEFAULT_MILLI_CPU_REQUEST, "memory": DEFAULT_MEMORY_REQUEST}
        assert pod_non_zero_requests(spec) == reference_requests(
            containers, init_list, overhead, {}, defaults)


# ------------------------------------------------------------------------- tolerations, taints


@pytest.mark.parametrize("tol, taint, expected", [
    ({"key": "k", "operator": "Equal", "value": "v", "effect": "NoSchedule"},
     {"key": "k", "value": "v", "effect": "NoSchedule"}, True),
    ({"key": "k", "operator": "Equal", "value": "v"},
     {"key": "k", "value": "v", "effect": "NoExecute"}, True),   # empty effect: all effects
    ({"key": "k", "operator": "Equal", "value": "w", "effect": "NoSchedule"},
     {"key": "k", "value": "v", "effect": "NoSchedule"}, False),
    ({"key": "k", "operator": "Exists", "effect": "NoSchedule"},
     {"key": "k", "value": "anything", "effect": "NoSchedule"}, True),
    ({"operator": "Exists"}, {"key": "any", "value": "x", "effect": "NoExecute"}, True),
    ({"key": "k", "operator": "Exists", "effect": "PreferNoSchedule"},
     {"key": "k", "effect": "NoSchedule"}, False),
    ({"key": "other", "operator": "Exists"}, {"key": "k", "effect": "NoSchedule"}, False),
])
def test_toleration_tolerates_taint(tol, taint, expected):
    p = pod({"containers": [container("a")], "tolerations": [tol]})
    assert p.spec.tolerations[0].tolerates(Taint(**taint)) is expected


@pytest.mark.parametrize("tol, field, message", [
    ({"key": "k", "operator": "Exists", "value": "v"}, "value", "must be empty"),
    ({"operator": "Equal", "value": "v"}, "operator", "must be Exists when key is empty"),
    ({"key": "k", "operator": "Gte"}, "operator", "unsupported value 'Gte'"),
    ({"key": "k", "effect": "NoScheduled"}, "effect", "unsupported value 'NoScheduled'"),
    ({"key": "k", "effect": "NoSchedule", "tolerationSeconds": 5}, "tolerationSeconds",
     "NoExecute"),
])
def test_invalid_tolerations_are_rejected_with_field_path(tol, field, message):
    with pytest.raises(ManifestError) as err:
        pod({"containers": [container("a")], "tolerations": [tol]})
    assert err.value.field == f"spec.tolerations[0].{field}"
    assert message in str(err.value)
    assert err.value.obj == "Pod/default/p"


# ------------------------------------------------------------------------- validation


@pytest.mark.parametrize("spec, field, message", [
    ({"containers": []}, "spec.containers", "at least one container"),
    ({}, "spec.containers", "missing required field"),
    ({"containers": [{"image": "x"}]}, "spec.containers[0].name", "missing required field"),
    ({"containers": [container("a", {"cpu": "-1"})]},
     "spec.containers[0].resources.requests.cpu", "negative"),
    ({"containers": [container("a", {"memory": "12 Gi"})]},
     "spec.containers[0].resources.requests.memory", "invalid quantity"),
    ({"containers": [container("a"), container("a")]}, "spec.containers[1].name", "duplicate"),
    ({"containers": [container("a", {"cpu": "2"}, resources={"requests": {"cpu": "2"},
                                                             "limits": {"cpu": "1"}})]},
     "spec.containers[0].resources.requests.cpu", "less than or equal to cpu limit"),
    ({"containers": [container("a")], "priority": "high"}, "spec.priority", "expected an integer"),
    ({"containers": [container("a")], "nodeSelector": {"disk": True}}, "spec.nodeSelector",
     "strings to strings"),
    ({"containers": [container("a")], "topologySpreadConstraints": [
        {"maxSkew": 0, "topologyKey": "zone", "whenUnsatisfiable": "DoNotSchedule"}]},
     "spec.topologySpreadConstraints[0].maxSkew", "greater than zero"),
    ({"containers": [container("a")], "topologySpreadConstraints": [
        {"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
         "minDomains": 2}]},
     "spec.topologySpreadConstraints[0].minDomains", "DoNotSchedule"),
    ({"containers": [container("a")], "affinity": {"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": {}}]}}},
     "spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
     ".topologyKey", "missing required field"),
    ({"containers": [container("a")], "affinity": {"nodeAffinity": {
        "preferredDuringSchedulingIgnoredDuringExecution": [
            {"weight": 101, "preference": {"matchExpressions": []}}]}}},
     "spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight",
     "1-100"),
    ({"containers": [container("a", restartPolicy="Always")]},
     "spec.containers[0].restartPolicy", "only be set on init containers"),
])
def test_invalid_pods_name_the_field(spec, field, message):
    with pytest.raises(InputError) as err:
        pod(spec)
    assert err.value.field == field, str(err.value)
    assert message in str(err.value)


def test_bad_label_in_metadata_is_rejected():
    with pytest.raises(InputError) as err:
        pod({"containers": [container("a")]}, labels={"app": "web server"})
    assert err.value.field == "metadata.labels.app"


def test_bad_match_expression_operator_names_the_selector_field():
    with pytest.raises(InputError) as err:
        pod({"containers": [container("a")], "affinity": {"podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [{
                "topologyKey": "zone",
                "labelSelector": {"matchExpressions": [
                    {"key": "app", "operator": "Equals", "values": ["x"]}]}}]}}})
    assert err.value.field.startswith(
        "spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0]"
        ".labelSelector")
    assert "Equals" in str(err.value)


def test_priority_resolution_order():
    from schedbench.model.objects import PriorityClass
    classes = {"high": PriorityClass.from_value("high", 1000),
               "dflt": PriorityClass.from_value("dflt", 7, global_default=True)}
    assert pod({"containers": [container("a")], "priority": 5}).effective_priority(classes) == 5
    assert pod({"containers": [container("a")], "priorityClassName": "high"}) \
        .effective_priority(classes) == 1000
    assert pod({"containers": [container("a")]}).effective_priority(classes) == 7
    assert pod({"containers": [container("a")]}).effective_priority({}) == 0
    with pytest.raises(InputError, match="no PriorityClass named 'nope'"):
        pod({"containers": [container("a")], "priorityClassName": "nope"}) \
            .effective_priority(classes)


def _deployment(spec):
    return object_from_dict({"apiVersion": "apps/v1", "kind": "Deployment",
                             "metadata": {"name": "d"}, "spec": spec})


def test_deployment_defaults_and_validation():
    template = {"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [container("a")]}}
    d = _deployment({"selector": {"matchLabels": {"app": "x"}}, "template": template})
    assert d.spec.replicas == 1
    ru = d.spec.strategy.effective_rolling_update
    assert (ru.max_surge, ru.max_unavailable) == ("25%", "25%")
    assert d.spec.revision_history_limit == 10
    with pytest.raises(InputError, match="selector does not match template labels"):
        _deployment({"selector": {"matchLabels": {"app": "y"}}, "template": template})
    with pytest.raises(InputError) as err:
        _deployment({"selector": {"matchLabels": {"app": "x"}}, "template": template,
                     "strategy": {"rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}}})
    assert err.value.field == "spec.strategy.rollingUpdate.maxUnavailable"
    with pytest.raises(InputError) as err:
        _deployment({"selector": {"matchLabels": {"app": "x"}}, "template": template,
                     "strategy": {"rollingUpdate": {"maxSurge": "1.5"}}})
    assert "percentage" in str(err.value)


def test_hpa_v1_and_v2_cpu_targets():
    base = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
            "minReplicas": 2, "maxReplicas": 10}
    v1 = object_from_dict({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler",
                           "metadata": {"name": "h"},
                           "spec": {**base, "targetCPUUtilizationPercentage": 60}})
    assert v1.target_cpu_utilization() == 60
    v2 = object_from_dict({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                           "metadata": {"name": "h"}, "spec": {**base, "metrics": [
                               {"type": "Resource", "resource": {"name": "cpu", "target": {
                                   "type": "Utilization", "averageUtilization": 70}}}]}})
    assert v2.target_cpu_utilization() == 70
    with pytest.raises(InputError, match="autoscaling/v1 field"):
        object_from_dict({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                          "metadata": {"name": "h"},
                          "spec": {**base, "targetCPUUtilizationPercentage": 60}})
    with pytest.raises(InputError, match="greater than or equal to minReplicas"):
        object_from_dict({"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
                          "metadata": {"name": "h"}, "spec": {**base, "maxReplicas": 1}})


def test_node_allocatable_defaults_to_capacity_and_ready_condition():
    n = object_from_dict({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n"},
                          "status": {"capacity": {"cpu": "4", "memory": "8Gi", "pods": "110"},
                                     "conditions": [{"type": "Ready", "status": "False"}]}})
    assert n.allocatable == {"cpu": 4000, "memory": 8 * Gi, "pods": 110}
    assert not n.is_ready()
    assert Toleration(key="k", operator="Exists").tolerates(Taint(key="k", effect="NoExecute"))
