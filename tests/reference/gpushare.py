"""Plain-Python reference of the FGD paper's (ATC '23) typical pods, fragmentation, the six
``atc23-*`` policies and a whole fill run, written from the method document
(../shared/docs/fgd-fill-method.md) and the simulator's Go code it describes. No numpy, no
incremental caches: every score and every fragmentation figure is recomputed from the node's
plain lists. Slow and obvious on purpose; tests compare the Numba engine with it bit for bit.

Nodes are dicts ``{"name", "cpu", "mem", "pods", "model", "gpus": [milli left per GPU],
"tags": {tag: count}}``; pods are dicts ``{"id", "cpu", "mem", "num_gpu", "gpu_milli",
"gpu_models"}``.
"""

from __future__ import annotations

import math

MILLI = 1000
MAX_SPEC_CPU = 128000
MAX_SPEC_GPU = 8000
POLICIES = ("atc23-random", "atc23-dotprod", "atc23-clustering", "atc23-packing",
            "atc23-bestfit", "atc23-fgd")


def go_div(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def allowed_models(spec: str) -> list[str]:
    return [p.strip() for p in (spec or "").split("|") if p.strip()]


def accessible(node_model: str, spec: str) -> bool:
    """IsNodeAccessibleToPodByType."""
    names = allowed_models(spec)
    if not names:
        return True
    if not node_model:
        return False
    return node_model in names


def gpu_request(pod: dict) -> tuple[int, int]:
    milli = min(max(int(pod["gpu_milli"]), 0), MILLI)
    num = max(int(pod["num_gpu"]), 0)
    if num == 0 or milli == 0:
        return 0, 0
    return num, milli


# ------------------------------------------------------------------------ typical pods

def typical_pods(pods: list[dict], threshold_pct: int = 95) -> list[dict]:
    counts: dict[tuple, int] = {}
    for p in pods:
        k, r = gpu_request(p)
        key = (int(p["cpu"]), r, k, p.get("gpu_models", "") or "")
        counts[key] = counts.get(key, 0) + 1
    items = sorted(counts.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)
    total = float(len(pods))
    expected = float(threshold_pct) * total / 100.0
    cum = 0.0
    kept = []
    for key, c in items:
        if not cum < expected:
            break
        cum += c
        kept.append((key, c))
    out = []
    for (cpu, r, k, spec), c in kept:
        p = c / total
        if len(kept) < len(items):
            p = p / (cum / total)
        out.append({"cpu": cpu, "gpu_milli": r, "num_gpu": k, "gpu_models": spec, "prob": p,
                    "count": c})
    return out


# ----------------------------------------------------------------------- fragmentation

def node_frag(node: dict, typical: list[dict]) -> float:
    """NodeGpuShareFragAmount(...).FragAmountSumExceptQ3(): quadrant buckets in order."""
    buckets = [0.0] * 7  # q1 q2 q3 q4 xl xr na
    gpus = node["gpus"]
    idle = sum(gpus)
    for t in typical:
        p = t["prob"]
        if t["gpu_milli"] == 0:
            kind = 4 if node["cpu"] >= t["cpu"] else 5
        elif not accessible(node["model"], t["gpu_models"]):
            kind = 6
        else:
            fits = sum(1 for g in gpus if g >= t["gpu_milli"]) >= t["num_gpu"] and len(gpus) > 0
            if fits:
                kind = 2 if node["cpu"] >= t["cpu"] else 3
            else:
                kind = 1 if node["cpu"] >= t["cpu"] else 0
        if kind == 2:
            frag = sum(g for g in gpus if g < t["gpu_milli"])
            buckets[1] += p * float(frag)
            buckets[2] += p * float(idle - frag)
        else:
            buckets[kind] += p * float(idle)
    out = 0.0
    for i in (0, 1, 3, 4, 5, 6):
        out += buckets[i]
    return out


# ---------------------------------------------------------------------------- filter

def feasible(node: dict, pod: dict) -> bool:
    if node["cpu"] < pod["cpu"] or node["mem"] < pod["mem"] or node["pods"] < 1:
        return False
    k, r = gpu_request(pod)
    if k == 0:
        return True
    if not node["gpus"] or not accessible(node["model"], pod.get("gpu_models", "")):
        return False
    return sum(1 for g in node["gpus"] if g >= r) >= k


def tag_of(pod: dict) -> str | None:
    k, r = gpu_request(pod)
    if k == 0:
        return None
    if k == 1 and r < MILLI:
        return "share-gpu"
    return f"{k}-gpu"


# ---------------------------------------------------------------------------- scores

def clamp(s: int) -> int:
    return min(100, max(0, s))


def score(policy: str, node: dict, pod: dict, typical: list[dict]) -> tuple[int, int | None]:
    """(score, FGD's GPU for share pods or None) of a feasible node."""
    k, r = gpu_request(pod)
    gpus = node["gpus"]
    idle = sum(gpus)
    if policy == "atc23-random":
        return 0, None
    if policy == "atc23-dotprod":
        node_vec = [float(node["cpu"]) / MAX_SPEC_CPU, float(idle) / MAX_SPEC_GPU]
        pod_vec = [float(pod["cpu"]) / MAX_SPEC_CPU, float(k * r) / MAX_SPEC_GPU]
        dot = 0.0
        for a, b in zip(node_vec, pod_vec):
            dot += a * b
        cur = 1 - dot / 2.0
        if not cur > -1:
            return 0, None
        return clamp(int(100.0 * cur)), None
    if policy == "atc23-clustering":
        tag = tag_of(pod)
        if tag is None:
            return 0, None
        tags = {t for t, c in node["tags"].items() if c > 0}
        part = go_div(100 // 4 * (MAX_SPEC_GPU - idle), MAX_SPEC_GPU)
        if tag in tags:
            return clamp(part + (75 if len(tags) == 1 else 50)), None
        return clamp(part + (25 if not tags else 0)), None
    if policy == "atc23-packing":
        if r <= 0:
            return 0, None
        free = sum(1 for g in gpus if g == MILLI)
        if free == len(gpus):
            return clamp(max(100 // 3 - free, free)), None
        order = sorted(range(len(gpus)), key=lambda i: gpus[i])
        need, used_free, use = k, 0, []
        for i in order:
            if need == 0:
                break
            if r <= gpus[i]:
                need -= 1
                use.append(i)
                if gpus[i] == MILLI:
                    used_free += 1
        if need:
            return 0, None
        if used_free:
            return clamp(max(100 // 2 - used_free, 100 // 3)), None
        ratio = sum(gpus[i] * 100 // MILLI for i in use)
        return clamp(max(100 - ratio // 10, 100 // 2)), None
    if policy == "atc23-bestfit":
        free = [float(node["cpu"]), float(idle)]
        req = [float(pod["cpu"]), float(r * k)]
        spec = [float(MAX_SPEC_CPU), float(MAX_SPEC_GPU)]
        s = 0.0
        for i in range(2):
            s += (free[i] - req[i]) / spec[i] * 0.5
        return int((1.0 - s) * 100), None
    if policy == "atc23-fgd":
        if pod["cpu"] == 0 and pod["mem"] == 0 and k == 0:
            return 100, None
        before = node_frag(node, typical)

        def sig(after: float) -> int:
            return int(1.0 / (1.0 + math.exp(-((before - after) / 1000))) * 100)

        if k == 1 and r < MILLI:
            best, best_i = 0, None
            for i, g in enumerate(gpus):
                if g >= r:
                    new = dict(node, cpu=node["cpu"] - pod["cpu"], gpus=list(gpus))
                    new["gpus"][i] -= r
                    s = sig(node_frag(new, typical))
                    if best_i is None or s > best:
                        best, best_i = s, i
            return best, best_i
        new = dict(node, cpu=node["cpu"] - pod["cpu"], gpus=list(gpus))
        need = k
        for i in sorted(range(len(gpus)), key=lambda i: gpus[i]):
            if need and r <= new["gpus"][i]:
                new["gpus"][i] -= r
                need -= 1
        return sig(node_frag(new, typical)), None
    raise ValueError(policy)


def normalize(scores: list[int]) -> list[int]:
    if not scores:
        return []
    hi, lo = max(scores), min(scores)
    if hi == lo:
        return [0] * len(scores)
    return [(s - lo) * 100 // (hi - lo) for s in scores]


def choose_gpus(policy: str, node: dict, pod: dict, fgd_gpu: int | None, u: float) -> list[int]:
    k, r = gpu_request(pod)
    gpus = node["gpus"]
    if k == 0:
        return []
    if k == 1 and r < MILLI:
        fit = [i for i, g in enumerate(gpus) if g >= r]
        if policy == "atc23-fgd":
            return [fgd_gpu]
        if policy == "atc23-random":
            return [fit[min(int(u * len(fit)), len(fit) - 1)]]
        return [min(fit, key=lambda i: (gpus[i], i))]
    return [i for i, g in enumerate(gpus) if g >= r][:k]


def schedule(policy: str, nodes: list[dict], pod: dict, typical: list[dict],
             u0: float, u1: float) -> tuple[int | None, list[int]]:
    """Index of the chosen node (nodes are in tie-break order) and its GPUs."""
    cands = [i for i, n in enumerate(nodes) if feasible(n, pod)]
    if not cands:
        return None, []
    fgd_gpu = {}
    if policy == "atc23-random":
        best = cands[min(int(u0 * len(cands)), len(cands) - 1)]
    else:
        raw = []
        for i in cands:
            s, g = score(policy, nodes[i], pod, typical)
            raw.append(s)
            fgd_gpu[i] = g
        final = normalize(raw) if policy == "atc23-bestfit" else raw
        top = max(final)
        best = cands[final.index(top)]
    return best, choose_gpus(policy, nodes[best], pod, fgd_gpu.get(best), u1)


def place(node: dict, pod: dict, gpus: list[int]) -> None:
    k, r = gpu_request(pod)
    node["cpu"] -= pod["cpu"]
    node["mem"] -= pod["mem"]
    node["pods"] -= 1
    for i in gpus:
        assert node["gpus"][i] >= r
        node["gpus"][i] -= r
    tag = tag_of(pod)
    if tag is not None:
        node["tags"][tag] = node["tags"].get(tag, 0) + 1
    node["used"] = node.get("used", 0) + 1


def fill(policy: str, nodes: list[dict], pods: list[dict], typical: list[dict],
         uniforms: list[tuple[float, float]]) -> dict:
    """A whole fill run; returns per-pod node index and GPUs and per-event figures (event 0 =
    before any pod): arrived, used GPU milli, CPU and memory requested, GPUs in use, nodes
    used, placed, failed, sum of F(n)."""
    nodes = [dict(n, gpus=list(n["gpus"]), tags=dict(n.get("tags", {}))) for n in nodes]
    out_node, out_gpus = [], []
    arrived = used = cpu = mem = placed = failed = 0

    def snapshot():
        busy = sum(1 for n in nodes for g in n["gpus"] if g < MILLI)
        return [arrived, used, cpu, mem, busy, sum(1 for n in nodes if n.get("used", 0) > 0),
                placed, failed, sum(node_frag(n, typical) for n in nodes)]

    events = [snapshot()]
    for t, pod in enumerate(pods):
        k, r = gpu_request(pod)
        arrived += k * r
        best, gpus = schedule(policy, nodes, pod, typical, *uniforms[t])
        if best is None:
            failed += 1
            out_node.append(-1)
            out_gpus.append([])
        else:
            place(nodes[best], pod, gpus)
            used += k * r
            cpu += pod["cpu"]
            mem += pod["mem"]
            placed += 1
            out_node.append(best)
            out_gpus.append(list(gpus))
        events.append(snapshot())
    return {"node": out_node, "gpus": out_gpus, "events": events, "nodes": nodes}


# ----------------------------------------------------------------------- event replay

MASK64 = (1 << 64) - 1


def uniform(key: int, counter: int) -> float:
    """SplitMix64 of ``key + counter``, top 53 bits as a float in [0, 1)."""
    x = (key + counter + 0x9E3779B97F4A7C15) & MASK64
    z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    z ^= z >> 31
    return (z >> 11) / 9007199254740992.0


def unplace(node: dict, pod: dict, gpus: list[int]) -> None:
    k, r = gpu_request(pod)
    node["cpu"] += pod["cpu"]
    node["mem"] += pod["mem"]
    node["pods"] += 1
    for i in gpus:
        node["gpus"][i] += r
        assert node["gpus"][i] <= MILLI
    tag = tag_of(pod)
    if tag is not None:
        node["tags"][tag] -= 1
    node["used"] -= 1


def replay(policy: str, nodes: list[dict], pods: list[dict], typical: list[dict], key: int,
           fail_unschedulable: bool) -> dict:
    """The event replay, scanning every node at every attempt: arrivals in (arrival, list)
    order; departures ``duration`` after binding; at one instant, departures first, then the
    waiting pods in FIFO order, then the arrivals."""
    nodes = [dict(n, gpus=list(n["gpus"]), tags=dict(n.get("tags", {}))) for n in nodes]
    order = sorted(range(len(pods)), key=lambda i: (pods[i]["arrival"], i))
    departures: list[tuple[float, int]] = []
    queue: list[int] = []
    bound: dict[int, tuple[int, list[int], float]] = {}
    failed: list[int] = []
    log = []
    attempts = 0

    def attempt(i: int, t: float) -> bool:
        nonlocal attempts
        u0, u1 = uniform(key, 2 * attempts), uniform(key, 2 * attempts + 1)
        attempts += 1
        best, gpus = schedule(policy, nodes, pods[i], typical, u0, u1)
        if best is None:
            return False
        place(nodes[best], pods[i], gpus)
        bound[i] = (best, gpus, t)
        log.append((t, "bind", i, best, tuple(gpus)))
        d = pods[i]["duration"]
        if d == d:  # not NaN
            departures.append((t + d, i))
        return True

    ai = 0
    while ai < len(order) or departures:
        t_arr = pods[order[ai]]["arrival"] if ai < len(order) else math.inf
        departures.sort()
        if departures and departures[0][0] <= t_arr:
            t = departures[0][0]
            while departures and departures[0][0] == t:
                _, i = departures.pop(0)
                best, gpus, _ = bound[i]
                unplace(nodes[best], pods[i], gpus)
                log.append((t, "depart", i, best, tuple(gpus)))
            queue = [i for i in queue if not attempt(i, t)]
            continue
        i = order[ai]
        ai += 1
        if not attempt(i, t_arr):
            if fail_unschedulable:
                failed.append(i)
                log.append((t_arr, "fail", i, -1, ()))
            else:
                queue.append(i)
                log.append((t_arr, "wait", i, -1, ()))
    return {"bound": bound, "failed": failed, "pending": queue, "log": log, "nodes": nodes}
