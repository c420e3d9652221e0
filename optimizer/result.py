"""The allocation a solve returns, and its JSON-ready form (a contract: tests pin the keys)."""

from __future__ import annotations

from dataclasses import dataclass, field

from optimizer.cents import json_cents as _cents


@dataclass(frozen=True)
class ChannelResult:
    channel: str
    group: str
    spend: float
    share: float
    current_spend: float
    change: float
    expected_return: float
    roi: float | None
    marginal_roi: float
    label: str | None = None


@dataclass(frozen=True)
class GroupResult:
    group: str
    spend: float
    share: float
    current_spend: float


@dataclass(frozen=True)
class Binding:
    """A constraint at its limit, with its shadow price where the LP gives one."""

    name: str
    detail: str
    shadow_price: float | None = None
    #: The scenario limits behind it when its name is the LP's (a period plan's ``min_total[c]``
    #: set by ``evidence[c]``); not in the JSON, whose names are the LP's.
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanSummary:
    spend: float
    reserve: float
    expected_return: float
    roi: float | None
    feasible: bool = True
    violations: tuple[str, ...] = ()


@dataclass
class Allocation:
    """Result of :func:`optimizer.optimize`.

    ``status`` is ``"optimal"`` or ``"infeasible"``; when infeasible, ``diagnosis`` explains
    which constraints conflict, with numbers, and the money fields are empty.

    ``marginal_roi`` is the return of the plan's last unit of money (the lowest marginal ROI
    among channels holding more than their minimum); ``break_even_budget`` is about the budget at
    which it would be 1, set only when it is below 1 on a plan maximising return.
    """

    scenario: str
    status: str
    objective: str
    budget: float
    currency: str = "CNY"
    spend: float = 0.0
    reserve: float = 0.0
    expected_return: float = 0.0
    roi: float | None = None
    current: PlanSummary | None = None
    uplift: float | None = None
    channels: list[ChannelResult] = field(default_factory=list)
    groups: list[GroupResult] = field(default_factory=list)
    binding: list[Binding] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    solver_name: str = ""
    solver_seconds: float = 0.0
    mode: str = "envelope"
    iterations: int = 0
    lp_return: float | None = None
    marginal_roi: float | None = None
    break_even_budget: float | None = None
    #: "money" (the currency), or "kpi": returns in the units of a KPI that is not money.
    return_unit: str = "money"

    @property
    def feasible(self) -> bool:
        return self.status == "optimal"

    @property
    def return_currency(self) -> str:
        """What a return is written with: the currency, or "" (a plain number) in KPI units."""
        return self.currency if self.return_unit == "money" else ""

    def spend_of(self, channel: str) -> float:
        for c in self.channels:
            if c.channel == channel:
                return c.spend
        raise KeyError(channel)

    def to_dict(self) -> dict:
        """JSON-ready dict; the keys listed in README's contract are stable.

        Every money key (budget, spends, reserves, returns, changes) is in the budget's currency
        rounded to the cent, never ``-0.0``; shares, ROI, marginal ROI, uplift and shadow prices
        are left as they are. Spends are whole cents already; rounding them only removes float
        noise such as 264045.81000000006.
        """
        cur = self.current
        return {
            "scenario": self.scenario,
            "status": self.status,
            "objective": self.objective,
            "budget": _cents(self.budget),
            "currency": self.currency,
            "return_unit": self.return_unit,
            "spend": _cents(self.spend),
            "reserve": _cents(self.reserve),
            "expected_return": _cents(self.expected_return),
            "roi": self.roi,
            "current": None
            if cur is None
            else {
                "spend": _cents(cur.spend),
                "reserve": _cents(cur.reserve),
                "expected_return": _cents(cur.expected_return),
                "roi": cur.roi,
                "feasible": cur.feasible,
                "violations": list(cur.violations),
            },
            "uplift": self.uplift,
            "marginal_roi": self.marginal_roi,
            "break_even_budget": _cents(self.break_even_budget),
            "channels": [
                {
                    "channel": c.channel,
                    "group": c.group,
                    "spend": _cents(c.spend),
                    "share": c.share,
                    "current_spend": _cents(c.current_spend),
                    "change": _cents(c.change),
                    "expected_return": _cents(c.expected_return),
                    "roi": c.roi,
                    "marginal_roi": c.marginal_roi,
                    "label": c.label,
                }
                for c in self.channels
            ],
            "groups": [
                {"group": g.group, "spend": _cents(g.spend), "share": g.share, "current_spend": _cents(g.current_spend)}
                for g in self.groups
            ],
            "binding_constraints": [
                {"name": b.name, "detail": b.detail, "shadow_price": b.shadow_price} for b in self.binding
            ],
            "warnings": list(self.warnings),
            "diagnosis": list(self.diagnosis),
            "notes": list(self.notes),
            "solver": {
                "name": self.solver_name,
                "seconds": self.solver_seconds,
                "mode": self.mode,
                "iterations": self.iterations,
            },
        }


