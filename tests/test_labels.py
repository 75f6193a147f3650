"""Tests for schedbench.model.labels: label validation, selector strings, structured and node
selectors. Example cases follow the behaviour of Kubernetes' apimachinery (labels.Parse,
IsQualifiedName, IsValidLabelValue, LabelSelectorAsSelector) and component-helpers
(nodeaffinity); the property tests compare against reference evaluations written here from
the documented semantics, sharing no code with the module."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.errors import InputError, SelectorError
from schedbench.model.labels import (
    FieldRequirement,
    NodeSelector,
    NodeSelectorTerm,
    Operator,
    Requirement,
    Selector,
    is_valid_label_key,
    is_valid_label_value,
    label_selector_from_dict,
    label_selector_to_dict,
    node_selector_from_dict,
    node_selector_map_matches,
    node_selector_term_from_dict,
    node_selector_term_to_dict,
    node_selector_to_dict,
    parse_selector,
    selector_from_set,
    validate_label_key,
    validate_label_value,
)

# =============================================================================================
# Label key and value validation
# =============================================================================================

VALID_KEYS = [
    "simple",
    "now-with-dashes",
    "1-starts-with-num",
    "1234",
    "simple/simple",
    "now-with-dashes/simple",
    "now-with-dashes/now-with-dashes",
    "now.with.dots/simple",
    "now-with.dashes-and.dots/simple",
    "1-num.2-num/3-num",
    "1234/5678",
    "1.2.3.4/5678",
    "Uppercase_Is_OK_123",
    "example.com/Uppercase_Is_OK_123",
    "requests.storage-foo",
    "kubernetes.io/hostname",
    "topology.kubernetes.io/zone",
    "a_b",
    "a.b",
    "in",
    "notin",
    "a" * 63,
    "a" * 253 + "/" + "b" * 63,
]

INVALID_KEYS = [
    "",
    "nospecialchars%^=@",
    "cantendwithadash-",
    "-cantstartwithadash-",
    "-a",
    "a_",
    "_a",
    ".a",
    "a.",
    "only/one/slash",
    "a/b/c",
    "Example.com/abc",          # uppercase prefix
    "example_com/abc",          # underscore in prefix
    "example.com/",             # empty name
    "/simple",                  # empty prefix
    "example..com/abc",         # empty DNS label in prefix
    "-example.com/abc",
    "example.com-/abc",
    "a" * 64,                   # name too long
    "a" * 254 + "/abc",         # prefix too long
    "a b",
    "a\tb",
    "é",
    "x\n",                      # a regex "$" would accept this one
]


@pytest.mark.parametrize("key", VALID_KEYS)
def test_valid_label_keys(key):
    assert is_valid_label_key(key)
    validate_label_key(key)  # does not raise


@pytest.mark.parametrize("key", INVALID_KEYS)
def test_invalid_label_keys(key):
    assert not is_valid_label_key(key)
    with pytest.raises(SelectorError) as info:
        validate_label_key(key)
    assert "invalid label key" in str(info.value)


VALID_VALUES = ["", "simple", "now-with-dashes", "1-starts-with-num", "end-with-num-1", "1234",
                "a", "A_b.C-d", "in", "a" * 63]
INVALID_VALUES = ["nospecialchars%^=@", "Tama-nui-te-rā.is.Māori.sun", "\\backslashes\\are\\bad",
                  "-starts-with-dash", "ends-with-dash-", ".starts.with.dot", "ends.with.dot.",
                  "_a", "a_", "a/b", "a b", " ", "-1", "+1", "a" * 64, "v\n"]


@pytest.mark.parametrize("value", VALID_VALUES)
def test_valid_label_values(value):
    assert is_valid_label_value(value)
    validate_label_value(value)


@pytest.mark.parametrize("value", INVALID_VALUES)
def test_invalid_label_values(value):
    assert not is_valid_label_value(value)
    with pytest.raises(SelectorError, match="invalid label value"):
        validate_label_value(value)


def test_validation_messages_say_what_is_wrong():
    with pytest.raises(SelectorError) as info:
        validate_label_key("a" * 64)
    assert "63" in str(info.value) and "name part" in str(info.value)
    with pytest.raises(SelectorError) as info:
        validate_label_key("a" * 254 + "/abc")
    assert "253" in str(info.value) and "prefix" in str(info.value)
    with pytest.raises(SelectorError) as info:
        validate_label_key("Example.com/abc")
    assert "prefix" in str(info.value) and "lowercase" in str(info.value)
    with pytest.raises(SelectorError) as info:
        validate_label_key("a/b/c")
    assert "'/'" in str(info.value)
    with pytest.raises(SelectorError) as info:
        validate_label_value("a" * 64)
    assert "63" in str(info.value)


def test_validation_rejects_non_strings():
    assert not is_valid_label_key(5)  # type: ignore[arg-type]
    assert not is_valid_label_value(None)  # type: ignore[arg-type]
    with pytest.raises(SelectorError, match="string"):
        validate_label_value(1)  # type: ignore[arg-type]


def test_selector_error_is_input_error_without_location():
    with pytest.raises(SelectorError) as info:
        parse_selector("x in (a")
    err = info.value
    assert isinstance(err, InputError) and isinstance(err, ValueError)
    assert err.file is None and err.obj is None and err.field is None


# Reference label key / value validity, written from the documented rules.
_ALNUM = set(string.ascii_letters + string.digits)
_LOWER_ALNUM = set(string.ascii_lowercase + string.digits)


def _ref_name_ok(name: str) -> bool:
    return (0 < len(name) <= 63 and name[0] in _ALNUM and name[-1] in _ALNUM
            and all(c in _ALNUM or c in "-_." for c in name))


def _ref_prefix_ok(prefix: str) -> bool:
    if not 0 < len(prefix) <= 253:
        return False
    for part in prefix.split("."):
        if not part or part[0] not in _LOWER_ALNUM or part[-1] not in _LOWER_ALNUM:
            return False
        if any(c not in _LOWER_ALNUM and c != "-" for c in part):
            return False
    return True


def _ref_key_ok(key: str) -> bool:
    parts = key.split("/")
    if len(parts) == 1:
        return _ref_name_ok(parts[0])
    if len(parts) == 2:
        return _ref_prefix_ok(parts[0]) and _ref_name_ok(parts[1])
    return False


def _ref_value_ok(value: str) -> bool:
    return value == "" or _ref_name_ok(value)


_KEYISH = st.text(alphabet="aZ09-_./ !é", max_size=12) | st.sampled_from(VALID_KEYS + INVALID_KEYS)


@given(_KEYISH)
def test_label_key_validity_matches_reference(key):
    assert is_valid_label_key(key) == _ref_key_ok(key)


@given(st.text(alphabet="aZ09-_./ !é", max_size=70))
def test_label_value_validity_matches_reference(value):
    assert is_valid_label_value(value) == _ref_value_ok(value)


# =============================================================================================
# String selectors: parsing and canonical form
# =============================================================================================

# (input, canonical str). Kubernetes' own round-trip cases print back with spaces removed.
GOOD_SELECTORS = [
    ("x=a,y=b,z=c", "x=a,y=b,z=c"),
    ("", ""),
    ("   ", ""),
    ("x!=a,y=b", "x!=a,y=b"),
    ("x=", "x="),
    ("x= ", "x="),
    ("x=,z= ", "x=,z="),
    ("x= ,z= ", "x=,z="),
    ("!x", "!x"),
    ("! x", "!x"),
    ("x>1", "x>1"),
    ("x>1,z<5", "x>1,z<5"),
    ("x > 1", "x>1"),
    ("x==a", "x==a"),
    ("x = a , y != b", "x=a,y!=b"),
    ("x in (a, b)", "x in (a,b)"),
    ("x in (b,a,b)", "x in (a,b)"),
    ("x notin(a)", "x notin (a)"),
    ("x in(a)", "x in (a)"),
    ("x in ()", "x in ()"),
    ("x notin ( )", "x notin ()"),
    ("x in (abc,)", "x in (,abc)"),
    ("x in (,)", "x in ()"),
    ("x notin (, a)", "x notin (,a)"),
    ("x in (a,,b)", "x in (,a,b)"),
    ("\rx", "x"),
    ("a ", "a"),
    ("foo  in\t (abc)", "foo in (abc)"),
    ("x notin\n (abc)", "x notin (abc)"),
    ("x  notin\t\t\t(abc,def)", "x notin (abc,def)"),
    ("this-is-a-dns.domain.com/key-with-dash", "this-is-a-dns.domain.com/key-with-dash"),
    ("0.1.2.domain/99 notin (10.10.100.1, tick.tack.clock)",
     "0.1.2.domain/99 notin (10.10.100.1,tick.tack.clock)"),
    ("x notin (abc,def),bar,z in (),w", "bar,w,x notin (abc,def),z in ()"),
    ("x,y in (a)", "x,y in (a)"),
    ("x=a,a=x", "a=x,x=a"),
    ("a in (x,y,notin, z,in)", "a in (in,notin,x,y,z)"),
    ("notin=in", "notin=in"),
    ("in in (in)", "in in (in)"),
    ("in", "in"),
    ("!notin", "!notin"),
    ("x=in,y notin (notin)", "x=in,y notin (notin)"),
    ("x>007", "x>007"),
    ("x<9223372036854775807", "x<9223372036854775807"),
]


@pytest.mark.parametrize("text,canonical", GOOD_SELECTORS)
def test_parse_good_selectors(text, canonical):
    sel = parse_selector(text)
    assert str(sel) == canonical
    assert parse_selector(canonical) == sel


def test_parse_builds_expected_requirements():
    sel = parse_selector("x notin (abc,def),bar,z in (),w")
    assert sel.requirements == (
        Requirement("bar", Operator.EXISTS),
        Requirement("w", Operator.EXISTS),
        Requirement("x", Operator.NOT_IN, ("abc", "def")),
        Requirement("z", Operator.IN, ("",)),
    )
    assert parse_selector("x=a").requirements == (Requirement("x", Operator.EQUALS, ("a",)),)
    assert parse_selector("x>1").requirements == (
        Requirement("x", Operator.GREATER_THAN, ("1",)),)
    assert parse_selector("in in (in)").requirements == (Requirement("in", "in", ("in",)),)
    assert parse_selector("!x").requirements[0].operator is Operator.DOES_NOT_EXIST


BAD_SELECTORS = [
    "x=a||y=b",
    "x==a==b",
    "x=a==b",
    "!x=a",
    "!x in (a)",
    "x<a",
    "x>",
    "x>-1",          # a valid integer but not a valid label value
    "x>1.5",
    "x>99999999999999999999",
    "x,,y",
    ",x,y",
    "x,",
    "x nott in (y)",
    "a in (xyz),",
    "a in (xyz)b notin ()",
    "a in (xyz abc)",
    "a notin(",
    "a (",
    "(",
    ")",
    "!",
    "=a",
    "x in a",
    "x in",
    "xin(a)",
    "x in (a,,)",    # Kubernetes' list parser rejects ",," directly before ")"
    "x in (,,)",
    "x in ((a))",
    "x=(a)",
    "x>=1",
    "x=<1",
    "x y",
    "x=a b",
    "a/b/c=1",
    "A.com/x",
    "-x",
    "x" * 64,
    "x=" + "v" * 64,
    "x=\x00",
    "x\x00,y",
    "\vx",          # only space, tab, CR and LF separate tokens
    "x=a\f",
    "x\u00a0",
]


@pytest.mark.parametrize("text", BAD_SELECTORS)
def test_parse_bad_selectors(text):
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    message = str(info.value)
    assert message.startswith("invalid selector ")
    assert "at position " in message


@pytest.mark.parametrize("text,fragment", [
    ("a in (b", 'expected "," or ")" but found end of string at position 8'),
    ("x==a==b", 'found "==" at position 5'),
    ("!x=a", 'found "=" at position 3'),
    (",x", 'found "," at position 1'),
    ("x,,y", 'found "," at position 3'),
    ("a in (xyz abc)", 'found "abc" at position 11'),
    ("x nott in (y)", 'found "nott" at position 3'),
    ("x<a", 'invalid value "a" for key "x" at position 3'),
    ("y=ok,x=a||y=b", 'invalid label value "a||y" for key "x" at position 8'),
    ("a,  Bad_/k", 'invalid label key "Bad_/k" at position 5'),
    ("x=\x00", "NUL character at position 3"),
])
def test_parse_error_names_token_and_position(text, fragment):
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert fragment in str(info.value)


def test_parse_rejects_non_string():
    with pytest.raises(SelectorError, match="string"):
        parse_selector(None)  # type: ignore[arg-type]


def test_requirements_sorted_by_key_stably():
    assert str(parse_selector("x=a,a=x")) == str(parse_selector("a=x,x=a")) == "a=x,x=a"
    # Ties keep input order, as Kubernetes' (insertion) sort does for small selectors.
    assert str(parse_selector("b,a!=1,a=2")) == "a!=1,a=2,b"
    assert str(parse_selector("a=2,a!=1")) == "a=2,a!=1"
    assert parse_selector("a=2,a!=1") != parse_selector("a!=1,a=2")


def test_equals_double_equals_and_in_are_distinct_but_match_alike():
    eq, deq, in1 = parse_selector("x=a"), parse_selector("x==a"), parse_selector("x in (a)")
    assert len({eq, deq, in1}) == 3
    assert (str(eq), str(deq), str(in1)) == ("x=a", "x==a", "x in (a)")
    for labels in ({"x": "a"}, {"x": "b"}, {}, {"y": "a"}):
        assert eq.matches(labels) == deq.matches(labels) == in1.matches(labels)


# =============================================================================================
# Matching
# =============================================================================================

MATCH_CASES = [
    ("", {"x": "y"}, True),
    ("", {}, True),
    ("x=y", {"x": "y"}, True),
    ("x=y,z=w", {"x": "y", "z": "w"}, True),
    ("x!=y,z!=w", {"x": "z", "z": "a"}, True),
    ("notin=in", {"notin": "in"}, True),
    ("x", {"x": "z"}, True),
    ("x", {"x": ""}, True),
    ("!x", {"y": "z"}, True),
    ("x>1", {"x": "2"}, True),
    ("x<1", {"x": "0"}, True),
    ("x=z", {}, False),
    ("x=y", {"x": "z"}, False),
    ("x=y,z=w", {"x": "w", "z": "w"}, False),
    ("x!=y,z!=w", {"x": "z", "z": "w"}, False),
    ("x", {"y": "z"}, False),
    ("!x", {"x": "z"}, False),
    ("x>1", {"x": "0"}, False),
    ("x<1", {"x": "2"}, False),
    ("x>1", {"x": "1"}, False),
    ("x<1", {"x": "1"}, False),
    ("foo=bar,baz=blah", {"foo": "bar", "baz": "blah"}, True),
    ("foo=bar,foobar=bar,baz=blah", {"foo": "bar", "baz": "blah"}, False),
    ("x in (foo),y notin (alpha)", {"x": "foo", "y": "baz"}, True),
    ("x in (foo),y in (alpha)", {"x": "foo", "y": "baz"}, False),
    ("x notin (),y", {"y": ""}, True),
    ("x notin (),!y", {"y": ""}, False),
    ("!x,y", {"y": ""}, True),
    ("x in ()", {"y": "baz"}, False),
    ("x in ()", {"x": ""}, True),
    ("x=", {"x": ""}, True),
    ("x=", {}, False),
    ("x!=", {}, True),
    ("x!=", {"x": ""}, False),
    ("x notin (a,b)", {}, True),
    ("x notin (a,b)", {"x": "b"}, False),
    ("z>1", {"z": "v2"}, False),
    ("z>1", {}, False),
    ("z<1", {}, False),
    ("z>1", {"z": "+5"}, True),           # Go's ParseInt accepts a sign
    ("z<1", {"z": "-5"}, True),
    ("z>1", {"z": "0010"}, True),
    ("z>1", {"z": "1_0"}, False),         # no digit separators in base 10
    ("z>1", {"z": " 5"}, False),
    ("z>1", {"z": "５"}, False),           # only ASCII digits
    ("z>1", {"z": "9223372036854775807"}, True),
    ("z>1", {"z": "9223372036854775808"}, False),   # int64 overflow never matches
    ("z<1", {"z": "-9223372036854775808"}, True),
    ("z<1", {"z": "-9223372036854775809"}, False),
    ("z>1", {"z": ""}, False),
]


@pytest.mark.parametrize("text,labels,expected", MATCH_CASES)
def test_selector_matches(text, labels, expected):
    assert parse_selector(text).matches(labels) is expected


def test_everything_nothing_empty():
    everything, nothing = Selector.everything(), Selector.nothing()
    assert everything.empty and everything.matches({}) and everything.matches({"a": "b"})
    assert not nothing.empty and not nothing.matches({}) and not nothing.matches({"a": "b"})
    assert nothing.is_nothing and not everything.is_nothing
    assert parse_selector("") == everything == Selector() == Selector([])
    assert nothing != everything and hash(nothing) != hash(everything)
    assert not parse_selector("a").empty
    assert str(everything) == "" and str(nothing) == "<nothing>"
    with pytest.raises(SelectorError):
        parse_selector(str(nothing))
    assert nothing.add(Requirement("a", Operator.EXISTS)) is nothing


def test_selector_is_hashable_and_immutable():
    a, b = parse_selector("x in (b,a),y"), parse_selector("y, x in (a,b)")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != "x in (a,b),y"
    with pytest.raises(AttributeError):
        a.requirements[0].key = "z"  # type: ignore[misc]
    assert repr(a) == "parse_selector('x in (a,b),y')"
    assert eval(repr(a)) == a  # noqa: S307 - repr round trip


def test_selector_add_and_requires_exact_match():
    sel = parse_selector("b=1").add(Requirement("a", Operator.IN, ["2"]))
    assert str(sel) == "a in (2),b=1"
    assert sel.requires_exact_match("a") == "2"
    assert sel.requires_exact_match("b") == "1"
    assert sel.requires_exact_match("c") is None
    assert parse_selector("a in (1,2)").requires_exact_match("a") is None
    assert parse_selector("a!=1").requires_exact_match("a") is None


def test_selector_from_set():
    sel = selector_from_set({"b": "2", "a": "1"})
    assert str(sel) == "a=1,b=2"
    assert sel.matches({"a": "1", "b": "2", "c": "3"}) and not sel.matches({"a": "1"})
    assert selector_from_set({}) == Selector.everything()
    with pytest.raises(SelectorError):
        selector_from_set({"a": "bad value"})


@pytest.mark.parametrize("key,op,values,ok", [
    ("x", Operator.IN, [], False),
    ("x", Operator.NOT_IN, [], False),
    ("x", Operator.IN, ["foo"], True),
    ("x", Operator.NOT_IN, ["foo"], True),
    ("x", Operator.EXISTS, [], True),
    ("x", Operator.DOES_NOT_EXIST, [], True),
    ("x", Operator.EXISTS, ["a"], False),
    ("x", Operator.DOES_NOT_EXIST, ["a"], False),
    ("1foo", Operator.IN, ["bar"], True),
    ("1234", Operator.IN, ["bar"], True),
    ("y", Operator.GREATER_THAN, ["1"], True),
    ("z", Operator.LESS_THAN, ["6"], True),
    ("foo", Operator.GREATER_THAN, ["bar"], False),
    ("barz", Operator.LESS_THAN, ["blah"], False),
    ("y", Operator.GREATER_THAN, ["1", "2"], False),
    ("y", Operator.GREATER_THAN, [], False),
    ("x", Operator.EQUALS, [], False),
    ("x", Operator.EQUALS, ["a", "b"], False),
    ("x", Operator.NOT_EQUALS, [""], True),
    ("x", Operator.IN, ["bad value"], False),
    ("a" * 254, Operator.EXISTS, [], False),
    ("x", "bogus", [], False),
])
def test_requirement_constructor_validates(key, op, values, ok):
    if ok:
        r = Requirement(key, op, values)
        assert r.key == key and r.values == tuple(sorted(set(values)))
    else:
        with pytest.raises(SelectorError):
            Requirement(key, op, values)


def test_requirement_normalises_and_rejects_bare_string_values():
    r = Requirement("x", "notin", ["b", "a", "b"])
    assert r.operator is Operator.NOT_IN and r.values == ("a", "b")
    assert str(r) == "x notin (a,b)"
    with pytest.raises(SelectorError, match="sequence"):
        Requirement("x", Operator.IN, "abc")  # type: ignore[arg-type]


# =============================================================================================
# Structured label selectors (metav1.LabelSelector)
# =============================================================================================


def test_label_selector_none_and_empty():
    assert label_selector_from_dict(None) == Selector.nothing()
    assert label_selector_from_dict({}) == Selector.everything()
    assert label_selector_from_dict({"matchLabels": {}, "matchExpressions": []}).empty
    assert label_selector_from_dict({"matchLabels": None, "matchExpressions": None}).empty
    assert label_selector_to_dict(Selector.nothing()) is None
    assert label_selector_to_dict(Selector.everything()) == {}


def test_label_selector_from_dict_semantics():
    sel = label_selector_from_dict({
        "matchLabels": {"tier": "fe", "app": "web"},
        "matchExpressions": [
            {"key": "env", "operator": "In", "values": ["prod", "dev"]},
            {"key": "app", "operator": "NotIn", "values": ["db"]},
            {"key": "gpu", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "Exists", "values": []},
        ],
    })
    assert str(sel) == "app=web,app notin (db),env in (dev,prod),!gpu,tier=fe,zone"
    assert sel.matches({"app": "web", "tier": "fe", "env": "dev", "zone": "a"})
    assert not sel.matches({"app": "web", "tier": "fe", "env": "dev"})
    assert not sel.matches({"app": "web", "tier": "fe", "env": "dev", "zone": "a", "gpu": ""})
    assert not sel.matches({"app": "web", "tier": "fe", "env": "test", "zone": "a"})
    assert label_selector_to_dict(sel) == {
        "matchLabels": {"app": "web", "tier": "fe"},
        "matchExpressions": [
            {"key": "app", "operator": "NotIn", "values": ["db"]},
            {"key": "env", "operator": "In", "values": ["dev", "prod"]},
            {"key": "gpu", "operator": "DoesNotExist"},
            {"key": "zone", "operator": "Exists"},
        ],
    }
    assert label_selector_from_dict(label_selector_to_dict(sel)) == sel


@pytest.mark.parametrize("d,field,fragment", [
    ({"matchExpressions": [{"key": "a", "operator": "Exists"},
                           {"key": "a", "operator": "Foo"}]},
     "matchExpressions[1].operator", 'unknown operator "Foo"'),
    ({"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]},
     "matchExpressions[0].operator", 'unknown operator "Gt"'),
    ({"matchExpressions": [{"key": "a", "operator": "In"}]},
     "matchExpressions[0].values", "must not be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]},
     "matchExpressions[0].values", "must not be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]},
     "matchExpressions[0].values", "must be empty"),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["ok", "not ok"]}]},
     "matchExpressions[0].values[1]", 'invalid label value "not ok"'),
    ({"matchExpressions": [{"key": "a", "operator": "In", "values": [1]}]},
     "matchExpressions[0].values[0]", "must be a string"),
    ({"matchExpressions": [{"key": "-a", "operator": "Exists"}]},
     "matchExpressions[0].key", 'invalid label key "-a"'),
    ({"matchExpressions": [{"operator": "Exists"}]},
     "matchExpressions[0].key", "missing"),
    ({"matchExpressions": [{"key": "a"}]},
     "matchExpressions[0].operator", "missing"),
    ({"matchExpressions": [{"key": "a", "operator": "Exists", "value": []}]},
     "matchExpressions[0].value", "unknown field"),
    ({"matchExpressions": ["a=b"]}, "matchExpressions[0]", "mapping"),
    ({"matchExpressions": {"key": "a"}}, "matchExpressions", "list"),
    ({"matchLabels": {"app": 1}}, "matchLabels[app]", "must be a string"),
    ({"matchLabels": {"app": "a b"}}, "matchLabels[app]", "invalid label value"),
    ({"matchLabels": {"Bad/app": "x"}}, "matchLabels", 'invalid label key "Bad/app"'),
    ({"matchLabels": ["app"]}, "matchLabels", "mapping"),
    ({"matchLabel": {"app": "x"}}, "matchLabel", 'unknown field "matchLabel"'),
])
def test_label_selector_errors_name_field(d, field, fragment):
    with pytest.raises(SelectorError) as info:
        label_selector_from_dict(d)
    assert info.value.field == field
    assert fragment in info.value.message
    assert str(info.value).startswith(field + ": ")


def test_label_selector_error_can_be_located_by_caller():
    with pytest.raises(SelectorError) as info:
        label_selector_from_dict({"matchExpressions": [{"key": "a", "operator": "Foo"}]})
    err = info.value.located(file="pod.yaml", obj="Pod/default/p",
                             field="spec.affinity.podAffinity.labelSelector")
    assert str(err) == ('pod.yaml: Pod/default/p: spec.affinity.podAffinity.labelSelector.'
                        'matchExpressions[0].operator: unknown operator "Foo" '
                        "(must be one of In, NotIn, Exists, DoesNotExist)")


def test_label_selector_rejects_non_mapping():
    with pytest.raises(SelectorError, match="mapping"):
        label_selector_from_dict(["app=web"])  # type: ignore[arg-type]


def test_label_selector_gt_lt_when_allowed():
    d = {"matchExpressions": [{"key": "n", "operator": "Gt", "values": ["3"]}]}
    sel = label_selector_from_dict(d, allow_gt_lt=True)
    assert sel.matches({"n": "4"}) and not sel.matches({"n": "3"})
    assert label_selector_to_dict(sel) == d
    with pytest.raises(SelectorError) as info:
        label_selector_from_dict({"matchExpressions": [
            {"key": "n", "operator": "Lt", "values": ["x"]}]}, allow_gt_lt=True)
    assert info.value.field == "matchExpressions[0].values[0]"
    with pytest.raises(SelectorError) as info:
        label_selector_from_dict({"matchExpressions": [
            {"key": "n", "operator": "Lt", "values": ["1", "2"]}]}, allow_gt_lt=True)
    assert info.value.field == "matchExpressions[0].values"


def test_label_selector_to_dict_handles_string_only_operators():
    sel = parse_selector("a==1,a=2,b!=3")
    d = label_selector_to_dict(sel)
    assert d == {"matchLabels": {"a": "1"},
                 "matchExpressions": [{"key": "a", "operator": "In", "values": ["2"]},
                                      {"key": "b", "operator": "NotIn", "values": ["3"]}]}
    back = label_selector_from_dict(d)
    for labels in ({"a": "1"}, {"a": "2"}, {"a": "1", "b": "3"}, {}):
        assert back.matches(labels) == sel.matches(labels)


# =============================================================================================
# Node selectors
# =============================================================================================


def test_node_selector_terms_are_ored_and_empty_terms_match_nothing():
    ns = node_selector_from_dict({"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]},
                              {"key": "gpu", "operator": "DoesNotExist"}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]},
        {},
    ]})
    assert ns.matches({"zone": "a"}, "n9")
    assert not ns.matches({"zone": "a", "gpu": "1"}, "n9")
    assert ns.matches({"zone": "a", "gpu": "1"}, "n1")
    assert not ns.matches({}, "n2")
    assert not NodeSelectorTerm().matches({}, "n1")
    assert not NodeSelectorTerm().matches({"a": "b"})
    assert NodeSelectorTerm().empty
    assert not NodeSelector().matches({}, "n1")
    assert not NodeSelector((NodeSelectorTerm(),)).matches({"a": "b"}, "n1")
    assert node_selector_from_dict(node_selector_to_dict(ns)) == ns


def test_node_selector_gt_lt():
    term = node_selector_term_from_dict({"matchExpressions": [
        {"key": "cpu-gen", "operator": "Gt", "values": ["3"]},
        {"key": "cpu-gen", "operator": "Lt", "values": ["6"]}]})
    assert [term.matches({"cpu-gen": str(v)}) for v in range(2, 8)] == [
        False, False, True, True, False, False]
    assert not term.matches({"cpu-gen": "five"})
    assert not term.matches({})


def test_node_selector_match_fields():
    term = node_selector_term_from_dict({"matchFields": [
        {"key": "metadata.name", "operator": "NotIn", "values": ["n1"]}]})
    assert term.matches({}, "n2") and not term.matches({}, "n1")
    both = node_selector_term_from_dict({
        "matchExpressions": [{"key": "a", "operator": "Exists"}],
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]})
    assert both.matches({"a": ""}, "n1")
    assert not both.matches({"a": ""}, "n2")
    assert not both.matches({}, "n1")
    # The scheduler only checks matchFields against a node that has a name.
    assert term.matches({}, "") and both.matches({"a": "x"}, "")
    assert node_selector_term_to_dict(both) == {
        "matchExpressions": [{"key": "a", "operator": "Exists"}],
        "matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}


@pytest.mark.parametrize("d,field,fragment", [
    ({"nodeSelectorTerms": []}, "nodeSelectorTerms", "at least one"),
    ({}, "nodeSelectorTerms", "missing"),
    ({"nodeSelectorTerm": []}, "nodeSelectorTerm", "unknown field"),
    ({"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "a", "operator": "Gt", "values": ["1", "2"]}]}]},
     "nodeSelectorTerms[0].matchExpressions[0].values", "exactly one"),
    ({"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "a", "operator": "Lt", "values": ["ten"]}]}]},
     "nodeSelectorTerms[0].matchExpressions[0].values[0]", "integer"),
    ({"nodeSelectorTerms": [{}, {"matchExpressions": [
        {"key": "a", "operator": "Equals", "values": ["x"]}]}]},
     "nodeSelectorTerms[1].matchExpressions[0].operator", 'unknown operator "Equals"'),
    ({"nodeSelectorTerms": [{"matchExpressions": [
        {"key": "a", "operator": "In", "values": []}]}]},
     "nodeSelectorTerms[0].matchExpressions[0].values", "must not be empty"),
    ({"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.namespace", "operator": "In", "values": ["x"]}]}]},
     "nodeSelectorTerms[0].matchFields[0].key", "metadata.name"),
    ({"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["x", "y"]}]}]},
     "nodeSelectorTerms[0].matchFields[0].values", "exactly one"),
    ({"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "Exists"}]}]},
     "nodeSelectorTerms[0].matchFields[0].operator", "In or NotIn"),
    ({"nodeSelectorTerms": [{"matchFields": [
        {"key": "metadata.name", "operator": "In", "values": ["Node_1"]}]}]},
     "nodeSelectorTerms[0].matchFields[0].values[0]", "invalid node name"),
    ({"nodeSelectorTerms": [{"matchField": []}]},
     "nodeSelectorTerms[0].matchField", "unknown field"),
])
def test_node_selector_errors_name_field(d, field, fragment):
    with pytest.raises(SelectorError) as info:
        node_selector_from_dict(d)
    assert info.value.field == field
    assert fragment in info.value.message


def test_node_selector_term_rejects_string_only_operators():
    with pytest.raises(SelectorError, match="not allowed in a node selector term"):
        NodeSelectorTerm((Requirement("a", Operator.EQUALS, ("b",)),))
    with pytest.raises(SelectorError):
        FieldRequirement("metadata.name", Operator.EXISTS, "n1")
    with pytest.raises(SelectorError):
        FieldRequirement("spec.nodeName", Operator.IN, "n1")


def test_node_selector_map_matches():
    assert node_selector_map_matches({}, {"a": "b"})
    assert node_selector_map_matches(None, {})
    assert node_selector_map_matches({"a": "b"}, {"a": "b", "c": "d"})
    assert not node_selector_map_matches({"a": "b"}, {"a": "c"})
    assert not node_selector_map_matches({"a": "b", "c": "d"}, {"a": "b"})
    assert not node_selector_map_matches({"a": ""}, {})
    assert node_selector_map_matches({"a": ""}, {"a": ""})


# =============================================================================================
# Property tests
# =============================================================================================

_names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?", fullmatch=True)
_dns_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?", fullmatch=True)
_prefixes = st.lists(_dns_labels, min_size=1, max_size=3).map(".".join)
_random_keys = st.one_of(_names, st.builds(lambda p, n: f"{p}/{n}", _prefixes, _names))
# A small pool makes keys collide between selectors and label sets.
_KEY_POOL = ["a", "b", "in", "notin", "example.com/x", "Z_9"]
_keys = st.one_of(st.sampled_from(_KEY_POOL), _random_keys)
_VALUE_POOL = ["", "a", "b", "in", "notin", "0", "1", "5", "10", "007"]
_values = st.one_of(st.sampled_from(_VALUE_POOL), _names.filter(lambda v: len(v) <= 63))
_ints = st.one_of(st.integers(0, 20), st.integers(0, 2**63 - 1)).map(str)
_int_strings = st.one_of(_ints, st.builds(lambda z, i: "0" * z + i, st.integers(1, 3), _ints))
_LABEL_VALUE_POOL = _VALUE_POOL + ["-3", "+4", "x1", "99999999999999999999",
                                   "9223372036854775807", "-9223372036854775808", " 1"]
_label_values = st.one_of(st.sampled_from(_LABEL_VALUE_POOL), _values, _int_strings)
_labels = st.dictionaries(_keys, _label_values, max_size=6)

_SET, _EXACT, _UNARY, _NUMERIC = "set", "exact", "unary", "numeric"
_OP_KIND = {
    Operator.IN: _SET, Operator.NOT_IN: _SET,
    Operator.EQUALS: _EXACT, Operator.DOUBLE_EQUALS: _EXACT, Operator.NOT_EQUALS: _EXACT,
    Operator.EXISTS: _UNARY, Operator.DOES_NOT_EXIST: _UNARY,
    Operator.GREATER_THAN: _NUMERIC, Operator.LESS_THAN: _NUMERIC,
}


@st.composite
def _requirement_specs(draw, ops=tuple(Operator)):
    """(key, operator, values) triples, valid by construction."""
    key = draw(_keys)
    op = draw(st.sampled_from(ops))
    kind = _OP_KIND[op]
    if kind == _SET:
        values = draw(st.lists(_values, min_size=1, max_size=4))
    elif kind == _EXACT:
        values = [draw(_values)]
    elif kind == _NUMERIC:
        values = [draw(_int_strings)]
    else:
        values = []
    return key, op, values


_selectors = st.lists(_requirement_specs(), max_size=6).map(
    lambda specs: Selector(Requirement(k, op, vs) for k, op, vs in specs))


def _ref_int(text: str) -> int | None:
    """Reference Go ParseInt(text, 10, 64)."""
    body = text[1:] if text[:1] in ("+", "-") else text
    if not body or any(c not in "0123456789" for c in body):
        return None
    n = int(body)
    if text[:1] == "-":
        n = -n
    return n if -(2**63) <= n <= 2**63 - 1 else None


def _ref_requirement(key, op, values, labels) -> bool:
    """Reference semantics of one requirement, from the Kubernetes documentation."""
    has = key in labels
    if op in ("in", "=", "=="):
        return has and labels[key] in values
    if op in ("notin", "!="):
        return (not has) or labels[key] not in values
    if op == "exists":
        return has
    if op == "!":
        return not has
    if not has:
        return False
    label_number, bound = _ref_int(labels[key]), _ref_int(values[0])
    if label_number is None:
        return False
    return label_number > bound if op == "gt" else label_number < bound


@given(_selectors)
def test_property_string_round_trip(sel):
    assert parse_selector(str(sel)) == sel


@given(_selectors, _labels)
def test_property_matches_reference(sel, labels):
    expected = all(_ref_requirement(r.key, r.operator.value, list(r.values), labels)
                   for r in sel.requirements)
    assert sel.matches(labels) == expected


@given(st.lists(_requirement_specs(), max_size=5), _labels)
def test_property_spec_matches_reference(specs, labels):
    # Build from raw (unsorted, possibly duplicated) specs so the reference sees the input.
    sel = Selector(Requirement(k, op, vs) for k, op, vs in specs)
    expected = all(_ref_requirement(k, op.value, vs, labels) for k, op, vs in specs)
    assert sel.matches(labels) == expected


_SPACE = st.text(alphabet=" \t\r\n", max_size=2)
_SPACE1 = st.text(alphabet=" \t\r\n", min_size=1, max_size=2)


@given(st.lists(_requirement_specs(), max_size=5), st.data())
def test_property_whitespace_and_order_insensitive_parse(specs, data):
    """Render specs by hand with random whitespace between tokens; parsing must give the
    selector built directly from the specs."""
    symbol = {"=": "=", "==": "==", "!=": "!=", "gt": ">", "lt": "<"}
    parts = []
    for key, op, values in specs:
        ws = lambda: data.draw(_SPACE)  # noqa: E731
        ws1 = lambda: data.draw(_SPACE1)  # noqa: E731
        if op is Operator.EXISTS:
            text = ws() + key + ws()
        elif op is Operator.DOES_NOT_EXIST:
            text = ws() + "!" + ws() + key + ws()
        elif op in (Operator.IN, Operator.NOT_IN):
            # each value once: Requirement keeps a set, and the string syntax cannot repeat
            # the empty value ("a in (,,)" is an error in Kubernetes too)
            shuffled = data.draw(st.permutations(list(dict.fromkeys(values))))
            inner = ",".join(ws() + v + ws() for v in shuffled)
            text = ws() + key + ws1() + op.value + ws() + "(" + inner + ")" + ws()
        else:
            text = ws() + key + ws() + symbol[op.value] + ws() + values[0] + ws()
        parts.append(text)
    expected = Selector(Requirement(k, op, vs) for k, op, vs in specs)
    assert parse_selector(",".join(parts)) == expected


_dict_ops = st.sampled_from(["In", "NotIn", "Exists", "DoesNotExist"])


@st.composite
def _label_selector_dicts(draw):
    d = {}
    if draw(st.booleans()):
        d["matchLabels"] = draw(st.dictionaries(_keys, _values, max_size=4))
    if draw(st.booleans()):
        exprs = []
        for _ in range(draw(st.integers(0, 4))):
            op = draw(_dict_ops)
            expr = {"key": draw(_keys), "operator": op}
            if op in ("In", "NotIn"):
                expr["values"] = draw(st.lists(_values, min_size=1, max_size=3))
            elif draw(st.booleans()):
                expr["values"] = []
            exprs.append(expr)
        d["matchExpressions"] = exprs
    return d


def _ref_label_selector(d, labels) -> bool:
    if d is None:
        return False
    for k, v in (d.get("matchLabels") or {}).items():
        if k not in labels or labels[k] != v:
            return False
    for e in d.get("matchExpressions") or []:
        k, op, vs = e["key"], e["operator"], e.get("values") or []
        if op == "In" and not (k in labels and labels[k] in vs):
            return False
        if op == "NotIn" and k in labels and labels[k] in vs:
            return False
        if op == "Exists" and k not in labels:
            return False
        if op == "DoesNotExist" and k in labels:
            return False
    return True


@given(st.one_of(st.none(), _label_selector_dicts()), _labels)
def test_property_label_selector_dict(d, labels):
    sel = label_selector_from_dict(d)
    assert sel.matches(labels) == _ref_label_selector(d, labels)
    assert label_selector_from_dict(label_selector_to_dict(sel)) == sel


@given(_selectors, _labels)
def test_property_to_dict_preserves_semantics_of_any_selector(sel, labels):
    back = label_selector_from_dict(label_selector_to_dict(sel), allow_gt_lt=True)
    assert back.matches(labels) == sel.matches(labels)


_node_names = st.sampled_from(["", "n1", "n2", "node-3.example"])


@st.composite
def _node_term_dicts(draw):
    term = {}
    if draw(st.booleans()):
        exprs = []
        for key, op, values in draw(st.lists(_requirement_specs(
                ops=(Operator.IN, Operator.NOT_IN, Operator.EXISTS, Operator.DOES_NOT_EXIST,
                     Operator.GREATER_THAN, Operator.LESS_THAN)), max_size=3)):
            name = {"in": "In", "notin": "NotIn", "exists": "Exists", "!": "DoesNotExist",
                    "gt": "Gt", "lt": "Lt"}[op.value]
            expr = {"key": key, "operator": name}
            if values:
                expr["values"] = values
            exprs.append(expr)
        term["matchExpressions"] = exprs
    if draw(st.booleans()):
        term["matchFields"] = [
            {"key": "metadata.name", "operator": draw(st.sampled_from(["In", "NotIn"])),
             "values": [draw(st.sampled_from(["n1", "n2", "node-3.example"]))]}
            for _ in range(draw(st.integers(0, 2)))]
    return term


def _ref_node_term(term, labels, node_name) -> bool:
    exprs, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not exprs and not fields:
        return False
    op_names = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!",
                "Gt": "gt", "Lt": "lt"}
    for e in exprs:
        if not _ref_requirement(e["key"], op_names[e["operator"]], e.get("values") or [],
                                labels):
            return False
    if node_name:  # the scheduler ignores matchFields for a node without a name
        for f in fields:
            equal = node_name == f["values"][0]
            if equal != (f["operator"] == "In"):
                return False
    return True


@given(st.lists(_node_term_dicts(), min_size=1, max_size=3), _labels, _node_names)
def test_property_node_selector_matches_reference(terms, labels, node_name):
    d = {"nodeSelectorTerms": terms}
    ns = node_selector_from_dict(d)
    expected = any(_ref_node_term(t, labels, node_name) for t in terms)
    assert ns.matches(labels, node_name) == expected
    assert node_selector_from_dict(node_selector_to_dict(ns)) == ns


@given(st.text(alphabet="ab=!(),<>01 in\t", max_size=16))
def test_property_parser_never_crashes_and_round_trips(text):
    """Arbitrary input either parses (and then round-trips) or raises SelectorError."""
    try:
        sel = parse_selector(text)
    except SelectorError as err:
        assert "at position" in str(err)
        return
    assert parse_selector(str(sel)) == sel
