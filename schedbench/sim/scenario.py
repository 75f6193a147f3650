"""Scenario files: the initial cluster, settings and a timeline of actions (YAML).

.. code-block:: yaml

    name: rolling-update                 # optional (default: the file name)
    description: a Deployment rolls to a new image while a node dies
    seed: 1                              # default 0 (``--seed`` overrides)
    until: 30m                           # end of the run (``--until`` overrides; default: the
                                         # last action + 10m)
    profile: default                     # scheduler policy name or a KubeSchedulerConfiguration
                                         # file relative to the scenario (default: kube's default)
    settings:                            # SimConfig fields: durations as 5s / 2m / 1h30m
      pod_startup_seconds: 3s
      node_monitor_grace_seconds: 40s
    cluster:
      files: [nodes.yaml, apps/]         # manifests relative to the scenario file
      nodes: {count: 6, prefix: node-, cpu: "4", memory: 16Gi, pods: 110, zones: [a, b, c]}
      objects:                           # inline manifests (any kind schedbench models)
        - {apiVersion: apps/v1, kind: Deployment, metadata: {name: web}, spec: {...}}
    timeline:                            # in time order; `at` absolute, `after` relative to
      - {at: 2m, action: set-image, deployment: web, image: "nginx:1.27"}   # the entry before
      - {after: 30s, action: fail-node, node: node-2}
      - {action: advance, by: 10m}       # moves the timeline's clock; later entries follow it
      - {action: scale, deployment: web, replicas: 10}

Actions (``namespace`` defaults to ``default`` wherever a namespaced object is named):
``apply`` (``objects`` and/or ``files``: create or replace), ``delete`` (``objects``/``files``,
or ``kind`` + ``name``), ``scale`` (``deployment`` | ``replicaset``, ``replicas``),
``set-image`` (``deployment``, ``image``, optional ``container``: a rolling update),
``rollback`` (``deployment``, optional ``revision``, 0 = the previous one), ``pause`` /
``resume`` (``deployment``), ``fail-node`` / ``recover-node`` / ``drain-node`` (``node``:
drain cordons and evicts the node's pods), ``add-node`` (``objects``/``files``, or ``node``
(new name) + ``like`` (an existing node to copy)), ``set-request-rate`` (``service``,
``rate`` in requests/s), ``advance`` (``by``: a duration).

Every error is an :class:`~schedbench.errors.InputError` naming the file, the entry
(``timeline[3]``) and the field.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..manifests import _expand, load_manifests, object_from_dict, read_yaml_documents
from ..model.objects import KubeObject
from ..model.quantity import resource_to_int
from .timefmt import parse_duration

TOP_LEVEL = ("name", "description", "seed", "until", "profile", "settings", "cluster",
             "timeline")
CLUSTER_KEYS = ("files", "objects", "nodes")
NODE_TEMPLATE_KEYS = ("count", "prefix", "cpu", "memory", "pods", "zones", "labels",
                      "taints", "gpus")

#: action -> (required fields, optional fields); every action may also have at / after.
ACTIONS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "apply": ((), ("objects", "files")),
    "delete": ((), ("objects", "files", "kind", "name", "namespace")),
    "scale": (("replicas",), ("deployment", "replicaset", "namespace")),
    "set-image": (("deployment", "image"), ("container", "namespace")),
    "rollback": (("deployment",), ("revision", "namespace")),
    "pause": (("deployment",), ("namespace",)),
    "resume": (("deployment",), ("namespace",)),
    "fail-node": (("node",), ()),
    "recover-node": (("node",), ()),
    "drain-node": (("node",), ()),
    "add-node": ((), ("objects", "files", "node", "like")),
    "set-request-rate": (("service", "rate"), ("namespace",)),
    "advance": (("by",), ()),
}
TIME_KEYS = ("at", "after", "action")


@dataclass
class Action:
    """One timeline entry, validated: ``kind`` (the action name), ``time`` (absolute
    seconds), ``args`` (its fields, parsed: objects decoded, durations in seconds)."""

    index: int
    time: float
    kind: str
    args: dict[str, Any]

    @property
    def where(self) -> str:
        return f"timeline[{self.index}]"

    def describe(self) -> dict:
        """JSON-friendly fields for the event log."""
        out: dict[str, Any] = {}
        for k, v in self.args.items():
            if k == "objects":
                out[k] = [o.ref for o in v]
            elif k != "files":
                out[k] = v
        return out


@dataclass
class Scenario:
    """A parsed scenario: initial objects in creation order, settings, actions in time
    order."""

    path: str = "<scenario>"
    name: str = ""
    description: str = ""
    seed: int = 0
    until: float | None = None
    profile: str | None = None
    settings: dict[str, float] = field(default_factory=dict)
    objects: list[KubeObject] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)

    @property
    def end(self) -> float:
        """``until``, or the last action's time + 10 minutes."""
        if self.until is not None:
            return self.until
        last = max((a.time for a in self.actions), default=0.0)
        return last + 600.0

    def sim_config(self):
        from .controller import SimConfig

        return dataclasses.replace(SimConfig(), **self.settings)


