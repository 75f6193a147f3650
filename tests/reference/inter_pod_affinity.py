"""Reference InterPodAffinity (kube-scheduler v1.35), written as plainly as possible.

Inputs are model objects and plain dicts: ``nodes`` maps node name -> label dict, ``bound`` is a
list of (Pod, node name), ``namespaces`` maps namespace name -> label dict (the Namespace objects
that exist), ``pod`` is the incoming Pod. Topology pairs are (key, value) string tuples in
dicts, the way kube keeps them. Nothing here is shared with schedbench's implementation; only
the model objects and their ``Selector.matches`` are used.
"""

from __future__ import annotations

from collections import defaultdict

AFFINITY_REASON = "node(s) didn't match pod affinity rules"
ANTI_AFFINITY_REASON = "node(s) didn't match pod anti-affinity rules"
EXISTING_ANTI_AFFINITY_REASON = "node(s) didn't satisfy existing pods anti-affinity rules"


class RefTerm:
    """One PodAffinityTerm of a pod, with what matching it needs."""

    def __init__(self, term, owner) -> None:
        owner_labels = owner.metadata.labels
        sel = term.label_selector
        self.nil_selector = sel is None or sel.is_nothing
        self.selector = sel
        # matchLabelKeys / mismatchLabelKeys: the owner's values, only for a non-nil selector
        self.must_equal = []
        self.must_differ = []
        if not self.nil_selector:
            self.must_equal = [(k, owner_labels[k]) for k in term.match_label_keys
                               if k in owner_labels]
            self.must_differ = [(k, owner_labels[k]) for k in term.mismatch_label_keys
                                if k in owner_labels]
        if len(term.namespaces) == 0 and term.namespace_selector is None:
            self.namespaces = {owner.metadata.namespace}
        else:
            self.namespaces = set(term.namespaces)
        # None: a nil namespace selector (matches no namespace)
        self.ns_selector = term.namespace_selector
        self.key = term.topology_key

    def resolve(self, namespaces: dict) -> RefTerm:
        """A copy for the incoming pod: a namespace selector other than nil and {} becomes the
        names of the existing namespaces it selects."""
        out = object.__new__(RefTerm)
        out.__dict__.update(self.__dict__)
        out.namespaces = set(self.namespaces)
        sel = self.ns_selector
        if sel is not None and not (len(sel.requirements) == 0 and not sel.is_nothing):
            for name, labels in namespaces.items():
                if sel.matches(labels):
                    out.namespaces.add(name)
            out.ns_selector = None
        return out

    def labels_ok(self, labels: dict) -> bool:
        if self.nil_selector or not self.selector.matches(labels):
            return False
        for k, v in self.must_equal:
            if k not in labels or labels[k] != v:
                return False
        for k, v in self.must_differ:
            if k in labels and labels[k] == v:
                return False
        return True

    def matches(self, target, target_ns_labels: dict) -> bool:
        ns = target.metadata.namespace
        ns_ok = ns in self.namespaces or (self.ns_selector is not None
                                          and self.ns_selector.matches(target_ns_labels))
        return ns_ok and self.labels_ok(target.metadata.labels)


def _terms(pod):
    """(required affinity, required anti-affinity, preferred affinity [(term, w)],
    preferred anti-affinity [(term, w)]) of a pod."""
    a = pod.spec.affinity
    ra, rn, pa, pn = [], [], [], []
    if a is not None and a.pod_affinity is not None:
        ra = [RefTerm(t, pod) for t in
              a.pod_affinity.required_during_scheduling_ignored_during_execution]
        pa = [(RefTerm(w.pod_affinity_term, pod), w.weight)
              for w in a.pod_affinity.preferred_during_scheduling_ignored_during_execution]
    if a is not None and a.pod_anti_affinity is not None:
        rn = [RefTerm(t, pod) for t in
              a.pod_anti_affinity.required_during_scheduling_ignored_during_execution]
        pn = [(RefTerm(w.pod_affinity_term, pod), w.weight)
              for w in a.pod_anti_affinity.preferred_during_scheduling_ignored_during_execution]
    return ra, rn, pa, pn


