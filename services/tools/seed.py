"""A synthetic but plausible demo population (`backcrm seed --customers N`).

Everything comes from one `random.Random(rng_seed)`, so the same seed makes the same people
and the same events; event ids are `seed:<rng_seed>:<customer>:<n>`, so seeding again adds
nothing (TrackEvents drops known ids, UpsertProfile writes nothing when nothing changes).
Only the timestamps move: they are placed in the 180 days before now.

- A catalogue of 500 SKUs in 20 categories; category sizes and product popularity both
  follow Zipf laws (a few best sellers, a long tail). Each customer prefers 1-3 categories.
  The catalogue is also upserted into the recommend service (`handlers.upsert_items`).
- Customers live in UK regions weighted roughly by population (London, the South East and
  the North West first), in one of each region's cities.
- Identities: an EMAIL always (customer 0 is `demo@example.com`, the README's example, the
  others `customer<N>@example.com`), a UK mobile PHONE for about half, a browser COOKIE for
  about 60%.
- Behaviour: sessions on WEB (most), MOBILE_APP, EMAIL, STORE and CALL_CENTER; web and app
  sessions browse (PAGE_VIEW, SEARCH, PRODUCT_VIEW, ADD_TO_CART, sometimes REMOVE_FROM_CART)
  and often end in a PURCHASE of the cart, or leave it abandoned; email sessions are opens
  and clicks, store sessions visits and purchases, call-centre sessions calls. A few orders
  are returned later.
- Attributes (name, email, phone, region, city, language) and an email consent go through
  `handlers.upsert_profile`, events through `handlers.track_events`, like any client's.
"""

from __future__ import annotations

import itertools
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from tqdm import tqdm

from libs.runtime import Resources
from services.profile.app import ProfileApp
from services.profile.domain import DAY, CartLine, EventIn, IdentityKey, OrderIn
from services.profile.handlers import CustomerLookup, ProfileDeps, track_events, upsert_profile
from services.profile.models import CustomerRow
from services.recommend.app import offline_deps
from services.recommend.domain import Item
from services.recommend.handlers import upsert_items

__all__ = ["SeedSummary", "count_customers", "seed"]

CURRENCY = "GBP"
DEMO_EMAIL = "demo@example.com"
HORIZON_DAYS = 180
BATCH = 1000

CATEGORIES = (
    "home-decor",
    "kitchen",
    "lighting",
    "stationery",
    "bags",
    "christmas",
    "ringtones",
    "garden",
    "toys",
    "textiles",
    "bathroom",
    "jewellery",
    "party",
    "storage",
    "clocks",
    "candles",
    "baking",
    "pets",
    "gifts",
    "furniture",
    "outdoor",
)
SKUS = 500
# (region, weight, cities)
REGIONS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("London", 9.0, ("London",)),
    ("South East", 9.3, ("Brighton", "Reading", "Oxford", "Southampton", "Canterbury")),
    ("North West", 7.4, ("Manchester", "Liverpool", "Preston", "Chester")),
    ("East of England", 6.3, ("Cambridge", "Norwich", "Ipswich", "Luton")),
    ("West Midlands", 5.9, ("Birmingham", "Coventry", "Wolverhampton")),
    ("South West", 5.7, ("Bristol", "Exeter", "Plymouth", "Bath")),
    ("Yorkshire and the Humber", 5.5, ("Leeds", "Sheffield", "York", "Hull")),
    ("East Midlands", 4.9, ("Nottingham", "Leicester", "Derby")),
    ("Scotland", 5.4, ("Glasgow", "Edinburgh", "Aberdeen", "Dundee")),
    ("Wales", 3.1, ("Cardiff", "Swansea", "Newport")),
    ("North East", 2.6, ("Newcastle upon Tyne", "Sunderland", "Durham")),
    ("Northern Ireland", 1.9, ("Belfast", "Derry")),
)
CHANNELS = (
    ("WEB", 50.0),
    ("MOBILE_APP", 25.0),
    ("EMAIL", 12.0),
    ("STORE", 9.0),
    ("CALL_CENTER", 4.0),
)
LANGUAGES = (
    ("en-GB", 92.0),
    ("cy-GB", 2.0),
    ("pl-PL", 2.0),
    ("pa-IN", 1.5),
    ("ro-RO", 1.5),
    ("fr-FR", 1.0),
)
FIRST_NAMES = (
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Ivy",
    "Leo", "Lily", "Arthur", "Isabella", "Muhammad", "Rosie", "Oscar", "Sophia", "Charlie",
    "Grace", "Freddie", "Freya", "Theo", "Poppy", "Alfie", "Evie", "Thomas", "Emily",
    "Aisha", "Priya", "Wojciech", "Siobhan", "Rhys", "Fiona", "Callum", "Niamh",
)  # fmt: skip
SURNAMES = (
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Khan", "Hughes", "Edwards", "Murphy", "Campbell", "Kaur",
    "Nowak", "O'Brien", "MacDonald",
)  # fmt: skip
SEARCH_TERMS = ("gift", "sale", "new in", "set", "vintage", "red", "large", "mini")


