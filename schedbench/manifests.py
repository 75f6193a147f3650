"""Read and write standard Kubernetes YAML manifests.

Accepts what ``kubectl apply -f`` accepts: files with several YAML documents, ``kind: List``
(and ``PodList``-style lists from ``kubectl get -o yaml``), JSON, and directories (every
``.yaml``, ``.yml`` and ``.json`` file below, in sorted order). Unknown kinds are skipped with a
:class:`~schedbench.model.codec.ManifestWarning`, never dropped silently. Written files are
replaced atomically (a temporary file renamed over the target).
"""

from __future__ import annotations

import io
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from .errors import InputError, ManifestError
from .model.codec import ManifestWarning, decode_object, encode_object
from .model.objects import DEFAULT_NAMESPACE, KINDS, KubeObject

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def manifest_files(path: str | Path) -> list[Path]:
    """The manifest files a path names: the file itself, or every manifest below a directory."""
    p = Path(path)
    if p.is_dir():
        return sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in MANIFEST_SUFFIXES)
    if not p.exists():
        raise InputError("no such file or directory", file=str(path))
    return [p]


def read_yaml_documents(path: str | Path) -> list[Any]:
    """Parse every YAML document of a file (``-`` is standard input); empty documents are
    dropped. A syntax error names the line and column."""
    name = str(path)
    try:
        text = sys.stdin.read() if name == "-" else Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read: {getattr(err, 'strerror', None) or err}",
                         file=name) from None
    try:
        return [d for d in yaml.load_all(text, Loader=_Loader) if d is not None]
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ManifestError(f"invalid YAML at {where}{err.problem or err.context}",
                            file=name) from None
    except yaml.YAMLError as err:
        raise ManifestError(f"invalid YAML: {err}", file=name) from None


def _object_label(doc: dict) -> str:
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) else "?"
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    name = meta.get("name") if isinstance(meta.get("name"), str) else "?"
    ns = meta.get("namespace") if isinstance(meta.get("namespace"), str) else None
    cls = KINDS.get(kind)
    if cls is not None and cls.NAMESPACED:
        return f"{kind}/{ns or DEFAULT_NAMESPACE}/{name}"
    return f"{kind}/{name}"


def object_from_dict(doc: Any, *, source: str = "<input>", where: str = "") -> KubeObject | None:
    """Decode one manifest document; None (with a warning) for a kind schedbench does not model.
    ``where`` locates the document inside a List (``items[3]``)."""
    if not isinstance(doc, dict):
        raise ManifestError("a manifest document must be a mapping", file=source,
                            field=where or None)
    label = _object_label(doc)
    for required in ("apiVersion", "kind"):
        if not isinstance(doc.get(required), str) or not doc.get(required):
            raise ManifestError("missing required field", file=source, obj=label,
                                field=f"{where}.{required}" if where else required)
    kind, api_version = doc["kind"], doc["apiVersion"]
    cls = KINDS.get(kind)
    if cls is None:
        warnings.warn(ManifestWarning(f"{source}: {label}: skipping kind {kind!r} "
                                      f"({api_version}): schedbench does not model it"))
        return None
    if api_version not in cls.API_VERSIONS:
        raise ManifestError(f"apiVersion {api_version!r} is not supported for {kind}; use "
                            f"{' or '.join(cls.API_VERSIONS)}", file=source, obj=label,
                            field="apiVersion")
    body = {k: v for k, v in doc.items() if k not in ("kind", "apiVersion")}
    if "api_version" in cls.__dataclass_fields__:
        body["apiVersion"] = api_version
    try:
        obj = decode_object(cls, body)
        _validate_name(obj)
    except InputError as err:
        raise err.located(file=source, obj=label) from None
    if cls.NAMESPACED and not obj.metadata.namespace:
        obj.metadata.namespace = DEFAULT_NAMESPACE
    if not cls.NAMESPACED:
        obj.metadata.namespace = ""
    return obj


def _validate_name(obj: KubeObject) -> None:
    name = obj.metadata.name
    if not name:
        raise ManifestError("missing required field (schedbench has no API server to "
                            "generate a name)", field="metadata.name")
    pattern, limit, what = ((_DNS_LABEL, 63, "a DNS-1123 label") if obj.KIND == "Namespace"
                            else (_DNS_SUBDOMAIN, 253, "a DNS-1123 subdomain"))
    if len(name) > limit or not pattern.match(name):
        raise ManifestError(f"invalid name {name!r}: must be {what} (lower case alphanumerics, "
                            f"'-'{', .' if limit == 253 else ''}; at most {limit} characters)",
                            field="metadata.name")
    ns = obj.metadata.namespace
    if obj.NAMESPACED and ns and (len(ns) > 63 or not _DNS_LABEL.match(ns)):
        raise ManifestError(f"invalid namespace {ns!r}: must be a DNS-1123 label",
                            field="metadata.namespace")


def _expand(doc: Any, source: str, where: str = "") -> Iterable[tuple[Any, str]]:
    if isinstance(doc, dict) and isinstance(doc.get("kind"), str) and doc["kind"].endswith("List") \
            and "items" in doc:
        items = doc["items"] or []
        if not isinstance(items, list):
            raise ManifestError("expected a list", file=source, obj=doc["kind"],
                                field=f"{where}items")
        for i, item in enumerate(items):
            yield from _expand(item, source, f"{where}items[{i}]")
    else:
        yield doc, where


def load_manifests(paths: str | Path | Iterable[str | Path]) -> list[KubeObject]:
    """Load every object from files and directories, in file order. Two objects of the same
    kind, namespace and name are an error naming both places."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    objects: list[KubeObject] = []
    seen: dict[tuple[str, str], str] = {}
    for path in paths:
        files = [Path("-")] if str(path) == "-" else manifest_files(path)
        for f in files:
            source = str(f)
            for doc in read_yaml_documents(f):
                for item, where in _expand(doc, source):
                    obj = object_from_dict(item, source=source, where=where)
                    if obj is None:
                        continue
                    ident = (obj.KIND, obj.key)
                    if ident in seen:
                        raise ManifestError(f"duplicate object (first defined in {seen[ident]})",
                                            file=source, obj=obj.ref)
                    seen[ident] = source
                    objects.append(obj)
    return objects


def object_to_dict(obj: KubeObject) -> dict:
    """A manifest mapping for ``obj``: apiVersion, kind, then its fields, defaults left out."""
    body = encode_object(obj)
    api_version = body.pop("apiVersion", None) or obj.API_VERSIONS[0]
    return {"apiVersion": api_version, "kind": obj.KIND, **body}


def dumps_manifests(objects: Iterable[KubeObject]) -> str:
    """Objects as a multi-document YAML string."""
    buf = io.StringIO()
    yaml.dump_all([object_to_dict(o) for o in objects], buf, Dumper=_Dumper, sort_keys=False,
                  default_flow_style=False, explicit_start=True, allow_unicode=True, width=100)
    return buf.getvalue()


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same directory and a rename, so a
    reader never sees a half-written file and a crash leaves the old one intact."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def dump_manifests(objects: Iterable[KubeObject], path: str | Path) -> None:
    """Write objects as multi-document YAML, atomically; ``-`` writes to standard output."""
    text = dumps_manifests(objects)
    if str(path) == "-":
        sys.stdout.write(text)
    else:
        atomic_write_text(path, text)
