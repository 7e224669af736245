"""How an event arrived (its `trust`), and what each site lets an event carry.

`trust` is "authenticated" when the sender proved who it is: a GA4 Measurement Protocol
request with the site's api_secret, the producer SDK, `sessionflow import` (whoever
writes canonical events directly holds Kafka access or the CLI). It is "anonymous" for
the browser routes, which anyone can send: /api/event, /g/collect, and /mp/collect for a
site without an api_secret. The collector sets it; a missing value means authenticated.

`SiteRules` is what validation needs of the settings, per site: the largest value one
event may carry (in the reporting currency) and whether anonymous purchases and refunds
count. The collector, the SDK, the consumer and `import` build it from the same settings,
so they accept and reject the same events.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from pipeline.config import Settings

AUTHENTICATED = "authenticated"
ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class SiteRules:
    currency: str  # the reporting currency
    rates: Mapping[str, float]  # units of the reporting currency per unit of a currency
    default_max_value: float  # [validation] max_event_value
    max_values: Mapping[str, float]  # per site: [site."<id>"] max_event_value
    refusing_anonymous_amounts: frozenset[str]  # sites with anonymous_purchases = false

    @classmethod
    def from_settings(cls, settings: Settings) -> SiteRules:
        return cls(
            currency=settings.currency,
            rates=dict(settings.currency_rates),
            default_max_value=settings.validation.max_event_value,
            max_values={site: settings.max_event_value(site) for site in settings.site},
            refusing_anonymous_amounts=frozenset(
                site for site, own in settings.site.items() if not own.anonymous_purchases
            ),
        )

    def max_value(self, site: str) -> float:
        return self.max_values.get(site, self.default_max_value)

    def reporting_amount(self, value: float, currency: str | None) -> float:
        """`value` in the reporting currency, as the warehouse converts it. A currency
        without a rate counts unit for unit: its value is then bounded by the same number
        in its own units (the strictest bound that needs no rate; without a rate the
        warehouse leaves it out of every sum anyway)."""
        if currency is None or currency == self.currency:
            return value
        return value * self.rates.get(currency, 1.0)

    def counts_anonymous_amounts(self, site: str) -> bool:
        return site not in self.refusing_anonymous_amounts

    def smallest_bound(self) -> float:
        """A value no site's bound refuses in any currency: the bulk decoder vouches for
        values within it and hands larger ones to the per-event path, which decides."""
        least = min([self.default_max_value, *self.max_values.values()])
        largest_rate = max([1.0, *self.rates.values()])
        return least / largest_rate * (1 - 1e-9)  # a margin for the product's rounding


@cache
def default_site_rules() -> SiteRules:
    """The embedded defaults' rules, for callers without settings (the SDK's default)."""
    return SiteRules.from_settings(Settings())
