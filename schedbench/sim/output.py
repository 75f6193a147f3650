"""What a simulation writes: the event log (JSON lines) and the timeline summary.

**Event log** (:class:`EventLog`): one JSON object per line, keys in a fixed order: ``t``
(virtual seconds, rounded to 6 decimals), ``event`` (``ADDED`` / ``MODIFIED`` / ``DELETED``
for store mutations; ``action`` for scenario actions; components' decisions such as
``scaled``, ``evicted``, ``hpa``), ``kind``, ``name`` (``ns/name``), then details (the
mutation's ``cause``; for pods ``phase``, ``node``, ``ready`` and the scheduler's pending
``reason``; for workloads the spec and status replica counts; for nodes ``ready``,
``unschedulable`` and taint keys). The same scenario and seed give the same bytes. The file is
streamed to a temporary file beside the target and renamed over it when closed (atomic).

**Timeline** (:class:`Timeline`): a sample every ``sample_seconds`` (engine priority
:data:`~.engine.PRIO_SAMPLE`, after everything else at that instant): pods (total, bound,
pending, unschedulable, running, ready, terminal), nodes (total, ready, cordoned), requested
CPU and memory over allocatable (the cluster's and per node: mean, p95, max), CPU used by
the pods that get requests (the load model) over allocatable, and per
Deployment replicas / updated / ready / available / unavailable. :func:`write_outputs`
writes ``timeline.csv``, ``deployments.csv``, ``nodes.csv`` (per-node CPU and memory
utilisation per sample; clusters of at most :data:`NODE_CSV_LIMIT` nodes), ``summary.json``,
``summary.md`` and ``timeline.png`` (matplotlib, Agg), every file atomically.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from ..manifests import atomic_write_text

NODE_CSV_LIMIT = 500
TIMELINE_COLUMNS = (
    "t", "pods", "bound", "pending", "unschedulable", "running", "ready", "terminal",
    "deleted", "nodes", "nodes_ready", "nodes_cordoned", "cpu_requested_pct",
    "memory_requested_pct", "cpu_used_pct", "node_cpu_mean_pct", "node_cpu_p95_pct",
    "node_cpu_max_pct",
    "node_memory_mean_pct", "node_memory_max_pct")
DEPLOYMENT_COLUMNS = ("t", "deployment", "replicas", "updated", "ready", "available",
                      "unavailable", "desired")


def _round_t(t: float) -> float:
    return round(float(t), 6)


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False,
                            default=str)


def dumps_record(record: dict) -> str:
    """One log line (no newline): compact JSON, keys as given, floats as Python's repr (one
    encoder for every record: ``json.dumps`` with options builds a new one per call)."""
    return _ENCODER.encode(record)


class EventLog:
    """The event log: records appended in order, streamed to ``path`` (atomically renamed
    into place by :meth:`close`) and/or kept in memory (``keep=True``). ``sha256`` is the
    digest of the bytes written so far; ``count`` the number of records."""

    def __init__(self, path: str | Path | None = None, *, keep: bool = False) -> None:
        self.path = Path(path) if path is not None else None
        self.keep = keep
        self.lines: list[str] = []
        self.count = 0
        self._hash = hashlib.sha256()
        self._fh = None
        self._tmp: str | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(dir=self.path.parent,
                                             prefix=f".{self.path.name}.", suffix=".tmp")
            self._fh = os.fdopen(fd, "w", encoding="utf-8", buffering=1 << 20)

    def append(self, record: dict) -> None:
        if "t" in record:
            record["t"] = _round_t(record["t"])
        line = dumps_record(record)
        self.count += 1
        data = line + "\n"
        self._hash.update(data.encode("utf-8"))
        if self.keep:
            self.lines.append(line)
        if self._fh is not None:
            self._fh.write(data)

    __call__ = append

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def close(self) -> None:
        """Flush and move the file into place (idempotent)."""
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        try:
            fh.flush()
            os.fsync(fh.fileno())
        finally:
            fh.close()
        os.replace(self._tmp, self.path)

    def discard(self) -> None:
        """Drop the partial file (a failed run)."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
            Path(self._tmp).unlink(missing_ok=True)


# ---------------------------------------------------------------------- mutation records

def _cond(obj, type_: str):
    for c in obj.status.conditions:
        if c.type == type_:
            return c
    return None


