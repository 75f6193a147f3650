"""Tests of schedbench.model.quantity against Kubernetes' resource.Quantity behaviour.

Expected values marked "k8s" are taken from the cases in apimachinery's quantity_test.go
(ParseQuantity, String, invalid inputs); the others follow from the grammar and from
``Value()``/``MilliValue()`` rounding up.
"""

from __future__ import annotations

import math
import re
import time
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from schedbench.errors import InputError, QuantityError
from schedbench.model.quantity import (
    MAX_INT64,
    format_quantity,
    parse_quantity,
    resource_to_int,
    to_int,
    to_milli,
)

KI, MI, GI, TI, PI, EI = (1024**k for k in range(1, 7))
N = Fraction(1, 10**9)  # one nano-unit

# Independent tables for the reference evaluator (not imported from the module under test).
REF_MULTIPLIER = {
    "": Fraction(1),
    "n": Fraction(1, 1_000_000_000), "u": Fraction(1, 1_000_000), "m": Fraction(1, 1000),
    "k": Fraction(1000), "M": Fraction(1_000_000), "G": Fraction(1_000_000_000),
    "T": Fraction(10**12), "P": Fraction(10**15), "E": Fraction(10**18),
    "Ki": Fraction(1024), "Mi": Fraction(1024**2), "Gi": Fraction(1024**3),
    "Ti": Fraction(1024**4), "Pi": Fraction(1024**5), "Ei": Fraction(1024**6),
}
# Grammar of a valid quantity text, written independently of the module's scanner.
REF_GRAMMAR = re.compile(
    r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
    r"(?:Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E|[eE][+-]?[0-9]+)?"
)


def nano_ceil(value: Fraction) -> Fraction:
    """Kubernetes keeps quantities in whole nano-units, rounding away from zero."""
    sign = -1 if value < 0 else 1
    return sign * Fraction(math.ceil(abs(value) * 10**9), 10**9)


# --------------------------------------------------------------------------- parsing


