"""Replaying traces under a policy: :func:`run` one :class:`RunSpec` to a :class:`RunResult`.

Policies of the FGD paper (``atc23-*``) run on the fast GPU-sharing engine
(:mod:`schedbench.gpushare`); every other policy runs through the kube-scheduler framework
(:mod:`schedbench.replay.kube_engine`)."""

from .result import EXPERIMENTS, METRIC_KEYS, TIMESERIES_COLUMNS, RunResult, RunSpec

__all__ = ["EXPERIMENTS", "METRIC_KEYS", "TIMESERIES_COLUMNS", "RunResult", "RunSpec", "run"]


def run(spec: RunSpec) -> RunResult:
    """Run one trace under one policy (see the module docstring for which engine)."""
    from ..traces import load_trace

    trace = load_trace(spec.trace, nodes=spec.nodes)
    if spec.policy.startswith("atc23-"):
        from .. import gpushare

        if spec.experiment == "fill":
            return gpushare.fill_experiment(trace, spec)
        return gpushare.replay_fast(trace, spec)
    from . import kube_engine

    if spec.experiment == "fill":
        return kube_engine.fill_experiment(trace, spec)
    return kube_engine.replay(trace, spec)