def prefilter(nodes: dict, bound: list, namespaces: dict, pod):
    """The three pair-count maps (zero entries absent) and whether PreFilter skips."""
    own_ns_labels = namespaces.get(pod.metadata.namespace, {})
    ra, rn, _, _ = _terms(pod)
    ra = [t.resolve(namespaces) for t in ra]
    rn = [t.resolve(namespaces) for t in rn]
    existing = defaultdict(int)
    affinity = defaultdict(int)
    anti = defaultdict(int)
    for other, node_name in bound:
        labels = nodes[node_name]
        for t in _terms(other)[1]:
            if t.matches(pod, own_ns_labels) and t.key in labels:
                existing[(t.key, labels[t.key])] += 1
        if ra and all(t.matches(other, {}) for t in ra):
            for t in ra:
                if t.key in labels:
                    affinity[(t.key, labels[t.key])] += 1
        for t in rn:
            if t.matches(other, {}) and t.key in labels:
                anti[(t.key, labels[t.key])] += 1
    counts = {"existing_anti": dict(existing), "affinity": dict(affinity), "anti": dict(anti)}
    skip = not existing and not ra and not rn
    return counts, skip, ra, rn


def filter_nodes(nodes: dict, bound: list, namespaces: dict, pod):
    """(PreFilter skipped, {node: (code, reason or None)}) with kube's codes: 0 Success,
    2 Unschedulable, 3 UnschedulableAndUnresolvable."""
    counts, skip, ra, rn = prefilter(nodes, bound, namespaces, pod)
    if skip:
        return True, {name: (0, None) for name in nodes}
    aff, anti, existing = counts["affinity"], counts["anti"], counts["existing_anti"]
    self_ok = not aff and all(t.matches(pod, {}) for t in ra)
    out = {}
    for name, labels in nodes.items():
        verdict = (0, None)
        all_found = True
        lacks = False
        for t in ra:
            if t.key not in labels:
                lacks = True
                break
            if aff.get((t.key, labels[t.key]), 0) <= 0:
                all_found = False
        if lacks or (not all_found and not self_ok):
            verdict = (3, AFFINITY_REASON)
        elif any(t.key in labels and anti.get((t.key, labels[t.key]), 0) > 0 for t in rn):
            verdict = (2, ANTI_AFFINITY_REASON)
        elif any(existing.get((k, v), 0) > 0 for k, v in labels.items()):
            verdict = (2, EXISTING_ANTI_AFFINITY_REASON)
        out[name] = verdict
    return False, out


def score_nodes(nodes: dict, bound: list, namespaces: dict, pod, scored: list,
                hard_weight: int = 1, ignore_preferred: bool = False):
    """(PreScore skipped, raw {node: score}, normalised {node: score}) over ``scored``."""
    if not scored:
        return True, {}, {}
    _, _, pa, pn = _terms(pod)
    if ignore_preferred and not pa and not pn:
        return True, {}, {}
    pa = [(t.resolve(namespaces), w) for t, w in pa]
    pn = [(t.resolve(namespaces), w) for t, w in pn]
    own_ns_labels = namespaces.get(pod.metadata.namespace, {})
    table = defaultdict(lambda: defaultdict(int))
    touched = False
    for other, node_name in bound:
        labels = nodes[node_name]
        ora, _, opa, opn = _terms(other)
        work = [(t, w, other, {}) for t, w in pa]
        work += [(t, -w, other, {}) for t, w in pn]
        if hard_weight > 0:
            work += [(t, hard_weight, pod, own_ns_labels) for t in ora]
        work += [(t, w, pod, own_ns_labels) for t, w in opa]
        work += [(t, -w, pod, own_ns_labels) for t, w in opn]
        for t, w, target, nsl in work:
            if t.matches(target, nsl) and t.key in labels:
                table[t.key][labels[t.key]] += w
                touched = True
    if not touched:
        return True, {}, {}
    raw = {}
    for name in scored:
        labels = nodes[name]
        raw[name] = sum(values.get(labels[k], 0) for k, values in table.items() if k in labels)
    lo, hi = min(raw.values()), max(raw.values())
    spread = hi - lo
    norm = {}
    for name, s in raw.items():
        norm[name] = int(100.0 * (float(s - lo) / float(spread))) if spread > 0 else 0
    return False, raw, norm
