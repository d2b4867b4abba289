"""One triage screen per encounter: ESI v4 decision points A, B and D, sepsis screens, shock index, NEWS2 and
missing vital signs, on what a triage nurse sees (clinical_notes.timeline.Presentation).

Every threshold is the published source's; none was fitted to a data set.

- ESI: Gilboy N, Tanabe P, Travers D, Rosenau AM. Emergency Severity Index (ESI), Version 4, Implementation
  Handbook, 2012 Edition. AHRQ Publication No. 12-0014.
  A, immediate life-saving intervention (level 1) → critical: intubated, apnoeic, pulseless, severe
  respiratory distress, SpO2 < 90 %, unresponsive (AVPU P or U; GCS <= 8 read as P or U after Kelly CA,
  Upex A, Bateman DN, Ann Emerg Med 2004;44:108-13, where P matched a median GCS of 8), and the level-1
  conditions of chapter 2 and Table 6-2 when the complaint names them; hypoglycaemia with a change in mental
  status (chapter 2's level-1 examples).
  B, high-risk situation (level 2) → warning: the high-risk complaints of chapter 3, Table 3-1 and Table 6-3
  (see clinical_notes.complaint_lexicon); new confusion, lethargy or disorientation (AVPU V or C, GCS 9-14,
  or the complaint); severe pain or distress: pain >= 7 on a 0-10 scale (algorithm, footnote B) or
  severe pain observed in the complaint; immunocompromised with fever (Table 6-3; fever > 38.0 °C, the
  algorithm's footnote D limit, or named in the complaint); pregnant with vaginal bleeding or abdominal
  pain (chapter 3, ectopic pregnancy). The ESI's own level-1 list puts "acute mental status changes"
  beside unresponsiveness; chapter 2 defines the level-1 case as needing a noxious stimulus, so confusion
  and lethargy are level 2 here, as decision point B names them.
  D, danger-zone vital signs (chapter 5; the algorithm says "consider" level 2) → warning: under 3 months
  HR > 180 or RR > 50; 3 months to 3 years HR > 160 or RR > 40; 3 to 8 years HR > 140 or RR > 30; over
  8 years HR > 100 or RR > 20; any age SpO2 < 92 %. Fever in the young (footnote D): 1-28 days old with a
  temperature > 38.0 °C: at least level 2 (warning); 1-3 months > 38.0 °C: consider level 2 (warning);
  3 months-3 years > 39.0 °C: consider level 3 (info).
- qSOFA (Seymour CW et al., JAMA 2016;315:762-74; Singer M et al., Sepsis-3, JAMA 2016;315:801-10), adults:
  respiratory rate >= 22 /min, systolic BP <= 100 mmHg, altered mentation (GCS < 15, AVPU other than A, or
  the complaint); 2 or more → warning. Mentation not recorded counts as normal, and the flag says so.
- SIRS (Bone RC et al., ACCP/SCCM consensus, Chest 1992;101:1644-55), adults: temperature > 38.0 or < 36.0 °C,
  heart rate > 90 /min, respiratory rate > 20 /min (the white-cell count is no triage reading); 2 or more with
  an infection suspected in the complaint → warning (sepsis by the 1992 definition), without → info.
- Shock index (Allgöwer M, Burri C, Dtsch Med Wochenschr 1967;92:1947-50; Rady MY et al., Ann Emerg Med
  1994;24:685-90), adults: heart rate / systolic BP >= 1.0 → warning.
- NEWS2 (Royal College of Physicians, 2017) on the presentation's vital set, scored as clinical_notes.triage
  scores it; not used under 16 years or in pregnancy, which the RCP excludes.
- No triage vital signs: an emergency or inpatient encounter (class EMER, IMP, ACUTE, NONAC, OBSENC) with none
  of heart rate, respiratory rate, systolic BP, SpO2 and temperature → warning: the sickest patients (cardiac
  arrests, intubated trauma) often arrive with none recorded.

Adults are 18 and over. Children's sepsis and shock-index criteria differ (Goldstein B et al., Pediatr Crit
Care Med 2005;6:2-8; Acker SN et al., J Pediatr Surg 2015;50:331-4) and are not applied: the screen says so.
With no recorded age the adult limits are used, and the screen says so. What cannot be assessed (no
encounter, a complaint the lexicon cannot read, a reading in an unknown unit or an impossible value) is an
info flag saying what and why: never a crash and never a silent pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from clinical_notes.complaints import ReadComplaint, read_complaint
from clinical_notes.draft import SEVERITY_ORDER, Flag, Severity
from clinical_notes.record_phrases import ENGLISH_PHRASES, RecordPhrases
from clinical_notes.timeline import ClinicalTimeline, Presentation
from clinical_notes.triage import News2, allergy_conflicts, critical_labs, news2_points
from clinical_notes.vitals import CORE, Vital, VitalSet, read_vitals

ESI = "ESI v4 (AHRQ 12-0014)"
QSOFA = "qSOFA (Seymour 2016; Sepsis-3, Singer 2016)"
SIRS = "SIRS (Bone 1992, ACCP/SCCM)"
SHOCK_INDEX = "Shock index (Allgöwer 1967; Rady 1994)"
NEWS2 = "NEWS2 (Royal College of Physicians 2017)"
CRITICAL_LABS = "critical lab value (critical-call limits, clinical_notes.triage)"
KDIGO = "creatinine rise (KDIGO acute kidney injury criteria)"
ALLERGY = "drug-allergy conflict (active medication against an active allergy)"
ACUTE_CLASSES = frozenset({"EMER", "IMP", "ACUTE", "NONAC", "OBSENC"})
ADULT_YEARS = 18
NEWS2_MIN_YEARS = 16
DAYS_PER_YEAR = 365.25
DAYS_PER_MONTH = DAYS_PER_YEAR / 12
SOURCE_ORDER = ("chief complaint", "triage note", "reason for visit", "encounter diagnosis")
# ESI danger zone: (age in years below which the band applies, HR limit, RR limit, band).
DANGER_ZONE = (
    (0.25, 180, 50, "under 3 months"),
    (3.0, 160, 40, "3 months to 3 years"),
    (9.0, 140, 30, "3 to 8 years"),
    (float("inf"), 100, 20, "over 8 years"),
)
NEWBORN_DAYS = 28
DANGER_SPO2 = 92
ESI1_SPO2 = 90
FEVER_C = 38.0
YOUNG_FEVER_C = 39.0


class TriageFlag(Flag):
    """A rule's flag on one encounter: the rule, the values and complaint it rests on, its sources."""

    source: Literal["rule", "model"] = "rule"
    rule: str
    values: list[str] = Field(default_factory=list)
    complaint: str | None = None
    references: list[str] = Field(default_factory=list)
    encounter: str | None = None
    esi: int | None = Field(default=None, description="The ESI level whose criterion this is (1 or 2).")
    not_assessed: bool = Field(
        default=False, description="A statement of what could not be assessed, and why."
    )


