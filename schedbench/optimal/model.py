"""The CP-SAT model of a placement :class:`~.instance.Instance`.

Variables: ``x[c, n]``, how many pods of class ``c`` go to node ``n`` (only where the
feasibility mask allows it, bounded by what fits the node alone); ``u[n]`` whether a node is
used (the ``nodes`` objective); per GPU ``s[c, n, g]`` (share pods of class ``c`` on GPU ``g``)
and ``w[n, g]`` (GPU ``g`` taken whole).

Constraints (all on the final placement):

- capacity: per node and modelled resource column ``sum_c q[c] x[c, n] <= free[n]`` (times
  ``u[n]`` when nodes are counted), and the free pod slots;
- GPUs (GpuShare): each GPU's share pods fit its milli left; whole-GPU pods take fully free
  GPUs (Open-Gpu-Share's rules, :mod:`schedbench.scheduler.plugins.gpu_share`);
- required anti-affinity: when a pod of the owner is in a domain, no other pod matching the
  term is (bound pods matching it are masked out already);
- required affinity: a pod of the owner goes where an anchor (a bound pod, or a pending pod
  without required affinity, matching all its terms) is, or to the one seed domain of a group
  of pods that match their own terms when no bound pod matches them (the order in which kube
  reaches such placements one pod at a time; see :class:`~.instance.AffinityRule`);
- DoNotSchedule spread: for a domain holding a pod of the owner, ``count(domain) + (1 - self
  match) - min over eligible domains <= maxSkew`` (min 0 when there are fewer eligible domains
  than ``minDomains``). On the final placement this is what every pod's own check passes
  against when it is removed and added back, and any sequence of placements kube accepts ends
  in such a placement when every pod counted by a constraint also carries it;
- host ports: classes sharing a (protocol, port) take at most one pod per node;
- the placed pods of a class that must be placed (bound pods that may move) equal its size.

Symmetry breaking: identical pods are one class; among interchangeable nodes (same mask
column, free capacity, GPUs, domains and bound counts for every rule) the number of pods is
non-increasing in node order.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np
from ortools.sat.python import cp_model

from .instance import Instance

OBJECTIVES = ("placed", "nodes", "balance", "preferences")
#: objective name -> True when maximised
MAXIMISE = {"placed": True, "nodes": False, "balance": False, "preferences": True,
            "moves": False}
BALANCE_SCALE = 1000  # the peak utilisation variable is in per-mille


class PlacementModel:
    """The model of one instance (see the module docstring)."""

    def __init__(self, inst: Instance, objectives: list[str], *, require_all: bool = False,
                 home: dict[tuple[int, int], int] | None = None) -> None:
        self.inst = inst
        self.model = m = cp_model.CpModel()
        C, N = inst.mask.shape
        self.objectives = list(objectives)
        self.x: dict[tuple[int, int], cp_model.IntVar] = {}
        self.by_node: list[list[tuple[int, cp_model.IntVar]]] = [[] for _ in range(N)]
        self.by_class: list[list[tuple[int, cp_model.IntVar]]] = [[] for _ in range(C)]
        ub = inst.ub
        for ci, ni in zip(*np.nonzero(ub)):
            ci, ni = int(ci), int(ni)
            v = m.NewIntVar(0, int(ub[ci, ni]), f"x_{ci}_{ni}")
            self.x[ci, ni] = v
            self.by_node[ni].append((ci, v))
            self.by_class[ci].append((ni, v))
        self.placed = []
        for ci, c in enumerate(inst.classes):
            expr = sum(v for _, v in self.by_class[ci])
            self.placed.append(expr)
            if c.must_place or require_all:
                m.Add(expr == c.count)
            elif self.by_class[ci]:
                m.Add(expr <= c.count)
        self._capacity("nodes" in objectives)
        if inst.gpu:
            self._gpus()
        self._anti()
        self._affinity()
        self._spread()
        self._ports()
        if home is None:
            self._node_symmetry()
        else:
            self.symmetric_groups = []
        self.exprs: dict[str, object] = {}
        for name in objectives:
            self.exprs[name] = self._objective(name, home)

    # ------------------------------------------------------------------------- constraints

    def _capacity(self, count_nodes: bool) -> None:
        inst, m = self.inst, self.model
        N = inst.mask.shape[1]
        self.u: dict[int, object] = {}
        for n in range(N):
            terms = self.by_node[n]
            if not terms:
                continue
            u = None
            if count_nodes:
                u = 1 if inst.occupied[n] else m.NewBoolVar(f"u_{n}")
                self.u[n] = u
                if isinstance(u, int):
                    u = None
            for j in range(len(inst.columns)):
                coeffs = [(int(inst.classes[c].request[j]), v, int(inst.ub[c, n]))
                          for c, v in terms if inst.classes[c].request[j] > 0]
                if not coeffs:
                    continue
                cap = int(inst.cap[n, j])
                if u is None:
                    if sum(q * b for q, _, b in coeffs) > cap:
                        m.Add(sum(q * v for q, v, _ in coeffs) <= cap)
                else:
                    m.Add(sum(q * v for q, v, _ in coeffs) <= cap * u)
            total = sum(v for _, v in terms)
            slots = int(inst.slots[n])
            most = sum(int(inst.ub[c, n]) for c, _ in terms)
            if u is not None:
                m.Add(total <= min(slots, most) * u)
            elif most > slots:
                m.Add(total <= slots)

    def _gpus(self) -> None:
        inst, m = self.inst, self.model
        self.s: dict[tuple[int, int, int], cp_model.IntVar] = {}
        self.w: dict[tuple[int, int], object] = {}
        for n, terms in enumerate(self.by_node):
            gterms = [(c, v) for c, v in terms if inst.classes[c].num_gpu]
            if not gterms:
                continue
            free = inst.gpu_free[n]
            gpus = [g for g in range(free.size) if free[g] >= 0]
            load = {g: [] for g in gpus}
            whole = [(c, v) for c, v in gterms if not inst.classes[c].gpu_share]
            for c, v in gterms:
                cls = inst.classes[c]
                if not cls.gpu_share:
                    continue
                parts = []
                for g in gpus:
                    cap = int(free[g]) // cls.gpu_milli
                    if cap <= 0:
                        continue
                    s = m.NewIntVar(0, min(cap, int(inst.ub[c, n])), f"s_{c}_{n}_{g}")
                    self.s[c, n, g] = s
                    parts.append(s)
                    load[g].append((cls.gpu_milli, s))
                m.Add(sum(parts) == v)
            if whole:
                ws = []
                for g in gpus:
                    if free[g] >= 1000:
                        w = m.NewBoolVar(f"w_{n}_{g}")
                        self.w[n, g] = w
                        ws.append(w)
                        load[g].append((1000, w))
                m.Add(sum(ws) == sum(inst.classes[c].num_gpu * v for c, v in whole))
            for g in gpus:
                if load[g] and sum(q * 1 for q, _ in load[g]) > 0:
                    m.Add(sum(q * v for q, v in load[g]) <= int(free[g]))
            # GPUs of a node with the same milli left are interchangeable: loads non-increasing
            for a, b in zip(gpus, gpus[1:]):
                if free[a] == free[b] and load[a] and load[b]:
                    m.Add(sum(q * v for q, v in load[a]) >= sum(q * v for q, v in load[b]))

    def _domain_sums(self, classes: list[int], dom: np.ndarray) -> dict[int, list]:
        """domain -> the x variables of ``classes`` on the nodes of that domain."""
        out: dict[int, list] = defaultdict(list)
        cs = set(classes)
        for n, terms in enumerate(self.by_node):
            d = int(dom[n])
            if d < 0:
                continue
            for c, v in terms:
                if c in cs:
                    out[d].append(v)
        return out

    def _presence(self, owner_vars: list, name: str):
        """A literal true when any of ``owner_vars`` is positive (and implied by it)."""
        y = self.model.NewBoolVar(name)
        self.model.Add(sum(owner_vars) == 0).OnlyEnforceIf(y.Not())
        return y

    def _anti(self) -> None:
        inst, m = self.inst, self.model
        snap = inst.snapshot
        for r, rule in enumerate(inst.anti):
            dom = snap.labels[inst.nodes, rule.key_id].astype(np.int64)
            own = self._domain_sums([rule.owner], dom)
            others = self._domain_sums(rule.matching, dom)
            only_self = rule.matching == [rule.owner]
            for d, owner_vars in sorted(own.items()):
                if only_self:
                    m.Add(sum(owner_vars) <= 1)
                    continue
                y = self._presence(owner_vars, f"anti_{r}_{d}")
                if others.get(d):
                    m.Add(sum(others[d]) <= int(rule.self_match)).OnlyEnforceIf(y)

    def _affinity(self) -> None:
        inst, m = self.inst, self.model
        snap = inst.snapshot
        seeds: dict[tuple, dict[int, object]] = {}
        alone_of: dict[tuple, object] = {}
        for r, rule in enumerate(inst.affinity):
            use_seed = rule.self_match and rule.bound_total == 0
            for j, k in enumerate(rule.key_ids):
                dom = snap.labels[inst.nodes, k].astype(np.int64)
                own = self._domain_sums([rule.owner], dom)
                anchors = self._domain_sums(rule.anchors, dom)
                for d, owner_vars in sorted(own.items()):
                    cnt = rule.bound[j].get(d, 0) + sum(anchors.get(d, []))
                    if isinstance(cnt, int) and cnt >= 1:
                        continue  # an anchor is there whatever happens
                    y = self._presence(owner_vars, f"aff_{r}_{j}_{d}")
                    lits = [y.Not()]
                    if not isinstance(cnt, int):
                        e = m.NewBoolVar(f"aff_anchor_{r}_{j}_{d}")
                        m.Add(cnt >= 1).OnlyEnforceIf(e)
                        lits.append(e)
                    if use_seed:
                        group = seeds.setdefault((rule.terms, j), {})
                        s = group.get(d)
                        if s is None:
                            s = group[d] = m.NewBoolVar(f"aff_seed_{r}_{j}_{d}")
                            self._seed_valid(rule, s, dom, d, alone_of)
                        lits.append(s)
                    m.AddBoolOr(lits)
        for group in seeds.values():
            m.Add(sum(group.values()) <= 1)

    def _seed_valid(self, rule, seed, dom, d, alone_of) -> None:
        """A seed domain holds two pods matching the terms, unless only one is placed."""
        m = self.model
        alone = alone_of.get(rule.terms)
        if alone is None:
            alone = alone_of[rule.terms] = m.NewBoolVar("aff_alone")
            m.Add(sum(self.placed[b] for b in rule.matching) <= 1).OnlyEnforceIf(alone)
        match = self._domain_sums(rule.matching, dom)
        two = m.NewBoolVar("aff_two")
        m.Add(sum(match.get(d, [])) >= 2).OnlyEnforceIf(two)
        m.AddBoolOr([seed.Not(), two, alone])

    def _spread(self) -> None:
        inst, m = self.inst, self.model
        for r, rule in enumerate(inst.spread):
            counts = self._domain_sums(rule.matching, rule.dom)
            cnt = {d: rule.bound.get(d, 0) + sum(counts.get(d, [])) for d in rule.domains}
            if len(rule.domains) < rule.min_domains:
                mn = 0
            else:
                hi = max((rule.bound.get(d, 0) for d in rule.domains), default=0) + \
                    sum(inst.classes[b].count for b in rule.matching)
                mn = m.NewIntVar(0, hi, f"spread_min_{r}")
                for d in rule.domains:
                    m.Add(mn <= cnt[d])
            own = self._domain_sums([rule.owner], rule.owner_dom)
            extra = 0 if rule.self_match else 1
            for d, owner_vars in sorted(own.items()):
                y = self._presence(owner_vars, f"spread_{r}_{d}")
                c = cnt.get(d)
                if c is None:
                    c = rule.bound.get(d, 0) + sum(counts.get(d, []))
                m.Add(c + extra - mn <= rule.max_skew).OnlyEnforceIf(y)

    def _ports(self) -> None:
        for group in self.inst.port_groups:
            gs = set(group)
            for terms in self.by_node:
                vs = [v for c, v in terms if c in gs]
                if len(vs) > 1:
                    self.model.Add(sum(vs) <= 1)

    def _node_symmetry(self) -> None:
        """Interchangeable nodes: pod counts non-increasing in node order."""
        self.symmetric_groups = node_groups(self.inst)
        for group in self.symmetric_groups:
            for a, b in zip(group, group[1:]):
                ta = sum(v for _, v in self.by_node[a])
                tb = sum(v for _, v in self.by_node[b])
                self.model.Add(ta >= tb)

    # -------------------------------------------------------------------------- objectives

    def _objective(self, name: str, home):
        inst, m = self.inst, self.model
        if name == "placed":
            return sum(inst.classes[c].weight * p for c, p in enumerate(self.placed)
                       if self.by_class[c] and not inst.classes[c].must_place)
        if name == "nodes":
            fixed = int(np.count_nonzero(inst.occupied & np.array(
                [not t for t in self.by_node], np.bool_)))
            return fixed + sum(u for u in self.u.values())
        if name == "balance":
            floor = 0
            alloc, used0 = inst.alloc, inst.used0
            for n in range(alloc.shape[0]):
                for j in range(alloc.shape[1]):
                    if alloc[n, j] > 0:
                        floor = max(floor, -(-BALANCE_SCALE * int(used0[n, j]) // int(alloc[n, j])))
            peak = m.NewIntVar(floor, max(floor, BALANCE_SCALE), "peak")
            for n, terms in enumerate(self.by_node):
                for j in range(alloc.shape[1]):
                    a = int(alloc[n, j])
                    coeffs = [(int(inst.classes[c].request[j]), v) for c, v in terms
                              if inst.classes[c].request[j] > 0]
                    if a <= 0 or not coeffs:
                        continue
                    m.Add(BALANCE_SCALE * (int(used0[n, j]) + sum(q * v for q, v in coeffs))
                          <= a * peak)
            return peak
        if name == "preferences":
            pref = inst.node_pref
            return sum(int(pref[c, n]) * v for (c, n), v in self.x.items() if pref[c, n])
        if name == "moves":
            kept = []
            for (c, n), h in sorted((home or {}).items()):
                v = self.x.get((c, n))
                if v is None:
                    continue
                k = m.NewIntVar(0, h, f"kept_{c}_{n}")
                m.Add(k <= v)
                kept.append(k)
            total = sum(inst.classes[c].count for c in range(len(inst.classes))
                        if inst.classes[c].must_place)
            return total - sum(kept)
        raise ValueError(name)

    def value(self, solver: cp_model.CpSolver, name: str) -> float:
        expr = self.exprs[name]
        v = solver.Value(expr) if not isinstance(expr, int) else expr
        return float(v) / BALANCE_SCALE * 100 if name == "balance" else float(v)

    def set_objective(self, name: str) -> None:
        expr = self.exprs[name]
        if isinstance(expr, int):
            expr = cp_model.LinearExpr.Constant(expr) if hasattr(
                cp_model.LinearExpr, "Constant") else expr
        if MAXIMISE[name]:
            self.model.Maximize(expr)
        else:
            self.model.Minimize(expr)

    def fix(self, name: str, raw: int) -> None:
        """Keep objective ``name`` at least as good as ``raw`` (its integer value)."""
        expr = self.exprs[name]
        if isinstance(expr, int):
            return
        if MAXIMISE[name]:
            self.model.Add(expr >= raw)
        else:
            self.model.Add(expr <= raw)


def node_groups(inst: Instance) -> list[list[int]]:
    """Groups (of two or more, in node order) of interchangeable nodes."""
    snap = inst.snapshot
    N = inst.mask.shape[1]
    parts: list[list] = [[] for _ in range(N)]

    def per_node(values: np.ndarray) -> bool:
        v = values[values >= 0]
        return v.size == np.unique(v).size

    for rule in inst.anti:
        dom = snap.labels[inst.nodes, rule.key_id]
        pn = per_node(dom)
        for n in range(N):
            parts[n].append(("a", -2 if pn and dom[n] >= 0 else int(dom[n])))
    for rule in inst.affinity:
        for j, k in enumerate(rule.key_ids):
            dom = snap.labels[inst.nodes, k]
            pn = per_node(dom)
            for n in range(N):
                d = int(dom[n])
                parts[n].append(("f", -2 if pn and d >= 0 else d, rule.bound[j].get(d, 0)))
    for rule in inst.spread:
        pn = per_node(rule.owner_dom)
        for n in range(N):
            d, e = int(rule.owner_dom[n]), int(rule.dom[n])
            parts[n].append(("s", -2 if pn and d >= 0 else d, e >= 0, rule.bound.get(d, 0)))
    sig: dict[tuple, list[int]] = {}
    for n in range(N):
        if not inst.mask[:, n].any():
            continue
        key = (inst.mask[:, n].tobytes(), inst.ub[:, n].tobytes(), inst.cap[n].tobytes(),
               int(inst.slots[n]), bool(inst.occupied[n]), inst.gpu_free[n].tobytes(),
               inst.alloc[n].tobytes() if inst.alloc is not None else b"",
               inst.used0[n].tobytes() if inst.used0 is not None else b"",
               inst.node_pref[:, n].tobytes() if inst.node_pref is not None else b"",
               tuple(parts[n]))
        sig.setdefault(key, []).append(n)
    return [g for g in sig.values() if len(g) > 1]
