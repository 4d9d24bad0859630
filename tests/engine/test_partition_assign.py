"""Rendezvous assignment of partitions to executors: one owner each, few moves when members change."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.partitions import assign
from eventstore import subjects as S

members = st.lists(
    st.text("abcdefghij0123456789", min_size=1, max_size=8), min_size=1, max_size=6, unique=True
)


@given(members)
def test_every_partition_has_exactly_one_live_owner(names: list[str]) -> None:
    owners = assign(names)
    assert sorted(owners) == list(range(S.PARTITIONS))
    assert set(owners.values()) <= set(names)


@given(members)
def test_every_executor_computes_the_same_assignment(names: list[str]) -> None:
    assert assign(names) == assign(list(reversed(names)))


@given(members, st.text("klmnop", min_size=1, max_size=8))
def test_a_joining_executor_only_takes_partitions_for_itself(names: list[str], newcomer: str) -> None:
    before, after = assign(names), assign([*names, newcomer])
    moved = [p for p in before if before[p] != after[p]]
    assert all(after[p] == newcomer for p in moved)


@given(members)
def test_a_leaving_executor_only_gives_up_its_own(names: list[str]) -> None:
    if len(names) < 2:
        return
    gone = names[0]
    before, after = assign(names), assign(names[1:])
    assert all(before[p] == gone for p in before if before[p] != after[p])


def test_no_member_no_owner() -> None:
    assert assign([]) == {}


def test_two_executors_share_the_work() -> None:
    owners = list(assign(["x1", "x2"]).values())
    assert 0 < owners.count("x1") < S.PARTITIONS
