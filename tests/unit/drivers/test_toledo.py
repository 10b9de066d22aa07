"""Toledo continuous output frames, with and without checksum, split anywhere."""

from __future__ import annotations

import pytest

from drivers.frame import BadFrame
from drivers.scale.toledo import ToledoFramer, checksum, decode_frame, encode_frame

# A frame as printed in indicator manuals: 12.345 kg stable gross, tare 0.
# SWA 0x35 = 0b0110101: bit 5 fixed, decimal code 101 (XXX.XXX); SWB 0x30: bit 5 fixed,
# bit 4 kg; SWC 0x20: bit 5 fixed.
FRAME = b"\x02\x35\x30\x20012345000000\r"


def test_decode_known_frame() -> None:
    reading = decode_frame(FRAME)
    assert reading.grams == 12345.0
    assert reading.tare_grams == 0.0
    assert reading.stable and not reading.net and not reading.out_of_range
    assert reading.unit == "kg"


@pytest.mark.parametrize(
    ("swa", "swb", "swc", "digits", "grams", "stable"),
    [
        (0x32, 0x20, 0x20, b"000100", 100 * 453.59237, True),  # x1 lb
        (0x33, 0x30, 0x20, b"012345", 1234.5 * 1000, True),  # XXXXX.X kg
        (0x32, 0x20, 0x21, b"001500", 1500.0, True),  # grams via word C
        (0x34, 0x3A, 0x20, b"000150", -1500.0, False),  # XXXX.XX kg, negative, motion
        (0x31, 0x30, 0x20, b"000012", 120_000.0, True),  # XXXXX0 kg
        (0xB5, 0xB0, 0xA0, b"001000", 1000.0, True),  # parity bits set: ignored
        (0x32, 0x20, 0x21, b"   250", 250.0, True),  # blanked leading digits
    ],
)
def test_status_words(
    swa: int, swb: int, swc: int, digits: bytes, grams: float, stable: bool
) -> None:
    reading = decode_frame(bytes([2, swa, swb, swc]) + digits + b"\r")
    assert reading.grams == pytest.approx(grams)
    assert reading.stable is stable
    assert reading.tare_grams is None


def test_flags() -> None:
    reading = decode_frame(
        encode_frame(1.0, net=True, out_of_range=True, tare=0.2, with_checksum=False)
    )
    assert reading.net and reading.out_of_range
    assert reading.tare_grams == 200.0


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"\x02\x35\x30\x20012\r", "STX \\+ 9 or 15 bytes"),
        (b"\x02\x15\x30\x20012345000000\r", "fixed bit 5"),
        (b"\x02\x35\x30\x2001A345000000\r", "not digits"),
        (b"\x02\x35\x30\x27012345000000\r", "unit code 7"),
    ],
)
def test_refuses(frame: bytes, reason: str) -> None:
    with pytest.raises(BadFrame, match=reason):
        decode_frame(frame)


def test_checksum_makes_the_7_bit_sum_zero() -> None:
    frame = encode_frame(12.345)
    assert sum(b & 0x7F for b in frame) % 128 == 0
    assert frame[-1] == checksum(frame[:-1])


@pytest.mark.parametrize("mode", [True, None])
def test_framer_with_checksums_split_everywhere(mode: bool | None) -> None:
    stream = encode_frame(1.0) + encode_frame(2.0, stable=False) + encode_frame(3.0)
    for cut in range(len(stream) + 1):
        framer = ToledoFramer(checksum=mode)
        out = framer.feed(stream[:cut]) + framer.feed(stream[cut:]) + framer.feed(b"\x02")
        assert [r.grams for r in out if not isinstance(r, BadFrame)] == [1000, 2000, 3000], cut
        assert not [r for r in out if isinstance(r, BadFrame)]


@pytest.mark.parametrize("mode", [False, None])
def test_framer_without_checksums(mode: bool | None) -> None:
    frames = [encode_frame(v, with_checksum=False) for v in (1.0, 2.0, 3.0)]
    framer = ToledoFramer(checksum=mode)
    out = framer.feed(b"".join(frames) + b"\x02")
    assert [r.grams for r in out if not isinstance(r, BadFrame)] == [1000, 2000, 3000]


def test_framer_bad_checksum_and_garbage() -> None:
    good = encode_frame(1.0)
    broken = good[:-1] + bytes([(good[-1] + 1) & 0x7F])
    out = ToledoFramer(checksum=True).feed(b"noise" + broken + good)
    assert isinstance(out[0], BadFrame) and "outside a Toledo frame" in out[0].reason
    assert isinstance(out[1], BadFrame) and "checksum" in out[1].reason
    assert not isinstance(out[2], BadFrame) and out[2].grams == 1000


def test_framer_cut_short_frame_resyncs() -> None:
    out = ToledoFramer(checksum=True).feed(b"\x02\x35\x30" + encode_frame(4.0))
    assert isinstance(out[0], BadFrame) and "cut short" in out[0].reason
    assert not isinstance(out[1], BadFrame) and out[1].grams == 4000


def test_framer_never_grows_without_cr() -> None:
    framer = ToledoFramer(checksum=True)
    out = framer.feed(b"\x02" + b"1" * 100)
    assert any(isinstance(r, BadFrame) for r in out)
    assert len(framer._buf) < 40