# ------------------------------------------------------------------------------ parsing


class _Reader:
    def __init__(self, path: str, base: Path) -> None:
        self.path = path
        self.base = base

    def error(self, message: str, field: str | None = None, obj: str | None = None
              ) -> InputError:
        return InputError(message, file=self.path, obj=obj, field=field)

    def mapping(self, value: Any, where: str) -> dict:
        if not isinstance(value, dict):
            raise self.error(f"expected a mapping, got {_describe(value)}", where)
        for k in value:
            if not isinstance(k, str):
                raise self.error(f"keys must be strings, got {k!r}", where)
        return value

    def keys(self, value: dict, allowed: tuple[str, ...], where: str) -> None:
        for k in value:
            if k not in allowed:
                raise self.error(f"unknown field {k!r} (expected one of: "
                                 f"{', '.join(allowed)})", _join(where, k))

    def string(self, value: Any, where: str) -> str:
        if not isinstance(value, str) or not value:
            raise self.error(f"expected a non-empty string, got {_describe(value)}", where)
        return value

    def integer(self, value: Any, where: str, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"expected an integer, got {_describe(value)}", where)
        if minimum is not None and value < minimum:
            raise self.error(f"must be >= {minimum}, got {value}", where)
        return value

    def number(self, value: Any, where: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or \
                not math.isfinite(value) or value < 0:
            raise self.error(f"expected a finite number >= 0, got {_describe(value)}", where)
        return float(value)

    def duration(self, value: Any, where: str) -> float:
        try:
            return parse_duration(value)
        except InputError as err:
            raise self.error(err.message, where) from None

    def objects(self, value: Any, where: str) -> list[KubeObject]:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list):
            raise self.error(f"expected a list of manifests, got {_describe(value)}", where)
        out: list[KubeObject] = []
        for i, doc in enumerate(value):
            for item, sub in _expand(doc, self.path):
                at = f"{where}[{i}]" + (f".{sub}" if sub else "")
                try:
                    obj = object_from_dict(item, source=self.path)
                except InputError as err:
                    raise err.located(field=at) from None
                if obj is not None:
                    out.append(obj)
        return out

    def files(self, value: Any, where: str) -> list[KubeObject]:
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value:
            raise self.error(f"expected a list of paths, got {_describe(value)}", where)
        paths = []
        for i, p in enumerate(value):
            p = self.string(p, f"{where}[{i}]")
            full = Path(p) if Path(p).is_absolute() else self.base / p
            if not full.exists():
                raise self.error(f"no such file or directory: {full}", f"{where}[{i}]")
            paths.append(full)
        return load_manifests(paths)


