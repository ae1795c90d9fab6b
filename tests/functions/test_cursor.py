"""chat.cursor's rules, directly: id order, the id generator's steps, and cursor round trips."""

from __future__ import annotations

import pytest
from chat import cursor
from chat.cursor import Cursor, IdGenerator, id_time_ms, lowest_id_at

T = 1_780_000_000_000  # a millisecond in 2026
ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32, as the ids use


def base32_value(text: str) -> int:
    number = 0
    for char in text:
        number = number * 32 + ALPHABET.index(char)
    return number


def test_ids_of_one_millisecond_sort_in_the_order_issued() -> None:
    """Several ids in the same millisecond are strictly increasing and all keep that millisecond."""
    ids = IdGenerator()
    issued = [ids.new_id(T) for _ in range(50)]
    assert issued == sorted(issued)
    assert len(set(issued)) == len(issued)
    assert {id_time_ms(i) for i in issued} == {T}


def test_the_same_millisecond_steps_the_random_part_by_one() -> None:
    """The next id in the same millisecond is the previous one plus one in its last digit."""
    ids = IdGenerator()
    first, second = ids.new_id(T), ids.new_id(T)
    assert base32_value(second[10:]) == base32_value(first[10:]) + 1


def test_a_clock_stepping_back_never_makes_an_id_go_backwards() -> None:
    """An earlier clock reading still yields a larger id, stamped with the latest millisecond seen."""
    ids = IdGenerator()
    later = ids.new_id(T + 1000)
    earlier_clock = ids.new_id(T)
    assert earlier_clock > later
    assert id_time_ms(earlier_clock) == T + 1000


def test_a_new_millisecond_starts_a_fresh_random_part() -> None:
    """Ids of a later millisecond sort after every id of an earlier one."""
    ids = IdGenerator()
    burst = [ids.new_id(T) for _ in range(5)]
    assert ids.new_id(T + 1) > max(burst)


def test_two_generators_in_one_millisecond_do_not_collide() -> None:
    """Two processes (two Lambdas) stamping the same millisecond get different ids."""
    first = {IdGenerator().new_id(T) for _ in range(200)}
    assert len(first) == 200


def test_lowest_id_at_bounds_every_id_of_that_millisecond() -> None:
    """lowest_id_at(t) is at or below every id stamped at t, and above every id stamped before."""
    ids = IdGenerator()
    assert lowest_id_at(T) <= ids.new_id(T)
    assert IdGenerator().new_id(T - 1) < lowest_id_at(T)
    assert lowest_id_at(-5) == lowest_id_at(0)


def test_a_cursor_round_trips_through_its_text() -> None:
    """encode then decode gives back the same position and floor."""
    cursor = Cursor(after=IdGenerator().new_id(T), floor_ms=T - 30_000)
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize(
    "text",
    [
        "",
        "c1",
        "c2.01ARZ3NDEKTSV4RRFFQ69G5FAV.0",
        "c1.not-an-id.0",
        "c1.01ARZ3NDEKTSV4RRFFQ69G5FAV.",
        "x" * 80,
    ],
)
def test_text_the_server_never_issued_is_no_cursor(text: str) -> None:
    """Garbage, another version's prefix and a malformed id decode to None."""
    assert Cursor.decode(text) is None


def test_a_floor_past_the_position_is_refused() -> None:
    """A cursor whose floor lies after its own id was never issued: it decodes to None."""
    after = IdGenerator().new_id(T)
    assert Cursor.decode(Cursor(after=after, floor_ms=T).encode()) is not None
    assert Cursor.decode(Cursor(after=after, floor_ms=T + 1).encode()) is None


def test_a_live_cursor_floor_sits_the_overlap_before_its_id() -> None:
    """for_live puts the floor exactly overlap_ms before the id's millisecond, never below zero."""
    message_id = IdGenerator().new_id(T)
    assert Cursor.for_live(message_id, 30_000) == Cursor(after=message_id, floor_ms=T - 30_000)
    early = IdGenerator().new_id(10)
    assert Cursor.for_live(early, 30_000).floor_ms == 0