def mutation_record(t: float, ev) -> dict:
    """The log record of a store mutation (a WatchEvent)."""
    obj = ev.obj
    rec: dict[str, Any] = {"t": t, "event": ev.type, "kind": obj.KIND, "name": obj.key}
    if ev.cause:
        rec["cause"] = ev.cause
    kind = obj.KIND
    if kind == "Pod":
        st = obj.status
        rec["phase"] = st.phase or "Pending"
        if obj.spec.node_name:
            rec["node"] = obj.spec.node_name
        ready = _cond(obj, "Ready")
        if ready is not None:
            rec["ready"] = ready.status == "True"
        sched = _cond(obj, "PodScheduled")
        if sched is not None and sched.status == "False":
            rec["reason"] = sched.reason
            if sched.message:
                rec["message"] = sched.message
        if st.nominated_node_name:
            rec["nominated"] = st.nominated_node_name
    elif kind in ("Deployment", "ReplicaSet"):
        rec["replicas"] = obj.spec.replicas
        s = obj.status
        rec["current"] = s.replicas
        if kind == "Deployment":
            rec["updated"] = s.updated_replicas
        rec["ready"] = s.ready_replicas
        rec["available"] = s.available_replicas
        if kind == "Deployment":
            if obj.spec.paused:
                rec["paused"] = True
            rev = obj.metadata.annotations.get("deployment.kubernetes.io/revision")
            if rev:
                rec["revision"] = rev
        else:
            ref = obj.metadata.controller_ref()
            if ref is not None:
                rec["owner"] = f"{ref.kind}/{ref.name}"
    elif kind == "Node":
        ready = None
        for c in obj.status.conditions:
            if c.type == "Ready":
                ready = c.status
        if ready is not None:
            rec["ready"] = ready
        if obj.spec.unschedulable:
            rec["unschedulable"] = True
        if obj.spec.taints:
            rec["taints"] = [f"{x.key}:{x.effect}" for x in obj.spec.taints]
    elif kind == "Endpoints":
        subsets = getattr(obj, "subsets", [])
        rec["ready"] = sum(len(s.addresses) for s in subsets)
        rec["not_ready"] = sum(len(s.not_ready_addresses) for s in subsets)
    elif kind == "HorizontalPodAutoscaler":
        status = obj.status or {}
        for k in ("currentReplicas", "desiredReplicas"):
            if k in status:
                rec[k] = status[k]
    return rec


# ------------------------------------------------------------------------------ timeline

class Timeline:
    """Samples of the simulation (see the module docstring); ``rows``, ``deployment_rows``
    and ``node_rows`` (t, per-node cpu %, per-node memory %) grow with every sample."""

    def __init__(self, sim, keep_nodes: bool | None = None) -> None:
        self.sim = sim
        self.rows: list[dict] = []
        self.deployment_rows: list[dict] = []
        self.node_rows: list[tuple[float, list[str], np.ndarray, np.ndarray]] = []
        self.keep_nodes = keep_nodes

    def sample(self) -> None:
        sim = self.sim
        t = sim.engine.now
        counts = sim.accounting.counts()
        snap = sim.scheduler.snapshot
        alive = snap.alive_nodes()
        row: dict[str, Any] = {"t": _round_t(t)}
        row.update(counts)
        nodes_ready = nodes_cordoned = 0
        for i in alive.tolist():
            node = snap.nodes[i]
            if node.is_ready():
                nodes_ready += 1
            if node.spec.unschedulable:
                nodes_cordoned += 1
        row["nodes"] = int(alive.size)
        row["nodes_ready"] = nodes_ready
        row["nodes_cordoned"] = nodes_cordoned
        cpu_pct, mem_pct = _node_pct(snap, alive)
        alloc = snap.allocatable[alive]
        req = snap.requested[alive]
        row["cpu_requested_pct"] = _pct(req[:, 0].sum(), alloc[:, 0].sum())
        row["memory_requested_pct"] = _pct(req[:, 1].sum(), alloc[:, 1].sum())
        row["cpu_used_pct"] = _pct(_cpu_used(sim), alloc[:, 0].sum())
        for name, arr in (("cpu", cpu_pct), ("memory", mem_pct)):
            row[f"node_{name}_mean_pct"] = round(float(arr.mean()), 4) if arr.size else 0.0
            row[f"node_{name}_max_pct"] = round(float(arr.max()), 4) if arr.size else 0.0
        row["node_cpu_p95_pct"] = round(float(np.percentile(cpu_pct, 95)), 4) \
            if cpu_pct.size else 0.0
        self.rows.append({k: row.get(k, 0) for k in TIMELINE_COLUMNS} | {
            k: v for k, v in row.items() if k not in TIMELINE_COLUMNS})
        keep = self.keep_nodes if self.keep_nodes is not None else \
            snap.num_nodes <= NODE_CSV_LIMIT
        if keep:
            names = [snap.node_names[i] for i in alive.tolist()]
            self.node_rows.append((row["t"], names, cpu_pct, mem_pct))
        for dep in sim.store.list("Deployment"):
            s = dep.status
            self.deployment_rows.append({
                "t": row["t"], "deployment": dep.key, "replicas": s.replicas,
                "updated": s.updated_replicas, "ready": s.ready_replicas,
                "available": s.available_replicas, "unavailable": s.unavailable_replicas,
                "desired": dep.spec.replicas})