def _describe(value: Any) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, int | float):
        return f"number {value!r}"
    return type(value).__name__


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else key


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file (see the module docstring)."""
    p = Path(path)
    name = str(path)
    if not p.is_file():
        raise InputError("no such scenario file", file=name)
    docs = read_yaml_documents(p)
    if len(docs) != 1:
        raise InputError(f"expected one YAML document, found {len(docs)}", file=name)
    return parse_scenario(docs[0], path=name, base=p.parent, default_name=p.stem)


def parse_scenario(doc: Any, *, path: str = "<scenario>", base: str | Path = ".",
                   default_name: str = "scenario") -> Scenario:
    """A scenario from its parsed YAML mapping; relative paths are taken from ``base``."""
    r = _Reader(path, Path(base))
    doc = r.mapping(doc, "")
    r.keys(doc, TOP_LEVEL, "")
    sc = Scenario(path=path, name=default_name)
    if "name" in doc:
        sc.name = r.string(doc["name"], "name")
    if "description" in doc:
        d = doc["description"]
        if not isinstance(d, str):
            raise r.error(f"expected a string, got {_describe(d)}", "description")
        sc.description = d.strip()
    if "seed" in doc:
        sc.seed = r.integer(doc["seed"], "seed", 0)
    if "until" in doc:
        sc.until = r.duration(doc["until"], "until")
    if "profile" in doc:
        prof = r.string(doc["profile"], "profile")
        from ..scheduler.profiles import ATC23_KUBE_POLICIES, BUILTIN_POLICIES

        if prof not in BUILTIN_POLICIES and prof not in ATC23_KUBE_POLICIES:
            cand = Path(prof) if Path(prof).is_absolute() else r.base / prof
            if not cand.is_file():
                raise r.error(f"not a built-in policy ({', '.join(BUILTIN_POLICIES)}) nor a "
                              f"file: {cand}", "profile")
            prof = str(cand)
        sc.profile = prof
    if "settings" in doc:
        sc.settings = _settings(r, doc["settings"])
    if "cluster" in doc:
        sc.objects = _cluster(r, doc["cluster"])
    if "timeline" in doc:
        sc.actions = _timeline(r, doc["timeline"])
    if sc.until is not None and sc.actions and sc.actions[-1].time > sc.until:
        last = sc.actions[-1]
        raise r.error(f"action at {last.time:g}s is after until ({sc.until:g}s)",
                      f"{last.where}.at")
    return sc


def _settings(r: _Reader, value: Any) -> dict[str, float]:
    from .controller import SimConfig

    value = r.mapping(value, "settings")
    fields = {f.name: f for f in dataclasses.fields(SimConfig)}
    r.keys(value, tuple(fields), "settings")
    out: dict[str, float] = {}
    for k, v in value.items():
        where = f"settings.{k}"
        default = getattr(SimConfig(), k)
        if k.endswith("_seconds") or k.endswith("_interval"):
            secs = r.duration(v, where)
            out[k] = type(default)(secs) if isinstance(default, int) and \
                float(secs).is_integer() else secs
        elif isinstance(default, bool):
            if not isinstance(v, bool):
                raise r.error(f"expected true or false, got {_describe(v)}", where)
            out[k] = v
        elif isinstance(default, int):
            out[k] = r.integer(v, where, 0)
        else:
            out[k] = r.number(v, where)
    try:
        cfg = dataclasses.replace(SimConfig(), **out)
        check = getattr(cfg, "validate", None)
        if check is not None:
            check()
    except InputError as err:
        raise err.located(file=r.path, field="settings") from None
    return out


def _cluster(r: _Reader, value: Any) -> list[KubeObject]:
    value = r.mapping(value, "cluster")
    r.keys(value, CLUSTER_KEYS, "cluster")
    objects: list[KubeObject] = []
    if "nodes" in value:
        objects.extend(_node_template(r, value["nodes"], "cluster.nodes"))
    if "files" in value:
        objects.extend(r.files(value["files"], "cluster.files"))
    if "objects" in value:
        objects.extend(r.objects(value["objects"], "cluster.objects"))
    seen: dict[str, int] = {}
    for obj in objects:
        if obj.ref in seen:
            raise r.error("defined twice in the scenario's cluster", "cluster", obj=obj.ref)
        seen[obj.ref] = 1
    return objects


def _node_template(r: _Reader, value: Any, where: str) -> list[KubeObject]:
    """``count`` identical nodes named ``prefix`` + index (from 1), zones round-robin."""
    from ..model.objects import Node, NodeSpec, NodeStatus, ObjectMeta, Taint

    value = r.mapping(value, where)
    r.keys(value, NODE_TEMPLATE_KEYS, where)
    if "count" not in value:
        raise r.error("missing required field", _join(where, "count"))
    count = r.integer(value["count"], _join(where, "count"), 1)
    prefix = r.string(value.get("prefix", "node-"), _join(where, "prefix"))
    alloc: dict[str, int] = {}
    for res, default in (("cpu", "4"), ("memory", "16Gi"), ("pods", "110")):
        raw = value.get(res, default)
        try:
            alloc[res] = resource_to_int(res, str(raw))
        except InputError as err:
            raise r.error(err.message, _join(where, res)) from None
    if "gpus" in value:
        from ..scheduler.snapshot import GPU_COUNT

        alloc[GPU_COUNT] = r.integer(value["gpus"], _join(where, "gpus"), 0)
    zones = value.get("zones", [])
    if not isinstance(zones, list) or not all(isinstance(z, str) and z for z in zones):
        raise r.error("expected a list of zone names", _join(where, "zones"))
    labels = value.get("labels", {})
    labels = {str(k): str(v) for k, v in r.mapping(labels, _join(where, "labels")).items()}
    taints = []
    raw_taints = value.get("taints", [])
    if not isinstance(raw_taints, list):
        raise r.error("expected a list of taints", _join(where, "taints"))
    for i, t in enumerate(raw_taints):
        tw = f"{_join(where, 'taints')}[{i}]"
        t = r.mapping(t, tw)
        r.keys(t, ("key", "value", "effect"), tw)
        taint = Taint(key=r.string(t.get("key"), f"{tw}.key"), value=str(t.get("value", "")),
                      effect=r.string(t.get("effect"), f"{tw}.effect"))
        try:
            taint.validate()
        except InputError as err:
            raise err.located(file=r.path, field=tw) from None
        taints.append(taint)
    width = max(len(str(count)), 1)
    out = []
    for i in range(count):
        name = f"{prefix}{i + 1:0{width}d}"
        lab = {"kubernetes.io/hostname": name, **labels}
        if zones:
            lab["topology.kubernetes.io/zone"] = zones[i % len(zones)]
        out.append(Node(metadata=ObjectMeta(name=name, labels=lab),
                        spec=NodeSpec(taints=[dataclasses.replace(t) for t in taints]),
                        status=NodeStatus(capacity=dict(alloc), allocatable=dict(alloc))))
    return out


def _timeline(r: _Reader, value: Any) -> list[Action]:
    if not isinstance(value, list):
        raise r.error(f"expected a list of actions, got {_describe(value)}", "timeline")
    actions: list[Action] = []
    cursor = 0.0
    for i, entry in enumerate(value):
        where = f"timeline[{i}]"
        entry = r.mapping(entry, where)
        if "action" not in entry:
            raise r.error(f"missing required field (one of: {', '.join(ACTIONS)})",
                          f"{where}.action")
        kind = r.string(entry["action"], f"{where}.action")
        if kind not in ACTIONS:
            raise r.error(f"unknown action {kind!r} (expected one of: {', '.join(ACTIONS)})",
                          f"{where}.action")
        required, optional = ACTIONS[kind]
        r.keys(entry, TIME_KEYS + required + optional, where)
        if "at" in entry and "after" in entry:
            raise r.error("give either at or after, not both", f"{where}.after")
        if "at" in entry:
            t = r.duration(entry["at"], f"{where}.at")
            if t < cursor:
                raise r.error(f"at {t:g}s is before the entry before it ({cursor:g}s): "
                              "keep the timeline in time order", f"{where}.at")
        elif "after" in entry:
            t = cursor + r.duration(entry["after"], f"{where}.after")
        else:
            t = cursor
        for k in required:
            if k not in entry:
                raise r.error("missing required field", f"{where}.{k}")
        args = _action_args(r, kind, entry, where)
        if kind == "advance":
            t += args["by"]
        cursor = t
        actions.append(Action(i, t, kind, args))
    return actions


def _ns(r: _Reader, entry: dict, where: str) -> str:
    if "namespace" not in entry:
        return "default"
    return r.string(entry["namespace"], f"{where}.namespace")


def _action_args(r: _Reader, kind: str, entry: dict, where: str) -> dict[str, Any]:
    args: dict[str, Any] = {}
    at = lambda k: f"{where}.{k}"  # noqa: E731
    if kind in ("apply", "delete", "add-node"):
        objects: list[KubeObject] = []
        if "files" in entry:
            objects.extend(r.files(entry["files"], at("files")))
            args["files"] = entry["files"]
        if "objects" in entry:
            objects.extend(r.objects(entry["objects"], at("objects")))
        if objects:
            args["objects"] = objects
        if kind == "apply" and not objects:
            raise r.error("give objects or files to apply", at("objects"))
        if kind == "delete":
            if "kind" in entry or "name" in entry:
                if objects:
                    raise r.error("give kind + name or objects/files, not both", at("kind"))
                for k in ("kind", "name"):
                    if k not in entry:
                        raise r.error("missing required field", at(k))
                from ..model.objects import KINDS

                k = r.string(entry["kind"], at("kind"))
                cls = KINDS.get(k) or next((c for n, c in KINDS.items()
                                            if n.lower() == k.lower()), None)
                if cls is None:
                    raise r.error(f"unknown kind {k!r} (expected one of: "
                                  f"{', '.join(KINDS)})", at("kind"))
                args["kind"] = cls.KIND
                args["name"] = r.string(entry["name"], at("name"))
                args["namespace"] = _ns(r, entry, where) if cls.NAMESPACED else ""
            elif not objects:
                raise r.error("give kind + name, or objects/files to delete", at("kind"))
        if kind == "add-node":
            if objects:
                if "node" in entry or "like" in entry:
                    raise r.error("give node + like or objects/files, not both", at("node"))
                bad = [o.ref for o in objects if o.KIND != "Node"]
                if bad:
                    raise r.error(f"add-node takes Nodes only, got {bad[0]}", at("objects"))
            else:
                for k in ("node", "like"):
                    if k not in entry:
                        raise r.error("missing required field (or give objects/files)", at(k))
                args["node"] = r.string(entry["node"], at("node"))
                args["like"] = r.string(entry["like"], at("like"))
        return args
    if kind == "scale":
        targets = [k for k in ("deployment", "replicaset") if k in entry]
        if len(targets) != 1:
            raise r.error("give exactly one of deployment or replicaset", at("deployment"))
        args["kind"] = "Deployment" if targets[0] == "deployment" else "ReplicaSet"
        args["name"] = r.string(entry[targets[0]], at(targets[0]))
        args["namespace"] = _ns(r, entry, where)
        args["replicas"] = r.integer(entry["replicas"], at("replicas"), 0)
        return args
    if kind in ("set-image", "rollback", "pause", "resume"):
        args["deployment"] = r.string(entry["deployment"], at("deployment"))
        args["namespace"] = _ns(r, entry, where)
        if kind == "set-image":
            args["image"] = r.string(entry["image"], at("image"))
            if "container" in entry:
                args["container"] = r.string(entry["container"], at("container"))
        if kind == "rollback":
            args["revision"] = r.integer(entry.get("revision", 0), at("revision"), 0)
        return args
    if kind in ("fail-node", "recover-node", "drain-node"):
        args["node"] = r.string(entry["node"], at("node"))
        return args
    if kind == "set-request-rate":
        args["service"] = r.string(entry["service"], at("service"))
        args["namespace"] = _ns(r, entry, where)
        args["rate"] = r.number(entry["rate"], at("rate"))
        return args
    if kind == "advance":
        args["by"] = r.duration(entry["by"], at("by"))
        return args
    raise AssertionError(kind)  # pragma: no cover (ACTIONS lists every kind)
