"""Kubernetes labels and selectors, with the exact semantics of the Kubernetes API machinery.

Three kinds of selector appear in scheduling input:

* **String selectors** (``kubectl -l``, ``labels.Parse``): :func:`parse_selector` returns a
  :class:`Selector`, an AND of :class:`Requirement` objects.
* **Structured label selectors** (``metav1.LabelSelector``: ``matchLabels`` /
  ``matchExpressions``, used by pod affinity, topology spread, PDBs):
  :func:`label_selector_from_dict` / :func:`label_selector_to_dict`.
* **Node selectors** (``v1.NodeSelector`` / ``NodeSelectorTerm`` in node affinity):
  :class:`NodeSelector`, :class:`NodeSelectorTerm`, :func:`node_selector_from_dict` and
  friends; plus :func:`node_selector_map_matches` for ``pod.spec.nodeSelector``.

Every invalid input raises :class:`~schedbench.errors.SelectorError` naming what is wrong and
where (a 1-based character position for selector strings, a field path such as
``matchExpressions[1].operator`` in ``err.field`` for structured selectors).

Behaviour follows Kubernetes, including its corner cases:

* ``x in ()`` and ``x notin ()`` are valid and mean the value set ``{""}``; ``x=`` means
  ``x`` equals the empty string; ``in``/``notin`` are keywords only where an operator is
  expected, so ``in in (in)`` is a valid requirement on the key ``in``.
* ``=``, ``==`` and ``in (v)`` are distinct operators that match identically; each prints back
  as written (``x=a``, ``x==a``, ``x in (a)``), so ``parse_selector(str(s)) == s``.
* Requirements are kept stably sorted by key (Kubernetes sorts them by key; for the small
  selectors met in practice its sort is stable). Two selectors are equal when they hold the
  same requirements in the same order, as ``reflect.DeepEqual`` would say in Go; selectors
  that only differ in the order of requirements *on the same key* compare unequal although
  they match the same label sets.
* Values are stored sorted and de-duplicated (``sets.String`` in the parser). Kubernetes keeps
  duplicates given in a ``LabelSelector``'s ``values`` list; that only changes ``String()``
  output, never matching.
* ``Gt``/``Lt`` compare label values parsed as base-10 int64 (Go ``strconv.ParseInt``: an
  optional sign, ASCII digits, no underscores); a missing or unparsable label never matches.
* In a node selector term, ``matchFields`` are ignored when the node name is empty (the
  scheduler only builds the field set for named nodes).

Deliberate choices where Kubernetes has no user-visible answer:

* ``str(Selector.nothing())`` is ``"<nothing>"`` (Kubernetes prints ``""``, the same as the
  match-everything selector). It is not valid selector syntax, so it cannot be parsed back.
* A NUL character in a selector string is rejected (Go's lexer treats it as an end of input
  at some places and silently skips it at others).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, NamedTuple

from schedbench.errors import SelectorError

__all__ = [
    "FieldRequirement",
    "NodeSelector",
    "NodeSelectorTerm",
    "Operator",
    "Requirement",
    "Selector",
    "SelectorError",
    "is_valid_label_key",
    "is_valid_label_value",
    "label_key_problems",
    "label_selector_from_dict",
    "label_selector_to_dict",
    "label_value_problems",
    "node_selector_from_dict",
    "node_selector_map_matches",
    "node_selector_term_from_dict",
    "node_selector_term_to_dict",
    "node_selector_to_dict",
    "parse_selector",
    "selector_from_set",
    "validate_label_key",
    "validate_label_value",
]

# --------------------------------------------------------------------------------------------
# Label key / value validation (IsQualifiedName, IsValidLabelValue)
# --------------------------------------------------------------------------------------------

LABEL_NAME_MAX_LENGTH = 63
LABEL_VALUE_MAX_LENGTH = 63
DNS1123_SUBDOMAIN_MAX_LENGTH = 253

_NAME_RE = re.compile(r"[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS1123_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_LABEL + r"(?:\." + _DNS1123_LABEL + r")*")
_INT_RE = re.compile(r"([+-]?)([0-9]+)")

_INT64_MIN = -(1 << 63)
_INT64_MAX = (1 << 63) - 1

_NAME_RULE = ("consist of letters, digits, '-', '_' and '.', and begin and end with a letter "
              "or digit")


def _q(text: str) -> str:
    """Quote a string for an error message (double quotes, control characters escaped)."""
    return json.dumps(text, ensure_ascii=False)


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _dns1123_subdomain_problems(value: str) -> list[str]:
    problems = []
    if len(value) > DNS1123_SUBDOMAIN_MAX_LENGTH:
        problems.append(f"must be no more than {DNS1123_SUBDOMAIN_MAX_LENGTH} characters "
                        f"(has {len(value)})")
    if not _DNS1123_SUBDOMAIN_RE.fullmatch(value):
        problems.append("must be a lowercase DNS-1123 subdomain: lowercase letters, digits, "
                        "'-' and '.', every dot-separated part beginning and ending with a "
                        "letter or digit (e.g. 'example.com')")
    return problems


def label_key_problems(key: str) -> list[str]:
    """What is wrong with ``key`` as a label key (Kubernetes ``IsQualifiedName``); empty when
    it is valid. A key is ``[prefix/]name``: the optional prefix a DNS-1123 subdomain of at
    most 253 characters, the name 1-63 characters of ``[-A-Za-z0-9_.]`` starting and ending
    with an alphanumeric character."""
    if not isinstance(key, str):
        return [f"must be a string, not {_type_name(key)}"]
    parts = key.split("/")
    if len(parts) > 2:
        return ["may contain at most one '/': an optional DNS subdomain prefix, '/', and a "
                "name (e.g. 'example.com/my-name')"]
    problems = []
    if len(parts) == 2:
        prefix, name = parts
        if not prefix:
            problems.append("prefix part (before '/') must not be empty")
        else:
            problems.extend("prefix part " + p for p in _dns1123_subdomain_problems(prefix))
    else:
        name = parts[0]
    if not name:
        problems.append("name part must not be empty")
    else:
        if len(name) > LABEL_NAME_MAX_LENGTH:
            problems.append(f"name part must be no more than {LABEL_NAME_MAX_LENGTH} "
                            f"characters (has {len(name)})")
        if not _NAME_RE.fullmatch(name):
            problems.append("name part must " + _NAME_RULE)
    return problems


def label_value_problems(value: str) -> list[str]:
    """What is wrong with ``value`` as a label value (Kubernetes ``IsValidLabelValue``); empty
    when valid. A value is empty or up to 63 characters of ``[-A-Za-z0-9_.]`` starting and
    ending with an alphanumeric character."""
    if not isinstance(value, str):
        return [f"must be a string, not {_type_name(value)}"]
    problems = []
    if len(value) > LABEL_VALUE_MAX_LENGTH:
        problems.append(f"must be no more than {LABEL_VALUE_MAX_LENGTH} characters "
                        f"(has {len(value)})")
    if value and not _NAME_RE.fullmatch(value):
        problems.append("must be empty or " + _NAME_RULE)
    return problems


def is_valid_label_key(key: str) -> bool:
    """True when ``key`` is a valid Kubernetes label key."""
    return not label_key_problems(key)


def is_valid_label_value(value: str) -> bool:
    """True when ``value`` is a valid Kubernetes label value (the empty string is valid)."""
    return not label_value_problems(value)


def validate_label_key(key: str) -> None:
    """Raise :class:`SelectorError` if ``key`` is not a valid label key."""
    problems = label_key_problems(key)
    if problems:
        shown = _q(key) if isinstance(key, str) else repr(key)
        raise SelectorError(f"invalid label key {shown}: {'; '.join(problems)}")


def validate_label_value(value: str) -> None:
    """Raise :class:`SelectorError` if ``value`` is not a valid label value."""
    problems = label_value_problems(value)
    if problems:
        shown = _q(value) if isinstance(value, str) else repr(value)
        raise SelectorError(f"invalid label value {shown}: {'; '.join(problems)}")


def _parse_int64(text: str) -> int | None:
    """Go ``strconv.ParseInt(text, 10, 64)``: the integer, or None when it fails."""
    m = _INT_RE.fullmatch(text)
    if m is None:
        return None
    digits = m.group(2).lstrip("0") or "0"
    if len(digits) > 19:  # |int64| < 10**19; also keeps int() away from huge strings
        return None
    number = int(digits)
    if m.group(1) == "-":
        number = -number
    if not _INT64_MIN <= number <= _INT64_MAX:
        return None
    return number


# --------------------------------------------------------------------------------------------
# Requirement
# --------------------------------------------------------------------------------------------


class Operator(StrEnum):
    """Selector operators; the values are those of Go's ``selection.Operator``."""

    IN = "in"
    NOT_IN = "notin"
    EQUALS = "="
    DOUBLE_EQUALS = "=="
    NOT_EQUALS = "!="
    EXISTS = "exists"
    DOES_NOT_EXIST = "!"
    GREATER_THAN = "gt"
    LESS_THAN = "lt"


