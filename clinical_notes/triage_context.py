"""What a triage scale's rules read and write: the encounter's context, its flags, and a scale's words.

A criterion met is a TriageFlag with the scale level it meets and whether the scale makes it decisive.
Tiers mean what they say: a decisive level-1 criterion is critical, a decisive level-2 criterion a warning;
a discretionary one ("consider level 2") and every criterion of levels 3 to 5 are info, shown but never
raised. Supporting scores that are no criterion of the scale (NEWS2, qSOFA, SIRS, shock index) carry no
level and stay at info on the screen.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from pydantic import Field

from clinical_notes.complaints import ReadComplaint
from clinical_notes.draft import Flag, Severity
from clinical_notes.timeline import Presentation
from clinical_notes.vitals import Vital, VitalSet
from services.core.settings import TriageScale

ScaleName = TriageScale
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12


class TriageFlag(Flag):
    """A rule's flag on one encounter: the rule, the values and complaint it rests on, its sources."""

    source: Literal["rule", "model"] = "rule"
    rule: str
    values: list[str] = Field(default_factory=list)
    complaint: str | None = None
    references: list[str] = Field(default_factory=list)
    encounter: str | None = None
    scale: ScaleName | None = Field(default=None, description="The triage scale whose criterion this is.")
    level: int | None = Field(default=None, description="The scale level (1-5) whose criterion this is.")
    decisive: bool = Field(
        default=True, description="False for a discretionary criterion: the scale says 'consider' the level."
    )
    not_assessed: bool = Field(
        default=False, description="A statement of what could not be assessed, and why."
    )


@dataclass(frozen=True)
class Scale:
    """A triage scale: its name, how it names its levels, its sources, and its rules."""

    name: ScaleName
    label: str
    levels: dict[int, str]
    reference: str
    rules: tuple[Callable[[Context], None], ...]
    grades_low_levels: bool = True  # False for ESI: levels 3-5 count expected resources, not judged here

    def level_name(self, level: int) -> str:
        """'CTAS level 2 (Emergent)'."""
        return f"{self.label} level {level} ({self.levels[level]})"


@dataclass(frozen=True)
class Read:
    """A complaint of the encounter and how it was read."""

    source: str
    ref: str
    read: ReadComplaint


def tier(level: int, decisive: bool) -> Severity:
    """critical for a decisive level-1 criterion, warning for a decisive level-2 one, info for the rest."""
    if decisive and level == 1:
        return "critical"
    if decisive and level == 2:
        return "warning"
    return "info"


