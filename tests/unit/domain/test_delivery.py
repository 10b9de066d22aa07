"""Pure delivery decisions: tracking states, image sniffing, parcel estimate, returns, money."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from wcs.domain.delivery import (
    COURIER_STATUSES,
    TRACKING_STATES,
    Item,
    ReturnWish,
    check_return,
    delivery_due,
    describe_bytes,
    estimate_parcel,
    from_minor_units,
    notice_channel,
    own_fleet_label,
    public_text,
    return_label,
    sniff_image,
    target_state,
    to_minor_units,
)
from wcs.domain.states import OrderState, find_transition
from wcs.errors import ValidationFailed


def _image(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (_image("JPEG"), "image/jpeg"),
        (_image("PNG"), "image/png"),
        (_image("WEBP"), "image/webp"),
        (_image("GIF"), None),
        (_image("BMP"), None),
        (b"%PDF-1.7\n...", None),
        (b"hello, I am text\n", None),
        (b"RIFF\x00\x00\x00\x00WAVEfmt ", None),  # RIFF, but audio
        (b"\xff\xd8", None),  # too short to be a JPEG
        (b"", None),
    ],
)
def test_images_are_recognised_by_their_first_bytes(data: bytes, expected: str | None) -> None:
    assert sniff_image(data) == expected


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"%PDF-1.4", "PDF"),
        (_image("GIF"), "GIF"),
        (b"\x00\x00\x00\x18ftypheic\x00", "HEIC"),
        (b"PK\x03\x04rest", "ZIP"),
        (b"", "empty"),
        (b"plain words", "text"),
        (b"\x00\xff\xfe\x80", "binary"),
    ],
)
def test_refused_files_are_described_for_the_courier(data: bytes, words: str) -> None:
    assert words in describe_bytes(data)


def test_every_tracking_status_maps_to_a_state_reachable_in_the_machine() -> None:
    for status, state in TRACKING_STATES.items():
        assert status == state  # the names are the states' names
        assert any(find_transition(src, state) for src in OrderState), status
    assert target_state("cancelled") is None
    assert "delivered" not in COURIER_STATUSES  # delivery needs a proof
    assert public_text("delivered") == "Delivered"
    assert public_text("made-up") == "Status update"


def test_delivery_promise_per_service() -> None:
    shipped = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    assert delivery_due("same_day", shipped) == shipped + timedelta(hours=12)
    assert delivery_due("express", shipped) == shipped + timedelta(days=1)
    assert delivery_due("standard", shipped) == shipped + timedelta(days=3)
    assert delivery_due("unknown", shipped) == shipped + timedelta(days=3)


def test_parcel_estimate_stacks_items_and_adds_a_carton() -> None:
    parcel = estimate_parcel([Item(400, (90, 220, 160), 2), Item(100, (50, 300, 20), 1)])
    assert parcel.weight_g == 150 + 800 + 100
    assert parcel.dims_mm == (320.0, 180.0, 90 * 2 + 20 + 20)
    with pytest.raises(ValidationFailed):
        estimate_parcel([])


@given(
    st.lists(
        st.tuples(
            st.floats(1, 5000),
            st.tuples(st.integers(1, 800), st.integers(1, 800), st.integers(1, 800)),
            st.integers(1, 5),
        ),
        min_size=1,
        max_size=6,
    )
)
def test_parcel_estimate_holds_every_item(
    items: list[tuple[float, tuple[int, int, int], int]],
) -> None:
    parcel = estimate_parcel([Item(w, d, q) for w, d, q in items])
    assert parcel.weight_g >= sum(w * q for w, _, q in items)
    box = sorted(parcel.dims_mm, reverse=True)
    for _, dims, _ in items:
        assert all(b >= d for b, d in zip(box, sorted(dims, reverse=True), strict=True))


def test_return_quantities_are_checked_against_delivered_and_already_returned() -> None:
    delivered = {1: 3, 2: 1}
    assert check_return(delivered, {}, [ReturnWish(1, 3, "x"), ReturnWish(2, 1, "y")]) == []
    problems = check_return(
        delivered,
        {1: 2},
        [
            ReturnWish(1, 2, "x"),
            ReturnWish(3, 1, "y"),
            ReturnWish(2, 0, "z"),
            ReturnWish(2, 1, "w"),
        ],
    )
    assert problems == [
        "line 1: 2 to return but only 1 of 3 delivered are not already being returned",
        "order has no line 3 (lines: 1, 2)",
        "line 2: quantity must be at least 1",
        "line 2 is listed twice; give one entry per line",
    ]


@pytest.mark.parametrize(
    ("amount", "cents"), [("19.99", 1999), ("0", 0), ("5", 500), ("1234567.10", 123456710)]
)
def test_money_in_minor_units(amount: str, cents: int) -> None:
    assert to_minor_units(Decimal(amount)) == cents
    assert from_minor_units(cents) == Decimal(amount).quantize(Decimal("0.01"))


@pytest.mark.parametrize(("amount", "words"), [("1.999", "two decimals"), ("-1", "negative")])
def test_money_refuses_what_it_would_have_to_round(amount: str, words: str) -> None:
    with pytest.raises(ValidationFailed, match=words):
        to_minor_units(Decimal(amount))


def test_labels_are_zpl_and_cannot_be_broken_by_address_text() -> None:
    label = own_fleet_label("OF000000000042", "express", ["Eve ^XZ~JR", "Main St 1", "", "Berlin"])
    assert label.startswith("^XA") and label.endswith("^XZ")
    assert label.count("^XZ") == 1 and "~JR" not in label
    assert "^FDOF000000000042^FS" in label
    rma = return_label("rma_1", ["Eve"], ["Returns desk"])
    assert "^FDrma_1^FS" in rma and rma.count("^XA") == 1


def test_notice_channel_prefers_email_then_text_message() -> None:
    assert notice_channel("a@b.c", "+49 1") == "email"
    assert notice_channel(None, "+49 1") == "sms"
    assert notice_channel(None, None) == "none"
