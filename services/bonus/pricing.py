"""The personal price of a cart: a pure function of the cart, the program, its promotions and
what is known of the customer (no I/O, no protobuf, no clock).

Money is integer micros (Money.units_micros). The one rounding mode is HALF UP to the
currency's minor unit (`minor_unit_micros`, from the ISO 4217 exponents below), applied to
every amount a promotion or the tier takes off a line; a line's total is its base total less
those amounts, so the lines always add up to the cart's total and subtotal - total is exactly
the sum of the discounts. `personal_price` (a unit price) is line_total / quantity rounded
half up, for display.

Promotions are walked in priority order (highest first, then oldest). Stacking is explicit:
STACKABLE ones apply one after the other; an EXCLUSIVE one applies only when none applied
before it and then closes the walk; of the eligible BEST_FOR_CUSTOMER ones only the one with
the highest discount (each computed alone on the cart as priced by the promotions above the
first of them) applies, at its own place in the walk. PERCENT_OFF is computed on the ORIGINAL
or the DISCOUNTED line amounts (the promotion's price base), AMOUNT_OFF is spread over the
matching lines pro rata to that base (in whole minor units, the remainder to the largest
share), FIXED_PRICE lowers matching lines to price x quantity, GIFT adds a free item (gift
lines earn no points), POINTS_MULTIPLIER adds (multiplier - 1) x the points of its lines. The
tier's discount_percent applies last, on what promotions left.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from services.bonus.domain import OrderLine, Program, order_points
from services.bonus.promotions import Compiled, Promotion, coupon_key, held_out
from services.segmentation.conditions.ast import (
    ContextCond,
    EventCond,
    Group,
    Node,
    Property,
    SegmentRef,
)

__all__ = [
    "CURRENCY_EXPONENTS",
    "AppliedPromotion",
    "CartLine",
    "Customer",
    "NearMiss",
    "Quote",
    "QuoteLine",
    "minor_unit_micros",
    "price_cart",
    "round_half_up",
    "spread",
]

MICROS = 1_000_000
INT64_MAX = 2**63 - 1
# ISO 4217 minor-unit exponents that are not 2 (every other code has 2 decimals).
_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_4 = "CLF UYW"
CURRENCY_EXPONENTS: dict[str, int] = {
    code: exponent
    for codes, exponent in ((_EXPONENT_0, 0), (_EXPONENT_3, 3), (_EXPONENT_4, 4))
    for code in codes.split()
}


def minor_unit_micros(currency: str) -> int:
    """Micros in one minor unit: 10_000 for GBP (a penny), 1_000_000 for JPY."""
    return int(10 ** (6 - CURRENCY_EXPONENTS.get(currency, 2)))


def round_half_up(micros: Decimal | int, unit: int) -> int:
    """`micros` rounded half up to a whole number of `unit`s (never negative here)."""
    steps = (Decimal(micros) / unit).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return int(steps) * unit


def spread(amount: int, weights: Sequence[int], caps: Sequence[int], unit: int) -> list[int]:
    """`amount` split over lines pro rata to `weights`, in whole `unit`s, no line more than its
    cap: each line gets the floor of its share, the remainder goes to the largest share (then,
    when that line is full, to the next largest). The shares sum exactly to
    min(amount, what the caps hold) rounded down to whole units."""
    room = [cap // unit for cap in caps]
    total = min(amount // unit, sum(room))
    weight = sum(weights)
    if total <= 0 or weight <= 0:
        return [0] * len(weights)
    shares = [min(total * w // weight, r) for w, r in zip(weights, room, strict=True)]
    left = total - sum(shares)
    for i in sorted(range(len(shares)), key=lambda i: (-shares[i], -weights[i], i)):
        if left <= 0:
            break
        extra = min(left, room[i] - shares[i])
        shares[i] += extra
        left -= extra
    return [s * unit for s in shares]


@dataclass(frozen=True)
class CartLine:
    sku: str
    category: str
    quantity: int  # > 0
    unit_price_micros: int


@dataclass(frozen=True)
class Customer:
    """What the quote knows of the customer. `answers` maps a customer atom (its serialized
    Condition) to segmentation's verdict; None when segmentation did not answer (degraded)."""

    customer_id: str  # "" when unknown
    answers: Mapping[bytes, bool] | None
    tier_name: str = ""
    tier_discount_percent: float = 0.0
    tier_multiplier: float = 1.0
    segment_multiplier: float = 1.0
    balance: int = 0
    uses: Mapping[str, int] = field(default_factory=dict)  # promotion_id -> this customer's


