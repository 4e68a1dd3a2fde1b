"""A child function for tests: the fields one build's world writes before the call."""

from __future__ import annotations

from typing import Any

from checks import child


def fields_before(mods: list[Any], payload: dict[str, Any]) -> dict[str, Any]:
    """{"before": [the fields before the call, per state index in payload["indices"]]}."""
    check = str(payload["check"])
    return {"before": [child._trace(mods[0], check, int(i))["before"] for i in payload["indices"]]}
