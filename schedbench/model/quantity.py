"""Kubernetes resource quantities: parsing, rounding and canonical formatting.

The accepted text is the grammar of ``resource.Quantity`` in
``k8s.io/apimachinery/pkg/api/resource`` (quantity.go, suffix.go)::

    <quantity>        ::= <signedNumber><suffix>
    <signedNumber>    ::= <number> | <sign><number>
    <sign>            ::= "+" | "-"
    <number>          ::= <digits> | <digits>.<digits> | <digits>. | .<digits>
    <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI>
    <binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei
    <decimalSI>       ::= n | u | m | "" | k | M | G | T | P | E
    <decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>

How this module matches Kubernetes (apimachinery ``ParseQuantity``, ``Value``,
``MilliValue``):

* Suffixes are case sensitive (``1gi``, ``1K`` and ``1Kb`` are errors). ``n`` (1e-9) and ``u``
  (1e-6) are accepted because Kubernetes' suffix table has them, though its grammar comment
  omits them. ``1E`` is 10^18 (exa); ``1E3`` is an exponent.
* The exponent of ``e``/``E`` is an optionally signed integer (``1e1.5`` is an error); an
  exponent outside the int32 range is rejected, as in current Kubernetes.
* Digits are ASCII only; no whitespace anywhere (``ParseQuantity`` rejects ``" 1"``).
* Parsing rounds the value away from zero to a whole number of nano-units, as Kubernetes
  does (``3.001n`` is 4n, ``0.000000000001Ki`` is 2n). For every quantity with at most nine
  decimal places in base units (all realistic ones) the result is the exact decimal value.
* :func:`to_milli` and :func:`to_int` round up, like ``MilliValue()`` and ``Value()``.

Deliberately stricter than Kubernetes, so that typos are reported rather than read as zero:

* A number needs at least one digit: Kubernetes' scanner reads ``Gi``, ``e3``, ``m``, ``.``,
  ``+`` and ``-`` as 0; here they are errors.
* Leading/trailing whitespace is an error, as in ``ParseQuantity``; note that Kubernetes'
  JSON/YAML decoding trims it before parsing.
* Values above 2^63-1 base units are errors; Kubernetes silently caps binary-suffixed values
  there (``9Ei``) and lets larger decimal ones overflow later.
* Negative values are errors unless ``allow_negative=True`` (the API server rejects negative
  resource requests and limits in validation).

All arithmetic is exact (integers and :class:`fractions.Fraction`), never floating point.
"""

from __future__ import annotations

import json
import math
import re
from fractions import Fraction

from schedbench.errors import QuantityError

__all__ = [
    "MAX_INT64",
    "BINARY_SUFFIXES",
    "DECIMAL_SUFFIXES",
    "parse_quantity",
    "to_milli",
    "to_int",
    "resource_to_int",
    "format_quantity",
]

#: Largest value Kubernetes can hold in an int64 (base units, or thousandths for milli values).
MAX_INT64 = 2**63 - 1

#: Binary suffixes and their power of two.
BINARY_SUFFIXES: dict[str, int] = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}

#: Decimal SI suffixes and their power of ten.
DECIMAL_SUFFIXES: dict[str, int] = {
    "n": -9, "u": -6, "m": -3, "": 0, "k": 3, "M": 6, "G": 9, "T": 12, "P": 15, "E": 18,
}

_NANO = 10**9
_INT32_MAX = 2**31 - 1
_EXPECTED = "expected <number><suffix> such as 500m, 2, 1.5Gi"
_SUFFIX_LIST = "Ki, Mi, Gi, Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or e<exponent>"

# Sign, integer digits, optional "." and fraction digits, then everything else (the suffix).
_NUMBER_RE = re.compile(r"([+-]?)([0-9]*)(?:(\.)([0-9]*))?(.*)", re.DOTALL)
_EXPONENT_RE = re.compile(r"[eE]([+-]?)([0-9]+)")
# Python's int() refuses strings longer than this by default (sys.get_int_max_str_digits).
_INT_CHUNK = 4000
# Longest quantity text quoted whole in an error message.
_QUOTE_MAX = 80


def _quote(text: str) -> str:
    """Double-quote ``text`` for an error message, escaping quotes and control characters;
    very long text is shortened with "..." so that messages stay one readable line."""
    if len(text) > _QUOTE_MAX:
        return json.dumps(text[:_QUOTE_MAX - 3], ensure_ascii=False)[:-1] + '..."'
    return json.dumps(text, ensure_ascii=False)


def _digits_to_int(digits: str) -> int:
    """Convert a string of ASCII digits of any length to an int."""
    if len(digits) <= _INT_CHUNK:
        return int(digits) if digits else 0
    value = 0
    for start in range(0, len(digits), _INT_CHUNK):
        chunk = digits[start:start + _INT_CHUNK]
        value = value * 10 ** len(chunk) + int(chunk)
    return value