class Screen(BaseModel):
    """One encounter's triage screen: its flags and the overall statement of the ESI criteria met."""

    encounter: str | None = None
    kind: str | None = None
    start: str | None = None
    statement: str
    flags: list[TriageFlag] = Field(default_factory=list)
    complaints: list[str] = Field(default_factory=list, description="Each complaint as written and as read.")

    @property
    def severity(self) -> str:
        """The highest flag's severity, or "none"."""
        return highest(self.flags)


def highest(flags: list[Flag] | list[TriageFlag]) -> str:
    """The highest severity among flags: critical, warning, info, or none."""
    return min((f.severity for f in flags), key=SEVERITY_ORDER.__getitem__, default="none")


@dataclass(frozen=True)
class _Read:
    """A complaint of the encounter and how it was read."""

    source: str
    ref: str
    read: ReadComplaint


@dataclass
class _Context:
    presentation: Presentation
    vitals: VitalSet
    complaints: list[_Read]
    problems: list[ReadComplaint]
    flags: list[TriageFlag]

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

    def found(self, name: str) -> list[_Read]:
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
        complaint: _Read | None = None,
        esi: int | None = None,
        not_assessed: bool = False,
    ) -> None:
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
                esi=esi,
                not_assessed=not_assessed,
            )
        )

    def reading(
        self, severity: Severity, title: str, rule: str, why: str, vital: Vital, esi: int | None = None
    ) -> None:
        """A flag resting on one reading."""
        self.add(
            severity, title, rule, why, values=[vital.shown], refs=[vital.ref], references=(ESI,), esi=esi
        )

    def skip(self, title: str, rule: str, why: str, refs: list[str] | None = None) -> None:
        self.add("info", title, rule, why, refs=refs, not_assessed=True)


