"""The native trace format: validation errors name file, row and column; CSV and Parquet round
trips are exact; specs resolve to the right reader; the bundled default trace loads."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.cli import main
from schedbench.traces import native
from schedbench.errors import InputError
from schedbench.traces import (
    NODE_COLUMNS,
    POD_COLUMNS,
    TRACE_FORMATS,
    Trace,
    load_trace,
    validate_trace,
    write_native,
)

NODES = """name,cpu_milli,memory_mib,gpu,gpu_model,max_pods,labels,taints
n1,32000,131072,4,V100M16,110,topology.kubernetes.io/zone=a,
n2,8000,32768,0,,20,,dedicated=batch:NoSchedule
"""
PODS = """\
id,arrival,duration,cpu_milli,memory_mib,num_gpu,gpu_milli,priority,labels,group,gpu_models
p1,0,10.5,1000,2048,1,500,0,app=web,web,
p2,1.25,,2000,4096,2,1000,5,,batch,V100M16|V100M32
p3,3,7,500,512,0,0,-1,app=web;tier=fe,web,
"""


def write(d: Path, nodes: str = NODES, pods: str = PODS) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "nodes.csv").write_text(nodes)
    (d / "pods.csv").write_text(pods)
    return d


def test_reads_a_native_directory_with_types_and_defaults(tmp_path):
    t = load_trace(str(write(tmp_path / "tr")))
    assert t.name == "tr"
    assert tuple(t.nodes.columns) == NODE_COLUMNS and tuple(t.pods.columns) == POD_COLUMNS
    assert t.nodes["cpu_milli"].dtype == np.int64 and t.pods["arrival"].dtype == np.float64
    assert t.pods["id"].tolist() == ["p1", "p2", "p3"]            # file order
    assert np.isnan(t.pods["duration"].iloc[1]) and t.pods["duration"].iloc[0] == 10.5
    assert t.pods["priority"].tolist() == [0, 5, -1]
    assert t.nodes["taints"].iloc[1] == "dedicated=batch:NoSchedule"
    assert t.gpu_capacity_milli == 4000 and t.gpu_request_milli == 2500


def test_minimal_columns_get_defaults_and_departure_becomes_duration(tmp_path):
    d = write(tmp_path / "m", "name,cpu_milli,memory_mib\na,1000,1024\n",
              "id,cpu_milli,memory_mib,num_gpu,arrival,departure\n"
              "x,100,100,0,5,20\ny,100,100,2,1,\n")
    t = load_trace(f"native:{d}")
    n, p = t.nodes.iloc[0], t.pods
    assert (n["gpu"], n["gpu_model"], n["max_pods"], n["labels"]) == (0, "", 110, "")
    assert p["duration"].iloc[0] == 15.0 and np.isnan(p["duration"].iloc[1])
    # gpu_milli absent: a whole GPU for a GPU pod, 0 for a CPU pod
    assert p["gpu_milli"].tolist() == [0, 1000]


BAD_PODS = [
    ("id,cpu_milli\np,1\n", None, "memory_mib", "lacks required column"),
    ("id,cpu_milli,memory_mib\np,1.5,1\n", 1, "cpu_milli", "expected an integer, got '1.5'"),
    ("id,cpu_milli,memory_mib\np,1,1\nq,abc,1\n", 2, "cpu_milli", "expected an integer"),
    ("id,cpu_milli,memory_mib\np,1,1\nq,1,-5\n", 2, "memory_mib", "negative value -5"),
    ("id,cpu_milli,memory_mib\np,1,1\np,1,1\n", 2, "id", "duplicate pod id 'p'"),
    ("id,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,1200\n", 1, "gpu_milli", "above 1000"),
    ("id,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,2,500\n", 1, "gpu_milli",
     "only allowed for one GPU"),
    ("id,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,0,300\n", 1, "gpu_milli", "num_gpu 0"),
    ("id,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,0\n", 1, "gpu_milli", "must be 1..1000"),
    ("id,cpu_milli,memory_mib,arrival,departure\np,1,1,0,5\nq,1,1,10,4\n", 2, "departure",
     "before arrival"),
    ("id,cpu_milli,memory_mib,arrival\np,1,1,-1\n", 1, "arrival", ">= 0"),
    ("id,cpu_milli,memory_mib,duration\np,1,1,0\n", 1, "duration", "> 0"),
    ("id,cpu_milli,memory_mib,duration\np,1,1,soon\n", 1, "duration", "expected a number"),
    ("id,cpu_milli,memory_mib,labels\np,1,1,app=a\nq,1,1,app\n", 2, "labels", "not key=value"),
    ("id,cpu_milli,memory_mib,labels\np,1,1,app=a b\n", 1, "labels", "app=a b"),
    ("id,cpu_milli,memory_mib,gpu_models\np,1,1,A||B\n", 1, "gpu_models", "malformed"),
    ("id,cpu_milli,memory_mib\n,1,1\n", 1, "id", "empty pod id"),
    ("id,cpu_milli,memory_mib\np,1,1\nq,99999999999999999999,1\n", 2, "cpu_milli",
     "out of range"),
]


@pytest.mark.parametrize("pods,row,column,message", BAD_PODS)
def test_bad_pod_rows_name_file_row_and_column(tmp_path, pods, row, column, message):
    d = write(tmp_path / "bad", pods=pods)
    with pytest.raises(InputError) as info:
        load_trace(str(d))
    err = info.value
    assert err.file == str(d / "pods.csv")
    assert err.field == column
    assert err.obj == (f"row {row}" if row else None)
    assert message in err.message
    assert "\n" not in str(err)


BAD_NODES = [
    ("name,cpu_milli,memory_mib\na,1,1\na,2,2\n", 2, "name", "duplicate node name"),
    ("name,cpu_milli,memory_mib,gpu\na,1,1,-2\n", 1, "gpu", "negative"),
    ("name,cpu_milli,memory_mib,taints\na,1,1,k=v:Sometimes\n", 1, "taints", "unknown effect"),
    ("name,cpu_milli,memory_mib,taints\na,1,1,k=v\n", 1, "taints", "key[=value]:Effect"),
    ("name,cpu_milli,memory_mib,max_pods\na,1,1,0\n", 1, "max_pods", "below 1"),
    ("name,cpu_milli,memory_mib,gpu,gpu_model\na,1,1,2,A|B\n", 1, "gpu_model", "one GPU model"),
    ("name,cpu_milli,memory_mib\na,1,\n", 1, "memory_mib", "missing value"),
]


@pytest.mark.parametrize("nodes,row,column,message", BAD_NODES)
def test_bad_node_rows_name_file_row_and_column(tmp_path, nodes, row, column, message):
    d = write(tmp_path / "bad", nodes=nodes)
    with pytest.raises(InputError) as info:
        load_trace(str(d))
    assert (info.value.file, info.value.obj, info.value.field) == (
        str(d / "nodes.csv"), f"row {row}", column)
    assert message in info.value.message


def test_parquet_tables_are_checked_too(tmp_path):
    d = tmp_path / "pq"
    d.mkdir()
    pd.DataFrame({"name": ["a"], "cpu_milli": [1000], "memory_mib": [10]}).to_parquet(
        d / "nodes.parquet")
    pd.DataFrame({"id": ["p", "q"], "cpu_milli": [1.0, 2.5], "memory_mib": [1, 1]}).to_parquet(
        d / "pods.parquet")
    with pytest.raises(InputError) as info:
        load_trace(str(d))
    assert (info.value.file, info.value.obj, info.value.field) == (
        str(d / "pods.parquet"), "row 2", "cpu_milli")
    assert "got '2.5'" in info.value.message


def test_cli_prints_one_line_and_exits_2_on_a_bad_row(tmp_path, capsys):
    d = write(tmp_path / "bad", pods="id,cpu_milli,memory_mib\np,1,1\nq,x,1\n")
    assert main(["trace", "info", str(d)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"{d / 'pods.csv'}: row 2: cpu_milli: expected an integer, got 'x'" in err


def test_spec_parsing_and_unknown_format(tmp_path):
    with pytest.raises(InputError) as info:
        load_trace("kaggle:/x/y")
    for fmt in TRACE_FORMATS:
        assert fmt in str(info.value)
    with pytest.raises(InputError, match="no such trace directory"):
        load_trace(str(tmp_path / "absent"))
    # --nodes is for openb; other formats ignore it (compare passes it with every trace)
    assert len(load_trace("default", nodes="x.csv").nodes) == 48
    d = write(tmp_path / "both")
    (d / "pods.parquet").write_bytes(b"")
    with pytest.raises(InputError, match="both pods.csv and pods.parquet"):
        load_trace(str(d))


def test_default_trace_is_bundled_and_valid():
    t = load_trace("default")
    assert t.name == "default"
    assert len(t.nodes) == 48 and len(t.pods) == 600
    assert t.pods["duration"].notna().all() and (t.pods["arrival"].diff().dropna() >= 0).all()
    assert t.nodes["labels"].str.contains("topology.kubernetes.io/zone=zone-").all()
    assert t.nodes["labels"].str.contains("kubernetes.io/hostname=").all()
    assert t.pods["labels"].str.startswith("app=").all()
    symlink = Path(__file__).resolve().parent.parent / "traces" / "default"
    assert symlink.is_symlink() and (symlink / "pods.csv").is_file()


def test_default_trace_load_exceeds_gpu_capacity_at_times():
    """Running GPU demand (every pod from arrival for its duration, ignoring capacity) goes
    above the cluster's GPU capacity for part of the time, so a replay has to queue pods."""
    t = load_trace("default")
    p = t.pods
    start, end = p["arrival"].to_numpy(), (p["arrival"] + p["duration"]).to_numpy()
    gpu = (p["num_gpu"] * p["gpu_milli"]).to_numpy()
    times = np.linspace(0, end.max(), 2000)
    demand = np.array([gpu[(start <= x) & (end > x)].sum() for x in times])
    cap = t.gpu_capacity_milli
    assert demand.max() > 1.02 * cap
    assert 0.01 < (demand > cap).mean() < 0.5


