"""The physical side of a simulated shift: articles, shelves, totes and parcels.

The system keeps books (stock per location, reservations, packages); the world holds
the things themselves. The people of :mod:`device_sim.people` move them, and act on
the system only through the simulated devices and a handheld's view of the API, the
way warehouse staff do. After a shift the two can be compared: every unit that was put
away is on a shelf, in a tote, in a parcel or in the damage bin, and every shelf holds
what the system says it holds.

- An :class:`Article` has the catalogue data the system is told (weight, size, EAN)
  and the weight a real unit has on a scale, which differs a little.
- A shelf holds units of one article. Units that turn out to be damaged when a picker
  reaches for them go to the damage bin: the shelf holds fewer *good* units than the
  system believes, which is what a short pick is.
- A tote holds the units put in it; each unit remembers the shelf it came from, so a
  QC failure can put it back where it belongs.
- With reserve (:func:`plan_slotting` ``reserve=True``) every pick location of a
  stocked article is a pick face with a minimum and a maximum, filled to its maximum,
  and the rest of the article's stock waits on a reserve shelf (``R-...``) until a
  replenishment move brings it to a face.
- Shelves drift (:meth:`World.drift`): since their last count some piles have lost
  units (broken, fallen behind the shelf, taken) and some had units put away at
  another location of the same article. Nobody has told the system; a pick at such a
  pile finds fewer units than the books say, a count finds the difference.
- One person at a shelf at a time (:meth:`World.at_shelf`): whoever takes, puts or
  counts units holds the shelf until the system has booked what they did, so a count
  never sees units in someone's hands that the books still show on the shelf.

Randomness is keyed: :meth:`World.rng` gives a generator seeded by the run's seed and a
key such as ``("pick", "EXT-000042", "SKU-MUG", 1)``, so a decision about an order is
the same in every run with that seed, however the shift's timing interleaves.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field

from device_sim.gs1 import ean13, tote_barcode


@dataclass(frozen=True)
class Article:
    sku: str
    name: str
    weight_g: float  # as the catalogue says
    true_weight_g: float  # as one unit weighs on a scale
    dims_mm: tuple[int, int, int]
    barcode: str  # EAN-13 printed on the unit


@dataclass(frozen=True)
class Unit:
    article: Article
    home: str  # the location it was taken from


@dataclass
class Shelf:
    location: str
    sku: str
    units: int = 0


@dataclass
class Tote:
    code: str
    units: list[Unit] = field(default_factory=list)
    # The order the handheld paired this tote with when it was scanned at the cart.
    order_id: str | None = None


@dataclass(frozen=True)
class Parcel:
    sscc: str
    order_id: str
    units: tuple[Unit, ...]
    carton: str


@dataclass(frozen=True)
class Census:
    """Where the units of one article are; ``received`` is what was ever put away."""

    sku: str
    received: int
    on_shelves: int
    in_totes: int
    in_parcels: int
    damaged: int
    lost: int = 0  # drifted away unseen (:meth:`World.drift`)

    @property
    def accounted(self) -> int:
        return self.on_shelves + self.in_totes + self.in_parcels + self.damaged + self.lost


@dataclass(frozen=True)
class Face:
    """A pick location assigned to one article, refilled from reserve between its
    minimum and its maximum (what ``PUT /api/v1/faces/{location}`` is told)."""

    location: str
    sku: str
    min_qty: int
    max_qty: int


@dataclass(frozen=True)
class Drift:
    """How far shelves drift from the books between counts: the share of piles that
    lost units, and of piles with units put away at another location of the same
    article; each loses at most ``most`` of its units (at least one)."""

    lost: float = 0.0
    misplaced: float = 0.0
    most: float = 0.3

    def __post_init__(self) -> None:
        for name in ("lost", "misplaced", "most"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"drift {name} must be within 0..1, got {value}")


@dataclass(frozen=True)
class Drifted:
    """One pile that drifted: ``units`` gone from ``location`` (lost, or to ``to``)."""

    location: str
    sku: str
    units: int
    to: str | None = None  # misplaced there; None: lost


# name, catalogue weight (g), size (mm). Everyday e-commerce goods, from a charging
# cable to a board game, so cartons and weight tolerances both matter.
_GOODS: tuple[tuple[str, float, tuple[int, int, int]], ...] = (
    ("Ceramic mug 350 ml", 340.0, (110, 90, 95)),
    ("Cotton T-shirt, M", 180.0, (300, 220, 20)),
    ("Paperback novel", 290.0, (198, 129, 25)),
    ("USB-C cable 1 m", 45.0, (120, 80, 15)),
    ("Desk lamp", 1150.0, (380, 160, 140)),
    ("Wool socks, 2 pairs", 120.0, (200, 100, 30)),
    ("Steel bottle 750 ml", 390.0, (270, 75, 75)),
    ("Plant pot 14 cm", 520.0, (150, 150, 130)),
    ("Headphones", 260.0, (200, 170, 80)),
    ("Scented candle", 410.0, (100, 100, 110)),
    ("Bath towel", 600.0, (350, 250, 60)),
    ("Board game", 1400.0, (300, 300, 80)),
)


@dataclass(frozen=True)
class Slotting:
    """Which article lives where, and how many units are put away before the shift.

    ``slow_movers`` start with empty shelves: orders for them wait (backordered) until
    goods-in books a receipt.
    """

    articles: tuple[Article, ...]
    homes: dict[str, str]  # location -> sku
    opening: dict[str, int]  # location -> units put away before the shift
    slow_movers: frozenset[str]
    faces: tuple[Face, ...] = ()
    reserves: frozenset[str] = frozenset()  # reserve locations (also in ``homes``)

    def locations_of(self, sku: str) -> list[str]:
        return sorted(loc for loc, s in self.homes.items() if s == sku)

    def put_away_at(self, sku: str) -> str:
        """Where goods-in shelves an article: its reserve, else its first location."""
        places = self.locations_of(sku)
        return next((loc for loc in places if loc in self.reserves), places[0])

    @property
    def fast_movers(self) -> list[str]:
        return [a.sku for a in self.articles if a.sku not in self.slow_movers]


def plan_slotting(
    locations: Sequence[str],
    *,
    expected_orders: int,
    seed: int,
    units_per_order: float = 3.0,
    slow_movers: int = 1,
    reserve: bool = False,
) -> Slotting:
    """Articles for ``locations`` (one article per location, the first few on two).

    Opening stock covers the expected demand with a margin, split between an article's
    locations as a small pile and a big one (the reservation rule empties small piles
    first, so both get picked from). With ``reserve`` each stocked article's pick
    locations are faces filled to their maximum (about a third of its stock between
    them, at least 6 units each; the minimum a third of the maximum) and the rest
    waits on a reserve shelf of its own, ``R-01-nn-1``.
    """
    if len(locations) < 2:
        raise ValueError("a shift needs at least two pick locations")
    rng = random.Random(f"{seed}:slotting")
    count = min(len(_GOODS), max(2, len(locations) * 3 // 4))
    articles = []
    for n, (name, weight, dims) in enumerate(_GOODS[:count], start=1):
        # Real units are never exactly the catalogue weight: within +/-1.5 %.
        true_weight = round(weight * (1 + rng.uniform(-0.015, 0.015)), 1)
        sku = f"SKU-{n:03d}"
        articles.append(Article(sku, name, weight, true_weight, dims, ean13(f"4006381{n:05d}")))
    places = sorted(locations)
    rng.shuffle(places)
    homes: dict[str, str] = {}
    for n, location in enumerate(places):
        homes[location] = articles[n % len(articles)].sku
    slow = frozenset(a.sku for a in articles[len(articles) - slow_movers :])
    fast = [a.sku for a in articles if a.sku not in slow]
    per_sku = math.ceil(expected_orders * units_per_order / max(len(fast), 1) * 1.3) + 6
    opening: dict[str, int] = {}
    for sku in fast:
        piles = sorted(loc for loc, s in homes.items() if s == sku)
        if len(piles) == 1:
            opening[piles[0]] = per_sku
            continue
        small = max(4, per_sku // 4)
        opening[piles[0]] = small
        for extra in piles[1:]:
            opening[extra] = max(4, (per_sku - small) // (len(piles) - 1))
    for location, sku in homes.items():
        if sku in slow:
            opening[location] = 0
    if not reserve:
        return Slotting(tuple(articles), homes, opening, slow)
    faces: list[Face] = []
    reserves: set[str] = set()
    for n, sku in enumerate(fast, start=1):
        piles = sorted(loc for loc, s in homes.items() if s == sku)
        total = sum(opening[loc] for loc in piles)
        most = max(6, math.ceil(total / (3 * len(piles))))
        for location in piles:
            faces.append(Face(location, sku, max(1, most // 3), most))
            opening[location] = min(most, total)
            total -= opening[location]
        back = f"R-01-{n:02d}-1"
        homes[back] = sku
        opening[back] = total
        reserves.add(back)
    return Slotting(tuple(articles), homes, opening, slow, tuple(faces), frozenset(reserves))


class World:
    """The physical floor: shelves, totes, parcels, the damage bin."""

    def __init__(self, slotting: Slotting, seed: int) -> None:
        self.seed = seed
        self.slotting = slotting
        self.articles = {a.sku: a for a in slotting.articles}
        self.by_barcode = {a.barcode: a for a in slotting.articles}
        self.shelves = {loc: Shelf(loc, sku) for loc, sku in slotting.homes.items()}
        self.totes: dict[str, Tote] = {}
        self.parcels: dict[str, Parcel] = {}
        self.outbound: list[Parcel] = []
        self.parked: list[str] = []  # totes and parcels left in the exception area
        self.received: Counter[str] = Counter()
        self.damaged: Counter[str] = Counter()
        self.damaged_at: Counter[str] = Counter()  # per location
        self.lost: Counter[str] = Counter()  # per article
        # Per location: units that came or went without the system being told.
        self.drifted: Counter[str] = Counter()
        self._held: dict[str, asyncio.Lock] = {}
        self.external_ids: dict[str, str] = {}
        self._free_totes: deque[str] = deque()
        self._tote_numbers = 0

    def rng(self, *key: object) -> random.Random:
        return random.Random(":".join([str(self.seed), *map(str, key)]))

    # -- orders as the paperwork names them --------------------------------------------

    def register_order(self, order_id: str, external_id: str) -> None:
        """The shop's reference for an order (printed on the pick list and packing slip)."""
        self.external_ids[order_id] = external_id

    def reference(self, order_id: str) -> str:
        return self.external_ids.get(order_id, order_id)

    # -- shelves -----------------------------------------------------------------------

    def put_away(self, location: str, qty: int) -> Shelf:
        """Goods-in puts ``qty`` units of the location's article on its shelf."""
        if qty <= 0:
            raise ValueError(f"put-away quantity must be positive, got {qty}")
        shelf = self.shelves[location]
        shelf.units += qty
        self.received[shelf.sku] += qty
        return shelf

    def take(self, location: str, qty: int) -> list[Unit]:
        """Take up to ``qty`` units off a shelf (fewer when it holds fewer)."""
        shelf = self.shelves[location]
        taken = min(qty, shelf.units)
        shelf.units -= taken
        article = self.articles[shelf.sku]
        return [Unit(article, location) for _ in range(taken)]

    def put_back(self, units: Iterable[Unit]) -> None:
        for unit in units:
            self.shelves[unit.home].units += 1

    def damage(self, location: str, qty: int) -> int:
        """``qty`` units on the shelf turn out to be unsellable: into the damage bin."""
        shelf = self.shelves[location]
        binned = min(qty, shelf.units)
        shelf.units -= binned
        self.damaged[shelf.sku] += binned
        self.damaged_at[location] += binned
        return binned

    def shelve(self, location: str, units: Iterable[Unit]) -> int:
        """Put units taken elsewhere (a reserve) on ``location``'s shelf."""
        shelf = self.shelves[location]
        n = 0
        for unit in units:
            if unit.article.sku != shelf.sku:
                raise ValueError(f"{location} holds {shelf.sku}, not {unit.article.sku}")
            n += 1
        shelf.units += n
        return n

    @contextlib.asynccontextmanager
    async def at_shelf(self, *locations: str) -> AsyncIterator[None]:
        """Stand at these shelves: nobody else takes, puts or counts there meanwhile.
        Taken in a fixed order, so two people never wait for each other."""
        async with contextlib.AsyncExitStack() as stack:
            for location in sorted(set(locations)):
                await stack.enter_async_context(self._held.setdefault(location, asyncio.Lock()))
            yield

    def drift(self, drift: Drift) -> list[Drifted]:
        """Shelves drift from the books, unseen: each pile loses units with probability
        ``drift.lost``, or has some put away at another location of its article with
        probability ``drift.misplaced`` (decided per location from the seed)."""
        happened: list[Drifted] = []
        for location in sorted(self.shelves):
            shelf = self.shelves[location]
            rng = self.rng("drift", location)
            lose, misplace = rng.random(), rng.random()
            if shelf.units <= 0:
                continue
            most = max(1, math.floor(shelf.units * drift.most))
            if lose < drift.lost:
                n = rng.randint(1, most)
                shelf.units -= n
                self.lost[shelf.sku] += n
                self.drifted[location] -= n
                happened.append(Drifted(location, shelf.sku, n))
                most = max(1, math.floor(shelf.units * drift.most))
            others = [loc for loc in self.slotting.locations_of(shelf.sku) if loc != location]
            if misplace < drift.misplaced and others and shelf.units > 0:
                n = rng.randint(1, min(most, shelf.units))
                to = rng.choice(others)
                shelf.units -= n
                self.shelves[to].units += n
                self.drifted[location] -= n
                self.drifted[to] += n
                happened.append(Drifted(location, shelf.sku, n, to))
        return happened

    # -- totes and parcels ---------------------------------------------------------------

    def empty_tote(self) -> Tote:
        """An empty tote from the stack (a new one when the stack is empty)."""
        if self._free_totes:
            code = self._free_totes.popleft()
        else:
            self._tote_numbers += 1
            code = tote_barcode(self._tote_numbers)
        tote = Tote(code)
        self.totes[code] = tote
        return tote

    def return_tote(self, tote: Tote) -> None:
        """An emptied tote goes back on the stack."""
        if tote.units:
            raise ValueError(f"tote {tote.code} still holds {len(tote.units)} units")
        self.totes.pop(tote.code, None)
        self._free_totes.append(tote.code)

    def seal(self, tote: Tote, sscc: str, carton: str) -> Parcel:
        """The tote's units go into a carton labelled ``sscc``; the tote is free again."""
        if tote.order_id is None:
            raise ValueError(f"tote {tote.code} is not paired with an order")
        parcel = Parcel(sscc, tote.order_id, tuple(tote.units), carton)
        self.parcels[sscc] = parcel
        tote.units.clear()
        self.return_tote(tote)
        return parcel

    # -- accounting ----------------------------------------------------------------------

    def census(self) -> dict[str, Census]:
        in_totes: Counter[str] = Counter(
            u.article.sku for t in self.totes.values() for u in t.units
        )
        in_parcels: Counter[str] = Counter(
            u.article.sku for p in self.parcels.values() for u in p.units
        )
        on_shelves: Counter[str] = Counter()
        for shelf in self.shelves.values():
            on_shelves[shelf.sku] += shelf.units
        return {
            sku: Census(
                sku,
                self.received[sku],
                on_shelves[sku],
                in_totes[sku],
                in_parcels[sku],
                self.damaged[sku],
                self.lost[sku],
            )
            for sku in self.articles
        }
