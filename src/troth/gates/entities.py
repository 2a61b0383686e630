"""Cedar entities from a verified credential chain (docs/policy.md, "Entities").

Every subject of the chain becomes an `Agent::"T<hex>"` entity; the principal is the last. For
the subject of link i (link 0 being the authority's credential):
- tags: the attributes of link i, each a `Set<String>` (a string attribute is a one-element
  set): `principal.hasTag("orders.access") && principal.getTag("orders.access").contains("w")`;
- `authority`: the authority's identifier text; `root`: the subject of link 0 (the member the
  authority vouched for; the principal itself when nothing was delegated);
- `delegator`: the subject of link i-1, who delegated to it (absent for the root: guard with
  `principal has delegator`); `delegators`: the subjects of links 0..i-1 (a set: use
  `delegator` and `root` for order); `depth`: i, the delegation links below the authority's;
- `purpose`: link i's purpose ("" for the root); `not_before`, `expires_at`: the window of
  links 0..i (latest start, earliest end).
"""

from __future__ import annotations

import json
from typing import Any

from troth.credentials import VerifiedCredential
from troth.identity import Identifier

__all__ = ["agent_uid", "credential_entities"]


def agent_uid(identifier: Identifier) -> str:
    """The Cedar entity uid of an identity (identifier text is [T0-9a-f]: no quoting needed)."""
    return f'Agent::"{identifier}"'


def _ref(identifier: Identifier) -> dict[str, Any]:
    return {"__entity": {"type": "Agent", "id": str(identifier)}}


def credential_entities(credential: VerifiedCredential) -> str:
    """The Cedar entities JSON of a verified chain's subjects (the principal last)."""
    authority = str(credential.authority)
    root = credential.links[0].subject
    entities: list[dict[str, Any]] = []
    not_before, expires_at = credential.links[0].not_before, credential.links[0].expires_at
    for link in credential.links:
        not_before = max(not_before, link.not_before)
        expires_at = min(expires_at, link.expires_at)
        upstream = [credential.links[i].subject for i in range(link.index)]
        attrs: dict[str, Any] = {
            "authority": authority,
            "root": _ref(root),
            "delegators": [_ref(i) for i in upstream],
            "purpose": link.purpose or "",
            "depth": link.index,
            "not_before": not_before,
            "expires_at": expires_at,
        }
        if upstream:
            attrs["delegator"] = _ref(upstream[-1])
        entities.append(
            {
                "uid": {"type": "Agent", "id": str(link.subject)},
                "attrs": attrs,
                "parents": [],
                "tags": {key: sorted(link.attributes.values_of(key)) for key in link.attributes},
            }
        )
    return json.dumps(entities)