@dataclass
class QuoteLine:
    sku: str
    category: str
    quantity: int
    base_price_micros: int
    line_total_micros: int
    personal_price_micros: int = 0
    promotion_ids: list[str] = field(default_factory=list)
    points_to_earn: int = 0

    @property
    def base_total(self) -> int:
        return self.quantity * self.base_price_micros


@dataclass
class AppliedPromotion:
    promotion: Promotion
    discount_micros: int = 0
    bonus_points: int = 0
    skus: list[str] = field(default_factory=list)
    reason: str = ""


@dataclass(frozen=True)
class NearMiss:
    promotion: Promotion
    missing_micros: int  # cart.total thresholds (0: none)
    missing_quantity: int  # cart.quantity thresholds (0: none)


@dataclass
class Quote:
    lines: list[QuoteLine]
    applied: list[AppliedPromotion]
    gifts: list[tuple[str, int, str]]  # (sku, quantity, promotion_id)
    points_to_earn: int
    points_spendable: int
    points_spendable_value_micros: int
    subtotal_micros: int
    total_micros: int
    tier: str
    invalid_coupons: list[str]
    near_misses: list[NearMiss]
    not_applied: list[tuple[Promotion, str]]
    degraded: bool
    # promotions with a holdout the customer was eligible for: (id, held out) for the report
    exposures: list[tuple[str, bool]]

    @property
    def discount_micros(self) -> int:
        return self.subtotal_micros - self.total_micros


# --------------------------------------------------------------------------- conditions

Atom = Callable[[Node], bool]


def _describe(node: Node) -> str:
    if isinstance(node, SegmentRef):
        return f"segment {node.segment_id}"
    if isinstance(node, ContextCond | Property):
        return f"{node.path} {node.op} {_value(node.value)}".rstrip()
    if isinstance(node, EventCond):
        return f"event {node.type} count {node.count_op} {node.count}"
    return node.op


def _value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return "(" + ", ".join(_value(v) for v in value) + ")"
    return str(value)


def _holds(node: Node, atom: Atom) -> bool:
    if isinstance(node, Group):
        if node.op == "all_of":
            return all(_holds(c, atom) for c in node.children)
        hit = any(_holds(c, atom) for c in node.children)
        return hit if node.op == "any_of" else not hit
    return atom(node)


def _why_true(node: Node, atom: Atom) -> list[str]:
    """The atoms that made the tree true (for AppliedPromotion.reason)."""
    if isinstance(node, Group):
        if node.op == "all_of":
            return [r for c in node.children for r in _why_true(c, atom)]
        if node.op == "any_of":
            first = next(c for c in node.children if _holds(c, atom))
            return _why_true(first, atom)
        return ["none of (" + ", ".join(_describe_tree(c) for c in node.children) + ")"]
    return [_describe(node)]


def _describe_tree(node: Node) -> str:
    if isinstance(node, Group):
        return f"{node.op}(" + ", ".join(_describe_tree(c) for c in node.children) + ")"
    return _describe(node)


def _why_false(node: Node, atom: Atom, at: str) -> str:
    """Where a false tree fails: the first false branch of an all_of, down to an atom."""
    if isinstance(node, Group):
        if node.op == "all_of":
            for i, c in enumerate(node.children):
                if not _holds(c, atom):
                    return _why_false(c, atom, f"{at}.all_of[{i}]")
        if node.op == "any_of":
            return f"{at}.any_of: no alternative holds ({_describe_tree(node)})"
        held = next(i for i, c in enumerate(node.children) if _holds(c, atom))
        return f"{at}.none_of[{held}] holds ({_describe_tree(node.children[held])})"
    return f"{at} ({_describe(node)})"


_THRESHOLD_OPS = ("GT", "GTE", "EQ", "BETWEEN")