# ------------------------------------------------------------------------------ round trips

ids = st.text(st.sampled_from("abcXYZ019-_.,\"' "), min_size=1, max_size=8).map(
    lambda s: "p" + s.strip() + "q")
label = st.sampled_from(["", "app=web", "app=db;tier=be", "k8s.io/x=y_z", "a=b;c="])
models = st.sampled_from(["", "A", "A|B", "T4|V100M16|G2"])


@st.composite
def traces(draw):
    n_nodes = draw(st.integers(0, 5))
    n_pods = draw(st.integers(0, 8))
    nodes = pd.DataFrame({
        "name": [f"node-{i}" for i in range(n_nodes)],
        "cpu_milli": draw(st.lists(st.integers(0, 2 ** 40), min_size=n_nodes, max_size=n_nodes)),
        "memory_mib": draw(st.lists(st.integers(0, 2 ** 40), min_size=n_nodes,
                                    max_size=n_nodes)),
        "gpu": draw(st.lists(st.integers(0, 8), min_size=n_nodes, max_size=n_nodes)),
        "gpu_model": draw(st.lists(st.sampled_from(["", "G2", "T4"]), min_size=n_nodes,
                                   max_size=n_nodes)),
        "max_pods": draw(st.lists(st.integers(1, 500), min_size=n_nodes, max_size=n_nodes)),
        "labels": draw(st.lists(label, min_size=n_nodes, max_size=n_nodes)),
        "taints": draw(st.lists(st.sampled_from(["", "a=b:NoSchedule",
                                                 "g:NoExecute;x=:PreferNoSchedule"]),
                                min_size=n_nodes, max_size=n_nodes)),
    })
    gpus = draw(st.lists(st.tuples(st.integers(0, 8), st.integers(1, 1000)), min_size=n_pods,
                         max_size=n_pods))
    num_gpu = [g for g, _ in gpus]
    milli = [0 if g == 0 else (m if g == 1 else 1000) for g, m in gpus]
    floats = st.floats(0, 1e9, allow_nan=False, allow_subnormal=True)
    pods = pd.DataFrame({
        "id": draw(st.lists(ids, min_size=n_pods, max_size=n_pods, unique=True)),
        "arrival": draw(st.lists(floats, min_size=n_pods, max_size=n_pods)),
        "duration": draw(st.lists(st.one_of(st.just(float("nan")),
                                             st.floats(1e-9, 1e9, allow_nan=False)),
                                  min_size=n_pods, max_size=n_pods)),
        "cpu_milli": draw(st.lists(st.integers(0, 2 ** 40), min_size=n_pods, max_size=n_pods)),
        "memory_mib": draw(st.lists(st.integers(0, 2 ** 40), min_size=n_pods,
                                    max_size=n_pods)),
        "num_gpu": num_gpu, "gpu_milli": milli,
        "priority": draw(st.lists(st.integers(-2 ** 31, 2 ** 31), min_size=n_pods,
                                  max_size=n_pods)),
        "labels": draw(st.lists(label, min_size=n_pods, max_size=n_pods)),
        "group": draw(st.lists(st.sampled_from(["", "web", "a,b", 'q"x']), min_size=n_pods,
                               max_size=n_pods)),
        "gpu_models": draw(st.lists(models, min_size=n_pods, max_size=n_pods)),
    })
    return validate_trace(Trace("t", nodes, pods))