_SET_OPS = frozenset({Operator.IN, Operator.NOT_IN})
_EXACT_OPS = frozenset({Operator.EQUALS, Operator.DOUBLE_EQUALS, Operator.NOT_EQUALS})
_UNARY_OPS = frozenset({Operator.EXISTS, Operator.DOES_NOT_EXIST})
_NUMERIC_OPS = frozenset({Operator.GREATER_THAN, Operator.LESS_THAN})
_POSITIVE_OPS = frozenset({Operator.IN, Operator.EQUALS, Operator.DOUBLE_EQUALS})
_NEGATIVE_OPS = frozenset({Operator.NOT_IN, Operator.NOT_EQUALS})

# Operator names in API objects (LabelSelectorRequirement / NodeSelectorRequirement).
_API_OP_TO_OP = {
    "In": Operator.IN,
    "NotIn": Operator.NOT_IN,
    "Exists": Operator.EXISTS,
    "DoesNotExist": Operator.DOES_NOT_EXIST,
    "Gt": Operator.GREATER_THAN,
    "Lt": Operator.LESS_THAN,
}
_OP_TO_API_OP = {op: name for name, op in _API_OP_TO_OP.items()}
_LABEL_SELECTOR_API_OPS = ("In", "NotIn", "Exists", "DoesNotExist")
_NODE_SELECTOR_API_OPS = ("In", "NotIn", "Exists", "DoesNotExist", "Gt", "Lt")