@dataclass
class PeriodAllocation(Allocation):
    """Result of :func:`optimizer.periods.optimize_periods`: an :class:`Allocation` over the whole
    horizon (channel totals in ``channels``) plus the plan period by period.

    ``period_spend``, ``period_effective`` and ``period_return`` are channels × periods arrays
    (spend in whole cents; effective spend after carryover; incremental return in the period).
    ``after_horizon`` is each channel's return earned after the horizon from carryover; it is part
    of ``expected_return`` only when ``count_after_horizon``. ``carryover_return`` is what spend
    made before the horizon earns in it on its own; it is in none of the other figures.
    """

    periods: tuple[str, ...] = ()
    count_after_horizon: bool = False
    period_spend: object = None
    period_effective: object = None
    period_return: object = None
    after_horizon: object = None
    after_horizon_return: float = 0.0
    carryover_return: float = 0.0
    gap_bound: float | None = None  # certified relative gap to the true optimum (duality bound)

    def spend_in(self, channel: str, period: str) -> float:
        """Spend of ``channel`` in ``period``."""
        i = [c.channel for c in self.channels].index(channel)
        return float(self.period_spend[i, list(self.periods).index(period)])

    def to_dict(self) -> dict:
        """:meth:`Allocation.to_dict` plus ``periods`` (one entry per period, with its channels),
        ``count_after_horizon``, ``after_horizon_return`` and ``carryover_return``."""
        out = super().to_dict()
        out["solver"]["gap_bound"] = self.gap_bound
        out["count_after_horizon"] = self.count_after_horizon
        out["after_horizon_return"] = _cents(self.after_horizon_return)
        out["carryover_return"] = _cents(self.carryover_return)
        rows = []
        if self.period_spend is not None:
            for t, label in enumerate(self.periods):
                rows.append({
                    "period": label,
                    "spend": _cents(sum(float(v) for v in self.period_spend[:, t])),
                    "expected_return": _cents(sum(float(v) for v in self.period_return[:, t])),
                    "channels": [
                        {
                            "channel": c.channel,
                            "spend": _cents(self.period_spend[i, t]),
                            "effective_spend": _cents(self.period_effective[i, t]),
                            "expected_return": _cents(self.period_return[i, t]),
                        }
                        for i, c in enumerate(self.channels)
                    ],
                })
        out["periods"] = rows
        for i, c in enumerate(out["channels"]):
            c["after_horizon_return"] = _cents(self.after_horizon[i]) if self.after_horizon is not None else 0.0
        return out


#: Symbol and unit word of the currencies money() knows; any other ISO code prints as itself.
_CURRENCIES = {
    "CNY": ("¥", "yuan"),
    "USD": ("$", "dollar"),
    "EUR": ("€", "euro"),
    "GBP": ("£", "pound"),
    "JPY": ("¥", "yen"),
}


def _is_code(currency: str) -> bool:
    return len(currency) == 3 and currency.isascii() and currency.isalpha() and currency.isupper()


def currency_symbol(code: str) -> str:
    """The symbol of an ISO 4217 code: ``CNY`` → ``¥``, ``USD`` → ``$``, ``EUR`` → ``€``,
    ``GBP`` → ``£``, ``JPY`` → ``¥``; any other code is returned as it is (``SEK``)."""
    code = (code or "CNY").strip()
    return _CURRENCIES.get(code.upper(), (code, code))[0]


def unit_name(code: str) -> str:
    """The word for one unit of an ISO 4217 code, for "the next yuan" phrasing: ``CNY`` → ``yuan``,
    ``USD`` → ``dollar``, ``EUR`` → ``euro``, ``GBP`` → ``pound``, ``JPY`` → ``yen``; any other
    code is returned as it is."""
    code = (code or "CNY").strip()
    return _CURRENCIES.get(code.upper(), (code, code))[1]


def money(v: float, currency: str = "CNY") -> str:
    """``¥1,234,567``: whole units, cents only below 100; ``-¥0.17`` for negatives, never ``-0``.

    ``currency`` is an ISO code (``"USD"`` → ``$1,234``; an unknown code is a prefix,
    ``SEK 1,234``) or a symbol to use as it is (``"¥"``).
    """
    symbol = currency_symbol(currency) if _is_code(currency) else currency
    if symbol[-1:].isalpha():
        symbol += " "
    v = round(float(v), 2) + 0.0  # what rounds to zero prints as 0, without a sign
    sign = "-" if v < 0 else ""
    a = abs(v)
    if a < 100 and a != round(a):
        return f"{sign}{symbol}{a:,.2f}"
    return f"{sign}{symbol}{a:,.0f}"


def pct(share: float) -> str:
    """A share as a percentage, ``0.05`` → ``5%``."""
    return f"{share * 100:.4g}%"
