"""The postal-code centroid table the own fleet plans with."""

from __future__ import annotations

from wcs.fleet_data import MIN_PREFIX, centroids, parse


def test_postal_centroids() -> None:
    table = centroids()
    assert len(table) > 200
    for code, point in table.points("DE"):
        assert code[:2] in ("10", "12", "13", "14"), code
        assert 52.33 < point.lat < 52.68 and 13.08 < point.lon < 13.77, (code, point)
    shanghai = table.points("CN")
    assert shanghai and all(code.startswith("200") for code, _ in shanghai)
    assert all(30.9 < p.lat < 31.5 and 121.1 < p.lon < 121.9 for _, p in shanghai)
    exact = table.locate("de", "10115")
    assert exact is not None and exact.source == "postal_code" and "Mitte" in exact.place
    near = table.locate("DE", "10116")
    assert near is not None and near.source == "postal_area"
    assert abs(near.point.lat - exact.point.lat) < 0.02
    assert table.locate("DE", "80331") is None  # Munich: not the own fleet's, not guessed
    assert table.locate("CN", "200 120") is not None
    assert MIN_PREFIX >= 3
    small = parse("country,postal_code,lat,lon,place\nDE,10115,52.53,13.38,Mitte\n")
    assert small.locate("DE", "10999") is None  # shares only "10": too far to guess