def _requirement_problems(key: str, op: Operator, values: tuple[str, ...],
                          op_name: str | None = None) -> list[tuple[str, str]]:
    """Problems with a requirement as ``(relative field, message)`` pairs, in the order
    Kubernetes' ``NewRequirement`` checks them. ``op_name`` is how messages name the
    operator (default: its selector syntax, e.g. ``'notin'``)."""
    if op_name is None:
        op_name = {Operator.EXISTS: "exists", Operator.GREATER_THAN: "'>'",
                   Operator.LESS_THAN: "'<'"}.get(op, repr(op.value))
    problems: list[tuple[str, str]] = []
    key_problems = label_key_problems(key)
    if key_problems:
        shown = _q(key) if isinstance(key, str) else repr(key)
        problems.append(("key", f"invalid label key {shown}: {'; '.join(key_problems)}"))
    if op in _SET_OPS:
        if not values:
            problems.append(("values", f"must not be empty for operator {op_name}"))
    elif op in _EXACT_OPS:
        if len(values) != 1:
            problems.append(("values", f"must hold exactly one value for operator {op_name} "
                                       f"(has {len(values)})"))
    elif op in _UNARY_OPS:
        if values:
            problems.append(("values", f"must be empty for operator {op_name} "
                                       f"(has {len(values)})"))
    else:  # Gt / Lt
        if len(values) != 1:
            problems.append(("values", f"must hold exactly one value for operator {op_name} "
                                       f"(has {len(values)})"))
        for i, v in enumerate(values):
            if isinstance(v, str) and _parse_int64(v) is None:
                problems.append((f"values[{i}]", f"value {_q(v)} must be a base-10 64-bit "
                                                 f"integer for operator {op_name}"))
    for i, v in enumerate(values):
        value_problems = label_value_problems(v)
        if value_problems:
            shown = _q(v) if isinstance(v, str) else repr(v)
            problems.append((f"values[{i}]",
                             f"invalid label value {shown}: {'; '.join(value_problems)}"))
    return problems


@dataclass(frozen=True, slots=True)
class Requirement:
    """One selector requirement: ``key``, ``operator`` and ``values``.

    Construction validates like Kubernetes' ``NewRequirement`` (valid key and values; In and
    NotIn need at least one value, ``=``/``==``/``!=`` exactly one, Exists/DoesNotExist none,
    Gt/Lt exactly one base-10 int64) and raises :class:`SelectorError` otherwise. ``values``
    is stored sorted and de-duplicated. ``operator`` may be given as an :class:`Operator` or
    its string value (``"in"``, ``"="``, ``"gt"``, ...).
    """

    key: str
    operator: Operator
    values: tuple[str, ...] = ()
    _value_set: frozenset[str] = field(init=False, repr=False, compare=False, hash=False)
    _bound: int | None = field(init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        try:
            op = Operator(self.operator)
        except ValueError:
            valid = ", ".join(repr(o.value) for o in Operator)
            raise SelectorError(f"unknown selector operator {self.operator!r} "
                                f"(valid: {valid})") from None
        if isinstance(self.values, str) or not isinstance(self.values, Iterable):
            raise SelectorError(f"requirement values must be a sequence of strings, not "
                                f"{_type_name(self.values)}")
        values = tuple(self.values)
        problems = _requirement_problems(self.key, op, values)
        if problems:
            raise SelectorError(f"invalid requirement on key {self.key!r}: "
                                + "; ".join(f"{where}: {msg}" for where, msg in problems))
        values = tuple(sorted(set(values)))
        object.__setattr__(self, "operator", op)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "_value_set", frozenset(values))
        object.__setattr__(self, "_bound",
                           _parse_int64(values[0]) if op in _NUMERIC_OPS else None)

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy this requirement (Kubernetes ``Requirement.Matches``)."""
        op = self.operator
        present = self.key in labels
        if op in _POSITIVE_OPS:
            return present and labels[self.key] in self._value_set
        if op in _NEGATIVE_OPS:
            return not present or labels[self.key] not in self._value_set
        if op is Operator.EXISTS:
            return present
        if op is Operator.DOES_NOT_EXIST:
            return not present
        if not present:
            return False
        number = _parse_int64(labels[self.key])
        if number is None:
            return False
        if op is Operator.GREATER_THAN:
            return number > self._bound  # type: ignore[operator]
        return number < self._bound  # type: ignore[operator]

    def __str__(self) -> str:
        op = self.operator
        if op is Operator.EXISTS:
            return self.key
        if op is Operator.DOES_NOT_EXIST:
            return "!" + self.key
        if op is Operator.IN:
            return f"{self.key} in ({','.join(self.values)})"
        if op is Operator.NOT_IN:
            return f"{self.key} notin ({','.join(self.values)})"
        symbol = {Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}.get(op, op.value)
        return f"{self.key}{symbol}{self.values[0]}"


# --------------------------------------------------------------------------------------------
# Selector
# --------------------------------------------------------------------------------------------


class Selector:
    """An immutable, hashable label selector: the AND of its requirements.

    Build one with :func:`parse_selector`, :func:`label_selector_from_dict`,
    :func:`selector_from_set`, ``Selector(requirements)``, :meth:`everything` or
    :meth:`nothing`. Requirements are kept stably sorted by key.
    """

    __slots__ = ("_requirements", "_nothing", "_hash")

    _EVERYTHING: Selector
    _NOTHING: Selector

    def __init__(self, requirements: Iterable[Requirement] = ()) -> None:
        reqs = list(requirements)
        for r in reqs:
            if not isinstance(r, Requirement):
                raise SelectorError(f"a selector holds Requirement objects, not "
                                    f"{_type_name(r)}")
        reqs.sort(key=lambda r: r.key)  # list.sort is stable
        self._requirements: tuple[Requirement, ...] = tuple(reqs)
        self._nothing = False
        self._hash: int | None = None

    @classmethod
    def everything(cls) -> Selector:
        """The selector that matches every label set (no requirements)."""
        return cls._EVERYTHING

    @classmethod
    def nothing(cls) -> Selector:
        """The selector that matches no label set (Kubernetes ``labels.Nothing()``, what a
        ``null`` LabelSelector means). ``str()`` gives ``"<nothing>"``."""
        return cls._NOTHING

    @property
    def requirements(self) -> tuple[Requirement, ...]:
        """The requirements, sorted by key (empty for both everything and nothing)."""
        return self._requirements

    @property
    def empty(self) -> bool:
        """True when the selector does not restrict anything (matches every label set)."""
        return not self._nothing and not self._requirements

    @property
    def is_nothing(self) -> bool:
        """True for :meth:`nothing`."""
        return self._nothing

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether ``labels`` satisfy every requirement."""
        if self._nothing:
            return False
        for r in self._requirements:
            if not r.matches(labels):
                return False
        return True

    def add(self, *requirements: Requirement) -> Selector:
        """A new selector with ``requirements`` added (nothing stays nothing)."""
        if self._nothing:
            return self
        return Selector(self._requirements + tuple(requirements))

    def requires_exact_match(self, key: str) -> str | None:
        """The single value the selector requires for ``key``, if its first requirement on
        ``key`` is ``=``, ``==`` or ``in`` with one value; None otherwise."""
        for r in self._requirements:
            if r.key == key:
                if r.operator in _POSITIVE_OPS and len(r.values) == 1:
                    return r.values[0]
                return None
        return None

    def __str__(self) -> str:
        if self._nothing:
            return "<nothing>"
        return ",".join(str(r) for r in self._requirements)

    def __repr__(self) -> str:
        if self._nothing:
            return "Selector.nothing()"
        return f"parse_selector({str(self)!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Selector):
            return NotImplemented
        return (self._nothing == other._nothing
                and self._requirements == other._requirements)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash((self._nothing, self._requirements))
        return self._hash