def _shortfall(node: Node, total_micros: int, quantity: int, unit: int) -> tuple[int, int] | None:
    """(micros, units) by which a false cart.total / cart.quantity threshold atom misses,
    rounded up to whole minor units / items; None for any other atom."""
    if not isinstance(node, ContextCond) or node.path not in ("cart.total", "cart.quantity"):
        return None
    if node.op not in _THRESHOLD_OPS:
        return None
    target = Decimal(repr(float(node.value[0] if node.op == "BETWEEN" else node.value)))
    if node.path == "cart.total":
        need = target * MICROS - total_micros
        steps = (need / unit).quantize(Decimal(1), rounding=ROUND_CEILING)
        if node.op == "GT" and steps * unit == need:
            steps += 1  # strictly above the threshold
        return (int(steps) * unit, 0) if steps > 0 else None
    need = target - quantity
    whole = need.quantize(Decimal(1), rounding=ROUND_CEILING)
    if node.op == "GT" and whole == need:
        whole += 1
    return (0, int(whole)) if whole > 0 else None


# ------------------------------------------------------------------------------ pricing


@dataclass
class _Eligible:
    compiled: Compiled
    reason: str


def _order(c: Compiled) -> tuple[int, float, str]:
    p = c.promotion
    return (-p.priority, p.created_at, p.promotion_id)


def _discounts(
    p: Promotion, lines: Sequence[QuoteLine], current: Sequence[int], unit: int
) -> list[int]:
    """What the promotion's effect takes off each line (0 for lines it does not match)."""
    e = p.effect
    hit = [e.matches(line.sku, line.category) for line in lines]
    base = [
        line.base_total if p.price_base == "ORIGINAL" else current[i]
        for i, line in enumerate(lines)
    ]
    if e.type == "PERCENT_OFF":
        percent = Decimal(repr(e.percent))
        return [
            min(round_half_up(Decimal(base[i]) * percent / 100, unit), current[i]) if hit[i] else 0
            for i in range(len(lines))
        ]
    if e.type == "AMOUNT_OFF":
        weights = [base[i] if hit[i] else 0 for i in range(len(lines))]
        caps = [current[i] if hit[i] else 0 for i in range(len(lines))]
        return spread(e.amount_micros, weights, caps, unit)
    if e.type == "FIXED_PRICE":
        return [
            max(0, current[i] - e.price_micros * line.quantity) if hit[i] else 0
            for i, line in enumerate(lines)
        ]
    return [0] * len(lines)


def _points(program: Program, category: str, paid: int, tier: float, segment: float) -> int:
    return order_points(program, [OrderLine(category, 1, paid)], tier, segment)


