"""Convert between Kubernetes manifest dictionaries (camelCase, as in YAML) and the
dataclasses of :mod:`schedbench.model.objects` (snake_case).

One generic, type-driven codec serves every object: it reads a dataclass's type hints and
field metadata, so an object class is declared once and is loadable, dumpable and validated.

- Field names: ``owner_references`` <-> ``ownerReferences`` by default; ``api_key(...)`` in
  field metadata overrides it.
- ``omitempty``: a field equal to its default is not written, as Kubernetes' own encoder does.
- Fields that schedbench does not model (``image``, ``volumes``, ...) are kept in the object's
  ``extra`` dict and written back unchanged, so a manifest survives load -> dump untouched.
  Classes that list the Kubernetes fields they know but do not model (``PASSTHROUGH``) warn
  about any other key: almost always a typo such as ``nodeSelecter``.
- Every error is a :class:`~schedbench.errors.ManifestError` naming the field path
  (``spec.containers[0].resources.requests.cpu``).
"""

from __future__ import annotations

import dataclasses
import functools
import types
import typing
import warnings
from collections.abc import Callable
from dataclasses import MISSING, dataclass, field
from typing import Any

from ..errors import InputError, ManifestError, join_field


class ManifestWarning(UserWarning):
    """A manifest problem that loses nothing but deserves attention (unknown kind, unknown
    field). The CLI prints these as one line each on stderr."""


@dataclass(frozen=True)
class Codec:
    """A custom conversion for one field: ``decode(value, path)`` and ``encode(value)``.

    ``decode`` raises :class:`InputError` with a ``field`` relative to the field it decodes
    (``cpu`` for a resource list, ``matchExpressions[1].operator`` for a selector) or none;
    the caller prefixes the field's own path. ``path`` is for messages only."""

    decode: Callable[[Any, str], Any]
    encode: Callable[[Any], Any]


def kfield(default: Any = MISSING, *, default_factory: Any = MISSING, key: str | None = None,
         codec: Codec | None = None, required: bool = False, omit_default: bool = True) -> Any:
    """Declare a dataclass field of a Kubernetes object.

    ``key``: the YAML name when it is not the camelCase of the Python name.
    ``codec``: a custom conversion (quantities, selectors, int-or-string).
    ``required``: loading fails when the key is absent (``missing required field``).
    ``omit_default``: leave the field out of dumps when it equals its default.
    """
    meta = {"key": key, "codec": codec, "required": required, "omit_default": omit_default}
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata=meta)
    if default is MISSING:
        default = None
    return field(default=default, metadata=meta)


def extra_field() -> Any:
    """The ``extra`` dict every object class ends with: unmodelled keys, kept verbatim."""
    return field(default_factory=dict, repr=False, metadata={"extra": True})


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True)
class _FieldPlan:
    name: str
    key: str
    tp: Any
    codec: Codec | None
    required: bool
    omit_default: bool
    default: Any
    default_factory: Any


@functools.cache
def _plan(cls: type) -> tuple[tuple[_FieldPlan, ...], str | None]:
    hints = typing.get_type_hints(cls)
    plans = []
    extra_name = None
    for f in dataclasses.fields(cls):
        if f.metadata.get("extra"):
            extra_name = f.name
            continue
        plans.append(_FieldPlan(
            name=f.name, key=f.metadata.get("key") or camel(f.name), tp=hints[f.name],
            codec=f.metadata.get("codec"), required=f.metadata.get("required", False),
            omit_default=f.metadata.get("omit_default", True), default=f.default,
            default_factory=f.default_factory))
    return tuple(plans), extra_name