def test_the_largest_random_part_still_has_room_to_step(monkeypatch: pytest.MonkeyPatch) -> None:
    """Even when the random draw is all ones, stepping within a millisecond keeps ids 26 characters."""
    monkeypatch.setattr(cursor.os, "urandom", lambda size: b"\xff" * size)
    ids = IdGenerator()
    issued = [ids.new_id(T) for _ in range(3)]
    assert [len(i) for i in issued] == [26, 26, 26]
    assert issued == sorted(issued)
    assert all(Cursor.decode(Cursor(after=i, floor_ms=T).encode()) for i in issued)


def test_the_first_id_of_a_generator_keeps_any_clock_reading() -> None:
    """A new generator stamps exactly the time it is given, even the earliest ones."""
    assert id_time_ms(IdGenerator().new_id(0)) == 0
    assert id_time_ms(IdGenerator().new_id(1)) == 1


def test_lowest_ids_are_clamped_to_the_48_bit_clock() -> None:
    """Before time 0 is the all-zero id; past the last 48-bit millisecond is that millisecond's."""
    assert lowest_id_at(0) == "0" * 26
    assert lowest_id_at(-1) == "0" * 26
    assert lowest_id_at(2**60) == "7ZZZZZZZZZ" + "0" * 16
    assert lowest_id_at(2**48 - 1) == lowest_id_at(2**60)


def test_cursors_are_values() -> None:
    """A cursor cannot be changed once made and can key a dict, like the string it encodes."""
    cursor = Cursor(after=IdGenerator().new_id(T), floor_ms=T)
    assert {cursor: 1}[Cursor(after=cursor.after, floor_ms=T)] == 1
    with pytest.raises(AttributeError):
        cursor.floor_ms = 0  # type: ignore[misc]