def _cpu_used(sim) -> float:
    """Millicores used by the ready endpoints of the Services that have a request rate (the
    load model: base + rate x CPU per request; a pod that serves several such Services
    counts once per Service)."""
    proxy, load = getattr(sim, "kube_proxy", None), getattr(sim, "load", None)
    if proxy is None or load is None:
        return 0.0
    used = 0.0
    for key in proxy.services():
        ns, _, name = key.partition("/")
        svc = sim.store.try_get("Service", ns, name)
        if svc is None:
            continue
        params = load.params(svc)
        split = proxy.service_split(key)
        used += sum(split.values()) * params.cpu_per_request + params.base_cpu * len(split)
    return used


def _pct(a, b) -> float:
    return round(100.0 * float(a) / float(b), 4) if b else 0.0


def _node_pct(snap, alive: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    alloc = snap.allocatable[alive, :2].astype(np.float64)
    req = snap.requested[alive, :2].astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(alloc > 0, 100.0 * req / np.where(alloc > 0, alloc, 1.0), 0.0)
    return np.round(pct[:, 0], 4), np.round(pct[:, 1], 4)


# ------------------------------------------------------------------------------- writing

def _csv_text(columns, rows) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore",
                       lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def _nodes_csv(node_rows) -> str:
    buf = io.StringIO()
    buf.write("t,node,cpu_requested_pct,memory_requested_pct\n")
    for t, names, cpu, mem in node_rows:
        for n, c, m in zip(names, cpu.tolist(), mem.tolist()):
            buf.write(f"{t!r},{n},{c!r},{m!r}\n")
    return buf.getvalue()


def summary_dict(sim) -> dict:
    """The run's summary: scenario, end time, counts, scheduler figures, final
    Deployments, the no-pod-lost check, the event log's size and digest."""
    rows = sim.timeline.rows
    check = sim.check_no_pod_lost()
    deps = []
    for d in sim.store.list("Deployment"):
        s = d.status
        deps.append({"deployment": d.key, "desired": d.spec.replicas, "replicas": s.replicas,
                     "updated": s.updated_replicas, "ready": s.ready_replicas,
                     "available": s.available_replicas,
                     "unavailable": s.unavailable_replicas})
    peak_pending = max((r["pending"] for r in rows), default=0)
    # the fewest available replicas once a Deployment had first become fully available
    min_avail: dict[str, int] = {}
    for r in sim.timeline.deployment_rows:
        k = r["deployment"]
        if k in min_avail:
            min_avail[k] = min(min_avail[k], r["available"])
        elif r["available"] >= r["desired"] and r["desired"] > 0:
            min_avail[k] = r["available"]
    return {
        "scenario": sim.name, "seed": sim.seed, "end": _round_t(sim.engine.now),
        "events": sim.log.count, "event_log_sha256": sim.log.sha256,
        "engine_steps": sim.engine.steps,
        "pods": sim.accounting.counts(),
        "pods_created": sim.accounting.created,
        "deletions_by_cause": sim.accounting.deletions_by_cause(),
        "scheduler": sim.scheduler_controller.stats(),
        "peak_pending": peak_pending,
        "deployments": deps,
        "min_available": min_avail,
        "no_pod_lost": check.ok,
        "lost_pods": check.lost[:20],
        "samples": len(rows),
        "wall_seconds": round(sim.wall_seconds, 3),
    }


def summary_markdown(summary: dict) -> str:
    out = [f"# Simulation: {summary['scenario']}", ""]
    out.append(f"Seed {summary['seed']}, simulated {summary['end']:g} s "
               f"({summary['end'] / 3600:.2f} h) in {summary['wall_seconds']:g} s wall; "
               f"{summary['events']:,} logged events, {summary['engine_steps']:,} engine "
               "events.")
    out.append("")
    p = summary["pods"]
    out.append(f"Pods at the end: {p['pods']} ({p['bound']} bound, {p['running']} running, "
               f"{p['ready']} ready, {p['pending']} pending, {p['unschedulable']} "
               f"unschedulable, {p['terminal']} terminal); {summary['pods_created']} created, "
               f"{p['deleted']} deleted; peak pending {summary['peak_pending']}.")
    s = summary["scheduler"]
    out.append(f"Scheduler: {s['attempts']} attempts, {s['binds']} binds, {s['failures']} "
               f"failed attempts, {s['preemptions']} preemptions.")
    out.append("No pod lost: " + ("yes" if summary["no_pod_lost"] else
                                  f"NO ({len(summary['lost_pods'])} shown in summary.json)"))
    if summary["deletions_by_cause"]:
        out += ["", "| deletion cause | pods |", "| --- | ---: |"]
        for cause, n in summary["deletions_by_cause"].items():
            out.append(f"| {cause} | {n} |")
    if summary["deployments"]:
        out += ["", "| deployment | desired | replicas | updated | ready | available | "
                "unavailable | min available after first complete |", "| --- | ---: | ---: | ---: | ---: | ---: | "
                "---: | ---: |"]
        for d in summary["deployments"]:
            out.append(f"| {d['deployment']} | {d['desired']} | {d['replicas']} | "
                       f"{d['updated']} | {d['ready']} | {d['available']} | "
                       f"{d['unavailable']} | "
                       f"{summary['min_available'].get(d['deployment'], '')} |")
    return "\n".join(out) + "\n"


def write_outputs(sim, out_dir: str | Path, *, plot: bool = True) -> dict:
    """Write the timeline files and the summary into ``out_dir`` (the event log is already
    there); returns the summary."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tl = sim.timeline
    atomic_write_text(out / "timeline.csv", _csv_text(TIMELINE_COLUMNS, tl.rows))
    atomic_write_text(out / "deployments.csv",
                      _csv_text(DEPLOYMENT_COLUMNS, tl.deployment_rows))
    if tl.node_rows:
        atomic_write_text(out / "nodes.csv", _nodes_csv(tl.node_rows))
    summary = summary_dict(sim)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    atomic_write_text(out / "summary.md", summary_markdown(summary))
    if plot and tl.rows:
        plot_timeline(sim, out / "timeline.png")
    return summary


def plot_timeline(sim, path: Path) -> None:
    """Three panels over time: Deployment available replicas (and desired), pending pods,
    requested CPU/memory (cluster and the busiest node). Written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = sim.timeline.rows
    t = np.array([r["t"] for r in rows]) / 60.0
    fig, axes = plt.subplots(3, 1, figsize=(9, 8), sharex=True)
    ax = axes[0]
    by_dep: dict[str, list[dict]] = {}
    for r in sim.timeline.deployment_rows:
        by_dep.setdefault(r["deployment"], []).append(r)
    for i, (name, rs) in enumerate(list(by_dep.items())[:8]):
        tt = np.array([r["t"] for r in rs]) / 60.0
        line, = ax.plot(tt, [r["available"] for r in rs], label=f"{name} available")
        ax.plot(tt, [r["desired"] for r in rs], ls=":", color=line.get_color())
    ax.set_ylabel("replicas")
    if by_dep:
        ax.legend(fontsize=7, loc="best")
    ax = axes[1]
    ax.plot(t, [r["pending"] for r in rows], label="pending")
    ax.plot(t, [r["unschedulable"] for r in rows], label="unschedulable")
    ax.plot(t, [r["ready"] for r in rows], label="ready")
    ax.set_ylabel("pods")
    ax.legend(fontsize=7, loc="best")
    ax = axes[2]
    ax.plot(t, [r["cpu_requested_pct"] for r in rows], label="cpu requested (cluster)")
    ax.plot(t, [r["memory_requested_pct"] for r in rows], label="memory requested (cluster)")
    ax.plot(t, [r["node_cpu_max_pct"] for r in rows], ls="--", label="cpu, busiest node")
    if any(r["cpu_used_pct"] for r in rows):
        ax.plot(t, [r["cpu_used_pct"] for r in rows], label="cpu used (load model)")
    ax.set_ylabel("% of allocatable")
    ax.set_xlabel("minutes")
    ax.legend(fontsize=7, loc="best")
    fig.suptitle(f"{sim.name} (seed {sim.seed})")
    fig.tight_layout()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=100, metadata={"Software": None})
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
