"""Tracking numbers derived from the sequence by a keyed permutation: not consecutive, still
unique, still checked by their Verhoeff digit, and never equal to a number from before the key."""

from __future__ import annotations

import itertools
import secrets
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session, select

from ivr.tickets.db import make_engine, upgrade
from ivr.tickets.models import TrackingKey
from ivr.tickets.tracking import (
    FIRST_BODY,
    SPACE,
    is_valid_tracking,
    keyed_sequence,
    keyed_tracking,
    permute,
    tracking_from_sequence,
)

KEY = bytes.fromhex("00112233445566778899aabbccddeeff" * 2)


def test_a_permutation_of_a_small_range_is_a_bijection() -> None:
    for size in (1, 2, 7, 1000, 4096):
        assert sorted(permute(n, KEY, size) for n in range(size)) == list(range(size))


def test_keyed_numbers_are_unique_valid_and_reversible_on_a_sample() -> None:
    sample = [*range(20_000), *range(SPACE - 1000, SPACE)]
    numbers = [keyed_tracking(n, KEY, 0) for n in sample]
    assert len(set(numbers)) == len(numbers)
    assert all(len(n) == 10 and is_valid_tracking(n) for n in numbers)
    assert [keyed_sequence(number, KEY, 0) for number in numbers] == sample


def test_neighbours_in_the_sequence_are_far_apart() -> None:
    bodies = [int(keyed_tracking(n, KEY, 0)[:-1]) for n in range(2001)]
    gaps = sorted(abs(a - b) for a, b in itertools.pairwise(bodies))
    assert gaps[len(gaps) // 2] > 10_000_000  # the median step: millions, not one
    assert sum(1 for gap in gaps if gap < 1000) <= 2


def test_another_key_gives_other_numbers() -> None:
    other = secrets.token_bytes(32)
    same = sum(keyed_tracking(n, KEY, 0) == keyed_tracking(n, other, 0) for n in range(1000))
    assert same <= 1


def test_keyed_numbers_stay_clear_of_the_consecutive_ones_before_them() -> None:
    legacy_end = 5000
    old = {tracking_from_sequence(n) for n in range(legacy_end)}
    new = [keyed_tracking(n, KEY, legacy_end) for n in range(30_000)]
    assert not old & set(new)
    assert all(int(n[:-1]) >= FIRST_BODY + legacy_end for n in new)
    assert keyed_sequence(tracking_from_sequence(10), KEY, legacy_end) is None


def test_the_upgrade_makes_one_key_past_every_reserved_block(tmp_path: Path) -> None:
    """A database from before 0009 with tickets numbered consecutively: they keep their numbers,
    and the key's legacy_end lies past every block reserved so far."""
    url = f"sqlite:///{tmp_path}/ivr.db"
    upgrade(url, "0006")
    engine = make_engine(url)
    with engine.begin() as c:
        for node in ("a", "b", "a"):
            c.execute(
                text("INSERT INTO tracking_block (node, allocated_at) VALUES (:n, '2026-01-01')"),
                {"n": node},
            )
    upgrade(url)
    with Session(engine) as session:
        (key,) = session.exec(select(TrackingKey)).all()
    assert key.legacy_end == 3 * 1000 + 1000
    assert len(bytes.fromhex(key.secret)) == 32
    other = tmp_path / "other"
    other.mkdir()
    second = f"sqlite:///{other}/ivr.db"
    upgrade(second)
    with Session(make_engine(second)) as session:
        fresh = session.exec(select(TrackingKey)).one()
    assert fresh.legacy_end == 0 and fresh.secret != key.secret  # one secret per database