def triage(timeline: ClinicalTimeline, encounter: str | None = None) -> tuple[Screen, list[TriageFlag]]:
    """The screen of one encounter, and every rule flag: the screen's, critical labs and allergy conflicts."""
    result = screen(timeline, encounter)
    labs = [
        _ruled(f, KDIGO if f.title.startswith("Creatinine") else CRITICAL_LABS)
        for f in critical_labs(timeline)
    ]
    allergies = [_ruled(f, ALLERGY) for f in allergy_conflicts(timeline)]
    return result, sorted([*result.flags, *labs, *allergies], key=lambda f: SEVERITY_ORDER[f.severity])


def _ruled(flag: Flag, rule: str) -> TriageFlag:
    return TriageFlag(**flag.model_dump(), rule=rule)


def presentation_of(timeline: ClinicalTimeline, encounter: str | None = None) -> Presentation | None:
    """The encounter to screen: the one named, else the newest; for an admission, the ED visit before it."""
    if encounter is not None:
        wanted = encounter if "/" in encounter else f"Encounter/{encounter}"
        return next((p for p in timeline.presentations if p.encounter == wanted), None)
    if not timeline.presentations:
        return None
    newest = timeline.presentations[0]
    for p in reversed(timeline.presentations):
        if p.kind == "EMER" and p is not newest and _same_episode(p, newest):
            return p
    return newest


def _same_episode(ed: Presentation, later: Presentation) -> bool:
    linked = {ed.encounter, ed.part_of} & {later.encounter, later.part_of}
    return bool(linked - {None}) or (ed.start is not None and ed.start[:10] == (later.start or "")[:10])


def screen(timeline: ClinicalTimeline, encounter: str | None = None) -> Screen:
    """The triage screen of one encounter (the newest by default): flags and the ESI criteria it meets."""
    presentation = presentation_of(timeline, encounter)
    if presentation is None:
        why = f"no encounter {encounter}" if encounter else "the record has no encounter"
        flag = TriageFlag(
            severity="info",
            title="Triage screen not assessed",
            rationale=f"Not assessed because {why}: ESI, sepsis screens and NEWS2 need an encounter to read.",
            rule="triage screen",
            not_assessed=True,
        )
        return Screen(statement=f"Not assessed: {why}.", flags=[flag])
    ctx = _Context(
        presentation=presentation,
        vitals=read_vitals(presentation),
        complaints=sorted(
            (_Read(c.source, c.ref, read_complaint(c.text)) for c in presentation.complaints),
            key=lambda r: SOURCE_ORDER.index(r.source) if r.source in SOURCE_ORDER else len(SOURCE_ORDER),
        ),
        problems=[read_complaint(p.name) for p in timeline.problems if p.active],
        flags=[],
    )
    for rule in (_complaint_rules, _vital_rules, _danger_zone, _sepsis_screens, _news2, _not_assessed):
        rule(ctx)
    ctx.flags.sort(key=lambda f: SEVERITY_ORDER[f.severity])
    return Screen(
        encounter=presentation.encounter,
        kind=presentation.kind,
        start=presentation.start,
        statement=criteria(ctx.flags),
        flags=ctx.flags,
        complaints=[f"{c.read.text!r} ({c.source}) read as {c.read.normalized!r}" for c in ctx.complaints],
    )


