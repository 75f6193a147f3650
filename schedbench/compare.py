"""Policy sweeps: ``schedbench compare`` expands policies x traces x seeds into
:class:`~schedbench.replay.RunSpec`\\ s, runs them (in this process, on a pool of local
processes, or on a Dask cluster) and hands the results, in a fixed order, to
:mod:`schedbench.report`.

Runs are independent, so any executor gives the same results; only ``wall_seconds`` differs.
The order of the results is the order of :func:`expand_specs` (trace, then policy, then seed),
whatever order the runs finish in.

A run that raises :class:`~schedbench.errors.InputError` (a bad trace, a bad profile file)
aborts the sweep with that one-line error; any other exception fails that run only and is
reported as a :class:`RunFailure` beside the results of the others.

The pseudo-policy ``optimal`` adds the CP-SAT optimum (:mod:`schedbench.replay.reoptimise`):
in a fill sweep one ``optimal`` run per (trace, seed), placed in the order where ``optimal``
stands among the policies; in a replay sweep no run of its own, but every (kube) policy's run
re-optimises its snapshots. The report then shows each policy's gap to the optimum
(:mod:`schedbench.replay.gaps`).
"""

from __future__ import annotations

import math
import os
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from .errors import InputError
from .progress import Progress
from .replay.result import EXPERIMENTS, OPTIMAL_POLICY, OptimalOptions, RunResult, RunSpec

#: ``schedbench compare`` without ``--policies``.
DEFAULT_POLICIES = ("best-fit", "worst-fit", "spread", "default")
#: The first seed of ``--seeds N`` (N seeds: FIRST_SEED .. FIRST_SEED + N - 1), as the FGD
#: paper's runs use seeds 42..51.
FIRST_SEED = 42


@dataclass(frozen=True)
class RunFailure:
    """A run that raised something other than an :class:`InputError`."""

    spec: RunSpec
    error: str          # one line: ``TypeName: message``
    details: str = ""   # the worker's traceback


# ------------------------------------------------------------------------------- the sweep


def known_policies() -> tuple[str, ...]:
    """Built-in kube policies, the FGD paper's ``atc23-*`` policies, then ``optimal``."""
    from .gpushare import ATC23_POLICIES
    from .scheduler.profiles import BUILTIN_POLICIES

    return tuple(BUILTIN_POLICIES) + tuple(ATC23_POLICIES) + (OPTIMAL_POLICY,)


