"""Per-source byte budgets of the node's services: `ByteBudgets`, which lives in troth.rates (the
secrets broker, a layer below the node, counts lease issues with it too: review 48o)."""

from __future__ import annotations

from troth.rates import ByteBudgets

__all__ = ["ByteBudgets"]