def _zipf_cum_weights(n: int, s: float) -> list[float]:
    return list(itertools.accumulate(1.0 / (rank**s) for rank in range(1, n + 1)))


@dataclass(frozen=True)
class _Product:
    sku: str
    category: str
    price_micros: int


def _catalogue(rng: random.Random) -> tuple[list[_Product], list[float]]:
    """SKUs in popularity order (Zipf), their categories Zipf-sized too."""
    category_weights = _zipf_cum_weights(len(CATEGORIES), 0.9)
    products = []
    for n in range(SKUS):
        category = rng.choices(CATEGORIES, cum_weights=category_weights)[0]
        pounds = round(2 ** rng.uniform(0.5, 7.0)) - rng.choice((0.01, 0.05, 0.51))
        products.append(_Product(f"BC{10_000 + n}", category, round(max(pounds, 0.49) * 1e6)))
    return products, _zipf_cum_weights(SKUS, 1.1)


@dataclass
class SeedSummary:
    customers: int = 0
    events: int = 0
    orders: int = 0
    events_accepted: int = 0
    duplicates: int = 0
    seconds: float = 0.0
    skipped: bool = False
    existing_customers: int = 0
    items: int = 0

    def report(self) -> str:
        if self.skipped:
            return f"seed skipped: {self.existing_customers:,} customers already exist (--if-empty)"
        return "\n".join(
            [
                f"seeded {self.customers:,} customers",
                f"  events   {self.events:>10,}  ({self.events_accepted:,} new,"
                f" {self.duplicates:,} already there)",
                f"  orders   {self.orders:>10,}",
                f"  items    {self.items:>10,}  (the recommend catalogue)",
                f"  took     {self.seconds:>9.1f}s",
            ]
        )


async def count_customers(resources: Resources) -> int:
    async with resources.sessions() as session:
        return int(await session.scalar(select(func.count()).select_from(CustomerRow)) or 0)


@dataclass
class _Person:
    index: int
    email: str
    identities: tuple[IdentityKey, ...]
    attributes: dict[str, str]
    consents: dict[str, dict[str, Any]]
    favourites: tuple[str, ...]
    events: list[EventIn] = field(default_factory=list)


