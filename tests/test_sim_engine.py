"""The discrete-event engine, virtual time formats and the controller work queue."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schedbench.errors import InputError
from schedbench.sim.controller import Context, Controller, SimConfig, split_key
from schedbench.sim.engine import (PRIO_CONTROLLER, PRIO_WATCH, Engine, SimulationError,
                                   event_cancelled, event_time)
from schedbench.sim.store import Conflict, Store
from schedbench.sim.timefmt import EPOCH, parse_duration, seconds, stamp

# ---- engine ------------------------------------------------------------------------------


@given(st.lists(st.tuples(st.integers(0, 5), st.sampled_from([0, 10, 20, 30])),
                min_size=1, max_size=40))
def test_events_run_in_time_priority_insertion_order(specs):
    engine = Engine()
    ran = []
    for i, (t, prio) in enumerate(specs):
        engine.at(float(t), ran.append, i, priority=prio)
    engine.run()
    expected = sorted(range(len(specs)), key=lambda i: (specs[i][0], specs[i][1], i))
    assert ran == expected
    assert engine.now == max(t for t, _ in specs)
    assert engine.steps == len(specs)


@given(st.lists(st.booleans(), min_size=1, max_size=30))
def test_cancelled_events_never_run(cancel_flags):
    engine = Engine()
    ran = []
    events = [engine.at(float(i % 4), ran.append, i) for i in range(len(cancel_flags))]
    for ev, cancel in zip(events, cancel_flags):
        if cancel:
            engine.cancel(ev)
            engine.cancel(ev)  # idempotent
    engine.run()
    assert ran == sorted((i for i, c in enumerate(cancel_flags) if not c),
                         key=lambda i: (i % 4, i))
    assert all(event_cancelled(ev) for ev in events)


def test_events_scheduled_while_running_join_the_order():
    engine = Engine()
    ran = []

    def first():
        ran.append("first")
        engine.after(0.0, ran.append, "same-time-later", priority=PRIO_WATCH)
        engine.at(engine.now, ran.append, "same-time-earlier-prio", priority=0)

    engine.at(1.0, first, priority=PRIO_CONTROLLER)
    engine.at(1.0, ran.append, "queued-before", priority=PRIO_CONTROLLER)
    engine.run()
    # (1, 0) and (1, 10) outrank the already queued (1, 20) event
    assert ran == ["first", "same-time-earlier-prio", "same-time-later", "queued-before"]


def test_run_until_stops_and_sets_the_clock():
    engine = Engine()
    ran = []
    for t in (1.0, 2.0, 3.0):
        engine.at(t, ran.append, t)
    assert engine.run(until=2.5) == 2.5
    assert ran == [1.0, 2.0]
    assert engine.peek() == 3.0
    assert engine.pending == 1
    assert engine.run() == 3.0
    assert ran == [1.0, 2.0, 3.0]
    assert engine.run(until=10.0) == 10.0
    assert engine.peek() is None


def test_run_until_includes_events_at_the_limit_and_on_step_can_stop():
    engine = Engine()
    ran = []
    for t in (1.0, 2.0, 2.0, 5.0):
        engine.at(t, ran.append, t)
    engine.run(until=2.0)
    assert ran == [1.0, 2.0, 2.0]
    engine.at(3.0, ran.append, 3.0)
    engine.run(on_step=lambda now: now >= 3.0)
    assert ran[-1] == 3.0 and engine.now == 3.0 and engine.peek() == 5.0


def test_step_and_peek_skip_cancelled_events():
    engine = Engine()
    ran = []
    ev = engine.at(1.0, ran.append, "a")
    engine.at(2.0, ran.append, "b")
    engine.cancel(ev)
    assert engine.peek() == 2.0
    assert engine.step() is True
    assert ran == ["b"] and engine.now == 2.0
    assert engine.step() is False
    engine.cancel(ev)  # after it was dropped: still a no-op
    assert event_time(ev) == 1.0


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_scheduling_into_the_past_or_at_bad_times_fails(bad):
    engine = Engine(start=0.0)
    with pytest.raises(SimulationError):
        engine.at(bad, print)
    with pytest.raises(SimulationError):
        engine.after(bad, print)


def test_times_from_millisecond_stamps_may_lie_just_before_now():
    engine = Engine(start=10.0)
    ran = []
    engine.at(10.0 - 0.0004, ran.append, "rounded")
    with pytest.raises(SimulationError):
        engine.at(10.0 - 0.002, print)
    engine.run()
    assert ran == ["rounded"] and engine.now == 10.0


def test_engine_rng_is_seeded():
    a, b, c = Engine(seed=7), Engine(seed=7), Engine(seed=8)
    assert a.rng.integers(0, 1 << 30, 5).tolist() == b.rng.integers(0, 1 << 30, 5).tolist()
    assert a.rng.integers(0, 1 << 30, 5).tolist() != c.rng.integers(0, 1 << 30, 10)[5:].tolist()


# ---- time formats ------------------------------------------------------------------------


def test_stamp_formats_rfc3339_with_milliseconds():
    assert stamp(0) == "2026-01-01T00:00:00.000Z"
    assert stamp(5) == "2026-01-01T00:00:05.000Z"
    assert stamp(86400 + 3661.2345) == "2026-01-02T01:01:01.234Z"
    assert EPOCH.year == 2026


@given(st.integers(0, 10 ** 11))
def test_seconds_inverts_stamp_to_the_millisecond(ms):
    assert seconds(stamp(ms / 1000)) == pytest.approx(ms / 1000, abs=1e-9)


def test_seconds_reads_offsets_and_rejects_garbage():
    assert seconds("2026-01-01T01:00:00+01:00") == 0.0
    assert seconds("2026-01-01T00:00:01.5Z") == 1.5
    with pytest.raises(InputError):
        seconds("yesterday")
    with pytest.raises(InputError):
        seconds("2026-02-30T00:00:00Z")


@pytest.mark.parametrize(("text", "expected"), [
    ("90s", 90.0), ("5m", 300.0), ("2h", 7200.0), ("1h30m", 5400.0), ("1.5s", 1.5),
    ("250ms", 0.25), ("1h0m30s", 3630.0), (12.5, 12.5), (3, 3.0), ("30", 30.0), ("0", 0.0)])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("bad", ["", "5x", "-5s", "m5", "1h-3m", True, None, -1, math.inf,
                                 "5 m", "s"])
def test_parse_duration_rejects_bad_input(bad):
    with pytest.raises(InputError):
        parse_duration(bad, field="spec.x")


# ---- controller work queue ---------------------------------------------------------------


class Recorder(Controller):
    name = "recorder"

    def __init__(self, ctx, fail_times=0):
        super().__init__(ctx)
        self.seen: list[tuple[float, str]] = []
        self.fail_times = fail_times

    def reconcile(self, key):
        self.seen.append((self.engine.now, key))
        if self.fail_times:
            self.fail_times -= 1
            raise Conflict("stale")


def _ctx():
    engine = Engine()
    return Context(engine, Store(engine), SimConfig())


def test_enqueue_deduplicates_queued_keys():
    ctx = _ctx()
    c = Recorder(ctx)
    for _ in range(5):
        c.enqueue("ns/a")
    c.enqueue("ns/b")
    assert c.is_queued("ns/a")
    ctx.engine.run()
    assert c.seen == [(0.0, "ns/a"), (0.0, "ns/b")]
    assert not c.is_queued("ns/a")


def test_enqueue_after_keeps_the_earliest_wait():
    ctx = _ctx()
    c = Recorder(ctx)
    c.enqueue("k", 10.0)
    c.enqueue("k", 5.0)
    c.enqueue("k", 7.0)
    ctx.engine.run()
    assert c.seen == [(5.0, "k")]


def test_delayed_and_immediate_requests_both_run():
    ctx = _ctx()
    c = Recorder(ctx)
    c.enqueue("k", 5.0)
    c.enqueue("k")
    ctx.engine.run()
    assert c.seen == [(0.0, "k"), (5.0, "k")]


def test_conflict_is_retried_with_exponential_backoff():
    ctx = _ctx()
    c = Recorder(ctx, fail_times=3)
    c.enqueue("k")
    ctx.engine.run()
    times = [t for t, _ in c.seen]
    assert times == pytest.approx([0.0, 0.005, 0.015, 0.035])


def test_split_key():
    assert split_key("ns/name") == ("ns", "name")
    assert split_key("node-1") == ("", "node-1")
