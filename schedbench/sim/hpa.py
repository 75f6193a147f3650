"""The HorizontalPodAutoscaler controller (kube-controller-manager, pkg/controller/podautoscaler).

Every ``hpa_sync_seconds`` (15 s; the first sync one period after the HPA appears, as the
controller's fixed-interval rate limiter does) each HPA reads its target's scale (a Deployment
or ReplicaSet: ``spec.replicas``, its selector), the pods of that selector and their CPU
metrics (:meth:`~schedbench.sim.load.LoadModel.pod_metric`), and computes a recommendation
as ``replica_calculator.go`` does:

* pods being deleted, Failed (and here also Succeeded) or Pending are ignored; pods without a
  metric are *missing*; a pod is *unready* when it has no Ready condition or start time, or,
  within the CPU initialisation period (300 s after start), is not Ready or became Ready less
  than one metric window ago, or, after it, is not Ready and never was since its first 30 s;
* utilisation = (sum of usage of the ready pods with metrics) * 100 // (sum of their
  requests), an integer percent; ratio = utilisation / target;
* with no unready pods to count on a scale-up and no missing pods: within the tolerance band
  ``[1 - tolerance, 1 + tolerance]`` keep the current count, else ``ceil(ratio * ready)``;
* otherwise missing pods count as using max(100 %, target) of their request on a scale-down
  and 0 on a scale-up, unready pods as 0 on a scale-up; the ratio is recomputed, and the
  count stays unchanged if that ratio is within tolerance, crosses 1, or the new count
  would move the other way; else ``ceil(new ratio * pods counted)``.

``AverageValue`` targets on cpu use the mean usage (millicores) instead of utilisation. Other
metric sources are reported as unavailable (the load model only has CPU).

The recommendation is normalised as ``horizontal.go`` does. Without ``spec.behavior``:
the highest recommendation of the last ``hpa_downscale_stabilization_seconds`` (300 s) is
used (scale-down stabilisation), then clamped to [minReplicas, min(maxReplicas,
max(2 * current, 4))]. With ``spec.behavior`` (unset fields defaulted as the API server does:
scale-up 0 s window, max of 100 % and 4 pods per 15 s; scale-down the 300 s window, 100 % per
15 s): the stabilisation windows of both directions, then the rate limits of the policies over
the scale events of their periods. The target's ``spec.replicas`` is then updated through the
store, and the HPA's status (currentReplicas, desiredReplicas, currentMetrics, lastScaleTime,
conditions AbleToScale / ScalingActive / ScalingLimited) written when it changed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from ..errors import InputError
from ..model.objects import HorizontalPodAutoscaler, MetricSpec, Pod
from ..model.quantity import format_quantity, resource_to_int
from .controller import Context, Controller, split_key
from .load import LoadModel, pod_cpu_request
from .store import Conflict, WatchEvent
from .timefmt import seconds, stamp

__all__ = ["Behavior", "HPAController", "MetricUnavailable", "PodInfo", "ReplicaProposal",
           "ScalingPolicy", "ScalingRules", "Tolerance", "calculate_scale_down_limit",
           "calculate_scale_up_limit", "group_pods", "parse_behavior",
           "plain_metric_replicas", "resource_utilization_replicas", "stabilize_legacy",
           "stabilize_with_behavior"]

SCALE_UP_LIMIT_FACTOR = 2.0      # horizontal.go: scaleUpLimitFactor
SCALE_UP_LIMIT_MINIMUM = 4.0     # horizontal.go: scaleUpLimitMinimum
CPU_INITIALIZATION_PERIOD = 300.0    # --horizontal-pod-autoscaler-cpu-initialization-period
INITIAL_READINESS_DELAY = 30.0       # --horizontal-pod-autoscaler-initial-readiness-delay
MAX_STABILIZATION_WINDOW = 3600      # validation: MaxStabilizationWindowSeconds
MAX_PERIOD_SECONDS = 1800            # validation: MaxPeriodSeconds


class MetricUnavailable(Exception):
    """A metric gave no recommendation (``reason`` as the HPA condition states it)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


# ---- replica calculation (replica_calculator.go) ---------------------------------------------

class PodInfo(NamedTuple):
    """What the replica calculator looks at in one pod (times in virtual seconds)."""

    name: str
    phase: str
    deleting: bool
    ready: str | None            # status of the Ready condition; None without one
    ready_since: float | None    # its lastTransitionTime
    start_time: float | None
    request: int | None          # CPU request, millicores; None: a container states none


class Tolerance(NamedTuple):
    """The band ``[1 - down, 1 + up]`` of usage ratios that change nothing."""

    up: float = 0.1
    down: float = 0.1

    def within(self, ratio: float) -> bool:
        return (1.0 - self.down) <= ratio <= (1.0 + self.up)


class ReplicaProposal(NamedTuple):
    replicas: int
    utilization: int | None   # percent (Utilization targets)
    average: int              # mean usage of the counted pods, millicores