def _complaint_rules(ctx: _Context) -> None:
    """ESI A and B criteria the complaint names, once per concept, citing every complaint that names it."""
    seen: set[str] = set()
    for read in ctx.complaints:
        for finding in read.read.findings:
            concept = finding.concept
            if concept.point not in ("A", "B") or concept.name in seen:
                continue
            seen.add(concept.name)
            sources = ctx.found(concept.name)
            level = 1 if concept.point == "A" else 2
            ctx.add(
                "critical" if level == 1 else "warning",
                f"{'Life-threatening' if level == 1 else 'High-risk'} complaint: {concept.label}",
                f"{ESI} decision point {concept.point}: "
                + ("needs an immediate life-saving intervention" if level == 1 else "high-risk situation"),
                f"Complaint {read.read.text!r} ({read.source}) read as {finding.phrase!r}",
                refs=[s.ref for s in sources],
                references=(ESI, concept.source),
                complaint=read,
                esi=level,
            )
    _combined_complaints(ctx)


def _combined_complaints(ctx: _Context) -> None:
    """Criteria that need two findings: a context and a state."""
    altered = _altered_mentation(ctx)
    hypo = ctx.found("hypoglycemia")
    if hypo and altered:
        ctx.add(
            "critical",
            "Hypoglycaemia with a change in mental status",
            f"{ESI} decision point A",
            f"Complaint {hypo[0].read.text!r} with {altered[0]}",
            refs=[hypo[0].ref, *altered[1]],
            references=(ESI,),
            complaint=hypo[0],
            esi=1,
        )
    immune = ctx.found("immunocompromised")
    problems = [p for p in ctx.problems if p.has("immunocompromised")]
    fever = ctx.found("fever")
    temperature = ctx.vitals.get("temperature")
    febrile = [temperature.shown] if temperature and temperature.value > FEVER_C else []
    if (immune or problems) and (fever or febrile):
        why = immune[0].read.text if immune else problems[0].text
        ctx.add(
            "warning",
            "Immunocompromised with fever",
            f"{ESI} decision point B: high-risk situation (Table 6-3)",
            f"{why!r} with {fever[0].read.text if fever else febrile[0]!r}",
            values=febrile,
            refs=[c.ref for c in (*immune, *fever)] + ([temperature.ref] if febrile and temperature else []),
            references=(ESI,),
            complaint=next(iter([*immune, *fever]), None),
            esi=2,
        )
    pregnant = ctx.presentation.pregnant or bool(ctx.found("pregnant"))
    bleeding = ctx.found("pregnancy_bleeding")
    if pregnant and bleeding and not ctx.found("ectopic"):
        refs = [ctx.presentation.pregnancy_ref] if ctx.presentation.pregnancy_ref else []
        ctx.add(
            "warning",
            "Pregnant with vaginal bleeding or abdominal pain",
            f"{ESI} decision point B: high-risk situation (possible ectopic pregnancy)",
            f"Complaint {bleeding[0].read.text!r} in a pregnant patient",
            refs=[*refs, bleeding[0].ref],
            references=(ESI,),
            complaint=bleeding[0],
            esi=2,
        )


def _altered_mentation(ctx: _Context) -> tuple[str, list[str]] | None:
    """What shows a mentation other than alert, with its refs, or None."""
    v = ctx.vitals
    gcs = v.get("GCS")
    if v.avpu is not None and v.avpu_letter != "A":
        return v.avpu.shown, [v.avpu.ref]
    if gcs is not None and gcs.value < 15:
        return gcs.shown, [gcs.ref]
    confused = ctx.found("confusion") or ctx.found("unresponsive")
    if confused:
        return f"complaint {confused[0].read.text!r}", [confused[0].ref]
    return None


