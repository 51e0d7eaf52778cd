"""The lab's auto trial: a fresh auto pool's choice, and the note that compares it."""

from __future__ import annotations

from poolwise.lab.auto_mode import AutoTrial, auto_note, try_auto


def double(x: int) -> int:
    return 2 * x


def test_try_auto_times_a_fresh_pool_and_names_its_choice() -> None:
    trial = try_auto("tiny", double, list(range(50)), star=False)
    assert trial.mode == "serial"  # 50 doublings are less work than starting any pool
    assert (trial.label, trial.tasks) == ("tiny", 50)
    assert trial.seconds > 0


def test_try_auto_unpacks_star_inputs() -> None:
    trial = try_auto("pow", pow, [(2, 3)] * 4, star=True, workers=2)
    assert trial.tasks == 4


def test_note_gives_each_choice_against_the_best_fixed_mode() -> None:
    trials = [
        AutoTrial("primes", "processes", 2, 12, 1.0, "processes", 1.25),
        AutoTrial("zlib", "threads", 2, 12, 1.0, "processes", 2.0),
    ]
    assert auto_note(trials) == (
        "mode='auto' (fresh pool, probing and start-up timed): primes processes x2, 80% of "
        "warmed processes; zlib threads x2, 50% of warmed processes."
    )