def group_pods(pods: Iterable[PodInfo], metrics: dict[str, int], now: float, *,
               cpu_initialization_period: float = CPU_INITIALIZATION_PERIOD,
               initial_readiness_delay: float = INITIAL_READINESS_DELAY,
               metric_window: float = 15.0,
               ) -> tuple[int, list[str], list[str], list[str]]:
    """replica_calculator.go groupPods for CPU: (ready count, unready, missing, ignored)
    pod names. The metric's timestamp is ``now`` (a fresh scrape) covering ``metric_window``
    seconds."""
    ready_count = 0
    unready: list[str] = []
    missing: list[str] = []
    ignored: list[str] = []
    for p in pods:
        if p.deleting or p.phase in ("Failed", "Succeeded"):
            ignored.append(p.name)
            continue
        if p.phase == "Pending":
            ignored.append(p.name)
            continue
        if p.name not in metrics:
            missing.append(p.name)
            continue
        if p.ready is None or p.start_time is None:
            is_unready = True
        elif p.start_time + cpu_initialization_period > now:
            # within initialisation: only metrics taken wholly while Ready count
            since = p.ready_since if p.ready_since is not None else p.start_time
            is_unready = p.ready == "False" or now < since + metric_window
        else:
            # afterwards: ignore a pod that is unready and never became ready
            since = p.ready_since if p.ready_since is not None else p.start_time
            is_unready = p.ready == "False" and p.start_time + initial_readiness_delay > since
        if is_unready:
            unready.append(p.name)
            continue
        ready_count += 1
    return ready_count, unready, missing, ignored


def _utilization_ratio(metrics: dict[str, int], requests: dict[str, int], target: int,
                       ) -> tuple[float, int, int]:
    """metricsclient.GetResourceUtilizationRatio: (ratio, utilisation %, mean usage)."""
    total = req_total = entries = 0
    for name, value in metrics.items():
        req = requests.get(name)
        if req is None:
            continue
        total += value
        req_total += req
        entries += 1
    if req_total == 0:
        raise MetricUnavailable("FailedGetResourceMetric",
                                "no metrics returned matched known pods")
    utilization = (total * 100) // req_total
    return utilization / target, utilization, total // entries


def _usage_ratio(metrics: dict[str, int], target: int) -> tuple[float, int]:
    """metricsclient.GetMetricUsageRatio: (ratio, mean usage)."""
    average = sum(metrics.values()) // len(metrics)
    return average / target, average


def _pod_requests(pods: Sequence[PodInfo]) -> dict[str, int]:
    requests = {}
    for p in pods:
        if p.request is None:
            raise MetricUnavailable("FailedGetResourceMetric",
                                    f"missing request for cpu in a container of Pod {p.name}")
        requests[p.name] = p.request
    return requests


def _replicas_with_fallbacks(current: int, ratio: float, ready_count: int,
                             metrics: dict[str, int], unready: list[str],
                             missing: list[str], tolerance: Tolerance,
                             missing_scale_down_value, recompute) -> int:
    """The part of GetResourceReplicas / calcPlainMetricReplicas after the first ratio."""
    scale_up_with_unready = bool(unready) and ratio > 1.0
    if not scale_up_with_unready and not missing:
        if tolerance.within(ratio):
            return current
        return math.ceil(ratio * ready_count)
    metrics = dict(metrics)
    if missing:
        if ratio < 1.0:
            for name in missing:
                metrics[name] = missing_scale_down_value(name)
        elif ratio > 1.0:
            for name in missing:
                metrics[name] = 0
    if scale_up_with_unready:
        for name in unready:
            metrics[name] = 0
    new_ratio = recompute(metrics)
    if tolerance.within(new_ratio) or (ratio < 1.0 < new_ratio) or (ratio > 1.0 > new_ratio):
        return current
    new_replicas = math.ceil(new_ratio * len(metrics))
    if (new_ratio < 1.0 and new_replicas > current) or (new_ratio > 1.0 and
                                                        new_replicas < current):
        return current
    return new_replicas


def _counted(pods: Sequence[PodInfo], metrics: dict[str, int], now: float,
             timing: dict[str, float]) -> tuple[int, dict[str, int], list[str], list[str]]:
    if not metrics:
        raise MetricUnavailable("FailedGetResourceMetric",
                                "unable to get metrics for resource cpu: no metrics returned "
                                "from resource metrics API")
    if not pods:
        raise MetricUnavailable("FailedGetResourceMetric",
                                "no pods returned by selector while calculating replica "
                                "count")
    ready_count, unready, missing, ignored = group_pods(pods, metrics, now, **timing)
    drop = set(unready) | set(ignored)
    kept = {name: v for name, v in metrics.items() if name not in drop}
    if not kept:
        raise MetricUnavailable("FailedGetResourceMetric",
                                "did not receive metrics for targeted pods (pods might be "
                                "unready)")
    return ready_count, kept, unready, missing


