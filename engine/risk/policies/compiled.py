"""Every enabled policy's fast form (`Policy.fast`) compiled into one function of a Projection.

`compile_clear(policies)(p)` is true exactly when every policy's `evaluate(p)` would return
None for that risk-increasing order, so an ordinary entry is judged in one call, with the
figures read once, instead of 21 calls that each read them again. When it is false the gate
asks each policy for its reason. The equivalence is tested policy by policy
(tests/test_gate_fast.py), on random books, counters and orders.

The function is built from source, as dataclasses and namedtuple build theirs: each policy's
`$name`s become names of its own (`_3_cap`), bound once as closure variables. The source comes
from the policy classes only; what a trader configures (limits, coin and category names) is
bound as values, never pasted into it.
"""

from __future__ import annotations

import re
from string import Template
from typing import Callable, Iterable

from engine.risk.counters import RiskCounters
from engine.risk.policies.base import Policy
from engine.risk.projection import Projection

# The names a fast expression may read, and where from: the Projection's slots and a few
# fields of the order. Only those an expression uses are read, each once.
PROJECTED = {name: f"p.{name}" for name in (
    "coin", "sign", "now", "book", "counters", "intent", "mark", "mark_age", "account_age", "px", "size",
    "notional", "position_notional", "gross", "equity", "book_equity", "account_leverage", "market_leverage",
    "margin_buffer", "isolated_buffer")}
PROJECTED |= {"order_type": "p.intent.type", "tif": "p.intent.tif", "limit_px": "p.intent.limit_px",
              "stop_loss": "p.intent.stop_loss",
              "take_profit": "p.intent.take_profit", "category": "p.intent.category"}


def clear_source(policies: Iterable[Policy], counters: RiskCounters) -> tuple[str, dict[str, object]]:
    """The source of a factory `_build(**bound)` returning `clear(p)`, and what to bind."""
    terms, bound = [], {}
    for i, policy in enumerate(policies):
        fast = policy.fast(counters)
        template = Template(fast.expr)
        local = {name: f"_{i}_{name}" for name in template.get_identifiers()}
        terms.append(f"({template.substitute(local)})  # {policy.type} #{i}")
        bound.update({local[name]: value for name, value in fast.names.items() if name in local})
    body = "\n        and ".join(terms) or "True"
    reads = [name for name in PROJECTED if any(re.search(rf"(?<![.\w]){name}\b", t) for t in terms)]
    lines = [f"def _build({', '.join(bound)}):", "    def clear(p):"]
    lines += [f"        {name} = {PROJECTED[name]}" for name in reads]
    lines += [f"        return ({body}\n        )", "    return clear"]
    return "\n".join(lines) + "\n", bound


def compile_clear(policies: Iterable[Policy], counters: RiskCounters) -> Callable[[Projection], bool]:
    source, bound = clear_source(policies, counters)
    namespace: dict[str, object] = {}
    exec(compile(source, "<perpguard compiled policies>", "exec"), namespace)
    return namespace["_build"](**bound)
