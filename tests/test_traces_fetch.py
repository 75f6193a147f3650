"""``schedbench trace fetch`` against a local HTTP server and file:// URLs (no internet)."""

from __future__ import annotations

import functools
import http.server
import io
import socket
import tarfile
import threading

import pytest

from schedbench.cli import main
from schedbench.errors import InputError
from schedbench.traces import fetch as fetch_mod
from schedbench.traces import load_trace
from schedbench.traces.fetch import FetchError, fetch, parse_parts, plan


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def test_openb_fetch_over_http_then_load(server, tmp_path, monkeypatch, capsys):
    root, url = server
    nodes = "sn,cpu_milli,memory_mib,gpu,model\nn0,8000,1024,2,T4\n"
    pods = "name,cpu_milli,memory_mib,num_gpu,gpu_milli\np0,1000,10,1,500\n"
    (root / "openb_node_list_gpu_node.csv").write_text(nodes)
    (root / "openb_pod_list_default.csv").write_text(pods)
    monkeypatch.setitem(fetch_mod.BASE_URLS, "openb", url)
    dest = tmp_path / "dest"
    assert main(["trace", "fetch", "openb", "--dest", str(dest), "--files",
                 "openb_node_list_gpu_node.csv,openb_pod_list_default.csv"]) == 0
    assert (dest / "openb_node_list_gpu_node.csv").read_text() == nodes
    t = load_trace(f"openb:{dest / 'openb_pod_list_default.csv'}")
    assert t.gpu_request_milli == 500
    assert not [p for p in dest.iterdir() if p.name.startswith(".")]
    # a second fetch skips present files
    capsys.readouterr()
    (root / "openb_pod_list_default.csv").write_text("changed")
    fetch("openb", dest, files=["openb_pod_list_default.csv"])
    assert "present, skipped" in capsys.readouterr().err
    assert (dest / "openb_pod_list_default.csv").read_text() == pods


def test_missing_file_and_network_failure_are_one_line_errors(server, tmp_path, monkeypatch,
                                                              capsys):
    root, url = server
    monkeypatch.setitem(fetch_mod.BASE_URLS, "openb", url)
    with pytest.raises(FetchError, match="HTTP 404"):
        fetch("openb", tmp_path / "d", files=["openb_pod_list_cpu0.csv"])
    assert not (tmp_path / "d" / "openb_pod_list_cpu0.csv").exists()
    assert not list((tmp_path / "d").iterdir())            # no temporary file left behind
    with socket.socket() as s:                             # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setitem(fetch_mod.BASE_URLS, "openb", f"http://127.0.0.1:{port}/")
    assert main(["trace", "fetch", "openb", "--dest", str(tmp_path / "e"), "--files",
                 "openb_pod_list_cpu0.csv"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "download failed" in err
    assert "Traceback" not in err


def test_google2011_parts_from_file_url(tmp_path, monkeypatch):
    src = tmp_path / "bucket"
    for rel in ("machine_events/part-00000-of-00001.csv.gz",
                "task_events/part-00003-of-00500.csv.gz",
                "task_events/part-00004-of-00500.csv.gz"):
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(rel.encode())
    monkeypatch.setitem(fetch_mod.BASE_URLS, "google2011", src.as_uri() + "/")
    got = fetch("google2011", tmp_path / "out", parts="3-4")
    assert [p.relative_to(tmp_path / "out").as_posix() for p in got] == [
        "machine_events/part-00000-of-00001.csv.gz", "task_events/part-00003-of-00500.csv.gz",
        "task_events/part-00004-of-00500.csv.gz"]
    assert (tmp_path / "out" / "task_events" / "part-00004-of-00500.csv.gz").read_bytes() == \
        b"task_events/part-00004-of-00500.csv.gz"


def test_alibaba2018_tarball_is_extracted(tmp_path, monkeypatch):
    src = tmp_path / "oss"
    src.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"m_1,0,3,17,96,100,USING\n"
        info = tarfile.TarInfo("machine_meta.csv")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (src / "machine_meta.tar.gz").write_bytes(buf.getvalue())
    monkeypatch.setitem(fetch_mod.BASE_URLS, "alibaba2018", src.as_uri() + "/")
    fetch("alibaba2018", tmp_path / "out", files=["machine_meta"])
    with pytest.warns(UserWarning, match="no pods"):
        t = load_trace(f"alibaba2018:{tmp_path / 'out'}")
    assert t.nodes["cpu_milli"].tolist() == [96_000]


def test_plans_and_google2019_instructions(capsys):
    urls = [i.url for i in plan("openb")]
    assert len(urls) == 26 and all(u.startswith(fetch_mod.BASE_URLS["openb"]) for u in urls)
    assert parse_parts("0-2,7") == [0, 1, 2, 7] and len(parse_parts("all")) == 500
    with pytest.raises(InputError, match="bad part list"):
        parse_parts("3-1")
    assert [i.target for i in plan("google2011", parts="0")][-1] == \
        "task_events/part-00000-of-00500.csv.gz"
    assert main(["trace", "fetch", "google2019"]) == 0
    out = capsys.readouterr().out
    assert "BigQuery" in out and "google2019:DIR" in out