def price_cart(
    program: Program,
    promotions: Sequence[Compiled],
    cart: Sequence[CartLine],
    coupons: Sequence[str],
    customer: Customer,
    context_atom: Atom,
    now: float,
) -> Quote:
    """The quote. `context_atom` answers a ContextCond from the request (the cart, channel,
    ...); customer atoms come from `customer.answers` (an unknown customer is an empty
    profile: `answers` then holds the local verdicts on it)."""
    unit = minor_unit_micros(program.currency)
    lines = [
        QuoteLine(
            c.sku, c.category, c.quantity, c.unit_price_micros, c.quantity * c.unit_price_micros
        )
        for c in cart
    ]
    subtotal = sum(line.base_total for line in lines)
    cart_quantity = sum(line.quantity for line in lines)
    given = {coupon_key(code): code for code in coupons}
    used_coupons: set[str] = set()
    answers = customer.answers
    not_applied: list[tuple[Promotion, str]] = []
    near: list[NearMiss] = []
    exposures: list[tuple[str, bool]] = []

    def atom_for(c: Compiled, forced: frozenset[Node] = frozenset()) -> Atom:
        def atom(node: Node) -> bool:
            if node in forced:
                return True
            if isinstance(node, ContextCond):
                return context_atom(node)
            assert answers is not None
            return bool(answers.get(c.customer_atoms[node], False))

        return atom

    eligible: list[_Eligible] = []
    for c in sorted(promotions, key=_order):
        p = c.promotion
        key = coupon_key(p.coupon_code) if p.coupon_code else ""
        if p.status != "ACTIVE":
            not_applied.append((p, f"status {p.status}"))
            continue
        if not p.live_at(now):
            when = "has not started" if p.start_time and now < p.start_time else "has ended"
            not_applied.append((p, f"schedule: {when}"))
            continue
        if p.budget_spent():
            not_applied.append((p, "budget spent"))
            continue
        if p.max_uses_per_customer and customer.uses.get(p.promotion_id, 0) >= (
            p.max_uses_per_customer
        ):
            not_applied.append((p, "per-customer limit reached"))
            continue
        if key and key not in given:
            not_applied.append((p, "coupon missing"))
            continue
        if c.needs_customer and answers is None:
            not_applied.append((p, "needs customer data and segmentation did not answer"))
            continue
        atom = atom_for(c)
        if c.node is not None and not _holds(c.node, atom):
            not_applied.append((p, "condition false at " + _why_false(c.node, atom, "condition")))
            miss = _near_miss(c, atom_for, subtotal, cart_quantity, unit)
            if miss is not None and not held_out(p, customer.customer_id):
                near.append(miss)
            continue
        if key:
            used_coupons.add(key)
        if held_out(p, customer.customer_id):
            exposures.append((p.promotion_id, True))
            not_applied.append((p, "held out (control group)"))
            continue
        if p.holdout_percent > 0:
            exposures.append((p.promotion_id, False))
        why = _why_true(c.node, atom) if c.node is not None else ["everyone"]
        if key:
            why.append(f"coupon {p.coupon_code}")
        eligible.append(_Eligible(c, "; ".join(why)))

    current = [line.base_total for line in lines]
    best = _best_for_customer(eligible, lines, current, unit, not_applied)
    applied: list[AppliedPromotion] = []
    gifts: list[tuple[str, int, str]] = []
    multipliers: list[Promotion] = []
    closed_by = ""
    for item in eligible:
        p = item.compiled.promotion
        if p.stacking == "BEST_FOR_CUSTOMER" and p.promotion_id != best:
            continue  # reported by _best_for_customer
        if closed_by:
            not_applied.append((p, f"excluded by exclusive promotion {closed_by}"))
            continue
        if p.stacking == "EXCLUSIVE" and applied:
            first = applied[0].promotion.promotion_id
            not_applied.append((p, f"exclusive, and promotion {first} applied before it"))
            continue
        e = p.effect
        hit = [i for i, line in enumerate(lines) if e.matches(line.sku, line.category)]
        if e.type != "GIFT" and not hit:
            not_applied.append((p, "no line of the cart matches its effect"))
            continue
        cut = _discounts(p, lines, current, unit)
        if e.type in ("PERCENT_OFF", "AMOUNT_OFF", "FIXED_PRICE") and not any(cut):
            not_applied.append((p, "gives no discount on this cart"))
            continue
        result = AppliedPromotion(p, reason=item.reason)
        if e.type == "GIFT":
            gifts.append((e.gift_sku, e.gift_quantity or 1, p.promotion_id))
            result.skus = [e.gift_sku]
        else:
            touched = [i for i in hit if cut[i] or e.type == "POINTS_MULTIPLIER"]
            for i in touched:
                current[i] -= cut[i]
                lines[i].promotion_ids.append(p.promotion_id)
            result.discount_micros = sum(cut)
            result.skus = list(dict.fromkeys(lines[i].sku for i in touched))
            if e.type == "POINTS_MULTIPLIER":
                multipliers.append(p)
        applied.append(result)
        if p.stacking == "EXCLUSIVE":
            closed_by = p.promotion_id

    if customer.tier_discount_percent > 0:
        percent = Decimal(repr(customer.tier_discount_percent))
        for i in range(len(lines)):
            current[i] -= min(round_half_up(Decimal(current[i]) * percent / 100, unit), current[i])

    # the tier's and the segment's multipliers one after the other, in exact decimals, as
    # Accrue applies them (their float product can fall short by a point)
    tier, segment = customer.tier_multiplier, customer.segment_multiplier
    by_id = {a.promotion.promotion_id: a for a in applied}
    for i, line in enumerate(lines):
        line.line_total_micros = current[i]
        line.personal_price_micros = round_half_up(Decimal(current[i]) / line.quantity, unit)
        earned = _points(program, line.category, current[i], tier, segment)
        line.points_to_earn = earned
        for p in multipliers:
            if p.effect.matches(line.sku, line.category):
                extra = _bonus(earned, p.effect.multiplier)
                by_id[p.promotion_id].bonus_points += extra
                line.points_to_earn += extra
    # The order's own points as Accrue computes them (rounded down once, over the whole order);
    # line figures are each rounded down, so they may add up to a point or so less.
    base_points = order_points(
        program,
        [OrderLine(line.category, 1, line.line_total_micros) for line in lines],
        tier,
        segment,
    )
    total = sum(current)
    bonus = sum(a.bonus_points for a in applied)
    spendable = _spendable(program, total, customer.balance)
    return Quote(
        lines=lines,
        applied=applied,
        gifts=gifts,
        points_to_earn=base_points + bonus,
        points_spendable=spendable,
        points_spendable_value_micros=min(spendable * program.point_value_micros, INT64_MAX),
        subtotal_micros=subtotal,
        total_micros=total,
        tier=customer.tier_name,
        invalid_coupons=[code for k, code in given.items() if k not in used_coupons],
        near_misses=near,
        not_applied=not_applied,
        degraded=answers is None and bool(customer.customer_id),
        exposures=exposures,
    )