Selector._EVERYTHING = Selector()
Selector._NOTHING = Selector()
Selector._NOTHING._nothing = True


def selector_from_set(labels: Mapping[str, str]) -> Selector:
    """The selector requiring ``key=value`` for every item (``labels.SelectorFromSet``,
    validated); an empty mapping gives the match-everything selector."""
    return Selector(Requirement(k, Operator.EQUALS, (v,)) for k, v in labels.items())


# --------------------------------------------------------------------------------------------
# String selector parser (labels.Parse)
# --------------------------------------------------------------------------------------------

_WHITESPACE = frozenset(" \t\r\n")
_SPECIAL = frozenset("=!(),><")

_IDENT = "identifier"
_EOS = "end"
_KEYWORDS = {"in": "in", "notin": "notin"}
_OPERATOR_TOKENS = {
    "in": Operator.IN,
    "notin": Operator.NOT_IN,
    "=": Operator.EQUALS,
    "==": Operator.DOUBLE_EQUALS,
    "!=": Operator.NOT_EQUALS,
    ">": Operator.GREATER_THAN,
    "<": Operator.LESS_THAN,
}


class _Token(NamedTuple):
    kind: str   # _IDENT, _EOS, "in", "notin", or the symbol itself ("=", "==", "(", ...)
    text: str
    pos: int    # 0-based index into the selector string


