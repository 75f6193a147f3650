"""Download the public originals of the traces schedbench reads (``schedbench trace fetch``).

Each file is streamed to a temporary file in the destination directory and renamed into place
when complete, so an interrupted download never leaves a truncated file under the final name.
Files already present are skipped (``force=True`` downloads again). A network failure raises
:class:`FetchError` (an :class:`~schedbench.errors.InputError`: the CLI prints one line).
"""

from __future__ import annotations

import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..progress import Progress
from .native import _umask

#: Base URLs (tests point these at a local server or ``file://`` directory).
BASE_URLS = {
    "openb": "https://raw.githubusercontent.com/alibaba/clusterdata/master/"
             "cluster-trace-gpu-v2023/csv/",
    "google2011": "https://commondatastorage.googleapis.com/clusterdata-2011-2/",
    "alibaba2018": "http://aliopentrace.oss-cn-beijing.aliyuncs.com/v2018Traces/",
}

OPENB_FILES = (
    ["openb_node_list_all_node.csv", "openb_node_list_gpu_node.csv",
     "openb_pod_list_default.csv"]
    + [f"openb_pod_list_cpu{x}.csv" for x in ("0", "037", "050", "072", "100", "200", "235",
                                              "250", "300")]
    + [f"openb_pod_list_gpushare{x}.csv" for x in (20, 40, 60, 80, 100)]
    + [f"openb_pod_list_multigpu{x}.csv" for x in (20, 30, 40, 50)]
    + [f"openb_pod_list_gpuspec{x}.csv" for x in ("05", "10", "20", "25", "33")])
GOOGLE2011_PARTS = 500
ALIBABA2018_TABLES = ("machine_meta", "batch_task", "container_meta")

GOOGLE2019_HELP = """\
The Google 2019 trace (clusterdata-2019, ~2.4 TiB compressed) is published through BigQuery,
not as downloadable files. To use it with schedbench:
  1. In a Google Cloud project with BigQuery enabled, query one cell, e.g.
       SELECT time, type, collection_id, instance_index, priority, scheduling_class,
              collection_type, resource_request
       FROM `google.com:google-cluster-data`.clusterdata_2019_a.instance_events
       WHERE time < 3600000000 + 600000000
     and likewise machine_events (time, machine_id, type, capacity, platform_id) and,
     optionally, collection_events (collection_id, collection_type, priority).
  2. Export each result as newline-delimited JSON (bq extract --destination_format
     NEWLINE_DELIMITED_JSON ...) into one directory as instance_events.json,
     machine_events.json and collection_events.json (or folders of such parts).
  3. Run: schedbench trace convert google2019:DIR --out native-dir
See https://github.com/google/cluster-data/blob/master/ClusterData2019.md for access details."""

KNOWN = ("openb", "google2011", "alibaba2018", "google2019")


class FetchError(InputError):
    """A download that failed (network, HTTP status, bad archive)."""


@dataclass(frozen=True)
class Item:
    url: str
    target: str          # path relative to the destination directory
    extract: bool = False


def parse_parts(text: str) -> list[int]:
    """``"0-4,7"`` -> [0, 1, 2, 3, 4, 7]; ``"all"`` -> every part."""
    if text == "all":
        return list(range(GOOGLE2011_PARTS))
    parts: list[int] = []
    try:
        for piece in text.split(","):
            lo, dash, hi = piece.strip().partition("-")
            a = int(lo)
            b = int(hi) if dash else a
            if not 0 <= a <= b < GOOGLE2011_PARTS:
                raise ValueError
            parts.extend(range(a, b + 1))
    except ValueError:
        raise InputError(f"bad part list {text!r}: use e.g. 0-4,7 or all (parts 0.."
                         f"{GOOGLE2011_PARTS - 1})", field="--parts") from None
    return sorted(set(parts))