@dataclass
class Context:
    """One encounter as the rules see it, and the flags they add."""

    presentation: Presentation
    vitals: VitalSet
    complaints: list[Read]
    problems: list[ReadComplaint]
    scale: Scale
    flags: list[TriageFlag] = field(default_factory=list)

    @property
    def day(self) -> str:
        return (self.presentation.start or "date unknown")[:10]

    @property
    def age(self) -> str:
        days = self.presentation.age_days
        if days is None:
            return "of unrecorded age"
        if days < 2 * DAYS_PER_MONTH:
            return f"{days} days old"
        if days < 2 * DAYS_PER_YEAR:
            return f"{int(days // DAYS_PER_MONTH)} months old"
        return f"{int(days // DAYS_PER_YEAR)} years old"  # whole years: 17.6 is 17, not 18

    @property
    def years(self) -> float | None:
        days = self.presentation.age_days
        return None if days is None else days / DAYS_PER_YEAR

    def found(self, name: str) -> list[Read]:
        """The complaints that name the concept."""
        return [c for c in self.complaints if c.read.has(name)]

    def add(
        self,
        severity: Severity,
        title: str,
        rule: str,
        why: str,
        *,
        values: list[str] | None = None,
        refs: list[str] | None = None,
        references: tuple[str, ...] = (),
        complaint: Read | None = None,
        level: int | None = None,
        decisive: bool = True,
        not_assessed: bool = False,
    ) -> None:
        """A flag resting on the values and complaint given."""
        shown = f" ({'; '.join(values)})" if values else ""
        self.flags.append(
            TriageFlag(
                severity=severity,
                title=title,
                rationale=f"{why}{shown}; encounter of {self.day}. Rule: {rule}.",
                citations=list(dict.fromkeys(refs or [])),
                rule=rule,
                values=values or [],
                complaint=complaint.read.text if complaint else None,
                references=list(references),
                encounter=self.presentation.encounter,
                scale=self.scale.name if level is not None else None,
                level=level,
                decisive=decisive,
                not_assessed=not_assessed,
            )
        )

    def meets(
        self,
        level: int,
        title: str,
        rule: str,
        why: str,
        *,
        decisive: bool = True,
        values: list[str] | None = None,
        refs: list[str] | None = None,
        references: tuple[str, ...] = (),
        complaint: Read | None = None,
    ) -> None:
        """A criterion of the scale met: its tier follows from its level and whether it is decisive."""
        self.add(
            tier(level, decisive),
            title,
            rule,
            why,
            values=values,
            refs=refs,
            references=(self.scale.reference, *references),
            complaint=complaint,
            level=level,
            decisive=decisive,
        )

    def reading(
        self, level: int, title: str, rule: str, why: str, vital: Vital, decisive: bool = True
    ) -> None:
        """A criterion met by one reading."""
        self.meets(level, title, rule, why, decisive=decisive, values=[vital.shown], refs=[vital.ref])

    def skip(self, title: str, rule: str, why: str, refs: list[str] | None = None) -> None:
        """What could not be assessed, and why (info)."""
        self.add("info", title, rule, why, refs=refs, not_assessed=True)

    def consciousness(self) -> tuple[list[str], list[str]]:
        """The AVPU and GCS readings as shown, and their references."""
        readings = [x for x in (self.vitals.avpu, self.vitals.get("GCS")) if x is not None]
        return [x.shown for x in readings], [x.ref for x in readings]

    def immunocompromised_fever(
        self, febrile: Callable[[float], bool]
    ) -> tuple[str, list[str], list[str], Read | None] | None:
        """An immunocompromise (a complaint or an active problem) with fever (a complaint, or a temperature
        the scale calls febrile): (what shows it, the temperature shown, the references, the complaint)."""
        immune = self.found("immunocompromised")
        problems = [p for p in self.problems if p.has("immunocompromised")]
        fever = self.found("fever")
        t = self.vitals.get("temperature")
        hot = [t.shown] if t is not None and febrile(t.value) else []
        if not (immune or problems) or not (fever or hot):
            return None
        why = immune[0].read.text if immune else problems[0].text
        refs = [c.ref for c in (*immune, *fever)] + ([t.ref] if hot and t is not None else [])
        shown = f"{why!r} with {fever[0].read.text if fever else hot[0]!r}"
        return shown, hot, refs, next(iter([*immune, *fever]), None)

    def pregnant_bleeding(self) -> tuple[list[str], Read] | None:
        """A pregnancy (recorded or in the complaint) with vaginal bleeding or abdominal pain, not already
        named ectopic: (the references, the complaint)."""
        pregnant = self.presentation.pregnant or bool(self.found("pregnant"))
        bleeding = self.found("pregnancy_bleeding")
        if not pregnant or not bleeding or self.found("ectopic"):
            return None
        refs = [self.presentation.pregnancy_ref] if self.presentation.pregnancy_ref else []
        return [*refs, bleeding[0].ref], bleeding[0]

    def altered_mentation(self) -> tuple[str, list[str]] | None:
        """What shows a mentation other than alert, with its refs, or None."""
        v = self.vitals
        gcs = v.get("GCS")
        if v.avpu is not None and v.avpu_letter != "A":
            return v.avpu.shown, [v.avpu.ref]
        if gcs is not None and gcs.value < 15:
            return gcs.shown, [gcs.ref]
        confused = self.found("confusion") or self.found("unresponsive")
        if confused:
            return f"complaint {confused[0].read.text!r}", [confused[0].ref]
        return None
