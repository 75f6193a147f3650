"""The pods x nodes feasibility mask, from the scheduler's own filter plugins.

A pending pod may go to a node only if the profile's filter plugins let it - the baseline and
the heuristics must agree on what is allowed. The plugins fall in three groups:

- node-local (:data:`NODE_LOCAL`): NodeUnschedulable, NodeName, NodeAffinity, TaintToleration
  decide from the pod and the node alone; NodePorts, NodeResourcesFit and GpuShare also read
  the pods already bound. Their PreFilter + Filter run once per pod class on the snapshot with
  only the bound pods. Adding pods to a node never makes these verdicts better (ports get used,
  resources and GPU share run out), so a rejection is final and the node is masked out. What
  the pending pods then take from each other is the solver's job (capacities, per-GPU share,
  host ports).
- modelled (:data:`MODELLED`): InterPodAffinity and PodTopologySpread depend on where the
  other pending pods go; the solver models them (see :mod:`.model`). Only their static parts
  come from the plugins here: the required anti-affinity against bound pods (both ways) is
  InterPodAffinity's own filter run on a copy of the pod without its required affinity, and a
  node that lacks a spread constraint's topology key is masked out (PodTopologySpread's
  Filter code 3).
- any other filter plugin (the volume and DRA plugins, which skip for schedbench's pods, or a
  custom one) runs as it is on the bound-only snapshot, and its rejections are masked out
  (conservative: a plugin whose verdict improves as pods are added is not modelled).
"""

from __future__ import annotations

import copy

import numpy as np

from ..scheduler.framework import SUCCESS, CycleState, Framework
from ..scheduler.snapshot import PodInfo

NODE_LOCAL = ("NodeUnschedulable", "NodeName", "NodeAffinity", "TaintToleration", "NodePorts",
              "NodeResourcesFit", "GpuShare")
MODELLED = ("InterPodAffinity", "PodTopologySpread")


def _run_plugin(plugin, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
    """PreFilter + Filter of one plugin over ``nodes``: True where it lets the pod pass. A
    PreFilter Skip passes every node; a PreFilter node set or rejection masks the rest."""
    state = CycleState()
    ok = np.ones(nodes.size, np.bool_)
    pre = getattr(plugin, "pre_filter", None)
    if pre is not None:
        status, allowed = pre(state, pod, nodes)
        if status.is_skip:
            return ok
        if not status.is_success:
            return np.zeros(nodes.size, np.bool_)
        if allowed is not None:
            ok &= np.isin(nodes, allowed)
    codes = np.asarray(plugin.filter(state, pod, nodes), np.int8)
    return ok & (codes == SUCCESS)


def _without_required_affinity(snapshot, pod: PodInfo) -> PodInfo:
    """A copy of the pod whose required pod affinity is dropped (anti-affinity kept)."""
    aff = pod.pod.spec.affinity
    if aff is None or aff.pod_affinity is None or not aff.pod_affinity.required:
        return pod
    clone = copy.deepcopy(pod.pod)
    clone.spec.affinity.pod_affinity = None  # (its preferred terms do not filter)
    return snapshot.pod_info(clone)


def feasibility_row(framework: Framework, pod: PodInfo, nodes: np.ndarray) -> np.ndarray:
    """bool[len(nodes)]: whether the filter plugins of ``framework`` allow ``pod`` on each
    node given only the pods bound in the snapshot (see the module docstring)."""
    snap = framework.handle.snapshot
    nodes = np.ascontiguousarray(nodes, np.int64)
    ok = np.ones(nodes.size, np.bool_)
    for plugin in framework.filter_plugins:
        if not ok.any():
            break
        if plugin.name == "InterPodAffinity":
            ok &= _run_plugin(plugin, _without_required_affinity(snap, pod), nodes)
        elif plugin.name == "PodTopologySpread":
            cons = plugin.constraints(pod, "DoNotSchedule")
            if cons:
                key_ids = [snap.vocab.key_id(c.topology_key) for c in cons]
                for k in key_ids:
                    ok &= (snap.labels[nodes, k] >= 0) if k >= 0 else False
        else:
            ok &= _run_plugin(plugin, pod, nodes)
    return ok


def feasibility_mask(framework: Framework, pods: list[PodInfo], nodes: np.ndarray
                     ) -> np.ndarray:
    """bool[len(pods), len(nodes)]: :func:`feasibility_row` for each pod."""
    out = np.zeros((len(pods), len(nodes)), np.bool_)
    for i, p in enumerate(pods):
        out[i] = feasibility_row(framework, p, nodes)
    return out