def resource_utilization_replicas(current: int, target_utilization: int,
                                  pods: Sequence[PodInfo], metrics: dict[str, int],
                                  now: float, tolerance: Tolerance = Tolerance(),
                                  **timing: float) -> ReplicaProposal:
    """replica_calculator.go GetResourceReplicas for CPU (module docstring). ``metrics``:
    millicores per pod name, for the pods metrics-server has a sample of. Raises
    :class:`MetricUnavailable`."""
    ready_count, kept, unready, missing = _counted(pods, metrics, now, timing)
    requests = _pod_requests(pods)
    ratio, utilization, average = _utilization_ratio(kept, requests, target_utilization)
    fallback = max(100, target_utilization)
    replicas = _replicas_with_fallbacks(
        current, ratio, ready_count, kept, unready, missing, tolerance,
        lambda name: requests[name] * fallback // 100,
        lambda m: _utilization_ratio(m, requests, target_utilization)[0])
    return ReplicaProposal(replicas, utilization, average)


def plain_metric_replicas(current: int, target_average: int, pods: Sequence[PodInfo],
                          metrics: dict[str, int], now: float,
                          tolerance: Tolerance = Tolerance(), **timing: float,
                          ) -> ReplicaProposal:
    """replica_calculator.go GetRawResourceReplicas / calcPlainMetricReplicas: an
    AverageValue target (millicores per pod)."""
    ready_count, kept, unready, missing = _counted(pods, metrics, now, timing)
    ratio, average = _usage_ratio(kept, target_average)
    replicas = _replicas_with_fallbacks(
        current, ratio, ready_count, kept, unready, missing, tolerance,
        lambda name: target_average, lambda m: _usage_ratio(m, target_average)[0])
    return ReplicaProposal(replicas, None, average)


# ---- behaviour (autoscaling/v2 HorizontalPodAutoscalerBehavior) ----------------------------

@dataclass(frozen=True)
class ScalingPolicy:
    type: str            # "Pods" or "Percent"
    value: int
    period_seconds: int


@dataclass(frozen=True)
class ScalingRules:
    stabilization_window_seconds: int | None
    select_policy: str   # "Max", "Min", "Disabled"
    policies: tuple[ScalingPolicy, ...]
    tolerance: float | None = None


@dataclass(frozen=True)
class Behavior:
    scale_up: ScalingRules
    scale_down: ScalingRules


DEFAULT_SCALE_UP = ScalingRules(0, "Max", (ScalingPolicy("Pods", 4, 15),
                                           ScalingPolicy("Percent", 100, 15)))
DEFAULT_SCALE_DOWN = ScalingRules(None, "Max", (ScalingPolicy("Percent", 100, 15),))


def _int_field(value: Any, field: str, ref: str, lo: int, hi: int | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"expected an integer, got {value!r}", obj=ref, field=field)
    if value < lo or (hi is not None and value > hi):
        bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
        raise InputError(f"must be {bound}, got {value}", obj=ref, field=field)
    return value


def _parse_rules(data: Any, default: ScalingRules, field: str, ref: str) -> ScalingRules:
    """GenerateHPAScaleUpRules / GenerateHPAScaleDownRules: unset fields take the defaults;
    validated as pkg/apis/autoscaling/validation does."""
    if data is None:
        return default
    if not isinstance(data, dict):
        raise InputError("expected a mapping", obj=ref, field=field)
    unknown = sorted(set(data) - {"stabilizationWindowSeconds", "selectPolicy", "policies",
                                  "tolerance"})
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r}", obj=ref, field=f"{field}.{unknown[0]}")
    window = default.stabilization_window_seconds
    if data.get("stabilizationWindowSeconds") is not None:
        window = _int_field(data["stabilizationWindowSeconds"],
                            f"{field}.stabilizationWindowSeconds", ref, 0,
                            MAX_STABILIZATION_WINDOW)
    select = data.get("selectPolicy") or default.select_policy
    if select not in ("Max", "Min", "Disabled"):
        raise InputError(f"must be one of Max, Min, Disabled, got {select!r}", obj=ref,
                         field=f"{field}.selectPolicy")
    policies = default.policies
    if data.get("policies") is not None:
        raw = data["policies"]
        if not isinstance(raw, list) or not raw:
            raise InputError("must specify at least one Policy", obj=ref,
                             field=f"{field}.policies")
        parsed = []
        for i, p in enumerate(raw):
            where = f"{field}.policies[{i}]"
            if not isinstance(p, dict):
                raise InputError("expected a mapping", obj=ref, field=where)
            ptype = p.get("type")
            if ptype not in ("Pods", "Percent"):
                raise InputError(f"must be Pods or Percent, got {ptype!r}", obj=ref,
                                 field=f"{where}.type")
            value = _int_field(p.get("value"), f"{where}.value", ref, 1, None)
            period = _int_field(p.get("periodSeconds"), f"{where}.periodSeconds", ref, 1,
                                MAX_PERIOD_SECONDS)
            parsed.append(ScalingPolicy(ptype, value, period))
        policies = tuple(parsed)
    tolerance = None
    if data.get("tolerance") is not None:
        raw_tol = data["tolerance"]
        try:
            tolerance = float(raw_tol) if not isinstance(raw_tol, bool) else math.nan
        except (TypeError, ValueError):
            tolerance = math.nan
        if not math.isfinite(tolerance) or tolerance < 0:
            raise InputError(f"must be a number >= 0, got {raw_tol!r}", obj=ref,
                             field=f"{field}.tolerance")
    return ScalingRules(window, select, policies, tolerance)


