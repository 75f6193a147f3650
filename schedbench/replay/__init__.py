"""Replaying traces under a policy: :func:`run` one :class:`RunSpec` to a :class:`RunResult`.

Policies of the FGD paper (``atc23-*``) run on the fast GPU-sharing engine
(:mod:`schedbench.gpushare`); every other policy runs through the kube-scheduler framework
(:mod:`schedbench.replay.kube_engine`). The pseudo-policy ``optimal`` of a fill sweep is the
CP-SAT optimum of the run's workload (:func:`.reoptimise.fill_optimum`); a replay with
``spec.optimal`` re-optimises its snapshots (kube engine only: ``atc23-*`` replays run on the
fast engine, which keeps no scheduler snapshot, and get no snapshots)."""

from .result import (EXPERIMENTS, METRIC_KEYS, OPTIMAL_POINT_KEYS, OPTIMAL_POLICY,
                     TIMESERIES_COLUMNS, OptimalOptions, RunResult, RunSpec)

__all__ = ["EXPERIMENTS", "METRIC_KEYS", "OPTIMAL_POINT_KEYS", "OPTIMAL_POLICY",
           "TIMESERIES_COLUMNS", "OptimalOptions", "RunResult", "RunSpec", "run"]


def run(spec: RunSpec, solver=None) -> RunResult:
    """Run one trace under one policy (see the module docstring for which engine);
    ``solver`` replaces :func:`schedbench.optimal.solve_snapshot` for ``spec.optimal``."""
    from ..errors import InputError
    from ..traces import load_trace

    trace = load_trace(spec.trace, nodes=spec.nodes)
    if spec.policy == OPTIMAL_POLICY:
        if spec.experiment != "fill":
            raise InputError("the optimal policy is a run of its own only in the fill "
                             "experiment; replays re-optimise the snapshots of each policy's "
                             "run", field="--policies")
        from .reoptimise import fill_optimum

        return fill_optimum(trace, spec, solver)
    if spec.policy.startswith("atc23-"):
        from .. import gpushare

        if spec.experiment == "fill":
            result = gpushare.fill_experiment(trace, spec)
        else:
            result = gpushare.replay_fast(trace, spec)
    else:
        from . import kube_engine

        if spec.experiment == "fill":
            result = kube_engine.fill_experiment(trace, spec)
        else:
            result = kube_engine.replay(trace, spec, solver)
    if spec.optimal is not None and spec.experiment == "fill":
        from .reoptimise import fill_end_figures

        fill_end_figures(result)
    return result