def _type_name(tp: Any) -> str:
    if tp is str:
        return "a string"
    if tp is int:
        return "an integer"
    if tp is bool:
        return "a boolean"
    if tp is float:
        return "a number"
    origin = typing.get_origin(tp)
    if origin is list:
        return "a list"
    if origin is dict or dataclasses.is_dataclass(tp):
        return "a mapping"
    return str(tp)


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        return f"number {value!r}"
    if isinstance(value, str):
        return f"string {value!r}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def decode(tp: Any, value: Any, path: str) -> Any:
    """Decode ``value`` (parsed YAML) as type ``tp``; ``path`` names the field in errors."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        if len(args) == 1:
            return decode(args[0], value, path)
        for arg in args:  # int | str and the like: first type that accepts the value
            try:
                return decode(arg, value, path)
            except ManifestError:
                continue
        raise ManifestError(f"expected {' or '.join(_type_name(a) for a in args)}, "
                            f"got {_describe(value)}", field=path)
    if tp is Any:
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ManifestError(f"expected a string, got {_describe(value)}", field=path)
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ManifestError(f"expected a boolean, got {_describe(value)}", field=path)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ManifestError(f"expected an integer, got {_describe(value)}", field=path)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ManifestError(f"expected a number, got {_describe(value)}", field=path)
        return float(value)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if value is None:
            return []
        if not isinstance(value, list):
            raise ManifestError(f"expected a list, got {_describe(value)}", field=path)
        return [decode(item_tp, item, f"{path}[{i}]") for i, item in enumerate(value)]
    if origin is dict:
        key_tp, val_tp = typing.get_args(tp)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ManifestError(f"expected a mapping, got {_describe(value)}", field=path)
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise ManifestError(f"keys must be strings, got {_describe(k)}", field=path)
            out[k] = decode(val_tp, v, join_field(path, k))
        return out
    if dataclasses.is_dataclass(tp):
        return decode_object(tp, value, path)
    raise TypeError(f"codec cannot decode type {tp!r} at {path}")  # a bug in a class, not input


def decode_object(cls: type, data: Any, path: str = "") -> Any:
    """Build dataclass ``cls`` from a mapping, checking types and required fields."""
    if not isinstance(data, dict):
        raise ManifestError(f"expected a mapping, got {_describe(data)}", field=path or None)
    plans, extra_name = _plan(cls)
    kwargs: dict[str, Any] = {}
    known = set()
    for p in plans:
        known.add(p.key)
        fpath = join_field(path, p.key)
        if p.key not in data or data[p.key] is None:
            if p.required:
                raise ManifestError("missing required field", field=fpath)
            continue
        value = data[p.key]
        if p.codec is None:  # errors below already carry the full path
            kwargs[p.name] = decode(p.tp, value, fpath)
            continue
        try:  # a codec reports paths relative to its field
            kwargs[p.name] = p.codec.decode(value, fpath)
        except InputError as err:
            raise err.located(field=fpath) from None
    extra = {k: v for k, v in data.items() if k not in known}
    passthrough = getattr(cls, "PASSTHROUGH", None)
    if passthrough is not None:
        for k in extra:
            if k not in passthrough:
                warnings.warn(ManifestWarning(
                    f"{join_field(path, k)}: unknown field {k!r} (kept as is, ignored by "
                    f"schedbench; a typo?)"), stacklevel=2)
    if extra_name is not None:
        kwargs[extra_name] = extra
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if validate is not None:
        try:
            validate()
        except InputError as err:
            err.located(field=path)
            raise
    return obj


def encode(tp: Any, value: Any) -> Any:
    """Encode a Python value of type ``tp`` as plain YAML data."""
    if value is None:
        return None
    if dataclasses.is_dataclass(value):
        return encode_object(value)
    if isinstance(value, list):
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        return [encode(item_tp, v) for v in value]
    if isinstance(value, dict):
        args = typing.get_args(tp)
        val_tp = args[1] if len(args) == 2 else Any
        return {k: encode(val_tp, v) for k, v in value.items()}
    return value


def _is_default(p: _FieldPlan, value: Any) -> bool:
    if p.default_factory is not MISSING:
        return value == p.default_factory()
    return value == p.default and type(value) is type(p.default)


def encode_object(obj: Any) -> dict:
    """Dump a dataclass object as a camelCase mapping, leaving out defaults (omitempty)."""
    plans, extra_name = _plan(type(obj))
    out: dict[str, Any] = {}
    for p in plans:
        value = getattr(obj, p.name)
        if p.omit_default and not p.required and _is_default(p, value):
            continue
        out[p.key] = p.codec.encode(value) if p.codec else encode(p.tp, value)
    if extra_name is not None:
        for k, v in getattr(obj, extra_name).items():
            out.setdefault(k, v)
    return out
