"""Line framing: CR, CRLF and auto, with frames split across reads at every point."""

from __future__ import annotations

import pytest

from drivers.frame import LineFramer, Overlong


def feed_all(framer: LineFramer, *chunks: bytes) -> list[bytes | Overlong]:
    out: list[bytes | Overlong] = []
    for chunk in chunks:
        out.extend(framer.feed(chunk))
    return out


@pytest.mark.parametrize(
    ("terminator", "stream", "lines"),
    [
        ("CR", b"ABC\rDEF\r", [b"ABC", b"DEF"]),
        ("CR", b"ABC\r\nDEF\r\n", [b"ABC", b"DEF"]),  # a CRLF scanner on a CR port
        ("CR", b"A\nB\r", [b"A\nB"]),  # a lone LF is data in CR mode
        ("CRLF", b"ABC\r\nDEF\r\n", [b"ABC", b"DEF"]),
        ("CRLF", b"ABC\rDEF\r\n", [b"ABC\rDEF"]),  # strict: a lone CR is not a line end
        ("auto", b"ABC\rDEF\r\nGHI\nJKL\r", [b"ABC", b"DEF", b"GHI", b"JKL"]),
        ("auto", b"\r\n\r\nABC\r\n\r\n", [b"ABC"]),  # empty lines are dropped
        ("auto", b"ABC", []),  # no terminator yet
    ],
)
def test_whole_stream(terminator: str, stream: bytes, lines: list[bytes]) -> None:
    assert feed_all(LineFramer(terminator), stream) == lines  # type: ignore[arg-type]


@pytest.mark.parametrize("terminator", ["CR", "CRLF", "auto"])
def test_every_split_point_gives_the_same_lines(terminator: str) -> None:
    stream = b"]C100106141411234567897\r\n]E04006381333931\r\nX\r\n"
    expected = [b"]C100106141411234567897", b"]E04006381333931", b"X"]
    for cut in range(len(stream) + 1):
        framer = LineFramer(terminator)  # type: ignore[arg-type]
        assert feed_all(framer, stream[:cut], stream[cut:]) == expected, cut
    # and one byte at a time
    framer = LineFramer(terminator)  # type: ignore[arg-type]
    assert feed_all(framer, *[bytes([b]) for b in stream]) == expected


def test_crlf_split_between_reads_is_not_an_empty_line_or_a_prefix() -> None:
    framer = LineFramer("auto")
    assert framer.feed(b"ABC\r") == [b"ABC"]
    assert framer.feed(b"\nDEF\r") == [b"DEF"]
    assert framer.feed(b"\n") == []
    assert framer.pending == 0


def test_overlong_line_is_reported_once_and_the_stream_recovers() -> None:
    framer = LineFramer("CR", max_line=16)
    out = feed_all(framer, b"X" * 10, b"Y" * 10, b"Z" * 30, b"\rOK\r")
    assert len(out) == 2
    assert isinstance(out[0], Overlong)
    assert out[0].raw == b"X" * 10 + b"Y" * 6
    assert out[1] == b"OK"
    assert framer.pending == 0


def test_overlong_line_inside_one_chunk() -> None:
    out = LineFramer("auto", max_line=4).feed(b"ABCDEFGH\rOK\r")
    assert isinstance(out[0], Overlong)
    assert out[1:] == [b"OK"]


def test_unknown_terminator_is_refused() -> None:
    with pytest.raises(ValueError, match="terminator"):
        LineFramer("LF")  # type: ignore[arg-type]
