"""DefaultPreemption (PostFilter): evict lower-priority pods so that a pod no node could take
fits on one node, which it is then nominated to (kube-scheduler v1.35,
plugins/defaultpreemption; the generic part is :mod:`schedbench.scheduler.preemption`).

- Eligibility: a pod with ``preemptionPolicy: Never`` (its own, else its PriorityClass's) does
  not preempt ("not eligible due to preemptionPolicy=Never."); nor does a pod whose nominated
  node holds a lower-priority pod being terminated by an earlier preemption (deletion started,
  and a ``DisruptionTarget`` condition True with reason ``PreemptionByScheduler``), unless
  the filters found that node ``UnschedulableAndUnresolvable``.
- Candidates: ``max(nodes * minCandidateNodesPercentage / 100, minCandidateNodesAbsolute)``
  capped at the number of potential nodes, from a random offset.
- Victims on a node (``SelectVictimsOnNode``): every pod of strictly lower priority is removed
  ("No preemption victims found for incoming pod" when there is none); if the pod still does
  not fit, the node fails with the filters' status; otherwise the removed pods are put back
  one by one from the most important (higher priority, then earlier start) and stay when the
  pod still fits; the others are the victims. Fitting is ``RunFilterPluginsWithNominatedPods``
  on the snapshot with the pods really removed, PreFilter state refreshed
  (:meth:`~schedbench.scheduler.framework.Framework.refresh_pre_filter`).
- Every message is prefixed with "preemption: ".

PodDisruptionBudgets are not modelled: no victim violates one. The eviction itself is done by
the scheduler (``Scheduler._evict``), at once: the preemptor is never held back by PreEnqueue
(kube's asynchronous preemption blocks it only while the API calls are in flight).
"""

from __future__ import annotations

from ...config import DefaultPreemptionArgs
from ..draws import Draws
from ..framework import Code, CycleState, Plugin, Status, register
from ..preemption import NO_VICTIMS, Evaluator, importance_key, skipped_filters
from ..snapshot import PodInfo

NOT_ELIGIBLE_NEVER = "not eligible due to preemptionPolicy=Never."
NOT_ELIGIBLE_TERMINATING = "not eligible due to a terminating pod on the nominated node."


def preemption_policy(pod: PodInfo, priority_classes: dict) -> str:
    """The pod's effective preemptionPolicy: its own, else (as the Priority admission plugin
    fills it in) its PriorityClass's or the global default class's, else
    PreemptLowerPriority."""
    spec = pod.pod.spec
    if spec.preemption_policy:
        return spec.preemption_policy
    pc = None
    if spec.priority_class_name:
        pc = priority_classes.get(spec.priority_class_name)
    elif spec.priority is None:
        pc = next((c for c in priority_classes.values() if c.global_default), None)
    return pc.preemption_policy if pc is not None else "PreemptLowerPriority"


def terminating_by_preemption(pod) -> bool:
    """podTerminatingByPreemption: deletion started, and the first DisruptionTarget condition
    is True with reason PreemptionByScheduler."""
    if not pod.metadata.deletion_timestamp:
        return False
    for c in pod.status.conditions:
        if c.type == "DisruptionTarget":
            return c.status == "True" and c.reason == "PreemptionByScheduler"
    return False