def parse_behavior(hpa: HorizontalPodAutoscaler) -> Behavior | None:
    """``spec.behavior`` with defaults filled in, or None when it is not set (then the
    controller uses its behaviour-less normalisation, as Kubernetes does)."""
    data = hpa.spec.behavior
    if not data:
        return None
    unknown = sorted(set(data) - {"scaleUp", "scaleDown"})
    if unknown:
        raise InputError(f"unknown field {unknown[0]!r}", obj=hpa.ref,
                         field=f"spec.behavior.{unknown[0]}")
    return Behavior(_parse_rules(data.get("scaleUp"), DEFAULT_SCALE_UP,
                                 "spec.behavior.scaleUp", hpa.ref),
                    _parse_rules(data.get("scaleDown"), DEFAULT_SCALE_DOWN,
                                 "spec.behavior.scaleDown", hpa.ref))


# ---- normalisation (horizontal.go) ----------------------------------------------------------

class Recommendation(NamedTuple):
    replicas: int
    time: float


class ScaleEvent(NamedTuple):
    change: int
    time: float
    outdated: bool


def stabilize_legacy(recommendations: list[Recommendation], desired: int, now: float,
                     window: float) -> int:
    """horizontal.go stabilizeRecommendation: the highest of ``desired`` and the
    recommendations no older than ``window``; records ``desired`` in place of an expired
    recommendation (or appends it). Mutates ``recommendations``."""
    highest = desired
    cutoff = now - window
    old_index = None
    for i, rec in enumerate(recommendations):
        if rec.time < cutoff:
            old_index = i
        elif rec.replicas > highest:
            highest = rec.replicas
    if old_index is not None:
        recommendations[old_index] = Recommendation(desired, now)
    else:
        recommendations.append(Recommendation(desired, now))
    return highest


def stabilize_with_behavior(recommendations: list[Recommendation], desired: int,
                            current: int, now: float, up_window: float,
                            down_window: float) -> int:
    """horizontal.go stabilizeRecommendationWithBehaviors: ``current`` moved up to the lowest
    recommendation of the scale-up window and down to the highest of the scale-down window
    (both including ``desired``). Mutates ``recommendations``."""
    up_rec = desired
    down_rec = desired
    up_cutoff = now - up_window
    down_cutoff = now - down_window
    old_index = None
    for i, rec in enumerate(recommendations):
        if rec.time > up_cutoff:
            up_rec = min(rec.replicas, up_rec)
        if rec.time > down_cutoff:
            down_rec = max(rec.replicas, down_rec)
        if rec.time < up_cutoff and rec.time < down_cutoff:
            old_index = i
    recommendation = current
    if recommendation < up_rec:
        recommendation = up_rec
    if recommendation > down_rec:
        recommendation = down_rec
    if old_index is not None:
        recommendations[old_index] = Recommendation(desired, now)
    else:
        recommendations.append(Recommendation(desired, now))
    return recommendation


def _change_in_period(period: int, events: Sequence[ScaleEvent], now: float) -> int:
    cutoff = now - period
    return sum(e.change for e in events if e.time > cutoff)


def _policy_limit(current: int, up_events: Sequence[ScaleEvent],
                  down_events: Sequence[ScaleEvent], rules: ScalingRules, now: float,
                  pick, propose) -> int:
    """The loop both of kube's limit functions run: per policy, the replicas at the start of
    its period (``current`` minus what was added, plus what was removed, in the period), the
    policy's proposal from there (``propose(start, policy)``), and ``pick`` of the proposals
    (``current`` when the policy is Disabled or there is none)."""
    if rules.select_policy == "Disabled":
        return current
    result = None
    for policy in rules.policies:
        added = _change_in_period(policy.period_seconds, up_events, now)
        deleted = _change_in_period(policy.period_seconds, down_events, now)
        proposed = propose(current - added + deleted, policy)
        result = proposed if result is None else pick(result, proposed)
    return current if result is None else result


def calculate_scale_up_limit(current: int, up_events: Sequence[ScaleEvent],
                             down_events: Sequence[ScaleEvent], rules: ScalingRules,
                             now: float) -> int:
    """horizontal.go calculateScaleUpLimitWithScalingRules: the most (policy Max) or the
    least (Min) of start + Pods and ceil(start * (1 + Percent / 100))."""
    return _policy_limit(
        current, up_events, down_events, rules, now, min if rules.select_policy == "Min" else max,
        lambda start, p: start + p.value if p.type == "Pods"
        else math.ceil(start * (1 + p.value / 100)))