def split_list(values: Iterable[str] | None) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]`` (repeatable options that also take comma lists);
    blanks dropped, duplicates kept once, first occurrence wins."""
    out: list[str] = []
    for value in values or ():
        for item in value.split(","):
            item = item.strip()
            if item and item not in out:
                out.append(item)
    return out


def validate_policies(policies: Sequence[str]) -> None:
    """Every policy is a built-in, an ``atc23-*`` policy or a valid KubeSchedulerConfiguration
    file; raises :class:`InputError` listing the known names otherwise."""
    if not policies:
        raise InputError("no policies given", field="--policies")
    known = known_policies()
    for policy in policies:
        if policy == OPTIMAL_POLICY:
            from .replay.reoptimise import solver_function

            solver_function()       # the solver is installed
            continue
        if policy in known:
            continue
        if Path(policy).is_file():
            from .config import load_scheduler_config

            load_scheduler_config(policy)   # raises a located ConfigError when invalid
            continue
        raise InputError(f"unknown policy {policy!r}; known policies: {', '.join(known)} "
                         "(or a KubeSchedulerConfiguration file)", field="--policies")


def validate_traces(traces: Sequence[str], nodes: str | None) -> dict[str, str]:
    """Load every trace once (readers raise located :class:`InputError`\\ s), so that a bad
    trace stops the sweep before any run starts. Returns ``{spec: trace name}``."""
    from .traces import load_trace

    return {t: load_trace(t, nodes=nodes).name for t in traces}


def optimal_options(policies: Sequence[str], every: int | None = None,
                    time_limit: float | None = None,
                    workers: int | None = None) -> OptimalOptions | None:
    """The re-optimisation options of a sweep (defaults of :class:`OptimalOptions` for those
    not given); None without the ``optimal`` policy, when giving any is an error."""
    given = {k: v for k, v in (("--optimal-every", every), ("--optimal-time-limit", time_limit),
                               ("--optimal-workers", workers)) if v is not None}
    if OPTIMAL_POLICY not in policies:
        if given:
            raise InputError(f"{', '.join(given)} needs the optimal policy "
                             "(--policies ...,optimal)", field=next(iter(given)))
        return None
    if every is not None and every < 1:
        raise InputError(f"expected a positive number of arrivals, got {every}",
                         field="--optimal-every")
    if time_limit is not None and not (time_limit > 0 and math.isfinite(time_limit)):
        raise InputError(f"expected a positive number of seconds, got {time_limit}",
                         field="--optimal-time-limit")
    if workers is not None and workers < 1:
        raise InputError(f"expected a positive number of workers, got {workers}",
                         field="--optimal-workers")
    default = OptimalOptions()
    return OptimalOptions(every=default.every if every is None else int(every),
                          time_limit=default.time_limit if time_limit is None
                          else float(time_limit),
                          workers=default.workers if workers is None else int(workers))


def expand_specs(traces: Sequence[str], policies: Sequence[str], seeds: Sequence[int], *,
                 experiment: str = "replay", nodes: str | None = None, tune: float = 1.3,
                 fail_unschedulable: bool = False,
                 optimal: OptimalOptions | None = None) -> list[RunSpec]:
    """All runs of a sweep, ordered by trace, then policy, then seed (the order of the
    arguments). With the ``optimal`` policy (options ``optimal``, default
    :class:`OptimalOptions`) every run carries the options; a fill sweep has one ``optimal``
    run per (trace, seed), a replay sweep none (module docstring)."""
    if experiment not in EXPERIMENTS:
        raise InputError(f"unknown experiment {experiment!r}; known: {', '.join(EXPERIMENTS)}",
                         field="--experiment")
    options = None
    if OPTIMAL_POLICY in policies:
        options = optimal or OptimalOptions()
        if experiment == "replay":
            kube = [p for p in policies if p != OPTIMAL_POLICY and not p.startswith("atc23-")]
            if not kube:
                raise InputError("the optimal policy re-optimises the snapshots of the other "
                                 "policies' replays, and needs a kube policy among them "
                                 "(atc23-* replays run on the fast engine, which keeps no "
                                 "scheduler snapshot); or use --experiment fill",
                                 field="--policies")
            policies = [p for p in policies if p != OPTIMAL_POLICY]
    per_policy = {p: options for p in policies}
    if options is not None and experiment == "fill":
        # the optimum starts from the best of the sweep's policies' placements
        per_policy[OPTIMAL_POLICY] = replace(
            options, hints=tuple(p for p in policies if p != OPTIMAL_POLICY))
    return [RunSpec(trace=t, policy=p, seed=int(s), experiment=experiment, nodes=nodes,
                    tune=float(tune), fail_unschedulable=bool(fail_unschedulable),
                    optimal=per_policy[p])
            for t in traces for p in policies for s in seeds]


# -------------------------------------------------------------------------- running one spec

#: Outcome of one run as it travels back from a worker: plain tuples pickle everywhere.
#: ("ok", RunResult) | ("input", message) | ("error", one line, traceback)
Outcome = tuple


def run_outcome(spec: RunSpec, keep_placements: bool = False,
                runner: Callable[[RunSpec], RunResult] | None = None) -> Outcome:
    """Run one spec with ``runner`` (default :func:`schedbench.replay.run`) and never raise:
    the worker-side function of every executor (top level, so process pools and Dask pickle
    it by reference)."""
    if runner is None:
        from .replay import run as runner
    try:
        result = runner(spec)
    except InputError as err:
        return ("input", str(err))
    except Exception as err:  # noqa: BLE001 - reported per run
        line = " ".join(f"{type(err).__name__}: {err}".split())
        return ("error", line, traceback.format_exc())
    if not keep_placements:
        result = replace(result, placements=None)
    return ("ok", result)


class SweepAborted(InputError):
    """A run of the sweep met bad input; ``str`` is that run's one-line error."""


def _finish(spec: RunSpec, outcome: Outcome) -> RunResult | RunFailure:
    kind = outcome[0]
    if kind == "ok":
        return outcome[1]
    if kind == "input":
        raise SweepAborted(outcome[1])
    return RunFailure(spec, outcome[1], outcome[2] if len(outcome) > 2 else "")


# ----------------------------------------------------------------------------- executors


def default_jobs() -> int:
    return os.cpu_count() or 1