@register
class DefaultPreemption(Plugin):
    name = "DefaultPreemption"
    args_type = DefaultPreemptionArgs
    # kube registers AssignedPod/Delete with a hint that always says Skip: it never requeues.
    events = frozenset()

    def __init__(self, args, handle) -> None:
        super().__init__(args, handle)
        self.evaluator = Evaluator(self.name, handle, self)

    # ------------------------------------------------------------------------ PostFilter

    def post_filter(self, state: CycleState, pod: PodInfo, diagnosis):
        result = self.evaluator.preempt(state, pod, diagnosis)
        msg = result.status.message()
        if msg:
            result.status = Status(result.status.code, (f"preemption: {msg}",))
        return result

    def pre_enqueue(self, pod: PodInfo) -> Status:
        """Asynchronous preemption blocks a preemptor while its victims are being deleted;
        here the deletion is instantaneous."""
        return Status.success()

    # -------------------------------------------------------------------- the policy

    def calculate_num_candidates(self, num_nodes: int) -> int:
        n = num_nodes * self.args.min_candidate_nodes_percentage // 100
        if n < self.args.min_candidate_nodes_absolute:
            n = self.args.min_candidate_nodes_absolute
        return min(n, num_nodes)

    def get_offset_and_num_candidates(self, num_nodes: int) -> tuple[int, int]:
        """A random offset in [0, num_nodes) from the handle's seeded generator, and
        :meth:`calculate_num_candidates`."""
        if self.handle.draws is None:
            self.handle.draws = Draws(self.handle.rng)
        return self.handle.draws.below(num_nodes), self.calculate_num_candidates(num_nodes)

    def is_preemption_allowed(self, victim: PodInfo, preemptor: PodInfo) -> bool:
        return victim.priority < preemptor.priority

    @property
    def victims_have_lower_priority(self) -> bool:
        """Whether :meth:`is_preemption_allowed` is exactly the priority comparison (then the
        evaluator skips nodes without lower-priority pods in bulk); False in a subclass that
        overrides it."""
        return type(self).is_preemption_allowed is DefaultPreemption.is_preemption_allowed

    def pod_eligible_to_preempt_others(self, pod: PodInfo, nominated_status: Status
                                       ) -> tuple[bool, str]:
        snap = self.handle.snapshot
        if preemption_policy(pod, snap.priority_classes) == "Never":
            return False, NOT_ELIGIBLE_NEVER
        nominated = pod.pod.status.nominated_node_name
        if nominated:
            if nominated_status.code == Code.UNSCHEDULABLE_AND_UNRESOLVABLE:
                return True, ""
            idx = snap.node_index.get(nominated)
            if idx is not None and snap.alive[idx]:
                for p in snap.pods_on_node[idx].values():
                    if self.is_preemption_allowed(p, pod) and terminating_by_preemption(p.pod):
                        return False, NOT_ELIGIBLE_TERMINATING
        return True, ""

    def select_victims_on_node(self, state: CycleState, pod: PodInfo, node: int
                               ) -> tuple[list[PodInfo], int, Status]:
        """SelectVictimsOnNode on the live snapshot: the lower-priority pods are removed,
        the fit checked, the most important put back while the pod still fits; the snapshot
        (and the node's pod order) is restored before returning."""
        snap = self.handle.snapshot
        on_node = snap.pods_on_node[node]
        potential = [p for p in on_node.values() if self.is_preemption_allowed(p, pod)]
        if not potential:
            return [], 0, Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (NO_VICTIMS,))
        order = list(on_node.keys())
        skipped = skipped_filters(state)
        removed: list[PodInfo] = []
        try:
            for p in potential:
                snap.remove_pod(p)
                removed.append(p)
            status = self._fits(state, pod, node, skipped, explain=True)
            if not status.is_success:
                return [], 0, status
            potential.sort(key=importance_key)
            victims: list[PodInfo] = []
            for p in potential:  # no PDBs: every victim is "non-violating"
                snap.add_pod(p, node)
                removed.remove(p)
                if not self._fits(state, pod, node, skipped, explain=False).is_success:
                    snap.remove_pod(p)
                    removed.append(p)
                    victims.append(p)
            return victims, 0, Status.success()
        finally:
            for p in removed:
                snap.add_pod(p, node)
            current = snap.pods_on_node[node]
            if list(current.keys()) != order:
                items = [(k, current[k]) for k in order]
                current.clear()
                current.update(items)

    def _fits(self, state: CycleState, pod: PodInfo, node: int, skipped: frozenset[str], *,
              explain: bool) -> Status:
        fw = self.handle.framework
        st, sk, pre = fw.refresh_pre_filter(state, pod, skipped)
        if not pre.is_success:
            return pre
        return fw.filter_status(st, pod, node, sk, explain=explain)
