"""What an answer cost, and what the same tokens would have cost on another tier: one definition.

The console's savings figures and the routing benches both use these functions, so "saved
against always-large" means the same number everywhere:

    actual         = the audit row's `cost`: every cascade step the request paid for
    at tier T      = tokens_in * T.input + tokens_out * T.output   (the served answer's tokens)
    saved against T = at tier T - actual

A tier's price is that of its first deployment in the config's `model_list` (the one the router
tries first); a tier without per-token prices in `model_info` costs 0.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Price:
    """Per-token prices in USD (litellm's `input_cost_per_token` / `output_cost_per_token`)."""

    input: float = 0.0
    output: float = 0.0


def tier_prices(model_list: Iterable[Any], tiers: Iterable[str] | None = None) -> dict[str, Price]:
    """{model group: Price} from a `model_list` (Deployment objects or the YAML's dicts); the first
    deployment of each group sets its price. `tiers`: keep only these groups."""
    wanted = set(tiers) if tiers is not None else None
    prices: dict[str, Price] = {}
    for entry in model_list:
        name = entry["model_name"] if isinstance(entry, Mapping) else entry.model_name
        info = (entry.get("model_info") if isinstance(entry, Mapping) else entry.model_info) or {}
        if name in prices or (wanted is not None and name not in wanted):
            continue
        prices[name] = Price(float(info.get("input_cost_per_token") or 0.0),
                             float(info.get("output_cost_per_token") or 0.0))
    return prices


def cost_at(tokens_in: int, tokens_out: int, price: Price) -> float:
    """What `tokens_in` prompt and `tokens_out` completion tokens cost at `price`."""
    return tokens_in * price.input + tokens_out * price.output


def saved_against(actual: float, tokens_in: int, tokens_out: int, price: Price) -> float:
    """How much cheaper the served answer was than the same tokens at `price` (negative: dearer)."""
    return cost_at(tokens_in, tokens_out, price) - actual


def savings(rows: Iterable[tuple[float, int, int]], prices: Mapping[str, Price]) -> dict[str, Any]:
    """For (actual cost, tokens_in, tokens_out) rows: {calls, actual, at: {tier: cost}, saved: {tier: USD},
    saved_share: {tier: saved / at}}: a routing bench's cost columns over the same rows."""
    calls, actual = 0, 0.0
    at = dict.fromkeys(prices, 0.0)
    for cost, tokens_in, tokens_out in rows:
        calls += 1
        actual += cost
        for tier, price in prices.items():
            at[tier] += cost_at(tokens_in, tokens_out, price)
    saved = {tier: at[tier] - actual for tier in prices}
    share = {tier: (saved[tier] / at[tier] if at[tier] > 0 else None) for tier in prices}
    return {"calls": calls, "actual": actual, "at": at, "saved": saved, "saved_share": share}