def _vital_rules(ctx: _Context) -> None:
    """ESI A and B criteria read from the vital signs: SpO2 < 90 %, unresponsive, confused, severe pain."""
    v = ctx.vitals
    spo2, gcs, pain = v.get("SpO2"), v.get("GCS"), v.get("pain")
    if spo2 is not None and spo2.value < ESI1_SPO2:
        ctx.reading(
            "critical",
            "SpO2 below 90 %",
            f"{ESI} decision point A: needs an immediate life-saving intervention",
            "Oxygen saturation under 90 %",
            spo2,
            esi=1,
        )
    unresponsive = v.avpu_letter in ("P", "U") or (gcs is not None and gcs.value <= 8)
    confused = v.avpu_letter in ("V", "C") or (gcs is not None and 8 < gcs.value < 15)
    shown = [x.shown for x in (v.avpu, gcs) if x is not None]
    refs = [x.ref for x in (v.avpu, gcs) if x is not None]
    if unresponsive:
        ctx.add(
            "critical",
            "Unresponsive",
            f"{ESI} decision point A: unresponsive (needs a noxious stimulus)",
            "Responds to pain only or not at all",
            values=shown,
            refs=refs,
            references=(ESI, "Kelly 2004 (AVPU P ~ GCS 8)"),
            esi=1,
        )
    elif confused:
        ctx.add(
            "warning",
            "Reduced consciousness: confused, lethargic or disoriented",
            f"{ESI} decision point B: new confusion, lethargy or disorientation (compare with the baseline)",
            "Consciousness below alert",
            values=shown,
            refs=refs,
            references=(ESI,),
            esi=2,
        )
    if pain is not None and pain.value >= 7:
        ctx.reading(
            "warning",
            "Severe pain",
            f"{ESI} decision point B: severe pain or distress (pain >= 7/10)",
            "Pain rated 7 or more out of 10",
            pain,
            esi=2,
        )


def _danger_zone(ctx: _Context) -> None:
    """ESI decision point D by age, and fever in the young."""
    v = ctx.vitals
    years = ctx.years
    band = DANGER_ZONE[-1] if years is None else next(b for b in DANGER_ZONE if years < b[0])
    _, hr_limit, rr_limit, label = band
    hr, rr, spo2 = v.get("HR"), v.get("RR"), v.get("SpO2")
    exceeded = [
        (x, f"{x.shown} > {limit}") for x, limit in ((hr, hr_limit), (rr, rr_limit)) if x and x.value > limit
    ]
    if spo2 is not None and spo2.value < DANGER_SPO2:
        exceeded.append((spo2, f"{spo2.shown} < {DANGER_SPO2}"))  # a threshold, not a reading: no unit
    if exceeded:
        age = label if years is not None else f"{label}: age not recorded, adult limits used"
        ctx.add(
            "warning",
            f"Danger-zone vital signs ({age})",
            f"{ESI} decision point D: danger-zone vital signs, consider level 2",
            "Beyond the ESI danger zone for the age",
            values=[why for _, why in exceeded],
            refs=[x.ref for x, _ in exceeded],
            references=(ESI,),
            esi=2,
        )
    _young_fever(ctx, v.get("temperature"))


def _young_fever(ctx: _Context, temperature: Vital | None) -> None:
    """ESI footnote D: fever in infants and young children."""
    days, years = ctx.presentation.age_days, ctx.years
    if days is None or years is None or temperature is None:
        return
    if years < DANGER_ZONE[0][0] and temperature.value > FEVER_C:
        newborn = days <= NEWBORN_DAYS
        ctx.reading(
            "warning",
            "Fever in a newborn (28 days or younger)" if newborn else "Fever in an infant of 1 to 3 months",
            f"{ESI} footnote D: " + ("assign at least level 2" if newborn else "consider level 2"),
            "Temperature above 38.0 °C",
            temperature,
            esi=2,
        )
    elif years < DANGER_ZONE[1][0] and temperature.value > YOUNG_FEVER_C:
        ctx.reading(
            "info",
            "Fever in a child of 3 months to 3 years",
            f"{ESI} footnote D: consider level 3 (incomplete immunizations or no obvious source)",
            "Temperature above 39.0 °C",
            temperature,
        )


