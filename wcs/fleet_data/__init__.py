"""Postal-code centroids for planning own-fleet routes without online geocoding.

``postal_centroids.csv`` holds one approximate centre per postal code of the own
fleet's delivery areas (Berlin 10xxx-14xxx) and of central Shanghai (200xxx):
good to a kilometre or so, which is what a route plan needs for its order of stops
and its times; the courier navigates by the street address. An order's own
coordinates, when the shop sends them, always win over the table.

A code missing from the table is placed at the centre of the codes that share its
longest known prefix (at least ``MIN_PREFIX`` characters): "10116" lands in the
middle of 1011x. Anything further off is not guessed.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

from wcs.domain.carriers import normalise_postal_code
from wcs.domain.fleet import GeoPoint

MIN_PREFIX = 3
Source = Literal["postal_code", "postal_area"]


@dataclass(frozen=True, slots=True)
class Located:
    point: GeoPoint
    source: Source
    place: str


class PostalCentroids:
    def __init__(self, rows: Iterable[tuple[str, str, GeoPoint, str]]) -> None:
        self._exact: dict[tuple[str, str], tuple[GeoPoint, str]] = {}
        for country, code, point, place in rows:
            self._exact[(country.upper(), normalise_postal_code(code))] = (point, place)

    def __len__(self) -> int:
        return len(self._exact)

    def locate(self, country: str, postal_code: str) -> Located | None:
        country, code = country.upper(), normalise_postal_code(postal_code)
        hit = self._exact.get((country, code))
        if hit is not None:
            return Located(hit[0], "postal_code", hit[1])
        for length in range(len(code) - 1, MIN_PREFIX - 1, -1):
            prefix = code[:length]
            near = [
                (p, place)
                for (c, known), (p, place) in self._exact.items()
                if c == country and known.startswith(prefix)
            ]
            if near:
                lat = sum(p.lat for p, _ in near) / len(near)
                lon = sum(p.lon for p, _ in near) / len(near)
                return Located(GeoPoint(lat, lon), "postal_area", f"{prefix}… ({len(near)} codes)")
        return None

    def points(self, country: str) -> list[tuple[str, GeoPoint]]:
        country = country.upper()
        return sorted((code, p) for (c, code), (p, _) in self._exact.items() if c == country)


def parse(text: str) -> PostalCentroids:
    reader = csv.DictReader(io.StringIO(text))
    return PostalCentroids(
        (
            row["country"],
            row["postal_code"],
            GeoPoint(float(row["lat"]), float(row["lon"])),
            row["place"],
        )
        for row in reader
    )


@lru_cache(maxsize=1)
def centroids() -> PostalCentroids:
    """The shipped table (read once per process)."""
    text = resources.files(__name__).joinpath("postal_centroids.csv").read_text("utf-8")
    return parse(text)
