"""``schedbench explain``: every filter verdict and every score for one pod on every node.

Unlike a scheduling cycle, which stops at a node's first failing filter, an explanation runs
every enabled filter plugin on every node, then scores the feasible nodes with every score
plugin (raw, normalised, weight) and names the node the scheduler would pick (same seed, same
tie-break). A plugin whose PreFilter skipped shows ``Skip``; nodes that a PreFilter result
excluded (NodeAffinity pinning node names, ...) fail with that plugin's
UnschedulableAndUnresolvable status.
"""

from __future__ import annotations

import numpy as np

from ..model.objects import Pod
from .framework import Code, CycleState, Status
from .scheduler import Scheduler


def explain_pod(scheduler: Scheduler, pod: Pod, profile_name: str | None = None) -> dict:
    """The explanation as the JSON structure ``schedbench explain --format json`` prints;
    ``profile_name`` names the policy (default: the profile's schedulerName)."""
    snap, fw = scheduler.snapshot, scheduler.framework
    info = snap.pod_info(pod)
    state = CycleState()
    nodes = snap.evaluation_order()
    prefilter_status: dict[str, Status] = {}
    excluded_by: dict[int, tuple[str, str]] = {}
    skipped: set[str] = set()
    for plugin in fw.pre_filter_plugins:
        status, allowed = plugin.pre_filter(state, info, nodes)
        if status.is_skip:
            skipped.add(plugin.name)
        elif not status.is_success:
            prefilter_status[plugin.name] = Status(status.code, status.reasons, plugin.name)
        elif allowed is not None:
            keep = set(int(i) for i in allowed)
            for n in nodes:
                if int(n) not in keep and int(n) not in excluded_by:
                    excluded_by[int(n)] = (plugin.name, f"node(s) didn't satisfy plugin "
                                                        f"{plugin.name}")
    outcome = fw.run_filters(state, info, nodes, frozenset(skipped), all_plugins=True)
    per_node: dict[str, dict] = {}
    feasible = []
    for i, n in enumerate(nodes):
        n = int(n)
        filters: dict[str, dict] = {}
        ok = True
        for plugin in fw.filter_plugins:
            name = plugin.name
            if name in prefilter_status:
                s = prefilter_status[name]
                filters[name] = {"code": s.code.label, "reasons": list(s.reasons)}
                ok = False
                continue
            if excluded_by.get(n, ("",))[0] == name:
                filters[name] = {"code": Code.UNSCHEDULABLE_AND_UNRESOLVABLE.label,
                                 "reasons": [excluded_by[n][1]]}
                ok = False
                continue
            code = Code(int(outcome.per_plugin[name][i]))
            reasons = [] if code in (Code.SUCCESS, Code.SKIP) else \
                plugin.filter_reasons(state, info, n)
            filters[name] = {"code": code.label, "reasons": reasons}
            ok = ok and code in (Code.SUCCESS, Code.SKIP)
        for name, s in prefilter_status.items():  # PreFilter-only plugins that rejected
            filters.setdefault(name, {"code": s.code.label, "reasons": list(s.reasons)})
        if n in excluded_by and excluded_by[n][0] not in filters:
            name, why = excluded_by[n]
            filters[name] = {"code": Code.UNSCHEDULABLE_AND_UNRESOLVABLE.label, "reasons": [why]}
            ok = False
        per_node[snap.node_names[n]] = {"feasible": ok, "filter": filters, "score": {},
                                        "total": 0}
        if ok:
            feasible.append(n)
    selected = None
    if feasible:
        feas = np.array(feasible, np.int64)
        score_skipped = fw.run_pre_score(state, info, feas)
        scores = fw.run_scores(state, info, feas, score_skipped, keep=True)
        for j, n in enumerate(feas):
            entry = per_node[snap.node_names[n]]
            for plugin in fw.score_plugins:
                name = plugin.name
                if name in score_skipped:
                    entry["score"][name] = {"skipped": True}
                else:
                    entry["score"][name] = {"raw": int(scores.raw[name][j]),
                                            "normalized": int(scores.normalized[name][j]),
                                            "weight": int(fw.score_weights[name])}
            entry["total"] = int(scores.total[j])
        selected = snap.node_names[scheduler.select_host(feas, scores.total)]
    return {"pod": info.key, "profile": profile_name or fw.name, "selected": selected,
            "nodes": per_node}


def explain_table(result: dict) -> str:
    """The explanation for a human: one row per node, then each node's failures."""
    from ..textfmt import format_table

    lines = [f"Pod {result['pod']} with profile {result['profile']}: "
             f"selected {result['selected'] or 'no node (unschedulable)'}", ""]
    score_names: list[str] = []
    for entry in result["nodes"].values():
        for name in entry["score"]:
            if name not in score_names:
                score_names.append(name)
    headers = ["NODE", "FEASIBLE", "TOTAL"] + score_names
    rows = []
    ordered = sorted(result["nodes"].items(), key=lambda kv: (not kv[1]["feasible"],
                                                              -kv[1]["total"], kv[0]))
    for node, entry in ordered:
        cells = []
        for name in score_names:
            s = entry["score"].get(name)
            cells.append("-" if s is None else "skip" if s.get("skipped") else
                         f"{s['normalized']}x{s['weight']}")
        rows.append([node, "yes" if entry["feasible"] else "no",
                     entry["total"] if entry["feasible"] else "-"] + cells)
    lines.append(format_table(headers, rows, (2,)))
    failures = []
    for node, entry in ordered:
        for plugin, verdict in entry["filter"].items():
            if verdict["code"] not in ("Success", "Skip"):
                failures.append([node, plugin, verdict["code"], "; ".join(verdict["reasons"])])
    if failures:
        lines += ["", format_table(["NODE", "FILTER", "CODE", "REASONS"], failures)]
    return "\n".join(lines)