@pytest.mark.parametrize("text, expected", [
    # examples from the brief
    ("500m", Fraction(1, 2)),
    ("2", Fraction(2)),
    ("1.5", Fraction(3, 2)),
    ("1Gi", Fraction(GI)),
    ("128974848", Fraction(128974848)),
    ("129e6", Fraction(129_000_000)),
    ("123Mi", Fraction(128974848)),
    ("1k", Fraction(1000)),
    ("1M", Fraction(1_000_000)),
    ("1Ei", Fraction(EI)),
    ("0.1m", Fraction(1, 10_000)),
    (".5", Fraction(1, 2)),
    ("5.", Fraction(5)),
    ("+3", Fraction(3)),
    ("1e3", Fraction(1000)),
    ("1E-3", Fraction(1, 1000)),
    # k8s ParseQuantity cases
    ("0", Fraction(0)),
    ("0n", Fraction(0)),
    ("0Ki", Fraction(0)),
    ("0T", Fraction(0)),
    ("5n", 5 * N),
    ("4u", Fraction(4, 10**6)),
    ("3m", Fraction(3, 1000)),
    ("50k", Fraction(50_000)),
    ("40T", Fraction(40 * 10**12)),
    ("2P", Fraction(2 * 10**15)),
    ("1E", Fraction(10**18)),  # "E" alone is the exa suffix, not an exponent
    ("100.035k", Fraction(100035)),
    ("0.0005k", Fraction(1, 2)),
    ("0.00500", Fraction(5, 1000)),
    ("10.035M", Fraction(10_035_000)),
    ("7.123456M", Fraction(7_123_456)),
    ("6.987654321G", Fraction(6_987_654_321)),
    ("1.01E", Fraction(101 * 10**16)),
    ("100.035Ki", Fraction(100035 * 1024, 1000)),
    ("0.5Mi", Fraction(MI // 2)),
    ("0.05Gi", Fraction(5 * GI, 100)),
    ("0.025Ti", Fraction(25 * TI, 1000)),
    ("4Pi", Fraction(4 * PI)),
    ("3Ei", Fraction(3 * EI)),
    (".001", Fraction(1, 1000)),
    (".0001k", Fraction(1, 10)),
    ("1.", Fraction(1)),
    ("1.G", Fraction(10**9)),
    ("-0", Fraction(0)),
    ("+0.0", Fraction(0)),
    ("007", Fraction(7)),
])
def test_parse_examples(text, expected):
    assert parse_quantity(text) == expected
    assert isinstance(parse_quantity(text), Fraction)


@pytest.mark.parametrize("suffix, multiplier", [
    ("Ki", 2**10), ("Mi", 2**20), ("Gi", 2**30), ("Ti", 2**40), ("Pi", 2**50), ("Ei", 2**60),
    ("n", Fraction(1, 10**9)), ("u", Fraction(1, 10**6)), ("m", Fraction(1, 10**3)),
    ("", 1), ("k", 10**3), ("M", 10**6), ("G", 10**9), ("T", 10**12), ("P", 10**15),
    ("E", 10**18),
])
def test_each_suffix(suffix, multiplier):
    assert parse_quantity("1" + suffix) == multiplier
    assert parse_quantity("7" + suffix) == 7 * multiplier
    assert parse_quantity("0.5" + suffix) == nano_ceil(Fraction(multiplier) / 2)


@pytest.mark.parametrize("text, expected", [
    ("1e3", Fraction(1000)),
    ("1E6", Fraction(10**6)),
    ("1e9", Fraction(10**9)),
    ("1E18", Fraction(10**18)),
    ("1e0", Fraction(1)),
    ("1e-3", Fraction(1, 1000)),
    ("1e+3", Fraction(1000)),
    ("1e03", Fraction(1000)),
    ("1E-03", Fraction(1, 1000)),
    ("0.5e0", Fraction(1, 2)),
    ("0.5e-1", Fraction(1, 20)),
    ("0.5e-2", Fraction(1, 200)),
    ("1.2e3", Fraction(1200)),
    ("1.3E+6", Fraction(1_300_000)),
    ("1.40e9", Fraction(1_400_000_000)),
    ("1.53E12", Fraction(153 * 10**10)),
    ("1.7E18", Fraction(17 * 10**17)),
    ("-1.5e1", Fraction(-15)),
    (".001e12", Fraction(10**9)),
    ("1000e-12", Fraction(1, 10**9)),
])
def test_exponent_forms(text, expected):
    assert parse_quantity(text, allow_negative=True) == expected


@pytest.mark.parametrize("text, nanos", [
    # k8s: "things that saturate/round" -- parsing rounds up to a whole nano-unit
    ("3.001n", 4),
    ("1.1E-9", 2),
    ("0.0000000001", 1),
    ("0.0000000005", 1),
    ("0.5e-9", 1),
    ("0.9n", 1),
    ("0.00000012345", 124),
    ("0.00000012354", 124),
    ("0.000000000001Ki", 2),
    (".000000001Ki", 1024),
    ("1e-2147483647", 1),  # smallest exponent: still one nano-unit, computed instantly
])
def test_parse_rounds_up_to_nano(text, nanos):
    assert parse_quantity(text) == nanos * N


def test_negative_rounds_away_from_zero():
    assert parse_quantity("-3.001n", allow_negative=True) == -4 * N
    assert parse_quantity("-0.5e-9", allow_negative=True) == -1 * N


@pytest.mark.parametrize("value, expected", [
    (2, Fraction(2)),
    (0, Fraction(0)),
    (0.5, Fraction(1, 2)),
    (0.1, Fraction(1, 10)),  # through repr, not the binary float 0.1000000000000000055...
    (2.0, Fraction(2)),
    (1e-3, Fraction(1, 1000)),
    (1.5e9, Fraction(1_500_000_000)),
    (-0.0, Fraction(0)),
    (MAX_INT64, Fraction(MAX_INT64)),
])
def test_yaml_numbers(value, expected):
    assert parse_quantity(value) == expected


def test_yaml_float_differs_from_binary_value():
    assert parse_quantity(0.1) != Fraction(0.1)
    assert to_milli(0.1) == 100
    assert to_milli(0.3) == 300


# --------------------------------------------------------------------------- rounding


@pytest.mark.parametrize("text, milli", [
    ("0.1m", 1),
    ("1.0001m", 2),
    ("1n", 1),
    ("1999999n", 2),
    ("500m", 500),
    ("1.5", 1500),
    ("2", 2000),
    ("0", 0),
    ("1Ki", 1_024_000),
    ("9223372036854775.807", MAX_INT64),
    ("9223372036854775807m", MAX_INT64),
    (0.25, 250),
])
def test_to_milli_rounds_up(text, milli):
    assert to_milli(text) == milli


@pytest.mark.parametrize("text, value", [
    ("0.5", 1),
    ("1.5Gi", 1610612736),
    ("100m", 1),
    ("1n", 1),
    ("1", 1),
    ("1.000000001", 2),
    ("0", 0),
    ("1.5", 2),
    ("999m", 1),
    ("1001m", 2),
    ("129e6", 129_000_000),
    ("9223372036854775807", MAX_INT64),
    ("7Ei", 7 * EI),
])
def test_to_int_rounds_up(text, value):
    assert to_int(text) == value


@pytest.mark.parametrize("resource, text, expected", [
    ("cpu", "2", 2000),
    ("cpu", "100m", 100),
    ("cpu", "0.1m", 1),
    ("cpu", 0.5, 500),
    ("memory", "1Gi", GI),
    ("memory", "100m", 1),
    ("memory", "129M", 129_000_000),
    ("ephemeral-storage", "1.5Gi", 1610612736),
    ("pods", "110", 110),
    ("pods", 110, 110),
    ("hugepages-2Mi", "4Mi", 4 * MI),
    ("hugepages-1Gi", "2Gi", 2 * GI),
    ("nvidia.com/gpu", "1", 1),
    ("nvidia.com/gpu", 2, 2),
    ("example.com/foo", "500m", 1),
])
def test_resource_to_int(resource, text, expected):
    assert resource_to_int(resource, text) == expected


# --------------------------------------------------------------------------- formatting


@pytest.mark.parametrize("value, text", [
    (0, "0"),
    (1, "1m"),
    (500, "500m"),
    (1500, "1500m"),
    (1080, "1080m"),  # k8s canonical form of 1.08
    (2000, "2"),
    (1000, "1"),
    (10**6, "1000"),
    (MAX_INT64, f"{MAX_INT64}m"),
])
def test_format_cpu(value, text):
    assert format_quantity(value, "cpu") == text


@pytest.mark.parametrize("value, text", [
    (0, "0"),
    (GI, "1Gi"),
    (300 * MI, "300Mi"),
    (6 * KI, "6Ki"),
    (1001 * GI, "1001Gi"),
    (TI, "1Ti"),
    (1024 * TI, "1Pi"),
    (5, "5"),
    (1025, "1025"),
    (10**9, "1G"),
    (300 * 10**6, "300M"),
    (10**12, "1T"),
    (3000, "3k"),
    (1234567 * 10**6, "1234567M"),
    (129_000_000, "129M"),
    (1000, "1k"),
    (10**18, "1E"),
    (7 * 10**18, "7E"),
    (8 * EI - EI, "7Ei"),
    (128974849, "128974849"),
    (128974848, "123Mi"),  # 128974848 = 123 * 2**20
    (2048 * 1000, "2048k"),  # shorter than "2000Ki"
    (10**12 * 1024, "1024T"),  # shorter than "1000Gi"
    (5 * 10**15, "5P"),  # not "4882812500000Ki"
    (9765625 * GI, "9765625Gi"),  # as long as "10485760G": binary wins ties
    (MAX_INT64, str(MAX_INT64)),
])
def test_format_other_resources(value, text):
    assert format_quantity(value, "memory") == text
    assert resource_to_int("memory", text) == value


def test_format_rejects_bad_values():
    with pytest.raises(QuantityError, match="negative"):
        format_quantity(-1, "memory")
    with pytest.raises(QuantityError, match="too large"):
        format_quantity(MAX_INT64 + 1, "cpu")
    with pytest.raises(TypeError):
        format_quantity(True, "cpu")
    with pytest.raises(TypeError):
        format_quantity(1.5, "memory")


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("text", [
    "", "1.2.3", "Gi", "1 Gi", "1gi", "1Kb", "e3", "1e", "1e1.5", " 1", "1 ", "--1",
    # k8s invalid cases
    "1.1.M", "1+1.0M", "0.1mi", "0.1am", "aoeu", ".5i", "1i", "-3.01i", "-3.01e-",
    "1e4294967297",
    # more malformed forms
    ".", "+", "-", "m", "Ki", "1K", "1KI", "1ki", "1EE3", "1e3k", "1ke3", "1m3", "1E+", "1e-",
    "1,5", "1_000", "0x10", "1/2", "\u0663", "１", "1\n", "\t1", "1Gi ", "1.5 ", "+-1", "1e+-3",
    "Infinity", "nan",
])
def test_invalid_text(text):
    with pytest.raises(QuantityError) as info:
        parse_quantity(text, allow_negative=True)
    err = info.value
    assert err.message.startswith("invalid quantity ")
    # the offending text is quoted (JSON-style escaping for control characters)
    assert f'"{text}"' in err.message or repr(text)[1:-1] in err.message
    assert (err.file, err.obj, err.field) == (None, None, None)


def test_error_messages():
    with pytest.raises(QuantityError) as info:
        parse_quantity("1.2.3")
    assert info.value.message == (
        'invalid quantity "1.2.3": expected <number><suffix> such as 500m, 2, 1.5Gi')
    with pytest.raises(QuantityError) as info:
        parse_quantity("-1")
    assert info.value.message == 'negative quantity "-1": resource quantities must be >= 0'
    with pytest.raises(QuantityError, match=r'"1gi".*case sensitive.*"Gi"'):
        parse_quantity("1gi")
    with pytest.raises(QuantityError, match=r'unknown suffix "Kb"'):
        parse_quantity("1Kb")
    with pytest.raises(QuantityError, match=r'exponent "e1\.5"'):
        parse_quantity("1e1.5")
    with pytest.raises(QuantityError, match="whitespace"):
        parse_quantity(" 1")
    with pytest.raises(QuantityError, match=r'quantity "1\\n"'):
        parse_quantity("1\n")


def test_error_class_and_location():
    with pytest.raises(QuantityError) as info:
        to_milli("bogus")
    err = info.value
    assert isinstance(err, InputError) and isinstance(err, ValueError)
    assert (err.file, err.obj, err.field) == (None, None, None)
    assert str(err) == err.message


@pytest.mark.parametrize("value", [True, False, None, [1], {"cpu": 1}, b"1", Fraction(1, 2)])
def test_non_text_types_rejected(value):
    with pytest.raises(QuantityError, match="expected a string or a number"):
        parse_quantity(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_floats_rejected(value):
    with pytest.raises(QuantityError, match="invalid quantity"):
        parse_quantity(value)


@pytest.mark.parametrize("value", ["-1", "-500m", "-0.1m", "-1Gi", "-1e-12", "-1e30", -1, -0.5])
def test_negative_rejected(value):
    with pytest.raises(QuantityError, match="negative quantity") as info:
        parse_quantity(value)
    assert str(value) in info.value.message
    with pytest.raises(QuantityError, match="negative quantity"):
        to_milli(value)
    with pytest.raises(QuantityError, match="negative quantity"):
        to_int(value)
    with pytest.raises(QuantityError, match="negative quantity"):
        resource_to_int("cpu", value)


def test_allow_negative():
    assert parse_quantity("-1", allow_negative=True) == -1
    assert parse_quantity("-500m", allow_negative=True) == Fraction(-1, 2)
    assert parse_quantity("-1Gi", allow_negative=True) == -GI
    assert parse_quantity(-3, allow_negative=True) == -3
    assert parse_quantity(-0.25, allow_negative=True) == Fraction(-1, 4)
    assert parse_quantity(-MAX_INT64, allow_negative=True) == -MAX_INT64
    with pytest.raises(QuantityError, match="too large"):
        parse_quantity(-(MAX_INT64 + 1), allow_negative=True)
    with pytest.raises(QuantityError, match="too large"):
        parse_quantity("-8Ei", allow_negative=True)


@pytest.mark.parametrize("value", [
    "9223372036854775808", "8Ei", "9Ei", "9223372036854775807Ki", "12E", "10E", "1e19",
    "9.3E", "1e2147483647", "1" * 5000, MAX_INT64 + 1, 2**200, 1e19, 1e300,
])
def test_too_large_rejected(value):
    with pytest.raises(QuantityError, match="too large"):
        parse_quantity(value)
    with pytest.raises(QuantityError, match="too large"):
        to_int(value)


@pytest.mark.parametrize("text", ["9223372036854775808m", "9223372036854776", "1Ei", "1E",
                                  "9223372036854775.8071"])
def test_milli_overflow_rejected(text):
    parse_quantity(text)  # representable in base units ...
    with pytest.raises(QuantityError, match="too large"):
        to_milli(text)  # ... but not in thousandths
    with pytest.raises(QuantityError, match="too large"):
        resource_to_int("cpu", text)


def test_exponent_out_of_int32_range():
    for text in ["1e2147483648", "1E-2147483648", "0e99999999999", "1e" + "9" * 5000]:
        with pytest.raises(QuantityError, match="exponent"):
            parse_quantity(text)


def test_huge_inputs_are_fast_and_messages_short():
    start = time.monotonic()
    assert parse_quantity("1." + "0" * 20_000) == 1
    assert parse_quantity("0." + "0" * 20_000 + "1") == N
    assert parse_quantity("0" * 20_000 + "5") == 5
    with pytest.raises(QuantityError) as info:
        parse_quantity("9" * 20_000)
    assert len(info.value.message) < 300
    with pytest.raises(QuantityError) as info:
        parse_quantity("1" * 20_000 + "x")
    assert len(info.value.message) < 300
    assert time.monotonic() - start < 5


# --------------------------------------------------------------------------- properties

MEMORY_LIKE = ["memory", "ephemeral-storage", "pods", "hugepages-2Mi", "nvidia.com/gpu"]

structured_ints = st.one_of(
    st.integers(min_value=0, max_value=MAX_INT64),
    st.integers(min_value=0, max_value=10**6),
    st.builds(lambda m, k: m * 1024**k, st.integers(0, 8191), st.integers(0, 6)),
    st.builds(lambda m, k: m * 10**k, st.integers(0, 9999), st.integers(0, 15)),
).filter(lambda v: v <= MAX_INT64)


@given(structured_ints)
def test_format_parse_round_trip_cpu(value):
    text = format_quantity(value, "cpu")
    assert resource_to_int("cpu", text) == value
    assert re.fullmatch(r"0|[1-9][0-9]*m?", text)
    if text.endswith("m"):
        assert value % 1000 != 0
    else:
        assert value % 1000 == 0


@given(structured_ints, st.sampled_from(MEMORY_LIKE))
def test_format_parse_round_trip_other(value, resource):
    text = format_quantity(value, resource)
    assert resource_to_int(resource, text) == value
    match = re.fullmatch(r"(0|[1-9][0-9]*)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?", text)
    assert match, text
    number, suffix = int(match[1]), match[2] or ""
    # Reference: the largest exact binary and decimal forms; the shorter wins, binary on ties.
    binary = next((f"{value // 1024**k}{s}" for k, s in
                   [(6, "Ei"), (5, "Pi"), (4, "Ti"), (3, "Gi"), (2, "Mi"), (1, "Ki")]
                   if value % 1024**k == 0), None)
    decimal = next((f"{value // 1000**k}{s}" for k, s in
                    [(6, "E"), (5, "P"), (4, "T"), (3, "G"), (2, "M"), (1, "k")]
                    if value % 1000**k == 0), None)
    if value == 0:
        assert text == "0"
    elif binary and (not decimal or len(binary) <= len(decimal)):
        assert text == binary
        assert suffix == "Ei" or number % 1024 != 0
    elif decimal:
        assert text == decimal
        assert suffix == "E" or number % 1000 != 0
    else:
        assert text == str(value) and value % 1024 != 0 and value % 1000 != 0


@st.composite
def quantity_parts(draw, signs=("", "+")):
    """(text, exact value) for a quantity built from its parts."""
    sign = draw(st.sampled_from(signs))
    int_digits = draw(st.text("0123456789", max_size=12))
    frac_digits = draw(st.none() | st.text("0123456789", max_size=12))
    if not int_digits and not frac_digits:
        int_digits = draw(st.text("0123456789", min_size=1, max_size=6))
    kind = draw(st.sampled_from(["suffix", "exponent"]))
    if kind == "suffix":
        suffix = draw(st.sampled_from(sorted(REF_MULTIPLIER)))
        multiplier = REF_MULTIPLIER[suffix]
    else:
        exponent = draw(st.integers(-25, 25))
        exp_sign = "-" if exponent < 0 else draw(st.sampled_from(["", "+"]))
        zeros = "0" * draw(st.integers(0, 2))
        suffix = draw(st.sampled_from("eE")) + exp_sign + zeros + str(abs(exponent))
        multiplier = Fraction(10) ** exponent
    text = sign + int_digits + ("" if frac_digits is None else "." + frac_digits) + suffix
    value = Fraction(int(int_digits or "0"))
    if frac_digits:
        value += Fraction(int(frac_digits), 10 ** len(frac_digits))
    value *= multiplier
    if sign == "-":
        value = -value
    return text, value


@given(quantity_parts())
def test_parse_matches_reference(parts):
    text, exact = parts
    expected = nano_ceil(exact)
    assert REF_GRAMMAR.fullmatch(text)
    if expected > MAX_INT64:
        with pytest.raises(QuantityError, match="too large"):
            parse_quantity(text)
    else:
        assert parse_quantity(text) == expected


@given(quantity_parts(signs=("-",)))
def test_parse_negative_matches_reference(parts):
    text, exact = parts
    expected = nano_ceil(exact)
    if expected == 0:
        assert parse_quantity(text) == 0
    else:
        with pytest.raises(QuantityError, match="negative quantity"):
            parse_quantity(text)
        if -expected > MAX_INT64:
            with pytest.raises(QuantityError, match="too large"):
                parse_quantity(text, allow_negative=True)
        else:
            assert parse_quantity(text, allow_negative=True) == expected


@given(quantity_parts())
def test_to_int_and_to_milli_are_ceilings(parts):
    text, exact = parts
    assume(nano_ceil(exact) <= MAX_INT64)
    value = parse_quantity(text)
    assert value >= exact  # rounding to nano-units only ever rounds up
    whole = to_int(text)
    assert value <= whole < value + 1
    assert whole == math.ceil(exact)  # nano rounding never changes the whole-unit ceiling
    if math.ceil(value * 1000) > MAX_INT64:
        with pytest.raises(QuantityError, match="too large"):
            to_milli(text)
    else:
        milli = to_milli(text)
        assert value * 1000 <= milli < value * 1000 + 1
        assert milli == math.ceil(exact * 1000)
        assert resource_to_int("cpu", text) == milli
    assert resource_to_int("memory", text) == whole


@given(st.text("0123456789.+-eEkKMGTPinumb ", max_size=10))
def test_accepts_exactly_the_grammar(text):
    if REF_GRAMMAR.fullmatch(text):
        try:
            value = parse_quantity(text, allow_negative=True)
        except QuantityError as err:  # only the range may fail for grammatical text
            assert "too large" in err.message
        else:
            assert isinstance(value, Fraction)
    else:
        with pytest.raises(QuantityError) as info:
            parse_quantity(text, allow_negative=True)
        assert info.value.message.startswith("invalid quantity ")


@given(st.floats(min_value=0, max_value=1e18, allow_nan=False))
def test_float_reads_as_its_repr(value):
    expected = nano_ceil(Fraction(repr(value)))
    assert parse_quantity(value) == expected
    assert to_int(value) == math.ceil(Fraction(repr(value)))


@given(st.integers(min_value=0, max_value=MAX_INT64))
def test_int_and_str_agree(value):
    assert parse_quantity(value) == parse_quantity(str(value)) == value
    assert to_int(value) == value
