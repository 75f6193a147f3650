"""Built-in scheduling policies as KubeSchedulerConfiguration profiles, and ``--profile``.

Every policy keeps kube-scheduler's default filters, preemption and queue - so all policies
agree on what is *allowed* - and changes only the Score plugins, scoring every node
(``percentageOfNodesToScore: 100``):

============  =================================================================================
default       kube-scheduler v1.35's default profile (adaptive percentageOfNodesToScore)
best-fit      NodeResourcesFit, MostAllocated (cpu, memory): pack the fullest node
worst-fit     NodeResourcesFit, LeastAllocated (cpu, memory): the emptiest node
spread        PodTopologySpread (system defaults: hostname and zone) and SelectorSpread
              dominant (weight 5 each), LeastAllocated as a tie-breaker (weight 1)
balanced      NodeResourcesBalancedAllocation (weight 2) with LeastAllocated (weight 1)
first-fit     FirstFit: the first feasible node in the cluster's node order
random        Random: every feasible node scores the same, the seeded tie-break picks one
dot-product   DotProduct: Tetris alignment of demand and free resources
============  =================================================================================

Every policy's profile is named ``default-scheduler``, so it schedules the pods a cluster
file has for kube-scheduler; ``--profile`` takes one of these names or a
KubeSchedulerConfiguration file.
"""

from __future__ import annotations

from pathlib import Path

from ..config import Profile, SchedulerConfiguration, load_scheduler_config, parse_scheduler_config
from ..errors import ConfigError
from . import plugins as _plugins  # noqa: F401  (GpuShare, Atc23* known to config files)

API = {"apiVersion": "kubescheduler.config.k8s.io/v1", "kind": "KubeSchedulerConfiguration"}


def _fit(strategy: str) -> dict:
    return {"name": "NodeResourcesFit", "args": {"scoringStrategy": {
        "type": strategy, "resources": [{"name": "cpu", "weight": 1},
                                        {"name": "memory", "weight": 1}]}}}


# Score plugins outside kube's default profile that also have a PreScore to enable.
_EXTRA_PRE_SCORE = ("SelectorSpread", "DotProduct")


def _policy(score: list[tuple[str, int]], plugin_config: list[dict] = ()) -> dict:
    plugins = {"score": {"disabled": [{"name": "*"}],
                         "enabled": [{"name": n, "weight": w} for n, w in score]}}
    pre_score = [{"name": n} for n, _ in score if n in _EXTRA_PRE_SCORE]
    if pre_score:
        plugins["preScore"] = {"enabled": pre_score}
    profile = {"schedulerName": "default-scheduler", "plugins": plugins}
    if plugin_config:
        profile["pluginConfig"] = list(plugin_config)
    return {**API, "percentageOfNodesToScore": 100, "profiles": [profile]}


BUILTIN_POLICIES: dict[str, dict] = {
    "default": {**API},
    "best-fit": _policy([("NodeResourcesFit", 1)], [_fit("MostAllocated")]),
    "worst-fit": _policy([("NodeResourcesFit", 1)], [_fit("LeastAllocated")]),
    "spread": _policy([("PodTopologySpread", 5), ("SelectorSpread", 5),
                                 ("NodeResourcesFit", 1)], [_fit("LeastAllocated")]),
    "balanced": _policy([("NodeResourcesBalancedAllocation", 2),
                                     ("NodeResourcesFit", 1)], [_fit("LeastAllocated")]),
    "first-fit": _policy([("FirstFit", 1)]),
    "random": _policy([("Random", 1)]),
    "dot-product": _policy([("DotProduct", 1)]),
}


def _atc23(plugin: str) -> dict:
    """The FGD paper's setup: the default filters plus GpuShare, one score plugin of weight
    1000, every node scored."""
    data = _policy([(plugin, 1000)])
    plugins = data["profiles"][0]["plugins"]
    plugins["preFilter"] = {"enabled": [{"name": "GpuShare"}]}
    plugins["filter"] = {"enabled": [{"name": "GpuShare"}]}
    return data


#: The FGD paper's policies (ATC '23) as kube profiles (scores from
#: :mod:`.plugins.atc23_scores`, the node kernels of :mod:`schedbench.gpushare`). Replays and
#: fill runs of ``atc23-*`` go to the fast engine; these profiles run them through the kube
#: framework (``kube_engine``, ``schedbench schedule --profile atc23-fgd``) and cross-check it.
ATC23_KUBE_POLICIES: dict[str, dict] = {
    "atc23-dotprod": _atc23("Atc23DotProd"),
    "atc23-clustering": _atc23("Atc23Clustering"),
    "atc23-packing": _atc23("Atc23Packing"),
    "atc23-bestfit": _atc23("Atc23BestFit"),
    "atc23-fgd": _atc23("Atc23Fgd"),
}


def builtin_configuration(name: str) -> SchedulerConfiguration:
    """The configuration of built-in policy ``name`` (or an ``atc23-*`` kube profile)."""
    try:
        data = BUILTIN_POLICIES[name] if name in BUILTIN_POLICIES else ATC23_KUBE_POLICIES[name]
    except KeyError:
        raise ConfigError(f"unknown policy {name!r}; built-in policies: "
                          f"{', '.join(BUILTIN_POLICIES)} (or give a KubeSchedulerConfiguration "
                          "file)", field="--profile") from None
    return parse_scheduler_config(data, source=f"<policy {name}>")


def resolve_profile(spec: str | None, scheduler_name: str | None = None
                    ) -> tuple[SchedulerConfiguration, Profile, str]:
    """``--profile`` as given: a built-in policy name, a KubeSchedulerConfiguration file, or
    None for kube-scheduler's default. Returns (configuration, profile, display name)."""
    if spec is None:
        spec = "default"
    if spec in BUILTIN_POLICIES or spec in ATC23_KUBE_POLICIES:
        cfg = builtin_configuration(spec)
        profile = cfg.profile(scheduler_name)
        return cfg, profile, spec
    if not Path(spec).exists():
        raise ConfigError(f"no such file, and not a built-in policy (known: "
                          f"{', '.join(BUILTIN_POLICIES)})", file=spec, field="--profile")
    cfg = load_scheduler_config(spec)
    try:
        profile = cfg.profile(scheduler_name)
    except KeyError as err:
        raise ConfigError(str(err.args[0]), file=spec, field="--scheduler-name") from None
    return cfg, profile, profile.scheduler_name