@pytest.mark.parametrize("fmt,arrow_rows", [("csv", None), ("csv", -1), ("parquet", None)],
                         ids=["csv-pandas", "csv-arrow", "parquet"])
@given(trace=traces())
def test_round_trip_is_exact(tmp_path_factory, fmt, arrow_rows, trace):
    d = tmp_path_factory.mktemp("rt")
    saved = native.ARROW_CSV_ROWS
    if arrow_rows is not None:
        native.ARROW_CSV_ROWS = arrow_rows        # large-table writer for every size
    try:
        write_native(trace, d, fmt)
    finally:
        native.ARROW_CSV_ROWS = saved
    back = load_trace(str(d))
    pd.testing.assert_frame_equal(back.nodes, trace.nodes, check_exact=True)
    pd.testing.assert_frame_equal(back.pods, trace.pods, check_exact=True)
    assert sorted(p.name for p in d.iterdir()) == [f"nodes.{fmt}", f"pods.{fmt}"]


def test_write_native_is_atomic_readable_and_replaces_the_other_format(tmp_path):
    t = load_trace(str(write(tmp_path / "src")))
    out = tmp_path / "out"
    write_native(t, out, "parquet")
    write_native(t, out, "csv")                     # parquet files are replaced by csv
    assert sorted(p.name for p in out.iterdir()) == ["nodes.csv", "pods.csv"]
    mode = stat.S_IMODE(os.stat(out / "pods.csv").st_mode)
    assert mode & 0o044 == 0o044 & ~_umask()        # not private like a bare mkstemp file
    before = (out / "pods.csv").read_bytes()
    broken = Trace("x", t.nodes, t.pods.assign(cpu_milli=-1))
    with pytest.raises(InputError):
        write_native(broken, out, "csv")
    assert (out / "pods.csv").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_cli_convert_and_info(tmp_path, capsys):
    out = tmp_path / "conv"
    assert main(["trace", "convert", "default", "--out", str(out), "--format", "parquet"]) == 0
    back = load_trace(str(out))
    orig = load_trace("default")
    pd.testing.assert_frame_equal(back.pods, orig.pods)
    capsys.readouterr()
    assert main(["trace", "info", str(out), "--format", "json"]) == 0
    import json

    info = json.loads(capsys.readouterr().out)
    assert info["nodes"] == 48 and info["pods"] == 600
    assert info["gpus"] * 1000 == orig.gpu_capacity_milli
    assert main(["trace", "info", "default"]) == 0
    text = capsys.readouterr().out
    assert "GPU MODEL" in text and "Pods: 600" in text