def calculate_scale_down_limit(current: int, up_events: Sequence[ScaleEvent],
                               down_events: Sequence[ScaleEvent], rules: ScalingRules,
                               now: float) -> int:
    """horizontal.go calculateScaleDownLimitWithBehaviors: the least (policy Max) or the
    most (Min) of start - Pods and int(start * (1 - Percent / 100))."""
    return _policy_limit(
        current, up_events, down_events, rules, now, max if rules.select_policy == "Min" else min,
        lambda start, p: start - p.value if p.type == "Pods"
        else int(start * (1 - p.value / 100)))


def convert_with_rules(current: int, desired: int, min_replicas: int,
                       max_replicas: int) -> tuple[int, str, str]:
    """horizontal.go convertDesiredReplicasWithRules (no behaviour): clamp to
    [minReplicas, min(maxReplicas, max(2 * current, 4))]; (replicas, ScalingLimited reason,
    message) with reason "" when not limited."""
    scale_up_limit = int(max(SCALE_UP_LIMIT_FACTOR * current, SCALE_UP_LIMIT_MINIMUM))
    if max_replicas > scale_up_limit:
        maximum, reason, message = scale_up_limit, "ScaleUpLimit", \
            "the desired replica count is increasing faster than the maximum scale rate"
    else:
        maximum, reason, message = max_replicas, "TooManyReplicas", \
            "the desired replica count is more than the maximum replica count"
    if desired < min_replicas:
        return min_replicas, "TooFewReplicas", \
            "the desired replica count is less than the minimum replica count"
    if desired > maximum:
        return maximum, reason, message
    return desired, "", ""


def convert_with_behavior(current: int, desired: int, min_replicas: int, max_replicas: int,
                          behavior: Behavior, up_events: Sequence[ScaleEvent],
                          down_events: Sequence[ScaleEvent], now: float,
                          ) -> tuple[int, str, str]:
    """horizontal.go convertDesiredReplicasWithBehaviorRate."""
    if desired > current:
        limit = calculate_scale_up_limit(current, up_events, down_events, behavior.scale_up,
                                         now)
        limit = max(limit, current)
        if max_replicas > limit:
            maximum, reason, message = limit, "ScaleUpLimit", \
                "the desired replica count is increasing faster than the maximum scale rate"
        else:
            maximum, reason, message = max_replicas, "TooManyReplicas", \
                "the desired replica count is more than the maximum replica count"
        if desired > maximum:
            return maximum, reason, message
    elif desired < current:
        limit = calculate_scale_down_limit(current, up_events, down_events,
                                           behavior.scale_down, now)
        limit = min(limit, current)
        if min_replicas < limit:
            minimum, reason, message = limit, "ScaleDownLimit", \
                "the desired replica count is decreasing faster than the maximum scale rate"
        else:
            minimum, reason, message = min_replicas, "TooFewReplicas", \
                "the desired replica count is less than the minimum replica count"
        if desired < minimum:
            return minimum, reason, message
    return desired, "", ""


def _store_scale_event(events: list[ScaleEvent], change: int, now: float,
                       longest_period: int) -> None:
    """horizontal.go storeScaleEvent: mark events older than the longest policy period
    outdated, reuse the first outdated slot or append."""
    cutoff = now - longest_period
    for i, e in enumerate(events):
        if e.time < cutoff and not e.outdated:
            events[i] = e._replace(outdated=True)
    for i, e in enumerate(events):
        if e.outdated:
            events[i] = ScaleEvent(change, now, False)
            return
    events.append(ScaleEvent(change, now, False))


# ---- the controller -------------------------------------------------------------------------

_CONDITION_ORDER = ("AbleToScale", "ScalingActive", "ScalingLimited")


@dataclass
class _MetricTarget:
    """A metric the controller can evaluate: cpu Utilization (percent) or AverageValue
    (millicores), or an unsupported one (``unsupported`` says why)."""

    spec: dict
    utilization: int | None = None
    average_value: int | None = None
    unsupported: str = ""


def _metric_targets(hpa: HorizontalPodAutoscaler) -> list[_MetricTarget]:
    s = hpa.spec
    if hpa.api_version == "autoscaling/v1" or not s.metrics:
        target = hpa.target_cpu_utilization() or 80
        return [_MetricTarget({"type": "Resource", "name": "cpu"}, utilization=target)]
    out = []
    for i, m in enumerate(s.metrics):
        out.append(_metric_target(hpa, m, i))
    return out