class _Generator:
    def __init__(self, rng_seed: int, now: float) -> None:
        self.rng = random.Random(rng_seed)  # noqa: S311 - demo data, not secrets
        self.rng_seed, self.now = rng_seed, now
        self.products, self.popularity = _catalogue(self.rng)
        self.by_category: dict[str, list[_Product]] = {}
        for product in self.products:  # popularity order is kept within a category
            self.by_category.setdefault(product.category, []).append(product)
        self.region_weights = list(itertools.accumulate(w for _, w, _ in REGIONS))
        self.channel_weights = list(itertools.accumulate(w for _, w in CHANNELS))
        self.language_weights = list(itertools.accumulate(w for _, w in LANGUAGES))

    # -- people

    def person(self, index: int) -> _Person:
        rng = self.rng
        email = DEMO_EMAIL if index == 0 else f"customer{index}@example.com"
        identities: list[IdentityKey] = [("EMAIL", email)]
        first, last = rng.choice(FIRST_NAMES), rng.choice(SURNAMES)
        region, _, cities = rng.choices(REGIONS, cum_weights=self.region_weights)[0]
        attributes = {
            "name": f"{first} {last}",
            "email": email,
            "region": region,
            "city": rng.choice(cities),
            "language": rng.choices(LANGUAGES, cum_weights=self.language_weights)[0][0],
        }
        if rng.random() < 0.5:
            # 07400-07999: mobile ranges that are valid numbers (E.164, as normalised)
            phone = f"+447{rng.randint(400, 999)}{rng.randint(0, 999_999):06d}"
            identities.append(("PHONE", phone))
            attributes["phone"] = phone
        if rng.random() < 0.6:
            identities.append(("COOKIE", f"ck-{rng.getrandbits(64):016x}"))
        consents = {"EMAIL": {"state": "GRANTED" if rng.random() < 0.7 else "DENIED"}}
        categories = [p.category for p in self._popular(rng.randint(1, 3))]
        return _Person(
            index, email, tuple(identities), attributes, consents, tuple(dict.fromkeys(categories))
        )

    def _popular(self, k: int) -> list[_Product]:
        return self.rng.choices(self.products, cum_weights=self.popularity, k=k)

    def _product(self, person: _Person) -> _Product:
        if self.rng.random() < 0.6:
            shelf = self.by_category[self.rng.choice(person.favourites)]
            return shelf[min(int(self.rng.paretovariate(1.2)) - 1, len(shelf) - 1)]
        return self._popular(1)[0]

    # -- behaviour

    def history(self, person: _Person) -> None:
        rng = self.rng
        first_seen = rng.uniform(1, HORIZON_DAYS)  # days ago
        sessions = min(1 + int(rng.expovariate(1 / 5)), 30)
        starts = sorted((rng.uniform(0.02, first_seen) for _ in range(sessions)), reverse=True)
        counter = itertools.count()
        orders: list[OrderIn] = []
        for days_ago in starts:
            at = self.now - days_ago * DAY
            channel = rng.choices(CHANNELS, cum_weights=self.channel_weights)[0][0]
            session = _Session(self, person, counter, channel, at)
            if channel in ("WEB", "MOBILE_APP"):
                session.browse(orders)
            elif channel == "EMAIL":
                session.email()
            elif channel == "STORE":
                session.store(orders)
            else:
                session.add("CALL")
            if orders and rng.random() < 0.03:
                session.return_of(orders.pop(rng.randrange(len(orders))))  # once at most


class _Session:
    def __init__(
        self,
        gen: _Generator,
        person: _Person,
        counter: itertools.count[int],
        channel: str,
        at: float,
    ) -> None:
        self.gen, self.rng, self.person = gen, gen.rng, person
        self.counter, self.channel, self.at = counter, channel, at
        self.cart: dict[str, tuple[_Product, int]] = {}

    def add(
        self,
        kind: str,
        product: _Product | None = None,
        *,
        order: tuple[str, Sequence[CartLine]] | None = None,
        **extra: Any,
    ) -> EventIn:
        """Append the session's next event; `order` = (order id, lines) for a PURCHASE."""
        self.at = min(self.at + self.rng.uniform(5, 180), self.gen.now - 1)
        n = next(self.counter)
        person = self.person
        identities = person.identities[1:] if n == 0 else ()  # link them all on the first event
        if self.channel in ("WEB", "MOBILE_APP"):
            identities += tuple(k for k in person.identities if k[0] == "COOKIE")
        if order is not None:
            order_id, lines = order
            extra["order"] = OrderIn(
                order_id=order_id,
                lines=tuple(lines),
                total_micros=sum(line.quantity * line.unit_price_micros for line in lines),
                currency=CURRENCY,
                placed_at=self.at,
            )
        event = EventIn(
            event_id=f"seed:{self.gen.rng_seed}:{person.index}:{n}",
            type=kind,
            channel=self.channel,
            occurred_at=self.at,
            identity=("EMAIL", person.email),
            identities=tuple(dict.fromkeys(identities)),
            sku=product.sku if product else "",
            category=product.category if product else "",
            **extra,
        )
        person.events.append(event)
        return event

    def browse(self, orders: list[OrderIn]) -> None:
        rng = self.rng
        for _ in range(rng.randint(1, 3)):
            self.add("PAGE_VIEW", properties={"path": rng.choice(("/", "/new", "/sale"))})
        if rng.random() < 0.3:
            self.add("SEARCH", properties={"query": rng.choice(SEARCH_TERMS)})
        for _ in range(rng.randint(1, 5)):
            product = self.gen._product(self.person)
            self.add("PRODUCT_VIEW", product)
            if rng.random() < 0.25:
                quantity = rng.choices((1, 2, 3, 6), weights=(70, 18, 7, 5))[0]
                self._to_cart(product, quantity)
                if rng.random() < 0.1:
                    self.add("REMOVE_FROM_CART", product, quantity=quantity)
                    self.cart.pop(product.sku, None)
        if rng.random() < 0.1:
            self.add("AD_CLICK", self.gen._product(self.person))
        if self.cart and rng.random() < 0.6:
            orders.append(self._purchase())

    def email(self) -> None:
        self.add("EMAIL_OPEN", properties={"campaign": f"newsletter-{self.rng.randint(1, 12)}"})
        if self.rng.random() < 0.35:
            self.add("EMAIL_CLICK", self.gen._product(self.person))

    def store(self, orders: list[OrderIn]) -> None:
        self.add("STORE_VISIT")
        if self.rng.random() < 0.5:
            for _ in range(self.rng.randint(1, 3)):
                self.cart.setdefault(
                    (p := self.gen._product(self.person)).sku, (p, self.rng.randint(1, 2))
                )
            orders.append(self._purchase())

    def _to_cart(self, product: _Product, quantity: int) -> None:
        self.add(
            "ADD_TO_CART",
            product,
            quantity=quantity,
            unit_price_micros=product.price_micros,
            currency=CURRENCY,
        )
        held = self.cart.get(product.sku)
        self.cart[product.sku] = (product, quantity + (held[1] if held else 0))

    def _purchase(self) -> OrderIn:
        lines = [
            CartLine(p.sku, p.category, quantity, p.price_micros, CURRENCY)
            for p, quantity in self.cart.values()
        ]
        self.cart.clear()
        order_id = f"S{self.gen.rng_seed}-{self.person.index}-{len(self.person.events)}"
        order = self.add("PURCHASE", order=(order_id, lines)).order
        assert order is not None
        return order

    def return_of(self, order: OrderIn) -> None:
        """Send back one line of an earlier order (a PURCHASE whose lines are negative)."""
        line = self.rng.choice(order.lines)
        back = CartLine(line.sku, line.category, -line.quantity, line.unit_price_micros, CURRENCY)
        self.add("PURCHASE", order=(order.order_id, [back]))


