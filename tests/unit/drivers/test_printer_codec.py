"""~HS host status strings and ZPL checks."""

from __future__ import annotations

import pytest

from drivers.frame import BadFrame
from drivers.printer.codec import (
    HostStatus,
    HostStatusReader,
    check_zpl,
    decode_host_status,
    encode_host_status,
)

# A real-looking ~HS answer: paper out (string 1, field 2) and head up (string 2, field 3).
PAPER_OUT_HEAD_UP = (
    b"\x02030,1,0,1245,000,0,0,0,000,0,0,0\x03\r\n"
    b"\x02001,0,1,0,1,2,6,0,00000000,1,000\x03\r\n"
    b"\x021234,0\x03\r\n"
)
ALL_CLEAR = (
    b"\x02030,0,0,1245,000,0,0,0,000,0,0,0\x03\r\n"
    b"\x02001,0,0,0,1,2,6,0,00000000,1,000\x03\r\n"
    b"\x021234,0\x03\r\n"
)


def test_reads_paper_out_and_head_up() -> None:
    (status,) = HostStatusReader().feed(PAPER_OUT_HEAD_UP)
    assert isinstance(status, HostStatus)
    assert status.paper_out and status.head_up
    assert not status.paused and not status.ribbon_out
    assert status.detail == "paper out, head open"


def test_all_clear_has_no_detail() -> None:
    (status,) = HostStatusReader().feed(ALL_CLEAR)
    assert isinstance(status, HostStatus)
    assert status.faults() == []
    assert status.detail is None


@pytest.mark.parametrize(
    ("status", "detail"),
    [
        (HostStatus(paper_out=False, paused=True, head_up=False, ribbon_out=False), "paused"),
        (HostStatus(paper_out=False, paused=False, head_up=False, ribbon_out=True), "ribbon out"),
        (
            HostStatus(paper_out=True, paused=True, head_up=True, ribbon_out=True),
            "paper out, head open, ribbon out, paused",
        ),
    ],
)
def test_round_trip(status: HostStatus, detail: str) -> None:
    (decoded,) = HostStatusReader().feed(encode_host_status(status))
    assert decoded == status
    assert isinstance(decoded, HostStatus) and decoded.detail == detail


def test_split_across_reads_at_every_point() -> None:
    for cut in range(len(PAPER_OUT_HEAD_UP) + 1):
        reader = HostStatusReader()
        out = reader.feed(PAPER_OUT_HEAD_UP[:cut]) + reader.feed(PAPER_OUT_HEAD_UP[cut:])
        assert len(out) == 1 and isinstance(out[0], HostStatus) and out[0].paper_out, cut


def test_two_answers_back_to_back() -> None:
    out = HostStatusReader().feed(ALL_CLEAR + PAPER_OUT_HEAD_UP)
    assert [isinstance(s, HostStatus) and s.paper_out for s in out] == [False, True]


def test_lost_string_resynchronises() -> None:
    # string 2 lost on the way: string 3 arrives where string 2 is due
    broken = PAPER_OUT_HEAD_UP.split(b"\r\n")
    stream = broken[0] + b"\r\n" + broken[2] + b"\r\n" + ALL_CLEAR
    out = HostStatusReader().feed(stream)
    assert isinstance(out[0], BadFrame) and "out of order" in out[0].reason
    assert isinstance(out[-1], HostStatus) and out[-1].detail is None


@pytest.mark.parametrize(
    ("stream", "reason"),
    [
        (b"garbage\x02030,0,0\x03", "outside a ~HS status string"),
        (b"\x02030,0,0,1245\x02", "without ETX"),
        (b"\x02" + b"9" * 200, "too long"),
    ],
)
def test_bad_strings(stream: bytes, reason: str) -> None:
    out = HostStatusReader().feed(stream)
    assert any(isinstance(o, BadFrame) and reason in o.reason for o in out)


def test_flag_that_is_not_a_flag() -> None:
    with pytest.raises(BadFrame, match="paper out flag is 'X'"):
        decode_host_status((b"030,X,0", b"001,0,0,0", b"1234,0"))
    with pytest.raises(BadFrame, match="fields"):
        decode_host_status((b"030", b"001,0,0,0", b"1234,0"))


def test_short_strings_from_old_firmware_are_accepted() -> None:
    status = decode_host_status((b"030,1,1", b"001,0,0,1", b"1234"))
    assert status.paper_out and status.paused and status.ribbon_out and not status.head_up


@pytest.mark.parametrize(
    ("zpl", "problem"),
    [
        ("^XA^FO50,50^BCN,100,Y,N,N,D^FD(00)106141411234567897^FS^XZ", None),
        ("^XA^FDone^FS^XZ^XA^FDtwo^FS^XZ", None),
        ("^xa^fdlower case^fs^xz", None),
        ("^FDno start^FS^XZ", "no ^XA"),
        ("^XA^FDnot closed^FS", "not closed"),
        ("^XZ^XA", "^XZ before ^XA"),
    ],
)
def test_check_zpl(zpl: str, problem: str | None) -> None:
    found = check_zpl(zpl)
    assert found == problem if problem is None else problem in (found or "")