def _met(*checks: tuple[Vital | None, bool]) -> list[Vital]:
    return [x for x, met in checks if x is not None and met]


def _sepsis_screens(ctx: _Context) -> None:
    """qSOFA, SIRS and the shock index, for adults."""
    years = ctx.years
    if years is not None and years < ADULT_YEARS:
        ctx.skip(
            "Sepsis screens and shock index not assessed",
            "qSOFA, SIRS and shock index are adult criteria",
            f"Not assessed because the patient is {ctx.age}: children's criteria differ "
            "(Goldstein 2005; Acker 2015) and are not applied",
        )
        return
    v = ctx.vitals
    hr, rr, sbp, t = v.get("HR"), v.get("RR"), v.get("SBP"), v.get("temperature")
    altered = _altered_mentation(ctx)
    qsofa = _met((rr, rr is not None and rr.value >= 22), (sbp, sbp is not None and sbp.value <= 100))
    shown, refs = [x.shown for x in qsofa], [x.ref for x in qsofa]
    if altered:
        shown.append(altered[0])
        refs += altered[1]
    if len(shown) >= 2:
        assumed = "" if altered or v.avpu or v.get("GCS") else "; mentation not recorded, counted as normal"
        ctx.add(
            "warning",
            f"qSOFA {len(shown)}",
            f"{QSOFA}: 2 or more of RR >= 22, SBP <= 100, altered mentation{assumed}",
            "High risk of a poor outcome if infection is present",
            values=shown,
            refs=refs,
            references=(QSOFA,),
        )
    sirs = _met(
        (t, t is not None and (t.value > FEVER_C or t.value < 36.0)),
        (hr, hr is not None and hr.value > 90),
        (rr, rr is not None and rr.value > 20),
    )
    if len(sirs) >= 2:
        infection = ctx.found("infection")
        ctx.add(
            "warning" if infection else "info",
            f"SIRS {len(sirs)} of 3" + (" with suspected infection" if infection else ""),
            f"{SIRS}: 2 or more of T > 38 or < 36 °C, HR > 90, RR > 20"
            + ("; with infection suspected this is sepsis by the 1992 definition" if infection else ""),
            f"Complaint {infection[0].read.text!r} suggests infection" if infection else "No infection named",
            values=[x.shown for x in sirs],
            refs=[x.ref for x in sirs] + [c.ref for c in infection[:1]],
            references=(SIRS,),
            complaint=infection[0] if infection else None,
        )
    if hr is not None and sbp is not None and hr.value / sbp.value >= 1.0:
        ctx.add(
            "warning",
            f"Shock index {hr.value / sbp.value:.2f}",
            f"{SHOCK_INDEX}: heart rate / systolic BP >= 1.0",
            "Heart rate at or above the systolic pressure",
            values=[hr.shown, sbp.shown],
            refs=[hr.ref, sbp.ref],
            references=(SHOCK_INDEX,),
        )


