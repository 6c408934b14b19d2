"""The pure delivery bookkeeping: dedupe, low-water mark, settle window, restart state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worker.delivery.ledger import Checkpoint, Ledger, Progress, SeenIds, parse_db_time

SETTLE = 10.0


def anchored(last: int = 0, above: tuple[int, ...] = ()) -> Progress:
    progress = Progress(settle_s=SETTLE)
    progress.anchor(Checkpoint(last, above))
    return progress


def handled(progress: Progress, *items: tuple[int, float]) -> None:
    for event_id, created in items:
        progress.start(event_id, created)
        progress.finish(event_id)


# -- SeenIds ------------------------------------------------------------------------------


def test_seen_ids_reports_a_second_add_as_not_new() -> None:
    seen = SeenIds(3)
    assert seen.add(1) is True
    assert seen.add(1) is False
    assert 1 in seen


def test_seen_ids_forgets_the_least_recently_seen_beyond_capacity() -> None:
    seen = SeenIds(3)
    for event_id in (1, 2, 3):
        seen.add(event_id)
    seen.add(1)  # refreshed: 2 is now the oldest
    seen.add(4)
    assert 2 not in seen
    assert {1, 3, 4} <= {i for i in (1, 2, 3, 4) if i in seen}
    assert len(seen) == 3


@given(st.lists(st.integers(min_value=0, max_value=10_000), max_size=500))
def test_seen_ids_never_holds_more_than_its_capacity(ids: list[int]) -> None:
    seen = SeenIds(50)
    for event_id in ids:
        seen.add(event_id)
    assert len(seen) <= 50


# -- Progress: the low-water mark ----------------------------------------------------------


def test_low_water_stays_put_until_a_complete_pass_covers_settled_ids() -> None:
    progress = anchored(5)
    handled(progress, (7, 100.0), (9, 101.0))
    assert progress.low_water == 5  # finished, but no pass has shown nothing lies between
    progress.covered(db_now=120.0)
    assert progress.low_water == 9


def test_low_water_never_passes_an_id_created_inside_the_settle_window() -> None:
    progress = anchored(0)
    handled(progress, (1, 100.0), (2, 105.0))
    progress.covered(db_now=112.0)  # horizon 102: id 2 may still have a lower id committing
    assert progress.low_water == 1
    assert progress.scan_from == 1


def test_low_water_stops_below_the_lowest_id_still_in_flight() -> None:
    progress = anchored(0)
    handled(progress, (1, 100.0), (3, 100.2))
    progress.start(2, 100.1)
    progress.covered(db_now=200.0)
    assert progress.low_water == 1
    assert progress.scan_from == 3
    progress.finish(2)
    assert progress.low_water == 3


def test_gaps_between_finished_ids_are_passed_once_covered() -> None:
    progress = anchored(100)
    handled(progress, (150, 10.0), (420, 11.0))  # other orgs' ids in between
    progress.covered(db_now=30.0)
    assert progress.low_water == 420


def test_a_late_commit_below_a_finished_id_is_still_found_by_the_next_pass() -> None:
    # Id 11 was allocated before 12 but committed after it; 12 arrived live and finished.
    progress = anchored(10)
    handled(progress, (12, 100.0))
    progress.covered(db_now=105.0)  # a pass before 12 settles: it did not see 11
    assert progress.scan_from == 10  # so the next pass reads from 10 again, and finds 11
    progress.start(11, 99.9)
    progress.covered(db_now=111.0)
    assert progress.low_water == 10
    progress.finish(11)
    assert progress.low_water == 12


def test_the_horizon_only_moves_forward() -> None:
    progress = anchored(0)
    handled(progress, (1, 100.0))
    progress.covered(db_now=200.0)
    progress.covered(db_now=50.0)  # a slow, older pass reporting late
    assert progress.statistics().horizon == 190.0
    assert progress.low_water == 1


def test_cancelled_ids_hold_the_low_water_mark_so_a_restart_reads_them_again() -> None:
    progress = anchored(0)
    progress.start(1, 100.0)  # never finished: cancelled at shutdown
    handled(progress, (2, 100.1))
    progress.covered(db_now=500.0)
    assert progress.checkpoint() == Checkpoint(0, (2,))


def test_nothing_moves_before_the_checkpoint_is_loaded() -> None:
    progress = Progress(settle_s=SETTLE)
    handled(progress, (7, 100.0))
    progress.covered(db_now=500.0)
    assert progress.low_water == 0
    assert not progress.anchored


def test_ids_at_or_below_the_loaded_checkpoint_are_forgotten() -> None:
    progress = Progress(settle_s=SETTLE)
    progress.start(3, 100.0)  # a live event that arrived before the checkpoint was read
    progress.start(8, 100.0)
    progress.anchor(Checkpoint(5))
    assert not progress.knows(3)
    assert progress.knows(8)


# -- Progress: restart state --------------------------------------------------------------


def test_restored_handled_ids_are_known_and_saved_again() -> None:
    progress = anchored(10, (12, 15))
    assert progress.knows(12)
    assert not progress.knows(11)
    assert progress.checkpoint() == Checkpoint(10, (12, 15))


def test_restored_ids_move_the_scan_once_a_pass_reports_their_created_at() -> None:
    progress = anchored(10, (12,))
    progress.covered(db_now=500.0)
    assert progress.scan_from == 10  # created_at unknown: not settled
    progress.note(12, 100.0)
    progress.covered(db_now=500.0)
    assert progress.low_water == 12
    assert progress.checkpoint() == Checkpoint(12, ())


def test_checkpoint_keeps_the_lowest_ids_up_to_the_limit() -> None:
    progress = anchored(0)
    progress.start(1, 100.0)
    handled(progress, *((i, 100.0) for i in range(2, 12)))
    assert progress.checkpoint(limit=3) == Checkpoint(0, (2, 3, 4))


# -- Ledger --------------------------------------------------------------------------------


def test_ledger_dedupes_dispatched_and_restored_ids_but_not_others() -> None:
    ledger = Ledger(settle_s=SETTLE)
    ledger.progress.anchor(Checkpoint(10, (12,)))
    ledger.dispatched(13, 100.0)
    assert ledger.is_duplicate(13)
    assert ledger.is_duplicate(12)
    assert not ledger.is_duplicate(14)
    assert not ledger.is_duplicate(9)  # at or below L and not seen: a late live copy runs


def test_ledger_still_dedupes_after_the_low_water_mark_passes_an_id() -> None:
    ledger = Ledger(settle_s=SETTLE)
    ledger.progress.anchor(Checkpoint(0))
    ledger.dispatched(1, 100.0)
    ledger.finished(1)
    ledger.progress.covered(db_now=500.0)
    assert ledger.progress.low_water == 1
    assert ledger.is_duplicate(1)


def test_ledger_lag_is_head_minus_low_water() -> None:
    ledger = Ledger(settle_s=SETTLE)
    ledger.progress.anchor(Checkpoint(40))
    ledger.head = 55
    assert ledger.lag == 15


# -- times ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2026-11-26T10:00:00.12+00:00", 1795687200.12),
        ("2026-11-26T11:00:00+01:00", 1795687200.0),
        ("2026-11-26T10:00:00Z", 1795687200.0),
        ("2026-11-26 10:00:00", 1795687200.0),
    ],
)
def test_parse_db_time_reads_postgres_timestamps(text: str, seconds: float) -> None:
    assert parse_db_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [None, 7, "yesterday"])
def test_parse_db_time_gives_none_for_anything_else(value: object) -> None:
    assert parse_db_time(value) is None


# -- live ids: they dedupe, but only ids read from the outbox move a mark -------------------


def test_a_forged_live_id_never_becomes_the_checkpoint() -> None:
    # An org admin broadcast an outbox-shaped payload: id 10**12, created long ago.
    ledger = Ledger(settle_s=SETTLE)
    ledger.progress.anchor(Checkpoint(10))
    ledger.dispatched_live(10**12)
    ledger.finished(10**12)
    ledger.progress.covered(db_now=500.0)
    assert ledger.is_duplicate(10**12)  # a second copy is still skipped
    assert ledger.progress.scan_from == 10
    assert ledger.progress.checkpoint() == Checkpoint(10, ())


def test_a_live_id_counts_once_a_pass_reads_it_from_the_outbox() -> None:
    ledger = Ledger(settle_s=SETTLE)
    ledger.progress.anchor(Checkpoint(10))
    ledger.dispatched_live(12)
    ledger.finished(12)
    assert ledger.progress.checkpoint() == Checkpoint(10, ())  # not yet: unconfirmed
    ledger.confirmed(12, 100.0)  # the outbox's created_at, not the frame's
    assert ledger.progress.checkpoint() == Checkpoint(10, (12,))
    ledger.progress.covered(db_now=500.0)
    assert ledger.progress.checkpoint() == Checkpoint(12, ())


def test_a_live_id_in_flight_holds_the_low_water_mark_until_it_finishes() -> None:
    progress = anchored(0)
    handled(progress, (1, 100.0), (3, 100.2))
    progress.start_live(2)
    progress.covered(db_now=200.0)
    assert progress.low_water == 1  # a crash now re-reads 2
    progress.confirm(2, 100.1)  # read by a pass while still in flight
    assert progress.low_water == 1
    progress.finish(2)
    progress.covered(db_now=200.0)
    assert progress.low_water == 3


def test_unconfirmed_finished_live_ids_are_bounded() -> None:
    progress = Progress(settle_s=SETTLE, max_unconfirmed=3)
    progress.anchor(Checkpoint(0))
    for event_id in range(10**12, 10**12 + 10):
        progress.start_live(event_id)
        progress.finish(event_id)
    assert progress.unconfirmed == 3
    assert progress.knows(10**12 + 9)
    assert progress.checkpoint() == Checkpoint(0, ())


def test_live_ids_at_or_below_the_checkpoint_are_forgotten_when_it_loads() -> None:
    progress = Progress(settle_s=SETTLE)
    progress.start_live(3)
    progress.start_live(8)
    progress.anchor(Checkpoint(5, (8,)))
    assert not progress.knows(3)
    assert progress.unconfirmed == 0
    assert progress.checkpoint() == Checkpoint(5, (8,))