async def seed(
    resources: Resources,
    *,
    customers: int,
    rng_seed: int = 42,
    if_empty: bool = False,
    progress: bool = True,
) -> SeedSummary:
    """Make (or make again, idempotently) `customers` synthetic customers and their history.

    With `if_empty`, nothing is done when any customer exists already.
    """
    if customers < 0:
        raise ValueError("customers must not be negative")
    started = time.perf_counter()
    if if_empty:
        existing = await count_customers(resources)
        if existing:
            return SeedSummary(skipped=True, existing_customers=existing)
    deps: ProfileDeps = ProfileApp.build(resources).deps
    generator = _Generator(rng_seed, resources.clock())
    summary = SeedSummary(customers=customers)
    batch: list[EventIn] = []
    for index in tqdm(range(customers), desc="seeding", unit=" customers", disable=not progress):
        person = generator.person(index)
        generator.history(person)
        await upsert_profile(
            deps,
            CustomerLookup(identity=("EMAIL", person.email)),
            person.attributes,
            person.consents,
        )
        batch += person.events
        summary.events += len(person.events)
        summary.orders += sum(1 for e in person.events if e.order and not e.order.is_return)
        if len(batch) >= BATCH:
            await _send(deps, batch, summary)
            batch = []
    if batch:
        await _send(deps, batch, summary)
    summary.items = await _catalogue_items(resources, generator)
    summary.seconds = time.perf_counter() - started
    return summary


async def _catalogue_items(resources: Resources, generator: _Generator) -> int:
    """The demo's products as the recommend service's catalogue (idempotent: upserts)."""
    items = [
        Item(
            p.sku,
            title=f"{p.category.title()} {p.sku}",
            category=p.category,
            price_micros=p.price_micros,
            currency=CURRENCY,
            has_price=True,
        )
        for p in generator.products
    ]
    await upsert_items(offline_deps(resources), items)
    return len(items)


async def _send(deps: ProfileDeps, batch: list[EventIn], summary: SeedSummary) -> None:
    result = await track_events(deps, batch)
    if result.rejected:
        raise AssertionError(f"seed events rejected: {result.rejected[:3]}")
    summary.events_accepted += result.accepted
    summary.duplicates += result.duplicates