class _SelectorParser:
    """Recursive-descent parser with the token rules of Kubernetes' selector lexer."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._lex()
        self.index = 0

    # ---- errors ----

    def _error(self, detail: str, pos: int, why: str = "") -> SelectorError:
        """``detail`` happens at 0-based ``pos``; ``why`` optionally explains it."""
        message = f"invalid selector {_q(self.text)}: {detail} at position {pos + 1}"
        return SelectorError(f"{message}: {why}" if why else message)

    def _unexpected(self, token: _Token, expected: str) -> SelectorError:
        found = "end of string" if token.kind == _EOS else _q(token.text)
        return self._error(f"expected {expected} but found {found}", token.pos)

    # ---- lexer ----

    def _lex(self) -> list[_Token]:
        text, n, i = self.text, len(self.text), 0
        tokens: list[_Token] = []
        while True:
            while i < n and text[i] in _WHITESPACE:
                i += 1
            if i >= n:
                tokens.append(_Token(_EOS, "", n))
                return tokens
            ch = text[i]
            if ch == "\0":
                raise self._error("NUL character", i)
            if ch in _SPECIAL:
                # "==" and "!=" are the only two-character symbols; every other special
                # character is a token on its own ("<=" is "<" then "=").
                if ch in "=!" and i + 1 < n and text[i + 1] == "=":
                    tokens.append(_Token(ch + "=", ch + "=", i))
                    i += 2
                else:
                    tokens.append(_Token(ch, ch, i))
                    i += 1
                continue
            start = i
            while i < n and text[i] not in _WHITESPACE and text[i] not in _SPECIAL:
                if text[i] == "\0":
                    raise self._error("NUL character", i)
                i += 1
            word = text[start:i]
            tokens.append(_Token(_KEYWORDS.get(word, _IDENT), word, start))

    # ---- token access; in a "values" context the keywords in/notin are identifiers ----

    def _peek(self, values: bool = True) -> _Token:
        tok = self.tokens[self.index]
        if values and tok.kind in _KEYWORDS:
            return tok._replace(kind=_IDENT)
        return tok

    def _next(self, values: bool = True) -> _Token:
        tok = self._peek(values)
        self.index += 1
        return tok

    # ---- grammar ----

    def parse(self) -> Selector:
        requirements: list[Requirement] = []
        while True:
            tok = self._peek()
            if tok.kind == _EOS:
                break
            if tok.kind not in (_IDENT, "!"):
                raise self._unexpected(tok, 'a label key or "!"')
            requirements.append(self._requirement())
            after = self._next()
            if after.kind == _EOS:
                break
            if after.kind != ",":
                raise self._unexpected(after, '"," or end of string')
            following = self._peek()
            if following.kind not in (_IDENT, "!"):
                raise self._unexpected(following, 'a label key or "!" after ","')
        return Selector(requirements)

    def _requirement(self) -> Requirement:
        tok = self._next()
        op: Operator | None = None
        if tok.kind == "!":
            op = Operator.DOES_NOT_EXIST
            tok = self._next()
        if tok.kind != _IDENT:
            raise self._unexpected(tok, "a label key")
        key = tok.text
        key_problems = label_key_problems(key)
        if key_problems:
            raise self._error(f"invalid label key {_q(key)}", tok.pos, "; ".join(key_problems))
        if self._peek().kind in (_EOS, ","):
            if op is None:
                op = Operator.EXISTS
        if op is not None:
            # "!key" followed by anything but "," or the end is reported by the caller.
            return Requirement(key, op, ())
        op_tok = self._next(values=False)
        op = _OPERATOR_TOKENS.get(op_tok.kind)
        if op is None:
            raise self._unexpected(op_tok, 'an operator ("=", "==", "!=", "in", "notin", '
                                           '">" or "<")')
        if op in _SET_OPS:
            values = self._value_set()
        else:
            values = [self._exact_value()]
        self._check_values(key, op, values)
        return Requirement(key, op, tuple(v for v, _ in values))

    def _value_set(self) -> list[tuple[str, int]]:
        """``( v1, v2, ... )`` with Kubernetes' treatment of empty entries: ``()`` and
        ``(,)`` are ``{""}``, ``(a,)`` is ``{a, ""}``, ``(a,,b)`` is ``{a, "", b}``."""
        tok = self._next()
        if tok.kind != "(":
            raise self._unexpected(tok, '"("')
        first = self._peek()
        if first.kind == ")":
            self._next()
            return [("", first.pos)]
        if first.kind not in (_IDENT, ","):
            raise self._unexpected(first, 'a value, "," or ")"')
        values: list[tuple[str, int]] = []
        while True:
            tok = self._next()
            if tok.kind == _IDENT:
                values.append((tok.text, tok.pos))
                after = self._peek()
                if after.kind == ")":
                    self._next()
                    return values
                if after.kind != ",":
                    raise self._unexpected(after, '"," or ")"')
            elif tok.kind == ",":
                if not values:
                    values.append(("", tok.pos))          # "(," starts with an empty value
                after = self._peek()
                if after.kind == ")":
                    self._next()
                    values.append(("", tok.pos))          # ",)" ends with an empty value
                    return values
                if after.kind == ",":
                    self._next()
                    values.append(("", after.pos))        # ",," holds an empty value
            else:
                raise self._unexpected(tok, 'a value or ","')

    def _exact_value(self) -> tuple[str, int]:
        tok = self._peek()
        if tok.kind in (_EOS, ","):
            return ("", tok.pos)
        self._next()
        if tok.kind != _IDENT:
            raise self._unexpected(tok, "a value")
        return (tok.text, tok.pos)

    def _check_values(self, key: str, op: Operator, values: list[tuple[str, int]]) -> None:
        for value, pos in values:
            if op in _NUMERIC_OPS and _parse_int64(value) is None:
                raise self._error(f"invalid value {_q(value)} for key {_q(key)}", pos,
                                  f"operator '{'>' if op is Operator.GREATER_THAN else '<'}' "
                                  "needs a base-10 64-bit integer")
            problems = label_value_problems(value)
            if problems:
                raise self._error(f"invalid label value {_q(value)} for key {_q(key)}", pos,
                                  "; ".join(problems))


def parse_selector(text: str) -> Selector:
    """Parse a label selector string as ``kubectl -l`` / Kubernetes ``labels.Parse`` do.

    Grammar: requirements separated by ``,`` (AND); each is ``key``, ``!key``,
    ``key=value``, ``key==value``, ``key!=value``, ``key in (v1,v2)``,
    ``key notin (v1,v2)``, ``key>N`` or ``key<N``. Whitespace (space, tab, CR, LF) may
    separate any two tokens. The empty string selects everything. Errors name the 1-based
    character position.
    """
    if not isinstance(text, str):
        raise SelectorError(f"a selector must be a string, not {_type_name(text)}")
    return _SelectorParser(text).parse()


# --------------------------------------------------------------------------------------------
# Structured selectors: metav1.LabelSelector
# --------------------------------------------------------------------------------------------


def _fail(message: str, field_path: str) -> SelectorError:
    return SelectorError(message, field=field_path)


def _check_fields(d: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for name in d:
        if name not in allowed:
            expected = ", ".join(allowed)
            shown = _q(name) if isinstance(name, str) else repr(name)
            raise _fail(f"unknown field {shown} (expected {expected})",
                        f"{where}.{name}" if where else str(name))


def _check_requirement_shape(d: Any, where: str) -> None:
    """A requirement mapping has only key, operator and values, with string key and operator."""
    if not isinstance(d, Mapping):
        raise _fail(f"must be a mapping with key, operator and values, not {_type_name(d)}",
                    where)
    _check_fields(d, ("key", "operator", "values"), where)
    for name in ("key", "operator"):
        if name not in d or d[name] is None:
            raise _fail("missing required field", f"{where}.{name}")
        if not isinstance(d[name], str):
            raise _fail(f"must be a string, not {_type_name(d[name])}", f"{where}.{name}")


def _requirement_from_api(d: Any, where: str, allowed_ops: tuple[str, ...]) -> Requirement:
    """A LabelSelectorRequirement / NodeSelectorRequirement mapping -> Requirement."""
    _check_requirement_shape(d, where)
    api_op = d["operator"]
    if api_op not in allowed_ops:
        raise _fail(f"unknown operator {_q(api_op)} (must be one of {', '.join(allowed_ops)})",
                    f"{where}.operator")
    raw_values = d.get("values")
    if raw_values is None:
        raw_values = []
    if not isinstance(raw_values, list | tuple):
        raise _fail(f"must be a list of strings, not {_type_name(raw_values)}",
                    f"{where}.values")
    for i, v in enumerate(raw_values):
        if not isinstance(v, str):
            raise _fail(f"must be a string, not {_type_name(v)} {v!r}",
                        f"{where}.values[{i}]")
    op = _API_OP_TO_OP[api_op]
    values = tuple(raw_values)
    problems = _requirement_problems(d["key"], op, values, api_op)
    if problems:
        rel, msg = problems[0]
        raise _fail(msg, f"{where}.{rel}")
    return Requirement(d["key"], op, values)


def label_selector_from_dict(d: Mapping[str, Any] | None, allow_gt_lt: bool = False
                             ) -> Selector:
    """A ``metav1.LabelSelector`` (``matchLabels`` / ``matchExpressions``) as a Selector,
    with the semantics of Kubernetes' ``LabelSelectorAsSelector``.

    ``None`` (a null selector) matches nothing; ``{}`` or empty ``matchLabels`` and
    ``matchExpressions`` match everything. Operators are In, NotIn (non-empty ``values``),
    Exists, DoesNotExist (no ``values``), and with ``allow_gt_lt`` also Gt and Lt (one integer
    value). Errors carry ``field`` relative to the selector, e.g.
    ``matchExpressions[1].operator``.
    """
    if d is None:
        return Selector.nothing()
    if not isinstance(d, Mapping):
        raise SelectorError(f"a label selector must be a mapping with matchLabels and/or "
                            f"matchExpressions, not {_type_name(d)}")
    _check_fields(d, ("matchLabels", "matchExpressions"), "")
    match_labels = d.get("matchLabels")
    if match_labels is None:
        match_labels = {}
    if not isinstance(match_labels, Mapping):
        raise _fail(f"must be a mapping of label keys to values, not "
                    f"{_type_name(match_labels)}", "matchLabels")
    expressions = d.get("matchExpressions")
    if expressions is None:
        expressions = []
    if not isinstance(expressions, list | tuple):
        raise _fail(f"must be a list of requirements, not {_type_name(expressions)}",
                    "matchExpressions")
    if not match_labels and not expressions:
        return Selector.everything()
    requirements: list[Requirement] = []
    for k, v in match_labels.items():
        if not isinstance(k, str):
            raise _fail(f"label key {k!r} must be a string, not {_type_name(k)}",
                        "matchLabels")
        key_problems = label_key_problems(k)
        if key_problems:
            raise _fail(f"invalid label key {_q(k)}: {'; '.join(key_problems)}",
                        "matchLabels")
        if not isinstance(v, str):
            raise _fail(f"must be a string, not {_type_name(v)} {v!r}", f"matchLabels[{k}]")
        value_problems = label_value_problems(v)
        if value_problems:
            raise _fail(f"invalid label value {_q(v)}: {'; '.join(value_problems)}",
                        f"matchLabels[{k}]")
        requirements.append(Requirement(k, Operator.EQUALS, (v,)))
    allowed = _NODE_SELECTOR_API_OPS if allow_gt_lt else _LABEL_SELECTOR_API_OPS
    for i, expr in enumerate(expressions):
        requirements.append(_requirement_from_api(expr, f"matchExpressions[{i}]", allowed))
    return Selector(requirements)


def _requirement_to_api(r: Requirement) -> dict[str, Any]:
    op = r.operator
    if op in (Operator.EQUALS, Operator.DOUBLE_EQUALS):
        api_op = "In"
    elif op is Operator.NOT_EQUALS:
        api_op = "NotIn"
    else:
        api_op = _OP_TO_API_OP[op]
    out: dict[str, Any] = {"key": r.key, "operator": api_op}
    if r.values:
        out["values"] = list(r.values)
    return out


def label_selector_to_dict(sel: Selector) -> dict[str, Any] | None:
    """A Selector as a ``metav1.LabelSelector`` mapping; the inverse of
    :func:`label_selector_from_dict` for selectors it built.

    ``=``/``==`` requirements go to ``matchLabels`` (a second one on the same key becomes an
    ``In`` expression), ``!=`` becomes ``NotIn``, the rest go to ``matchExpressions`` (Gt/Lt
    as ``Gt``/``Lt``, readable back with ``allow_gt_lt=True``). Selector.nothing() gives
    ``None``, the match-everything selector ``{}``.
    """
    if not isinstance(sel, Selector):
        raise SelectorError(f"expected a Selector, not {_type_name(sel)}")
    if sel.is_nothing:
        return None
    match_labels: dict[str, str] = {}
    expressions: list[dict[str, Any]] = []
    for r in sel.requirements:
        if (r.operator in (Operator.EQUALS, Operator.DOUBLE_EQUALS)
                and r.key not in match_labels):
            match_labels[r.key] = r.values[0]
        else:
            expressions.append(_requirement_to_api(r))
    out: dict[str, Any] = {}
    if match_labels:
        out["matchLabels"] = match_labels
    if expressions:
        out["matchExpressions"] = expressions
    return out


# --------------------------------------------------------------------------------------------
# Node selectors: v1.NodeSelector / NodeSelectorTerm
# --------------------------------------------------------------------------------------------

NODE_NAME_FIELD = "metadata.name"
_NODE_EXPRESSION_OPS = frozenset(_API_OP_TO_OP.values())


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    """A ``matchFields`` requirement of a node selector term: ``metadata.name`` In or NotIn
    exactly one node name (the only form Kubernetes' API validation accepts)."""

    key: str
    operator: Operator
    value: str

    def __post_init__(self) -> None:
        try:
            op = Operator(self.operator)
        except ValueError:
            op = None
        if op not in _SET_OPS:
            raise SelectorError(f"node field selector operator must be In or NotIn, not "
                                f"{self.operator!r}")
        if self.key != NODE_NAME_FIELD:
            raise SelectorError(f"node field selector key must be {NODE_NAME_FIELD!r}, not "
                                f"{self.key!r}")
        if not isinstance(self.value, str):
            raise SelectorError(f"node field selector value must be a string, not "
                                f"{_type_name(self.value)}")
        problems = _dns1123_subdomain_problems(self.value)
        if problems:
            raise SelectorError(f"invalid node name {_q(self.value)}: {'; '.join(problems)}")
        object.__setattr__(self, "operator", op)

    def matches(self, node_name: str) -> bool:
        if self.operator is Operator.IN:
            return node_name == self.value
        return node_name != self.value


@dataclass(frozen=True, slots=True)
class NodeSelectorTerm:
    """A node selector term: the AND of ``match_expressions`` (on node labels; operators In,
    NotIn, Exists, DoesNotExist, Gt, Lt) and ``match_fields`` (on the node name). A term with
    neither matches no node."""

    match_expressions: tuple[Requirement, ...] = ()
    match_fields: tuple[FieldRequirement, ...] = ()

    def __post_init__(self) -> None:
        exprs = tuple(self.match_expressions)
        fields = tuple(self.match_fields)
        for r in exprs:
            if not isinstance(r, Requirement):
                raise SelectorError(f"match_expressions holds Requirement objects, not "
                                    f"{_type_name(r)}")
            if r.operator not in _NODE_EXPRESSION_OPS:
                raise SelectorError(f"operator {r.operator.value!r} is not allowed in a node "
                                    "selector term (In, NotIn, Exists, DoesNotExist, Gt, Lt)")
        for f in fields:
            if not isinstance(f, FieldRequirement):
                raise SelectorError(f"match_fields holds FieldRequirement objects, not "
                                    f"{_type_name(f)}")
        object.__setattr__(self, "match_expressions", exprs)
        object.__setattr__(self, "match_fields", fields)

    @property
    def empty(self) -> bool:
        """True when the term has no expressions and no fields (and so matches nothing)."""
        return not self.match_expressions and not self.match_fields

    def matches(self, node_labels: Mapping[str, str], node_name: str = "") -> bool:
        """Whether a node with these labels and name satisfies the term. As in the
        scheduler, ``match_fields`` are not checked when ``node_name`` is empty."""
        if not self.match_expressions and not self.match_fields:
            return False
        for r in self.match_expressions:
            if not r.matches(node_labels):
                return False
        if node_name:
            for f in self.match_fields:
                if not f.matches(node_name):
                    return False
        return True


@dataclass(frozen=True, slots=True)
class NodeSelector:
    """A node selector: the OR of its terms. No terms (or only empty terms) match nothing."""

    terms: tuple[NodeSelectorTerm, ...] = ()

    def __post_init__(self) -> None:
        terms = tuple(self.terms)
        for t in terms:
            if not isinstance(t, NodeSelectorTerm):
                raise SelectorError(f"a node selector holds NodeSelectorTerm objects, not "
                                    f"{_type_name(t)}")
        object.__setattr__(self, "terms", terms)

    def matches(self, node_labels: Mapping[str, str], node_name: str = "") -> bool:
        """Whether any term matches the node."""
        for t in self.terms:
            if t.matches(node_labels, node_name):
                return True
        return False


def _field_requirement_from_api(d: Any, where: str) -> FieldRequirement:
    _check_requirement_shape(d, where)
    if d["operator"] not in ("In", "NotIn"):
        raise _fail(f"unknown operator {_q(d['operator'])} for a node field selector (must "
                    "be In or NotIn)", f"{where}.operator")
    if d["key"] != NODE_NAME_FIELD:
        raise _fail(f"unsupported field selector key {_q(d['key'])} (only "
                    f"{NODE_NAME_FIELD} is supported)", f"{where}.key")
    values = d.get("values")
    if values is None:
        values = []
    if not isinstance(values, list | tuple):
        raise _fail(f"must be a list of strings, not {_type_name(values)}", f"{where}.values")
    if len(values) != 1:
        raise _fail(f"must hold exactly one value for operator {d['operator']} in a node "
                    f"field selector (has {len(values)})", f"{where}.values")
    value = values[0]
    if not isinstance(value, str):
        raise _fail(f"must be a string, not {_type_name(value)} {value!r}",
                    f"{where}.values[0]")
    problems = _dns1123_subdomain_problems(value)
    if problems:
        raise _fail(f"invalid node name {_q(value)}: {'; '.join(problems)}",
                    f"{where}.values[0]")
    return FieldRequirement(NODE_NAME_FIELD, _API_OP_TO_OP[d["operator"]], value)


def node_selector_term_from_dict(d: Mapping[str, Any] | None) -> NodeSelectorTerm:
    """A ``v1.NodeSelectorTerm`` mapping (``matchExpressions``, ``matchFields``) as a
    NodeSelectorTerm. ``None`` or ``{}`` is the empty term (matches nothing). Errors carry
    ``field`` relative to the term, e.g. ``matchExpressions[0].values``."""
    if d is None:
        return NodeSelectorTerm()
    if not isinstance(d, Mapping):
        raise SelectorError(f"a node selector term must be a mapping with matchExpressions "
                            f"and/or matchFields, not {_type_name(d)}")
    _check_fields(d, ("matchExpressions", "matchFields"), "")
    parts: dict[str, list[Any]] = {}
    for name in ("matchExpressions", "matchFields"):
        items = d.get(name)
        if items is None:
            items = []
        if not isinstance(items, list | tuple):
            raise _fail(f"must be a list of requirements, not {_type_name(items)}", name)
        parts[name] = list(items)
    exprs = tuple(_requirement_from_api(e, f"matchExpressions[{i}]", _NODE_SELECTOR_API_OPS)
                  for i, e in enumerate(parts["matchExpressions"]))
    fields = tuple(_field_requirement_from_api(f, f"matchFields[{i}]")
                   for i, f in enumerate(parts["matchFields"]))
    return NodeSelectorTerm(exprs, fields)


def node_selector_term_to_dict(term: NodeSelectorTerm) -> dict[str, Any]:
    """The inverse of :func:`node_selector_term_from_dict`."""
    out: dict[str, Any] = {}
    if term.match_expressions:
        out["matchExpressions"] = [_requirement_to_api(r) for r in term.match_expressions]
    if term.match_fields:
        out["matchFields"] = [{"key": f.key, "operator": _OP_TO_API_OP[f.operator],
                               "values": [f.value]} for f in term.match_fields]
    return out


def node_selector_from_dict(d: Mapping[str, Any]) -> NodeSelector:
    """A ``v1.NodeSelector`` mapping (``nodeSelectorTerms``) as a NodeSelector.

    As in Kubernetes' API validation, ``nodeSelectorTerms`` must hold at least one term (an
    individual term may be empty; it then matches nothing). Errors carry ``field`` relative to
    the node selector, e.g. ``nodeSelectorTerms[0].matchExpressions[1].operator``.
    """
    if not isinstance(d, Mapping):
        raise SelectorError(f"a node selector must be a mapping with nodeSelectorTerms, not "
                            f"{_type_name(d)}")
    _check_fields(d, ("nodeSelectorTerms",), "")
    terms = d.get("nodeSelectorTerms")
    if terms is None:
        raise _fail("missing required field: a node selector needs at least one term",
                    "nodeSelectorTerms")
    if not isinstance(terms, list | tuple):
        raise _fail(f"must be a list of terms, not {_type_name(terms)}", "nodeSelectorTerms")
    if not terms:
        raise _fail("must hold at least one node selector term", "nodeSelectorTerms")
    parsed = []
    for i, t in enumerate(terms):
        try:
            parsed.append(node_selector_term_from_dict(t))
        except SelectorError as err:
            raise err.located(field=f"nodeSelectorTerms[{i}]")
    return NodeSelector(tuple(parsed))


def node_selector_to_dict(sel: NodeSelector) -> dict[str, Any]:
    """The inverse of :func:`node_selector_from_dict`."""
    return {"nodeSelectorTerms": [node_selector_term_to_dict(t) for t in sel.terms]}


def node_selector_map_matches(node_selector: Mapping[str, str] | None,
                              labels: Mapping[str, str]) -> bool:
    """``pod.spec.nodeSelector`` semantics: every ``key: value`` must be a node label with
    exactly that value; an empty or missing map matches every node."""
    if not node_selector:
        return True
    for k, v in node_selector.items():
        if k not in labels or labels[k] != v:
            return False
    return True
