"""Security levels: what each one blocks or warns about. Pure: no I/O, no Django.

`decide(level, assessment)` turns a risk assessment (terminal/risk/) into a verdict.
RESTRICTED also refuses what would let a user slip past the command hook: nested interactive
shells and REPLs, inline interpreter code, and settings that make other programs load code from
files the line does not show (PATH=., PYTHONPATH, vim -S, gdb -x). Scripts and programs run from
files are allowed there: the session's sandbox contains them (docs/security.md), and ordinary
work (`python3 script.py`, `make`, `./configure`) needs them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from terminal.risk import Assessment, Risk, Trait


class Level(StrEnum):
    STANDARD = "STANDARD"
    ELEVATED = "ELEVATED"
    RESTRICTED = "RESTRICTED"

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]


_STRICTNESS = {Level.STANDARD: 0, Level.ELEVATED: 1, Level.RESTRICTED: 2}


@dataclass(frozen=True)
class LevelPolicy:
    description: str
    blocks: frozenset[Risk]
    warns: frozenset[Risk]
    block_unparsed: bool = False
    blocked_traits: frozenset[Trait] = frozenset()


LEVEL_POLICY: dict[Level, LevelPolicy] = {
    Level.STANDARD: LevelPolicy(
        description="Blocks nothing; warns on HIGH and DANGEROUS commands.",
        blocks=frozenset(),
        warns=frozenset({Risk.HIGH, Risk.DANGEROUS}),
    ),
    Level.ELEVATED: LevelPolicy(
        description="Blocks DANGEROUS commands; warns on HIGH ones.",
        blocks=frozenset({Risk.DANGEROUS}),
        warns=frozenset({Risk.HIGH}),
    ),
    Level.RESTRICTED: LevelPolicy(
        description=(
            "Blocks HIGH and DANGEROUS commands and anything that cannot be parsed or is too complex to "
            "assess, plus nested interactive shells and REPLs, interpreters running inline code, and settings "
            "that make programs load code from files the line does not show."
        ),
        blocks=frozenset({Risk.HIGH, Risk.DANGEROUS}),
        warns=frozenset(),
        block_unparsed=True,
        blocked_traits=frozenset({Trait.NESTED_SHELL, Trait.INLINE_CODE, Trait.LOADS_CODE}),
    ),
}

_TRAIT_REASONS = {
    Trait.NESTED_SHELL: "nested interactive shells and interpreters are not allowed at RESTRICTED",
    Trait.SCRIPT_FILE: "running scripts and program files is not allowed at RESTRICTED",
    Trait.INLINE_CODE: "interpreters running inline code are not allowed at RESTRICTED",
    Trait.LOADS_CODE: "making programs load code from files the line does not show is not allowed at RESTRICTED",
}


@dataclass(frozen=True)
class Verdict:
    blocked: bool
    warn: bool
    reason: str | None = None


def decide(level: Level | str, assessment: Assessment) -> Verdict:
    policy = LEVEL_POLICY[Level(level)]
    risk = assessment.risk
    top = assessment.reasons[0] if assessment.reasons else None
    if risk in policy.blocks:
        return Verdict(blocked=True, warn=False, reason=f"{risk.name} at {Level(level)}: {top}")
    if policy.block_unparsed and not assessment.parsed:
        return Verdict(blocked=True, warn=False, reason=f"cannot be parsed at {Level(level)}: {top}")
    for fact in assessment.facts:
        for trait in sorted(fact.traits & policy.blocked_traits):
            return Verdict(blocked=True, warn=False, reason=f"{fact.text}: {_TRAIT_REASONS[trait]}")
    if risk in policy.warns:
        return Verdict(blocked=False, warn=True, reason=f"{risk.name}: {top}")
    return Verdict(blocked=False, warn=False, reason=None)


def describe_levels() -> list[dict]:
    """For GET /api/terminal/security-levels, least strict first."""
    return [
        {
            "name": level.value,
            "description": policy.description,
            "blocks": [r.name for r in sorted(policy.blocks)],
            "warns": [r.name for r in sorted(policy.warns)],
            "blocks_unparsed": policy.block_unparsed,
            "blocks_traits": sorted(t.value for t in policy.blocked_traits),
        }
        for level, policy in sorted(LEVEL_POLICY.items(), key=lambda item: item[0].strictness)
    ]


def max_level_for(is_staff: bool) -> Level:
    """The least strict level a user may choose: staff anything, everyone else RESTRICTED."""
    return Level.STANDARD if is_staff else Level.RESTRICTED


def can_set_level(*, current: Level | str | None, requested: Level | str, is_staff: bool) -> bool:
    """Anyone may make a session stricter; only staff may make it less strict. Non-staff can
    never go below RESTRICTED (a new session has current=None)."""
    requested = Level(requested)
    if requested.strictness < max_level_for(is_staff).strictness:
        return False
    if current is None or is_staff:
        return True
    return requested.strictness >= Level(current).strictness