def test_an_id_draws_79_random_bits_leaving_as_many_steps_of_headroom(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The largest draw is 2**79 - 1, so the 80-bit random part can step 2**79 times without wrapping."""
    monkeypatch.setattr(cursor.os, "urandom", lambda size: b"\xff" * size)
    assert base32_value(IdGenerator().new_id(T)[10:]) == 2**79 - 1


@pytest.mark.parametrize("last_byte", [0xFF, 0xFE, 0xFD])
def test_steps_from_near_the_largest_draw_keep_the_order(
    monkeypatch: pytest.MonkeyPatch, last_byte: int
) -> None:
    """Draws just below the top still step forward within a millisecond, never wrapping around."""
    monkeypatch.setattr(cursor.os, "urandom", lambda size: b"\xff" * (size - 1) + bytes([last_byte]))
    ids = IdGenerator()
    issued = [ids.new_id(T) for _ in range(4)]
    assert issued == sorted(issued)
    assert len(set(issued)) == 4


def test_two_generators_starting_at_time_zero_draw_different_ids() -> None:
    """The first id is always drawn at random, even at the clock's first millisecond."""
    assert len({IdGenerator().new_id(0) for _ in range(20)}) == 20


# ---- the arithmetic of sync ----------------------------------------------------------------------

OVERLAP = 30_000
NOW = T + 3_600_000


def test_the_settled_time_is_the_overlap_before_now() -> None:
    """Writes stamped before now minus the overlap have landed; nothing is assumed about later ones."""
    assert cursor.settled_ms(NOW, OVERLAP) == NOW - OVERLAP
    assert cursor.settled_ms(NOW, 0) == NOW


def test_advancing_past_a_message_raises_the_floor_to_its_time() -> None:
    """A message stamped before the settled time moves the floor to its own millisecond."""
    held = Cursor(after=lowest_id_at(T), floor_ms=T)
    message_id = IdGenerator().new_id(T + 500)
    assert cursor.advance(held, message_id, settled=T + 1000) == Cursor(after=message_id, floor_ms=T + 500)


def test_the_floor_never_rises_past_the_settled_time() -> None:
    """A message newer than the settled time moves the position to it but the floor only to the
    settled time: a write stamped just before it may still be landing."""
    held = Cursor(after=lowest_id_at(T), floor_ms=T)
    message_id = IdGenerator().new_id(T + 5_000)
    moved = cursor.advance(held, message_id, settled=T + 2_000)
    assert moved == Cursor(after=message_id, floor_ms=T + 2_000)


def test_advancing_never_moves_a_cursor_back() -> None:
    """A repeat (an id at or before the position) leaves the position and a higher floor alone."""
    ids = IdGenerator()
    early, late = ids.new_id(T), ids.new_id(T + 10_000)
    held = Cursor(after=late, floor_ms=T + 8_000)
    assert cursor.advance(held, early, settled=NOW) == held


def test_replay_positions_are_the_running_advance() -> None:
    """Each replayed message's cursor is the one before it advanced past that message."""
    ids = IdGenerator()
    replayed = [ids.new_id(T + n * 1_000) for n in range(1, 5)]
    held = Cursor(after=lowest_id_at(T), floor_ms=T)
    settled = T + 2_500
    positions = cursor.replay_positions(held, replayed, settled)
    assert [p.after for p in positions] == replayed
    assert [p.floor_ms for p in positions] == [T + 1_000, T + 2_000, settled, settled]
    assert cursor.replay_positions(held, [], settled) == []


def test_a_finished_sync_moves_the_floor_up_to_the_settled_time() -> None:
    """After a sync that found nothing more, floor and position both stand at the settled time at least."""
    message_id = IdGenerator().new_id(T)
    held = Cursor(after=message_id, floor_ms=T - OVERLAP)
    settled = T + 60_000
    assert cursor.settle(held, settled) == Cursor(after=lowest_id_at(settled), floor_ms=settled)


def test_a_finished_sync_keeps_a_position_past_the_settled_time() -> None:
    """When the client already holds a message newer than the settled time, its position stays."""
    message_id = IdGenerator().new_id(T + 10_000)
    held = Cursor(after=message_id, floor_ms=T)
    assert cursor.settle(held, T + 5_000) == Cursor(after=message_id, floor_ms=T + 5_000)


def test_recent_history_holds_everything_before_its_first_message() -> None:
    """Without `since`, the client holds all stamped before the first replayed message, or before
    the settled time when there is none."""
    first = IdGenerator().new_id(T)
    assert cursor.held_before_latest(first, settled=NOW) == Cursor(after=lowest_id_at(T), floor_ms=T)
    assert cursor.held_before_latest(None, settled=NOW) == Cursor(after=lowest_id_at(NOW), floor_ms=NOW)


def test_a_cursor_more_than_a_minute_ahead_is_from_the_future() -> None:
    """Up to 60 s of clock skew is tolerated, in the position or the floor; one millisecond more is not."""
    at_edge = Cursor(after=lowest_id_at(NOW + 60_000), floor_ms=0)
    past_edge = Cursor(after=lowest_id_at(NOW + 60_001), floor_ms=0)
    assert cursor.FUTURE_TOLERANCE_MS == 60_000
    assert not cursor.is_from_future(at_edge, NOW)
    assert cursor.is_from_future(past_edge, NOW)
    assert cursor.is_from_future(Cursor(after=lowest_id_at(0), floor_ms=NOW + 60_001), NOW)
    assert not cursor.is_from_future(Cursor(after=lowest_id_at(NOW), floor_ms=NOW), NOW, tolerance_ms=0)
    assert not cursor.is_from_future(Cursor(after=lowest_id_at(T), floor_ms=T - OVERLAP), NOW)


def test_a_floor_within_retention_is_complete_and_one_before_it_is_not() -> None:
    """Retention counts whole days of milliseconds: 7 days ago is complete, a millisecond earlier not."""
    week_ms = 7 * 86_400_000
    at_retention = Cursor(after=lowest_id_at(NOW), floor_ms=NOW - week_ms)
    past_retention = Cursor(after=lowest_id_at(NOW), floor_ms=NOW - week_ms - 1)
    assert cursor.is_complete(at_retention, NOW, retention_days=7)
    assert not cursor.is_complete(past_retention, NOW, retention_days=7)
    ten_minutes_ago = Cursor(after=lowest_id_at(NOW), floor_ms=NOW - 11 * 60_000)
    assert cursor.is_complete(ten_minutes_ago, NOW, retention_days=1)