def _bonus(points: int, multiplier: float) -> int:
    extra = Decimal(points) * (Decimal(repr(multiplier)) - 1)
    return max(0, int(extra.quantize(Decimal(1), rounding=ROUND_FLOOR)))


def _spendable(program: Program, total: int, balance: int) -> int:
    if program.point_value_micros <= 0 or balance <= 0:
        return 0
    share = Decimal(repr(program.max_redeem_percent or 100.0)) / 100
    worth = (Decimal(total) * share / program.point_value_micros).quantize(
        Decimal(1), rounding=ROUND_FLOOR
    )
    return max(0, min(balance, int(worth)))


def _best_for_customer(
    eligible: Sequence[_Eligible],
    lines: Sequence[QuoteLine],
    current: Sequence[int],
    unit: int,
    not_applied: list[tuple[Promotion, str]],
) -> str:
    """The BEST_FOR_CUSTOMER promotion with the highest discount (ties: priority order); the
    others are reported as beaten. Each is computed alone on the cart as priced by the
    stackable promotions above the first competitor."""
    rivals = [
        e.compiled.promotion
        for e in eligible
        if e.compiled.promotion.stacking == ("BEST_FOR_CUSTOMER")
    ]
    if not rivals:
        return ""
    prices = list(current)
    first = rivals[0]
    for e in eligible:
        p = e.compiled.promotion
        if p is first:
            break
        if p.stacking == "STACKABLE":
            cut = _discounts(p, lines, prices, unit)
            prices = [prices[i] - cut[i] for i in range(len(prices))]
    scored = [(sum(_discounts(p, lines, prices, unit)), p) for p in rivals]
    best_discount = max(d for d, _ in scored)
    winner = next(p for d, p in scored if d == best_discount)
    for d, p in scored:
        if p is not winner:
            not_applied.append(
                (
                    p,
                    f"best for customer: promotion {winner.promotion_id} gives more ({d} < "
                    f"{best_discount} micros)",
                )
            )
    return winner.promotion_id


def _near_miss(
    c: Compiled,
    atom_for: Callable[[Compiled, frozenset[Node]], Atom],
    total_micros: int,
    quantity: int,
    unit: int,
) -> NearMiss | None:
    """A promotion whose only false atoms are cart.total / cart.quantity thresholds below the
    cart (and that holds once they are met): what is missing."""
    assert c.node is not None
    atom = atom_for(c, frozenset())
    false_atoms: list[Node] = []
    stack: list[Node] = [c.node]
    while stack:
        node = stack.pop()
        if isinstance(node, Group):
            stack.extend(node.children)
        elif not atom(node):
            false_atoms.append(node)
    if not false_atoms:
        return None
    micros = units = 0
    for node in false_atoms:
        short = _shortfall(node, total_micros, quantity, unit)
        if short is None:
            return None
        micros, units = max(micros, short[0]), max(units, short[1])
    if not _holds(c.node, atom_for(c, frozenset(false_atoms))):
        return None
    return NearMiss(c.promotion, micros, units)
