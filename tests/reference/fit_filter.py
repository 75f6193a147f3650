"""Plain-Python reference of NodeResourcesFit's Filter in kube-scheduler v1.35, node by node on
the model objects.

Written from fit.go's rules (``Filter`` and ``fitsRequest``), sharing nothing with the plugin or
the snapshot: each node's requested amounts are summed here from its bound pods'
``Pod.requests()``, the incoming pod's request is its ``Pod.requests()``, the allocatable comes
from the node's dict, and the resource names are classified here from kube's helper rules.

- ``"Too many pods"`` when ``bound pods + 1 > allocatable pods`` (never unresolvable);
- for cpu, memory, ephemeral-storage and every scalar resource the pod requests a positive
  amount of (extended resources not ignored by ``ignoredResources`` /
  ``ignoredResourceGroups``): ``"Insufficient <name>"`` when the request exceeds allocatable
  minus requested, *unresolvable* when it exceeds the allocatable alone;
- code 0 when there is no reason, 3 when any reason is unresolvable, else 2;
- order: pods, cpu, memory, ephemeral-storage, then scalar names sorted (schedbench's fixed
  stand-in for Go's random map order).
"""

from __future__ import annotations

import string

SUCCESS, UNSCHEDULABLE, UNRESOLVABLE = 0, 2, 3
FIXED = ["cpu", "memory", "ephemeral-storage"]

_LOWER_ALNUM = set(string.ascii_lowercase + string.digits)
_ALNUM = set(string.ascii_letters + string.digits)


def _dns_subdomain(s: str) -> bool:
    if not s or len(s) > 253:
        return False
    for label in s.split("."):
        if not label or label[0] not in _LOWER_ALNUM or label[-1] not in _LOWER_ALNUM:
            return False
        if any(ch not in _LOWER_ALNUM and ch != "-" for ch in label):
            return False
    return True


def _qualified_name(s: str) -> bool:
    """``[dns-subdomain/]name``, name 1..63 chars, alphanumeric at both ends, ``-_.`` inside."""
    if s.count("/") > 1:
        return False
    prefix, _, name = s.rpartition("/")
    if "/" in s and not _dns_subdomain(prefix):
        return False
    if not 1 <= len(name) <= 63 or name[0] not in _ALNUM or name[-1] not in _ALNUM:
        return False
    return all(ch in _ALNUM or ch in "-_." for ch in name)


def extended(name: str) -> bool:
    """v1helper.IsExtendedResourceName."""
    native = "/" not in name or "kubernetes.io/" in name
    if native or name.startswith("requests."):
        return False
    return _qualified_name("requests." + name)


def kind(name: str) -> str:
    """How kube's framework.Resource keeps ``name``: 'fixed' (cpu/memory/ephemeral-storage),
    'pods', 'scalar' (IsScalarResourceName) or 'dropped'."""
    if name in FIXED:
        return "fixed"
    if name == "pods":
        return "pods"
    if (extended(name) or name.startswith("hugepages-") or "kubernetes.io/" in name
            or name.startswith("attachable-volumes-")):
        return "scalar"
    return "dropped"


def ignored(name: str, ignored_resources=(), ignored_groups=()) -> bool:
    return extended(name) and (name in ignored_resources
                               or name.split("/")[0] in ignored_groups)


def node_requested(pods_on_node: list) -> dict[str, int]:
    used: dict[str, int] = {}
    for p in pods_on_node:
        for r, q in p.requests().items():
            used[r] = used.get(r, 0) + q
    return used


def fit_filter(node, pods_on_node: list, pod, ignored_resources=(), ignored_groups=()
               ) -> tuple[int, list[str]]:
    """(code, reasons) of NodeResourcesFit's Filter for ``pod`` on ``node`` running
    ``pods_on_node``."""
    alloc = dict(node.allocatable)
    used = node_requested(pods_on_node)
    reasons: list[str] = []
    if len(pods_on_node) + 1 > alloc.get("pods", 0):
        reasons.append("Too many pods")
    unresolvable = False
    short_fixed, short_scalar = [], []
    for r, q in pod.requests().items():
        k = kind(r)
        if q <= 0 or k in ("pods", "dropped") or ignored(r, ignored_resources, ignored_groups):
            continue
        a = alloc.get(r, 0)
        if q > a - used.get(r, 0):
            (short_fixed if k == "fixed" else short_scalar).append(r)
            if q > a:
                unresolvable = True
    reasons += [f"Insufficient {r}" for r in FIXED if r in short_fixed]
    reasons += [f"Insufficient {r}" for r in sorted(short_scalar)]
    if not reasons:
        return SUCCESS, []
    return (UNRESOLVABLE if unresolvable else UNSCHEDULABLE), reasons
