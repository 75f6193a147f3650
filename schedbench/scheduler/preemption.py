"""Preemption (kube-scheduler v1.35's ``framework/preemption`` Evaluator), over the snapshot.

:meth:`Evaluator.preempt` is what a preemption PostFilter runs for a pod no node could take:

1. the pod must be eligible (the plugin's ``pod_eligible_to_preempt_others``), else
   Unschedulable with the plugin's reason and no change to the pod's nomination;
2. the potential nodes are those whose filter status is ``Unschedulable`` (resolvable), in
   NodeTree order (``NodesForStatusCode``); from a random offset (the seeded generator of the
   handle) they are dry-run one after the other (the plugin's ``select_victims_on_node``) until
   the plugin's number of candidates is reached (``DryRunPreemption``; candidates without PDB
   violations come first);
3. without candidates, Unschedulable with a FitError message over the dry-run statuses, the
   other nodes counting as "Preemption is not helpful for scheduling", and the nomination
   cleared;
4. else the best candidate (:func:`pick_one_node_for_preemption`) is nominated and its victims
   returned for eviction.

The plugin (see :mod:`.plugins.default_preemption`) supplies the policy: eligibility, the
number and offset of candidates, and the victims on one node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from .framework import SKIP_FILTER_KEY, Code, CycleState, Handle, Status

if TYPE_CHECKING:
    from .scheduler import Diagnosis, PostFilterResult
    from .snapshot import PodInfo

MAX_INT32 = 2 ** 31 - 1
PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"
NO_VICTIMS = "No preemption victims found for incoming pod"
_NO_VICTIMS_STATUS = Status(Code.UNSCHEDULABLE_AND_UNRESOLVABLE, (NO_VICTIMS,))


# ------------------------------------------------------------------------------ pod order


def parse_time(value: str | None) -> float:
    """An RFC 3339 timestamp as seconds since the epoch; ``math.inf`` when absent (kube's
    ``GetPodStartTime`` falls back to "now", later than every recorded start)."""
    if not value:
        return math.inf
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pod_start_time(pod: PodInfo) -> float:
    """``util.GetPodStartTime`` (cached on the PodInfo)."""
    cache = pod.cache.setdefault("preemption", {})
    key = pod.pod.status.start_time
    got = cache.get("start_time")
    if got is None or got[0] != key:
        got = cache["start_time"] = (key, parse_time(key))
    return got[1]


def more_important_pod(a: PodInfo, b: PodInfo) -> bool:
    """``util.MoreImportantPod``: higher priority, then the earlier start time."""
    if a.priority != b.priority:
        return a.priority > b.priority
    return pod_start_time(a) < pod_start_time(b)


def importance_key(pod: PodInfo) -> tuple[int, float]:
    """Sort key, most important first (a stable sort keeps the node's order on ties)."""
    return (-pod.priority, pod_start_time(pod))


def earliest_start_of_highest_priority(victims: list[PodInfo]) -> float:
    """``util.GetEarliestPodStartTime``: the earliest start time among the victims of the
    highest priority."""
    earliest = pod_start_time(victims[0])
    top = victims[0].priority
    for v in victims:
        if v.priority == top:
            earliest = min(earliest, pod_start_time(v))
        elif v.priority > top:
            top = v.priority
            earliest = pod_start_time(v)
    return earliest


# ------------------------------------------------------------------------------ candidates


@dataclass
class Candidate:
    """A node on which the preemptor would fit once ``victims`` (most important first) are
    gone; ``num_pdb_violations`` of them would violate a PodDisruptionBudget."""

    node: int
    victims: list[PodInfo] = field(default_factory=list)
    num_pdb_violations: int = 0


def pick_one_node_for_preemption(candidates: list[Candidate]) -> Candidate | None:
    """``pickOneNodeForPreemption``: fewest PDB violations; then the lowest priority of the
    most important victim; then the smallest sum of victim priorities (each shifted by
    2^31 so that negative priorities count as small positive ones); then the fewest victims;
    then the latest start among the highest-priority victims; then the first candidate."""
    if not candidates:
        return None
    score_funcs = (
        lambda c: -c.num_pdb_violations,
        lambda c: -c.victims[0].priority,
        lambda c: -sum(v.priority + MAX_INT32 + 1 for v in c.victims),
        lambda c: -len(c.victims),
        lambda c: earliest_start_of_highest_priority(c.victims),
    )
    remaining = list(candidates)
    for f in score_funcs:
        scores = [f(c) for c in remaining]
        best = max(scores)
        remaining = [c for c, s in zip(remaining, scores) if s == best]
        if len(remaining) == 1:
            return remaining[0]
    return remaining[0]


def nodes_for_status_code(diagnosis: Diagnosis, nodes, code: Code) -> list[int]:
    """``NodeToStatus.NodesForStatusCode`` over ``nodes`` (in their order): nodes whose
    status (explicit, else the absent nodes' status) has ``code``."""
    absent = diagnosis.absent_status
    absent_code = absent.code if absent is not None else Code.UNSCHEDULABLE_AND_UNRESOLVABLE
    nodes = np.asarray(nodes, np.int64)
    return nodes[diagnosis.node_status.codes_of(nodes, int(absent_code)) == int(code)].tolist()


def aggregate_errors(messages: list[str]) -> str:
    """``utilerrors.NewAggregate(errs).Error()``."""
    if len(messages) == 1:
        return messages[0]
    return "[" + ", ".join(messages) + "]"


class Evaluator:
    """kube's ``preemption.Evaluator`` for one preemption plugin (``interface``: the plugin,
    which provides ``pod_eligible_to_preempt_others``, ``get_offset_and_num_candidates`` and
    ``select_victims_on_node``)."""

    def __init__(self, plugin_name: str, handle: Handle, interface: Any) -> None:
        self.plugin_name = plugin_name
        self.handle = handle
        self.interface = interface

    def preempt(self, state: CycleState, pod: PodInfo, diagnosis: Diagnosis
                ) -> PostFilterResult:
        """``Evaluator.Preempt``; the message is not yet prefixed with "preemption: "."""
        from .scheduler import PostFilterResult, fit_error_message

        snap = self.handle.snapshot
        # 1) eligibility
        nominated = pod.pod.status.nominated_node_name
        idx = snap.node_index.get(nominated, -1) if nominated else -1
        nominated_status = diagnosis.status_of(idx)
        ok, msg = self.interface.pod_eligible_to_preempt_others(pod, nominated_status)
        if not ok:
            return PostFilterResult(Status(Code.UNSCHEDULABLE, (msg,)))
        # 2) candidates
        all_nodes = snap.evaluation_order()
        if all_nodes.size == 0:
            return PostFilterResult(Status(Code.ERROR, ("no nodes available",)))
        candidates, statuses, errors = self.find_candidates(state, pod, diagnosis, all_nodes)
        if errors and not candidates:
            return PostFilterResult(Status(Code.ERROR, (aggregate_errors(errors),)))
        if not candidates:
            n_all = int(all_nodes.size)
            message = fit_error_message(
                n_all, "", (s.reasons for s in statuses.values()),
                [PREEMPTION_NOT_HELPFUL], n_all - len(statuses), "")
            return PostFilterResult(Status(Code.UNSCHEDULABLE, (message,)), -1,
                                    mode="override")
        # 3) no extenders; 4) the best candidate
        best = self.select_candidate(candidates)
        if best is None:
            return PostFilterResult(Status(Code.UNSCHEDULABLE,
                                           ("no candidate node for preemption",)))
        # 5) the victims are evicted by the scheduler (prepareCandidate)
        return PostFilterResult(Status.success(), best.node, list(best.victims),
                                mode="override")

    def find_candidates(self, state: CycleState, pod: PodInfo, diagnosis: Diagnosis,
                        all_nodes) -> tuple[list[Candidate], dict[int, Status], list[str]]:
        """``findCandidates``: the potential nodes, a random offset and the number of
        candidates wanted, then the dry run."""
        potential = nodes_for_status_code(diagnosis, all_nodes, Code.UNSCHEDULABLE)
        if not potential:
            return [], {}, []
        offset, num = self.interface.get_offset_and_num_candidates(len(potential))
        return self.dry_run_preemption(state, pod, potential, offset, num)

    def dry_run_preemption(self, state: CycleState, pod: PodInfo, potential: list[int],
                           offset: int, num_candidates: int
                           ) -> tuple[list[Candidate], dict[int, Status], list[str]]:
        """``DryRunPreemption``, sequentially: nodes from ``potential[offset]`` on (wrapping)
        until ``num_candidates`` candidates, one of them without PDB violations, are found
        (with ``num_candidates`` 0 every node is tried and no candidate kept).
        Returns (candidates, non-violating first; the status of every node examined that is
        not a candidate; error messages)."""
        non_violating: list[Candidate] = []
        violating: list[Candidate] = []
        statuses: dict[int, Status] = {}
        errors: list[str] = []
        n = len(potential)
        # Nodes without a pod of lower priority than the preemptor's have no victims
        # (SelectVictimsOnNode's first step) when the plugin compares priorities as
        # DefaultPreemption does: found from the snapshot's per-node lowest priority.
        has_lower = None
        if getattr(self.interface, "victims_have_lower_priority", False):
            lowest = self.handle.snapshot.lowest_priority
            has_lower = (lowest[np.asarray(potential, np.int64)] < pod.priority).tolist()
            if not any(has_lower):
                return [], dict.fromkeys((potential[(offset + i) % n] for i in range(n)),
                                         _NO_VICTIMS_STATUS), []
        for i in range(n):
            j = (offset + i) % n
            node = potential[j]
            if has_lower is not None and not has_lower[j]:
                statuses[node] = _NO_VICTIMS_STATUS
                continue
            victims, violations, status = self.interface.select_victims_on_node(
                state, pod, node)
            if status.is_success and victims:
                c = Candidate(node, victims, violations)
                (non_violating if violations == 0 else violating).append(c)
                # the candidate lists hold at most num_candidates each (extra adds are lost)
                kept = min(len(non_violating), num_candidates)
                if kept > 0 and kept + min(len(violating), num_candidates) >= num_candidates:
                    break
                continue
            if status.is_success:
                name = self.handle.snapshot.node_names[node]
                status = Status(Code.ERROR, (f'expected at least one victim pod on node "{name}"',))
            if status.code == Code.ERROR:
                errors.append(status.message())
            statuses[node] = status
        return non_violating[:num_candidates] + violating[:num_candidates], statuses, errors

    def select_candidate(self, candidates: list[Candidate]) -> Candidate | None:
        """``SelectCandidate``."""
        if not candidates:
            return None
        if len(candidates) == 1:
            return candidates[0]
        return pick_one_node_for_preemption(candidates)


def skipped_filters(state: CycleState) -> frozenset[str]:
    """The plugins whose PreFilter skipped in this cycle (recorded by the scheduler)."""
    return state.get(SKIP_FILTER_KEY, frozenset())