def _news2(ctx: _Context) -> None:
    """NEWS2 on the presentation's vital set (adults who are not pregnant)."""
    years = ctx.years
    if ctx.presentation.pregnant or (years is not None and years < NEWS2_MIN_YEARS):
        why = "the patient is pregnant" if ctx.presentation.pregnant else f"the patient is {ctx.age}"
        ctx.skip("NEWS2 not used", NEWS2, f"Not assessed because {why}: the RCP excludes it")
        return
    v = ctx.vitals
    names = {"respiratory rate": "RR", "SpO2": "SpO2", "temperature": "temperature", "systolic BP": "SBP"}
    names["heart rate"] = "HR"
    found = {label: v.get(key) for label, key in names.items()}
    missing = [label for label, x in found.items() if x is None]
    if missing:
        if len(missing) < len(names):
            ctx.skip(
                "NEWS2 not computable", NEWS2, f"Not assessed because there is no usable {', '.join(missing)}"
            )
        return
    readings = {label: x for label, x in found.items() if x is not None}
    result = News2(
        parameters=news2_points({k: x.value for k, x in readings.items()}),
        refs=[x.ref for x in readings.values()],
    )
    if v.oxygen is not None:
        result.parameters["supplemental O2"] = 2
        result.refs.append(v.oxygen.ref)
    else:
        result.assumed.append("room air")
    gcs = v.get("GCS")
    if v.avpu_letter is not None or gcs is not None:
        alert = v.avpu_letter == "A" if v.avpu_letter is not None else gcs is not None and gcs.value == 15
        result.parameters["consciousness"] = 0 if alert else 3
        result.refs += [x.ref for x in (v.avpu, gcs) if x is not None]
    else:
        result.assumed.append("alert")
    flag = result.banded().flag()
    points = ", ".join(f"{name} {score}" for name, score in result.parameters.items())
    assumed = f"; assumed {', '.join(result.assumed)}" if result.assumed else ""
    ctx.add(
        flag.severity,
        f"{flag.title} at presentation",
        NEWS2,
        f"NEWS2 points: {points}{assumed}",
        values=[x.shown for x in readings.values()],
        refs=result.refs,
        references=(NEWS2,),
    )


def _not_assessed(ctx: _Context) -> None:
    """Say what was not assessed and why: missing vital signs, unreadable complaints, unusable readings."""
    p, v = ctx.presentation, ctx.vitals
    missing = v.missing()
    if len(missing) == len(CORE) and p.kind in ACUTE_CLASSES:
        ctx.add(
            "warning",
            "No triage vital signs recorded",
            "An emergency or inpatient encounter without vital signs: the sickest patients often have none",
            "None of heart rate, respiratory rate, systolic BP, SpO2 or temperature is recorded",
            refs=[p.encounter],
        )
    elif missing:
        ctx.skip("Vital signs not recorded", "triage screen", f"Not assessed: no usable {', '.join(missing)}")
    for label, why in v.not_assessed:
        ctx.skip(
            f"{label[0].upper()}{label[1:]} not assessed", "triage screen", f"Not assessed because {why}"
        )
    if not ctx.complaints:
        ctx.skip(
            "No complaint recorded",
            "triage screen",
            "High-risk complaint rules (ESI decision points A and B) not assessed: no reason for visit, "
            "chief complaint, triage note or encounter diagnosis",
            refs=[p.encounter],
        )
    for read in ctx.complaints:
        if read.read.unread:
            ctx.skip(
                "Complaint not read",
                "triage screen",
                f"Complaint {read.read.text!r} ({read.source}) {read.read.unread}: the high-risk complaint "
                "rules did not use it",
                refs=[read.ref],
            )
    if ctx.years is None:
        ctx.skip(
            "Age not recorded", "triage screen", "Adult limits used for the danger zone and sepsis screens"
        )


def criteria(flags: list[TriageFlag], said: RecordPhrases = ENGLISH_PHRASES) -> str:
    """Which ESI criteria the encounter's flags meet, then the other warnings, then what was not assessed,
    in the connecting words of a language (the flags' titles are the rules')."""
    level = min((f.esi for f in flags if f.esi is not None), default=None)
    met = [f for f in flags if f.esi == level] if level else []
    parts = []
    if level:
        reasons = [
            f"{f.title.split(': ', 1)[-1]} ({f.complaint!r})"
            if f.complaint
            else ", ".join(f.values) or f.title
            for f in met
        ]
        parts.append(said.esi_met.format(level=level, reasons=said.detail.join(reasons)))
    else:
        parts.append(said.esi_none)
    others = [f.title for f in flags if f.esi is None and f.severity in ("critical", "warning")]
    if others:
        parts.append(said.esi_also.format(titles=said.detail.join(others)))
    skipped = [f.title for f in flags if f.not_assessed]
    if skipped:
        parts.append(said.esi_skipped.format(titles=said.detail.join(skipped)))
    return " ".join(parts)
