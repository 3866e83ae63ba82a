"""Per-user operator policy: what each rating does (run, wait for approval, refuse).

Default: SAFE and MODERATE run, HIGH waits for the owner, DANGEROUS is refused. Staff may set a
stricter or looser policy within what they may grant: only superusers may let HIGH run without
asking, and nobody may let DANGEROUS run; only staff may give the operator a looser terminal.
"""

from __future__ import annotations

from django.db import DEFAULT_DB_ALIAS

from autobot import audit, lanes
from autobot.compiled import CompiledQuery, Param
from autobot.errors import Forbidden, InvalidInput
from chat.models import OperatorPolicy

Action = OperatorPolicy.Action
FIELDS = {"SAFE": "safe", "MODERATE": "moderate", "HIGH": "high", "DANGEROUS": "dangerous"}


def default_policy(user) -> OperatorPolicy:
    return OperatorPolicy(user=user)


_COLUMNS = tuple(field.attname for field in OperatorPolicy._meta.concrete_fields)
# Read before every answer that may use tools, before its first token: compiled once
# (autobot/compiled.py), on a request lane without asgiref's wrapper (docs/performance.md, eleventh round).
_POLICY = CompiledQuery(lambda: OperatorPolicy.objects.filter(
    user_id=Param("user", OperatorPolicy._meta.get_field("user").target_field)).order_by().values_list(*_COLUMNS))


def _policy_read(user) -> OperatorPolicy | None:
    rows = _POLICY.rows({"user": user.pk}, limit=1)
    return OperatorPolicy.from_db(DEFAULT_DB_ALIAS, _COLUMNS, rows[0]) if rows else None


async def policy_get(*, user) -> OperatorPolicy:
    policy = await lanes.run(_policy_read, user)
    return policy or default_policy(user)


def action_for(policy: OperatorPolicy, risk: str) -> str:
    # An unknown rating is treated as the worst one.
    return getattr(policy, FIELDS.get(risk, "dangerous"))


def check_grant(*, granter, target, changes: dict) -> None:
    """Refuse a policy `granter` may not give `target` (used by the admin and policy_set)."""
    if not granter.is_staff:
        raise Forbidden("only staff may change an operator policy", code="forbidden")
    for field, value in changes.items():
        if field in FIELDS.values() and value not in Action.values:
            raise InvalidInput(f"{field} must be one of {', '.join(Action.values)}", code="invalid_policy")
    if changes.get("dangerous") == Action.RUN:
        raise Forbidden("DANGEROUS commands are never run without asking", code="policy_not_allowed")
    if changes.get("dangerous") == Action.APPROVE and not granter.is_superuser:
        raise Forbidden("only superusers may let DANGEROUS commands be approved", code="policy_not_allowed")
    if changes.get("high") == Action.RUN and not granter.is_superuser:
        raise Forbidden("only superusers may let HIGH commands run without approval", code="policy_not_allowed")
    level = changes.get("terminal_level")
    if level is not None:
        from terminal.policy import Level, can_set_level

        known = level in {lvl.value for lvl in Level}
        if not known or not can_set_level(current=None, requested=level, is_staff=target.is_staff):
            raise Forbidden(f"{target} may not use a {level} terminal", code="level_not_allowed")


async def policy_set(*, user, target, **changes) -> OperatorPolicy:
    check_grant(granter=user, target=target, changes=changes)
    policy, _ = await OperatorPolicy.objects.aget_or_create(user=target)
    for field, value in changes.items():
        setattr(policy, field, value)
    await policy.asave()
    await audit.record(actor=user, action="chat.operator_policy", target_type="user", target_id=str(target.pk),
                       data=changes)
    return policy
