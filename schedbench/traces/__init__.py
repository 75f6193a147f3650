"""Cluster traces: the native format (:class:`Trace`, :func:`write_native`), readers for public
traces (Alibaba GPU 2023 "openb", Google 2011, Alibaba 2018, Google 2019), the bundled default
trace and a synthetic generator (:mod:`.synthetic`). ``traces/README.md`` documents it all.

A trace is named by a spec: ``default`` (bundled), ``FORMAT:PATH`` with FORMAT in
:data:`TRACE_FORMATS`, or a bare PATH (a native trace directory).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .native import (
    NODE_COLUMNS,
    POD_COLUMNS,
    Trace,
    normalise_nodes,
    normalise_pods,
    read_native,
    validate_trace,
    write_native,
)

TRACE_FORMATS = ("native", "openb", "google2011", "alibaba2018", "google2019")

__all__ = ["NODE_COLUMNS", "POD_COLUMNS", "TRACE_FORMATS", "Trace", "default_trace_path",
           "load_trace", "normalise_nodes", "normalise_pods", "parse_spec", "validate_trace",
           "write_native"]


def default_trace_path() -> Path:
    """The bundled default trace directory (package data)."""
    return Path(__file__).resolve().parent.parent / "data" / "traces" / "default"


def parse_spec(spec: str) -> tuple[str, str]:
    """``FORMAT:PATH`` -> (format, path); a bare path -> ("native", path); ``default`` ->
    ("native", bundled path). Raises :class:`InputError` for an unknown format."""
    if spec == "default":
        return "native", str(default_trace_path())
    fmt, colon, rest = spec.partition(":")
    if colon and fmt in TRACE_FORMATS:
        return fmt, rest
    if colon and fmt and fmt.isidentifier() and not Path(spec).exists() and len(fmt) > 1:
        raise InputError(f"unknown trace format {fmt!r}; known: {', '.join(TRACE_FORMATS)} "
                         "(or a bare path for native, or 'default')")
    return "native", spec


def load_trace(spec: str, *, nodes: str | None = None, **options) -> Trace:
    """Load a trace by spec (see the module docstring). ``nodes`` names the node list of an
    ``openb`` trace (default: ``openb_node_list_gpu_node.csv`` beside the pod list); other
    formats ignore it, so one ``--nodes`` can accompany a mixed list of traces.
    ``options`` go to the reader: ``cpu_milli``/``memory_mib`` (what a normalised 1.0 becomes)
    for ``google2011``/``google2019``, ``memory_mib`` for ``alibaba2018``."""
    fmt, path = parse_spec(spec)
    if not path:
        raise InputError(f"{fmt}: missing PATH (use {fmt}:PATH)")
    if fmt == "native":
        if options:
            raise InputError(f"native traces take no options, got {', '.join(options)}")
        name = "default" if spec == "default" else None
        return read_native(path, name=name, source=spec if spec == "default" else None)
    if fmt == "openb":
        from .openb import read_openb

        if options:
            raise InputError(f"openb traces take no options, got {', '.join(options)}")
        return read_openb(path, nodes=nodes)
    if fmt == "google2011":
        from .google2011 import read_google2011

        return read_google2011(path, **options)
    if fmt == "alibaba2018":
        from .alibaba2018 import read_alibaba2018

        return read_alibaba2018(path, **options)
    from .google2019 import read_google2019

    return read_google2019(path, **options)