def run_sweep(specs: Sequence[RunSpec], *, jobs: int | None = None, dask=None,
              progress: bool | None = None, keep_placements: bool = False,
              runner: Callable[[RunSpec], RunResult] | None = None,
              label: str = "runs") -> list[RunResult | RunFailure]:
    """Run every spec; the i-th entry of the answer belongs to ``specs[i]``.

    ``dask`` is a scheduler address (``tcp://host:8786``) or a ``distributed.Client``;
    otherwise ``jobs`` local processes (default: one per CPU; 1 runs in this process).
    ``progress`` None draws the progress bar only when stderr is a terminal. ``runner``
    replaces :func:`schedbench.replay.run` (a top-level function, so workers can import it).
    Raises :class:`SweepAborted` when a run meets bad input; other failures of a run are
    :class:`RunFailure` entries."""
    specs = list(specs)
    out: list[RunResult | RunFailure | None] = [None] * len(specs)
    with Progress(len(specs), label, enabled=progress) as bar:
        def done(i: int, outcome: Outcome) -> None:
            out[i] = _finish(specs[i], outcome)
            bar.advance()

        if dask is not None:
            _run_dask(specs, dask, (keep_placements, runner), done)
        else:
            jobs = default_jobs() if jobs is None else jobs
            if jobs < 1:
                raise InputError(f"expected a positive number of jobs, got {jobs}",
                                 field="--jobs")
            workers = min(jobs, len(specs))
            if workers <= 1:
                for i, spec in enumerate(specs):
                    done(i, run_outcome(spec, keep_placements, runner))
            else:
                _run_pool(specs, workers, (keep_placements, runner), done)
    return out  # type: ignore[return-value]


def _mp_context():
    import multiprocessing as mp

    # forkserver: workers fork from a clean server process (no inherited threads, unlike fork)
    # and start far faster than spawn; spawn where it is missing (Windows).
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    ctx = mp.get_context(method)
    if method == "forkserver":
        ctx.set_forkserver_preload(["schedbench.compare", "schedbench.replay"])
    return ctx


def _run_pool(specs: list[RunSpec], workers: int, options: tuple,
              done: Callable[[int, Outcome], None]) -> None:
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    pool = ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context())
    aborted = True
    try:
        pending = {pool.submit(run_outcome, spec, *options): i
                   for i, spec in enumerate(specs)}
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=pending.__getitem__):
                i = pending.pop(fut)
                try:
                    outcome = fut.result()
                except Exception as err:  # noqa: BLE001 - a worker died (killed, out of memory)
                    line = " ".join(f"{type(err).__name__}: {err}".split())
                    outcome = ("error", f"worker failed: {line}", "")
                done(i, outcome)
        aborted = False
    finally:
        if aborted:
            # Stop the runs in flight too (bad input or Ctrl-C): they would only be discarded.
            for proc in list((getattr(pool, "_processes", None) or {}).values()):
                if proc.is_alive():
                    proc.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        else:
            pool.shutdown(wait=True)


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise InputError("--dask needs Dask's distributed scheduler: "
                         "pip install 'schedbench[dask]'", field="--dask") from None
    return distributed


def _run_dask(specs: list[RunSpec], address, options: tuple,
              done: Callable[[int, Outcome], None]) -> None:
    distributed = _import_distributed()
    own = not isinstance(address, distributed.Client)
    if own:
        try:
            client = distributed.Client(address, timeout="30s")
        except (OSError, TimeoutError, ValueError) as err:
            raise InputError(f"cannot connect to the Dask scheduler: {err}",
                             field="--dask") from None
    else:
        client = address
    try:
        n = len(specs)
        futures = client.map(run_outcome, specs, [options[0]] * n, [options[1]] * n,
                             pure=False)
        index = {f.key: i for i, f in enumerate(futures)}
        try:
            for fut in distributed.as_completed(futures):
                i = index[fut.key]
                try:
                    outcome = fut.result()
                except Exception as err:  # noqa: BLE001 - worker lost, deserialisation, ...
                    line = " ".join(f"{type(err).__name__}: {err}".split())
                    outcome = ("error", f"dask task failed: {line}", "")
                done(i, outcome)
        except BaseException:
            client.cancel(futures)
            raise
    finally:
        if own:
            client.close()


# ------------------------------------------------------------------------------ seeds, jobs


def seed_list(seeds: int | None = None, explicit: Sequence[int] | None = None,
              first: int = FIRST_SEED) -> list[int]:
    """``--seed-list`` when given, else ``seeds`` consecutive seeds from ``first``."""
    if explicit:
        out: list[int] = []
        for s in explicit:
            if s not in out:
                out.append(int(s))
        return out
    n = 1 if seeds is None else seeds
    if n < 1:
        raise InputError(f"expected a positive number of seeds, got {n}", field="--seeds")
    return list(range(first, first + n))
