"""return_exceptions=True: a failed input's exception stands at its position and every
other result is kept, on every map-like call and mode (#15; asyncio.gather's name)."""

from __future__ import annotations

import pytest
from tasks import add, fail_on

import poolwise

MODES = ["serial", "threads", "processes", "auto"]


@pytest.mark.parametrize("mode", MODES)
def test_one_bad_input_no_longer_throws_away_the_rest(mode: str) -> None:
    results = poolwise.map(fail_on, range(10), mode=mode, return_exceptions=True)  # type: ignore[arg-type]
    assert [r for i, r in enumerate(results) if i != 5] == [x for x in range(10) if x != 5]
    assert isinstance(results[5], ValueError)
    assert str(results[5]) == "input 5 is bad"


@pytest.mark.parametrize("mode", ["threads", "processes"])
def test_every_map_like_call_takes_it(mode: str) -> None:
    with poolwise.Pool(mode, 2) as pool:  # type: ignore[arg-type]
        lazy = list(pool.imap(fail_on, range(7), return_exceptions=True))
        unordered = list(pool.imap_unordered(fail_on, range(7), return_exceptions=True))
        starred = pool.starmap(add, [(1, 2), (3, None)], return_exceptions=True)
    assert lazy[:5] == [0, 1, 2, 3, 4]
    assert isinstance(lazy[5], ValueError)
    assert lazy[6] == 6
    assert sum(isinstance(r, ValueError) for r in unordered) == 1
    assert starred[0] == 3
    assert isinstance(starred[1], TypeError)


def test_it_must_be_a_flag() -> None:
    with pytest.raises(TypeError, match="return_exceptions='yes' must be True or False"):
        poolwise.map(abs, [1], mode="serial", return_exceptions="yes")  # type: ignore[call-overload]
