"""``schedbench trace ...``: fetch public traces, convert them to the native format, summarise a
trace, generate synthetic ones. :func:`register` adds the subcommand to the main parser."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..errors import InputError
from ..textfmt import format_table
from . import TRACE_FORMATS, load_trace, write_native


def _reader_options(args: argparse.Namespace) -> dict:
    opts = {}
    if getattr(args, "cpu_scale", None) is not None:
        opts["cpu_milli"] = args.cpu_scale
    if getattr(args, "mem_scale", None) is not None:
        opts["memory_mib"] = args.mem_scale
    if getattr(args, "until", None) is not None:
        opts["until"] = args.until
    return opts


def _load(args: argparse.Namespace, spec: str):
    return load_trace(spec, nodes=getattr(args, "nodes", None), **_reader_options(args))


def cmd_trace_fetch(args: argparse.Namespace) -> int:
    from .fetch import fetch

    dest = args.dest or str(Path("traces-data") / args.name)
    files = args.files.split(",") if args.files else None
    fetch(args.name, dest, parts=args.parts, files=files, force=args.force)
    return 0


def cmd_trace_convert(args: argparse.Namespace) -> int:
    trace = _load(args, args.spec)
    write_native(trace, args.out, args.format)
    print(f"wrote {args.out}: {len(trace.nodes)} nodes, {len(trace.pods)} pods "
          f"({args.format})")
    return 0


def _fmt_int(v: int) -> str:
    return f"{v:,}"


def cmd_trace_info(args: argparse.Namespace) -> int:
    trace = _load(args, args.spec)
    s = trace.summary()
    if args.format == "json":
        print(json.dumps(s, indent=2))
        return 0
    print(f"Trace: {s['name']} ({s['source']})")
    print(f"Nodes: {_fmt_int(s['nodes'])} ({_fmt_int(s['gpu_nodes'])} with GPUs, "
          f"{_fmt_int(s['gpus'])} GPUs)")
    print(f"Pods: {_fmt_int(s['pods'])} ({_fmt_int(s['gpu_pods'])} use GPUs, "
          f"{_fmt_int(s['sharing_pods'])} share one, {_fmt_int(s['constrained_pods'])} "
          f"constrain the GPU model)")
    span = s["arrival_max"] - s["arrival_min"]
    med = s["duration_median"]
    print(f"Arrivals over {span:,.0f} s; {_fmt_int(s['finite_durations'])} finite durations"
          + (f" (median {med:,.0f} s)" if med is not None else ""))
    print()
    rows = [["cpu (milli)", _fmt_int(s["cpu_milli"]), _fmt_int(s["pod_cpu_milli"]),
             f"{s['cpu_request_pct']:.1f}%"],
            ["memory (MiB)", _fmt_int(s["memory_mib"]), _fmt_int(s["pod_memory_mib"]),
             f"{s['mem_request_pct']:.1f}%"],
            ["gpu (milli)", _fmt_int(s["gpus"] * 1000), _fmt_int(s["pod_gpu_milli"]),
             f"{s['gpu_request_pct']:.1f}%"]]
    print(format_table(["RESOURCE", "CAPACITY", "REQUESTED (ALL PODS)", "SHARE"], rows,
                       (1, 2, 3)))
    if s["gpu_models"]:
        print()
        rows = [[m, _fmt_int(v["nodes"]), _fmt_int(v["gpus"])]
                for m, v in s["gpu_models"].items()]
        print(format_table(["GPU MODEL", "NODES", "GPUS"], rows, (1, 2)))
    return 0


def cmd_trace_generate(args: argparse.Namespace) -> int:
    from .synthetic import TraceModel, fit, generate

    if (args.fit is None) == (args.model is None):
        raise InputError("give exactly one of --fit SPEC or --model JSON", field="--fit")
    if args.fit is not None:
        model = fit(_load(args, args.fit), zones=args.zones or 3)
    else:
        model = TraceModel.load(args.model)
        if args.zones:
            model.zones = args.zones
    if args.arrival_rate is not None:
        model.arrival_rate = args.arrival_rate
    if args.duration_scale is not None:
        model.duration_scale = args.duration_scale
    if args.max_duration is not None:
        model.max_duration = args.max_duration
    if args.save_model:
        model.save(args.save_model)
    if args.out:
        trace = generate(model, args.nodes_count, args.pods, args.seed, name=args.name)
        write_native(trace, args.out, args.format)
        print(f"wrote {args.out}: {len(trace.nodes)} nodes, {len(trace.pods)} pods "
              f"(seed {args.seed})")
    elif not args.save_model:
        raise InputError("nothing to do: give --out DIR and/or --save-model JSON", field="--out")
    return 0


def _positive_float(text: str) -> float:
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return v


def _count(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def _positive(text: str) -> int:
    v = _count(text)
    if v == 0:
        raise argparse.ArgumentTypeError("expected an integer >= 1, got 0")
    return v


def _scale_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cpu-scale", type=_positive_float, metavar="MILLI",
                   help="google2011/google2019: milli-cores of a normalised CPU of 1.0 "
                   "(default 32000)")
    p.add_argument("--mem-scale", type=_positive_float, metavar="MIB",
                   help="google2011/google2019: MiB of a normalised memory of 1.0 (default "
                   "65536); alibaba2018: MiB of mem_size 100 (default 524288)")
    p.add_argument("--until", type=_positive_float, metavar="SECONDS",
                   help="alibaba2018: only pods arriving before SECONDS (the full batch_task "
                   "table expands to far more instances than fit in memory)")


def register(subparsers) -> argparse.ArgumentParser:
    """Add ``trace`` (with ``fetch``, ``convert``, ``info``, ``generate``) to the main
    parser's subparsers; each sets ``func``."""
    formats = ", ".join(TRACE_FORMATS)
    trace = subparsers.add_parser(
        "trace", help="fetch, convert, summarise or generate cluster traces",
        description=f"Traces are named FORMAT:PATH (FORMAT: {formats}), a bare PATH (native "
        "directory) or 'default' (the bundled trace).")
    sub = trace.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")

    p = sub.add_parser("fetch", help="download a public trace (openb, google2011, alibaba2018; "
                       "google2019 prints BigQuery instructions)")
    p.add_argument("name", metavar="NAME", choices=("openb", "google2011", "alibaba2018",
                                                     "google2019"))
    p.add_argument("--dest", metavar="DIR", help="destination (default: traces-data/NAME)")
    p.add_argument("--parts", default="0-1",
                   help="google2011: task_events parts to fetch, e.g. 0-4,7 or all "
                   "(default 0-1)")
    p.add_argument("--files", help="openb: comma-separated CSV names; alibaba2018: tables "
                   "(machine_meta,batch_task,container_meta); default: all")
    p.add_argument("--force", action="store_true", help="download files already present")
    p.set_defaults(func=cmd_trace_fetch)

    p = sub.add_parser("convert", help="convert a trace to the native format")
    p.add_argument("spec", metavar="SPEC", help="FORMAT:PATH, PATH or default")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--nodes", metavar="FILE", help="openb: node list (default: "
                   "openb_node_list_gpu_node.csv beside the pod list)")
    _scale_args(p)
    p.set_defaults(func=cmd_trace_convert)

    p = sub.add_parser("info", help="counts, capacities, requests and GPU totals of a trace")
    p.add_argument("spec", metavar="SPEC", nargs="?", default="default")
    p.add_argument("--nodes", metavar="FILE")
    p.add_argument("--format", choices=("table", "json"), default="table")
    _scale_args(p)
    p.set_defaults(func=cmd_trace_info)

    p = sub.add_parser("generate", help="generate a synthetic trace from a model fitted to a "
                       "trace (--fit) or saved as JSON (--model)")
    p.add_argument("--fit", metavar="SPEC", help="fit the model to this trace")
    p.add_argument("--model", metavar="JSON", help="a model saved with --save-model")
    p.add_argument("--trace-nodes", dest="nodes", metavar="FILE",
                   help="openb: node list of the --fit trace")
    p.add_argument("--nodes", dest="nodes_count", type=_count, default=100, metavar="N",
                   help="number of nodes (default 100)")
    p.add_argument("--pods", type=_count, default=1000, metavar="M",
                   help="number of pods (default 1000)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="DIR", help="write the generated trace here")
    p.add_argument("--format", choices=("csv", "parquet"), default="csv")
    p.add_argument("--name", help="trace name (default: synthetic-NxM-sS)")
    p.add_argument("--arrival-rate", type=_positive_float, metavar="PODS_PER_S",
                   help="override the fitted Poisson arrival rate")
    p.add_argument("--duration-scale", type=_positive_float, metavar="F",
                   help="multiply drawn durations by F")
    p.add_argument("--max-duration", type=_positive_float, metavar="SECONDS",
                   help="cap drawn durations")
    p.add_argument("--zones", type=_positive, metavar="Z", help="zones to spread nodes over "
                   "(default 3)")
    p.add_argument("--save-model", metavar="JSON",
                   help="save the model (with the overrides above) as JSON")
    _scale_args(p)
    p.set_defaults(func=cmd_trace_generate)

    trace.set_defaults(func=lambda args: _trace_help(trace))
    return trace


def _trace_help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2