def plan(name: str, *, parts: str = "0-1", files: list[str] | None = None) -> list[Item]:
    """The files ``fetch`` would download for ``name``."""
    if name not in KNOWN:
        raise InputError(f"unknown trace {name!r}; known: {', '.join(KNOWN)}", field="NAME")
    base = BASE_URLS.get(name, "")
    if name == "openb":
        chosen = files or list(OPENB_FILES)
        unknown = [f for f in chosen if f not in OPENB_FILES]
        if unknown:
            raise InputError(f"unknown openb file {unknown[0]!r}", field="--files")
        return [Item(base + f, f) for f in chosen]
    if name == "google2011":
        items = [Item(base + "machine_events/part-00000-of-00001.csv.gz",
                      "machine_events/part-00000-of-00001.csv.gz")]
        for p in parse_parts(parts):
            rel = f"task_events/part-{p:05d}-of-{GOOGLE2011_PARTS:05d}.csv.gz"
            items.append(Item(base + rel, rel))
        return items
    if name == "alibaba2018":
        chosen = files or list(ALIBABA2018_TABLES)
        unknown = [f for f in chosen if f not in ALIBABA2018_TABLES]
        if unknown:
            raise InputError(f"unknown alibaba2018 table {unknown[0]!r}; known: "
                             f"{', '.join(ALIBABA2018_TABLES)}", field="--files")
        return [Item(base + f"{t}.tar.gz", f"{t}.tar.gz", extract=True) for t in chosen]
    return []


def _download(url: str, target: Path, *, show_progress: bool | None, timeout: float) -> int:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    done = 0
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                resp = urllib.request.urlopen(url, timeout=timeout)
            except urllib.error.HTTPError as err:
                raise FetchError(f"download failed: HTTP {err.code} {err.reason}",
                                 file=url) from None
            except (urllib.error.URLError, OSError, ValueError) as err:
                reason = getattr(err, "reason", err)
                raise FetchError(f"download failed: {reason}", file=url) from None
            with resp:
                total = int(resp.headers.get("Content-Length") or 0)
                with Progress(total, f"{target.name}", enabled=show_progress) as bar:
                    while True:
                        try:
                            chunk = resp.read(1 << 20)
                        except (OSError, urllib.error.URLError) as err:
                            raise FetchError(f"download interrupted: {err}", file=url) from None
                        if not chunk:
                            break
                        out.write(chunk)
                        done += len(chunk)
                        bar.advance(len(chunk))
            if total and done != total:
                raise FetchError(f"download truncated: {done} of {total} bytes", file=url)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return done


def _extract(archive: Path, dest: Path) -> list[str]:
    """Extract a tarball's regular files into ``dest`` (no links, no paths outside it)."""
    names = []
    try:
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                if not member.isfile():
                    continue
                rel = Path(member.name)
                if rel.is_absolute() or ".." in rel.parts:
                    raise FetchError(f"unsafe path {member.name!r} in archive",
                                     file=str(archive))
                target = dest / rel.name
                src = tar.extractfile(member)
                fd, tmp = tempfile.mkstemp(dir=dest, prefix=f".{target.name}.", suffix=".part")
                try:
                    with os.fdopen(fd, "wb") as out, src:
                        shutil.copyfileobj(src, out, 1 << 20)
                    os.chmod(tmp, 0o666 & ~_umask())
                    os.replace(tmp, target)
                except BaseException:
                    Path(tmp).unlink(missing_ok=True)
                    raise
                names.append(target.name)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise FetchError(f"cannot extract archive: {err}", file=str(archive)) from None
    return names


def fetch(name: str, dest: str | Path, *, parts: str = "0-1", files: list[str] | None = None,
          force: bool = False, show_progress: bool | None = None, timeout: float = 60.0,
          log=None) -> list[Path]:
    """Download ``name`` into ``dest``; returns the files written or already present.
    ``google2019`` prints how to export it from BigQuery instead (nothing to download)."""
    log = log or (lambda msg: print(msg, file=sys.stderr))
    if name == "google2019":
        print(GOOGLE2019_HELP)
        return []
    items = plan(name, parts=parts, files=files)
    d = Path(dest)
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for item in items:
        target = d / item.target
        if target.exists() and not force:
            log(f"{target}: present, skipped")
        else:
            size = _download(item.url, target, show_progress=show_progress, timeout=timeout)
            log(f"{target}: {size:,} bytes")
        written.append(target)
        if item.extract:
            for extracted in _extract(target, d):
                written.append(d / extracted)
    return written
