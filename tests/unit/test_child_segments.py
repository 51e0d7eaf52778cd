"""backends/child/segments.py: a chunk's big buffers named, parsed and mapped copy-on-write."""

from __future__ import annotations

from poolwise.backends.child.segments import describe, map_buffers, parse
from poolwise.shared import create_segment


def test_a_chunks_segments_round_trip_and_map_copy_on_write() -> None:
    assert parse(describe([("/a", 3), ("/b c", 10)])) == [("/a", 3), ("/b c", 10)]
    segment = create_segment(4)
    try:
        segment.mapping[:4] = b"abcd"
        [view] = map_buffers(describe([(segment.name, 4)]))
        view[0] = ord("z")  # the task's own copy
        assert bytes(view) == b"zbcd"
        assert bytes(segment.mapping[:4]) == b"abcd"
        view.release()
    finally:
        segment.release()