def _metric_target(hpa: HorizontalPodAutoscaler, m: MetricSpec, i: int) -> _MetricTarget:
    res = m.resource
    if m.type != "Resource" or res is None:
        return _MetricTarget({"type": m.type}, unsupported=(
            f"the load model has no {m.type} metrics (only Resource cpu)"))
    spec = {"type": "Resource", "name": res.name}
    if res.name != "cpu":
        return _MetricTarget(spec, unsupported=(
            f"unable to get metrics for resource {res.name}: no metrics returned from "
            "resource metrics API"))
    t = res.target
    field = f"spec.metrics[{i}].resource.target"
    if t.type == "Utilization":
        if t.average_utilization is None or t.average_utilization < 1:
            raise InputError("averageUtilization must be at least 1", obj=hpa.ref,
                             field=f"{field}.averageUtilization")
        return _MetricTarget(spec, utilization=t.average_utilization)
    if t.type == "AverageValue":
        if t.average_value is None:
            raise InputError("missing required field", obj=hpa.ref,
                             field=f"{field}.averageValue")
        try:
            value = resource_to_int("cpu", t.average_value)
        except InputError as err:
            raise err.located(obj=hpa.ref, field=f"{field}.averageValue") from None
        if value <= 0:
            raise InputError("must be positive", obj=hpa.ref, field=f"{field}.averageValue")
        return _MetricTarget(spec, average_value=value)
    raise InputError(f"must be Utilization or AverageValue for a Resource metric, got "
                     f"{t.type!r}", obj=hpa.ref, field=f"{field}.type")


_seconds = functools.lru_cache(maxsize=1 << 16)(seconds)


def _pod_info(pod: Pod) -> PodInfo:
    ready = None
    since = None
    for c in pod.status.conditions:
        if c.type == "Ready":
            ready = c.status
            since = _seconds(c.last_transition_time) if c.last_transition_time else None
            break
    start = _seconds(pod.status.start_time) if pod.status.start_time else None
    return PodInfo(pod.metadata.name, pod.status.phase or "Pending",
                   pod.metadata.deletion_timestamp is not None, ready, since, start,
                   pod_cpu_request(pod))


