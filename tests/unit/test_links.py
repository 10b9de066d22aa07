"""Signed customer links: made for one purpose and one order, refused with the reason
when changed, cut off, used for another purpose or expired."""

from __future__ import annotations

import time

import pytest

from wcs.links import LIFETIME, LinkRefused, Links

SECRET = "k" * 40


def test_a_link_reads_back_its_purpose_order_and_ref() -> None:
    links = Links(SECRET)
    token = links.make("label", "o123", "R9")
    link = links.read("label", token)
    assert (link.purpose, link.order_id, link.ref) == ("label", "o123", "R9")
    assert links.make("label", "o123") != links.make("label", "o123")  # each has its own id


@pytest.mark.parametrize(
    "change",
    [
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature changed
        lambda t: t[: len(t) // 2],  # cut off
        lambda t: "x" + t,  # payload changed
        lambda t: "",
    ],
)
def test_a_changed_link_is_refused_as_tampered(change: object) -> None:
    links = Links(SECRET)
    token = links.make("receipt", "o1")
    with pytest.raises(LinkRefused) as refused:
        links.read("receipt", change(token))  # type: ignore[operator]
    assert refused.value.why == "tampered"


def test_every_other_spelling_of_the_signatures_last_character_is_refused() -> None:
    """Base64's last character of a 32-byte signature carries two bits no decoder reads:
    three other characters decode to the same bytes, and none of them may open the link."""
    links = Links(SECRET)
    for _ in range(20):
        token = links.make("receipt", "o1")
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        for other in alphabet.replace(token[-1], ""):
            with pytest.raises(LinkRefused) as refused:
                links.read("receipt", token[:-1] + other)
            assert refused.value.why == "tampered"


def test_a_link_for_one_purpose_does_not_open_another() -> None:
    links = Links(SECRET)
    with pytest.raises(LinkRefused) as refused:
        links.read("resolution", links.make("receipt", "o1"))
    assert refused.value.why == "tampered"
    with pytest.raises(LinkRefused):
        Links("another secret" * 3).read("receipt", links.make("receipt", "o1"))


def test_links_expire_after_their_lifetime() -> None:
    life = LIFETIME["backorder"].total_seconds()
    old = Links(SECRET, clock=lambda: time.time() - life - 5).make("backorder", "o1")
    with pytest.raises(LinkRefused) as refused:
        Links(SECRET).read("backorder", old)
    assert refused.value.why == "expired"
    fresh = Links(SECRET, clock=lambda: time.time() - life + 60).make("backorder", "o1")
    assert Links(SECRET).read("backorder", fresh).order_id == "o1"