def _invalid(shown: str, why: str = _EXPECTED) -> QuantityError:
    return QuantityError(f"invalid quantity {shown}: {why}")


def _suffix_error(shown: str, suffix: str) -> QuantityError:
    """Explain a bad suffix: unknown letters, wrong case, or a malformed exponent."""
    if suffix[:1] in ("e", "E") and suffix[1:2] in ("+", "-", "", *"0123456789"):
        return _invalid(shown, f"exponent {_quote(suffix)} must be e or E followed by an "
                               "optionally signed integer, such as 1e3 or 5E-3")
    if suffix.isascii() and suffix.isalpha():
        hint = ""
        for known in (*BINARY_SUFFIXES, *DECIMAL_SUFFIXES):
            if known and known.lower() == suffix.lower():
                hint = f" (suffixes are case sensitive: did you mean {_quote(known)}?)"
                break
        return _invalid(shown, f"unknown suffix {_quote(suffix)}; expected one of "
                               f"{_SUFFIX_LIST}{hint}")
    return _invalid(shown)


def _nanos_from_text(text: str, shown: str, allow_negative: bool) -> int:
    """Parse quantity text to a signed whole number of nano-units, rounded away from zero."""
    if text == "":
        raise _invalid('""', "empty string; " + _EXPECTED)
    if text != text.strip():
        raise _invalid(shown, "leading or trailing whitespace is not allowed")
    match = _NUMBER_RE.fullmatch(text)
    assert match is not None  # every group may be empty, so the pattern always matches
    sign, int_digits, _dot, frac_digits, suffix = match.groups()
    if not int_digits and not frac_digits:
        # "Gi", "e3", ".", "-", "--1", "abc": no digits in the number.
        raise _invalid(shown)
    frac_digits = frac_digits or ""

    # The suffix gives a power of two (binary) and a power of ten (decimal or exponent).
    pow2 = pow10 = 0
    if suffix in BINARY_SUFFIXES:
        pow2 = BINARY_SUFFIXES[suffix]
    elif suffix in DECIMAL_SUFFIXES:
        pow10 = DECIMAL_SUFFIXES[suffix]
    else:
        exp_match = _EXPONENT_RE.fullmatch(suffix)
        if exp_match is None:
            raise _suffix_error(shown, suffix)
        exp_sign, exp_digits = exp_match.groups()
        exp_digits = exp_digits.lstrip("0") or "0"
        if len(exp_digits) > 10 or int(exp_digits) > _INT32_MAX:
            raise _invalid(shown, f"exponent {_quote(suffix)} is out of range "
                                  f"(at most {_INT32_MAX} in magnitude)")
        pow10 = -int(exp_digits) if exp_sign == "-" else int(exp_digits)

    # value = digits * 10**e10 * 2**pow2, with no leading or trailing zeros in digits.
    digits = (int_digits + frac_digits).lstrip("0")
    e10 = pow10 - len(frac_digits)
    stripped = digits.rstrip("0")
    e10 += len(digits) - len(stripped)
    digits = stripped
    if not digits:
        return 0  # "-0" is zero, not negative
    negative = sign == "-"
    if negative and not allow_negative:
        raise _negative(text)

    # Shortcuts that keep huge exponents from building huge integers. The leading digit is
    # worth 10**lead; 2**60 < 10**19.
    lead = len(digits) - 1 + e10
    if lead >= 19:  # value >= 10**19 > 2**63-1
        raise _too_large(shown)
    if lead <= -29:  # value < 10**-28 * 2**60 < 10**-9: rounds up to one nano-unit
        return -1 if negative else 1

    mantissa = _digits_to_int(digits) << pow2
    shift = e10 + 9  # nanos = mantissa * 10**shift
    if shift >= 0:
        nanos = mantissa * 10**shift
    else:
        nanos = -(-mantissa // 10**-shift)  # ceiling: round away from zero
    if nanos > MAX_INT64 * _NANO:
        raise _too_large(shown)
    return -nanos if negative else nanos


def _too_large(shown: str) -> QuantityError:
    return QuantityError(f"quantity {shown} is too large: its magnitude exceeds 2^63-1 "
                         f"({MAX_INT64}) base units")


def parse_quantity(text: str | int | float, *, allow_negative: bool = False) -> Fraction:
    """Parse a Kubernetes quantity (``"500m"``, ``"1.5Gi"``, ``"129e6"``, ``2``, ``0.5``)
    to its exact value in base units (cores, bytes, ...).

    ``int`` and ``float`` values (YAML ``cpu: 2`` / ``cpu: 0.5``) are accepted; a float is
    read through its ``repr`` so ``0.1`` is exactly 1/10. ``bool`` and other types are errors.
    The value is rounded away from zero to a whole number of nano-units, as Kubernetes does.

    Raises :class:`~schedbench.errors.QuantityError` for malformed text, a negative value
    (unless ``allow_negative``), or a magnitude above 2^63-1 base units.
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        shown = repr(text)
        shown = shown if len(shown) <= _QUOTE_MAX else shown[:_QUOTE_MAX - 3] + "..."
        raise QuantityError(f"invalid quantity {shown}: expected a string or a number, "
                            f"not {type(text).__name__}")
    if isinstance(text, int):
        if text < 0 and not allow_negative:
            raise _negative(str(text) if text.bit_length() < 1000 else "-<huge integer>")
        if abs(text) > MAX_INT64:
            raise _too_large(str(text) if text.bit_length() < 1000 else "<huge integer>")
        return Fraction(text)
    if isinstance(text, float):
        text = repr(text)  # shortest round-tripping decimal: 0.1 -> "0.1", 1e20 -> "1e+20"
        if not math.isfinite(float(text)):
            raise _invalid(_quote(text), "not a finite number")
    return Fraction(_nanos_from_text(text, _quote(text), allow_negative), _NANO)


def _negative(text: str) -> QuantityError:
    return QuantityError(f"negative quantity {_quote(text)}: resource quantities must be >= 0")


def _shown(text: object) -> str:
    return _quote(text) if isinstance(text, str) else repr(text)


def to_milli(text: str | int | float) -> int:
    """Value times 1000, rounded up: Kubernetes ``MilliValue()`` (``"0.1m"`` -> 1,
    ``"1.0001m"`` -> 2, ``"1.5"`` -> 1500). Errors as :func:`parse_quantity`, and when the
    result exceeds 2^63-1."""
    milli = math.ceil(parse_quantity(text) * 1000)
    if milli > MAX_INT64:
        raise QuantityError(f"quantity {_shown(text)} is too large: {milli} thousandths "
                            f"exceed 2^63-1 ({MAX_INT64})")
    return milli


def to_int(text: str | int | float) -> int:
    """Value rounded up to an integer: Kubernetes ``Value()`` (``"0.5"`` -> 1,
    ``"1.5Gi"`` -> 1610612736, ``"100m"`` -> 1). Errors as :func:`parse_quantity`."""
    return math.ceil(parse_quantity(text))  # parse_quantity already caps at 2^63-1


def _is_cpu(resource_name: str) -> bool:
    return resource_name == "cpu"


def resource_to_int(resource_name: str, text: str | int | float) -> int:
    """The integer kube-scheduler keeps for a resource: millicores for ``cpu``
    (``MilliValue``), base units (``Value``) for everything else: memory,
    ephemeral-storage, pods, hugepages-*, extended resources such as ``nvidia.com/gpu``."""
    return to_milli(text) if _is_cpu(resource_name) else to_int(text)


def format_quantity(value: int, resource_name: str) -> str:
    """Canonical text for an integer as kept by :func:`resource_to_int`; parses back to the
    same integer.

    ``cpu`` (``value`` in millicores): whole cores as a plain integer (``"2"``), otherwise
    ``"<n>m"`` (``"500m"``, ``"1500m"``). Other resources (base units): the largest binary
    suffix that divides exactly (``"1Gi"``, ``"123Mi"``), unless the largest decimal suffix
    that divides exactly gives shorter text (``"1T"``, not ``"976562500Ki"``; ``"129M"``,
    ``"1k"``); with neither, the plain integer (``"128974849"``). Zero is ``"0"``.
    """
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"format_quantity needs an int, not {type(value).__name__}")
    if value < 0:
        raise QuantityError(f"negative quantity {value}: resource quantities must be >= 0")
    if value > MAX_INT64:
        raise QuantityError(f"quantity {value} is too large: exceeds 2^63-1 ({MAX_INT64})")
    if value == 0:
        return "0"
    if _is_cpu(resource_name):
        cores, milli = divmod(value, 1000)
        return str(cores) if milli == 0 else f"{value}m"
    binary = decimal = None
    for suffix, power in sorted(BINARY_SUFFIXES.items(), key=lambda kv: -kv[1]):
        if value % (1 << power) == 0:
            binary = f"{value >> power}{suffix}"
            break
    for suffix, power in sorted(DECIMAL_SUFFIXES.items(), key=lambda kv: -kv[1]):
        if power > 0 and value % 10**power == 0:
            decimal = f"{value // 10**power}{suffix}"
            break
    if binary is not None and (decimal is None or len(binary) <= len(decimal)):
        return binary
    return decimal if decimal is not None else str(value)