class HPAController(Controller):
    """Scales Deployments and ReplicaSets from CPU metrics (module docstring).

    ``load`` supplies the metrics. Extra timing may be set on the SimConfig (read with
    defaults): ``hpa_cpu_initialization_period_seconds`` (300),
    ``hpa_initial_readiness_delay_seconds`` (30), ``metric_resolution_seconds`` (15, the
    metric window)."""

    name = "horizontal-pod-autoscaler"

    def __init__(self, sim_ctx: Context, load: LoadModel) -> None:
        super().__init__(sim_ctx)
        self.load = load
        cfg = self.config
        self.sync_period = float(cfg.hpa_sync_seconds)
        self.tolerance = float(cfg.hpa_tolerance)
        self.downscale_window = float(cfg.hpa_downscale_stabilization_seconds)
        self.timing = {
            "cpu_initialization_period": float(getattr(
                cfg, "hpa_cpu_initialization_period_seconds", CPU_INITIALIZATION_PERIOD)),
            "initial_readiness_delay": float(getattr(
                cfg, "hpa_initial_readiness_delay_seconds", INITIAL_READINESS_DELAY)),
            "metric_window": float(load.metric_resolution),
        }
        self._recommendations: dict[str, list[Recommendation]] = {}
        self._up_events: dict[str, list[ScaleEvent]] = {}
        self._down_events: dict[str, list[ScaleEvent]] = {}
        self._last_error: dict[str, tuple[str, str]] = {}
        # per HPA: its pods' PodInfo by (uid, resourceVersion), reused between syncs
        self._pod_infos: dict[str, dict[tuple[str, str], PodInfo]] = {}

    def start(self) -> None:
        self.store.watch("HorizontalPodAutoscaler", self._on_hpa)
        for hpa in self.store.list("HorizontalPodAutoscaler"):
            self.enqueue(hpa.key, self.sync_period)

    def _on_hpa(self, ev: WatchEvent) -> None:
        key = ev.obj.key
        if ev.type == "DELETED":
            self._forget(key)
            return
        self.enqueue(key, self.sync_period)  # AddRateLimited with the fixed-interval limiter

    def _forget(self, key: str) -> None:
        self._recommendations.pop(key, None)
        self._up_events.pop(key, None)
        self._down_events.pop(key, None)
        self._last_error.pop(key, None)
        self._pod_infos.pop(key, None)

    # ---- reconcile -----------------------------------------------------------------------

    def reconcile(self, key: str) -> None:
        ns, name = split_key(key)
        hpa = self.store.try_get("HorizontalPodAutoscaler", ns, name)
        if hpa is None:
            self._forget(key)
            return
        try:
            self._reconcile(key, hpa)
        finally:
            if self.store.try_get("HorizontalPodAutoscaler", ns, name) is not None:
                self.enqueue(key, self.sync_period)

    def _reconcile(self, key: str, hpa: HorizontalPodAutoscaler) -> None:
        now = self.engine.now
        status = dict(hpa.status)
        conditions = {c["type"]: c for c in status.get("conditions", [])
                      if isinstance(c, dict) and "type" in c}
        status_original = hpa.status

        def set_condition(ctype: str, cstatus: str, reason: str, message: str) -> None:
            old = conditions.get(ctype)
            when = old["lastTransitionTime"] if old is not None and \
                old.get("status") == cstatus and "lastTransitionTime" in old else stamp(now)
            conditions[ctype] = {"type": ctype, "status": cstatus, "lastTransitionTime": when,
                                 "reason": reason, "message": message}

        def write_status(current: int | None, desired: int | None, metric_statuses,
                         rescaled: bool) -> None:
            new: dict[str, Any] = {"observedGeneration": hpa.metadata.generation}
            last = stamp(now) if rescaled else status.get("lastScaleTime")
            if last is not None:
                new["lastScaleTime"] = last
            new["currentReplicas"] = current if current is not None else \
                status.get("currentReplicas", 0)
            new["desiredReplicas"] = desired if desired is not None else \
                status.get("desiredReplicas", 0)
            if hpa.api_version == "autoscaling/v1":
                util = next((m["resource"]["current"].get("averageUtilization")
                             for m in metric_statuses or [] if m.get("type") == "Resource"),
                            None)
                if util is not None:
                    new["currentCPUUtilizationPercentage"] = util
            else:
                if metric_statuses:
                    new["currentMetrics"] = metric_statuses
                conds = [conditions[t] for t in _CONDITION_ORDER if t in conditions]
                if conds:
                    new["conditions"] = conds
            if new != status_original:
                fresh = self.store.edit(hpa)
                fresh.status = new
                self.store.update(fresh, cause=f"HPA {key} status")

        ref = hpa.spec.scale_target_ref
        target = None
        if ref.kind in ("Deployment", "ReplicaSet"):
            target = self.store.try_get(ref.kind, hpa.metadata.namespace, ref.name)
            problem = f'{ref.kind.lower()}s.apps "{ref.name}" not found'
        else:
            problem = f"no scale subresource for kind {ref.kind!r} (schedbench scales " \
                      "Deployments and ReplicaSets)"
        if target is None:
            set_condition("AbleToScale", "False", "FailedGetScale",
                          f"the HPA controller was unable to get the target's current scale: "
                          f"{problem}")
            self._log_once(key, "FailedGetScale", problem)
            write_status(None, None, status.get("currentMetrics"), False)
            return
        set_condition("AbleToScale", "True", "SucceededGetScale",
                      "the HPA controller was able to get the target's current scale")
        current = target.spec.replicas
        if key not in self._recommendations:  # recordInitialRecommendation
            self._recommendations[key] = [Recommendation(current, now)]
        min_replicas = hpa.spec.min_replicas
        max_replicas = hpa.spec.max_replicas
        behavior = parse_behavior(hpa)
        metric_statuses: list[dict] = []
        proposal_info: dict[str, Any] = {}
        if current == 0 and min_replicas != 0:
            desired = 0
            rescale = False
            set_condition("ScalingActive", "False", "ScalingDisabled",
                          "scaling is disabled since the replica count of the target is zero")
            reason = "scaling disabled"
        elif current > max_replicas:
            desired, rescale = max_replicas, True
            reason = "Current number of replicas above Spec.MaxReplicas"
        elif current < min_replicas:
            desired, rescale = min_replicas, True
            reason = "Current number of replicas below Spec.MinReplicas"
        else:
            try:
                proposal, metric_statuses, proposal_info = self._replicas_for_metrics(
                    hpa, target, current, set_condition)
            except MetricUnavailable as err:
                set_condition("ScalingActive", "False", err.reason,
                              f"the HPA was unable to compute the replica count: "
                              f"{err.message}")
                self._log_once(key, err.reason, err.message)
                write_status(current, None, metric_statuses or status.get("currentMetrics"),
                             False)
                return
            self._last_error.pop(key, None)
            desired = max(0, proposal)
            recs = self._recommendations[key]
            if behavior is None:
                stabilized = stabilize_legacy(recs, desired, now, self.downscale_window)
                desired_n, lim_reason, lim_msg = convert_with_rules(
                    current, stabilized, min_replicas, max_replicas)
            else:
                down_window = behavior.scale_down.stabilization_window_seconds
                if down_window is None:
                    down_window = self.downscale_window
                stabilized = stabilize_with_behavior(
                    recs, desired, current, now,
                    float(behavior.scale_up.stabilization_window_seconds or 0),
                    float(down_window))
                desired_n, lim_reason, lim_msg = convert_with_behavior(
                    current, stabilized, min_replicas, max_replicas, behavior,
                    self._up_events.get(key, []), self._down_events.get(key, []), now)
            if stabilized > desired:
                set_condition("AbleToScale", "True", "ScaleDownStabilized",
                              "recent recommendations were higher than current one, applying "
                              "the highest recent recommendation")
            elif stabilized < desired:
                set_condition("AbleToScale", "True", "ScaleUpStabilized",
                              "recent recommendations were lower than current one, applying "
                              "the lowest recent recommendation")
            else:
                set_condition("AbleToScale", "True", "ReadyForNewScale",
                              "recommended size matches current size")
            if lim_reason:
                set_condition("ScalingLimited", "True", lim_reason, lim_msg)
            else:
                set_condition("ScalingLimited", "False", "DesiredWithinRange",
                              "the desired count is within the acceptable range")
            proposal_info.update(recommended=desired, stabilized=stabilized)
            reasons = [proposal_info.pop("reason", "")]
            if stabilized != desired:
                reasons.append(f"stabilised to {stabilized} by the recommendations of the "
                               "last window")
            if lim_reason:
                reasons.append(f"limited to {desired_n}: {lim_reason}")
            reason = "; ".join(r for r in reasons if r)
            desired = desired_n
            rescale = desired != current
        if rescale:
            scaled = self.store.edit(target)
            scaled.spec.replicas = desired
            try:
                self.store.update(scaled, cause=f"HPA {key}: {current} -> {desired} ({reason})")
            except Conflict as err:
                set_condition("AbleToScale", "False", "FailedUpdateScale",
                              f"the HPA controller was unable to update the target scale: "
                              f"{err}")
                write_status(current, None, metric_statuses, False)
                raise
            set_condition("AbleToScale", "True", "SucceededRescale",
                          f"the HPA controller was able to update the target scale to "
                          f"{desired}")
            if behavior is not None:
                if desired > current:
                    longest = max(p.period_seconds for p in behavior.scale_up.policies)
                    _store_scale_event(self._up_events.setdefault(key, []), desired - current,
                                       now, longest)
                else:
                    longest = max(p.period_seconds for p in behavior.scale_down.policies)
                    _store_scale_event(self._down_events.setdefault(key, []),
                                       current - desired, now, longest)
            self.log("hpa", kind="HorizontalPodAutoscaler", name=key,
                     target=f"{ref.kind}/{hpa.metadata.namespace}/{ref.name}",
                     current=current, desired=desired, reason=reason, **proposal_info)
        write_status(current, desired, metric_statuses, rescale)

    def _log_once(self, key: str, reason: str, message: str) -> None:
        """Log a failure when it starts or changes (not at every sync)."""
        if self._last_error.get(key) != (reason, message):
            self._last_error[key] = (reason, message)
            self.log("hpa", kind="HorizontalPodAutoscaler", name=key, reason=reason,
                     message=message)

    def _replicas_for_metrics(self, hpa: HorizontalPodAutoscaler, target: Any, current: int,
                              set_condition) -> tuple[int, list[dict], dict[str, Any]]:
        """horizontal.go computeReplicasForMetrics: the largest proposal over the metrics;
        an error when all metrics fail, or some fail and the rest would scale down."""
        now = self.engine.now
        pods = self.store.list("Pod", hpa.metadata.namespace,
                               label_selector=target.spec.selector)
        cache = self._pod_infos.get(hpa.key, {})
        fresh: dict[tuple[str, str], PodInfo] = {}
        for p in pods:
            k = (p.metadata.uid, p.metadata.resource_version)
            fresh[k] = cache.get(k) or _pod_info(p)
        self._pod_infos[hpa.key] = fresh
        infos = list(fresh.values())
        metrics = self.load.pod_metrics(pods)
        up = down = self.tolerance
        behavior = parse_behavior(hpa)
        if behavior is not None:
            if behavior.scale_up.tolerance is not None:
                up = behavior.scale_up.tolerance
            if behavior.scale_down.tolerance is not None:
                down = behavior.scale_down.tolerance
        tolerance = Tolerance(up, down)
        best = None
        best_info: dict[str, Any] = {}
        statuses: list[dict] = []
        first_error: MetricUnavailable | None = None
        invalid = 0
        targets = _metric_targets(hpa)
        for mt in targets:
            try:
                if mt.unsupported:
                    raise MetricUnavailable("FailedGetResourceMetric", mt.unsupported)
                if mt.utilization is not None:
                    prop = resource_utilization_replicas(current, mt.utilization, infos,
                                                         metrics, now, tolerance,
                                                         **self.timing)
                    current_status = {"averageUtilization": prop.utilization,
                                      "averageValue": format_quantity(prop.average, "cpu")}
                    info = {"utilization": prop.utilization, "targetUtilization":
                            mt.utilization}
                else:
                    prop = plain_metric_replicas(current, mt.average_value, infos, metrics,
                                                 now, tolerance, **self.timing)
                    current_status = {"averageValue": format_quantity(prop.average, "cpu")}
                    info = {"averageValue": prop.average, "targetAverageValue":
                            mt.average_value}
            except MetricUnavailable as err:
                invalid += 1
                if first_error is None:
                    first_error = err
                statuses.append({"type": ""})
                continue
            statuses.append({"type": "Resource",
                             "resource": {"name": "cpu", "current": current_status}})
            if best is None or prop.replicas > best:
                best = prop.replicas
                best_info = info
        statuses = [s for s in statuses if s.get("type")]
        if first_error is not None and (invalid >= len(targets) or
                                        (best is not None and best < current)):
            raise first_error
        set_condition("ScalingActive", "True", "ValidMetricFound",
                      "the HPA was able to successfully calculate a replica count from cpu "
                      "resource" + (" utilization (percentage of request)"
                                    if "utilization" in best_info else ""))
        metric_name = "cpu resource utilization (percentage of request)" \
            if "utilization" in best_info else "cpu resource"
        best_info["reason"] = f"{metric_name} above target" if best > current else \
            "All metrics below target" if best < current else ""
        return best, statuses, best_info
