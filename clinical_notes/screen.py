"""One triage screen per encounter, in the hospital's scale (ESI, CTAS or KTAS), on what a triage nurse sees
(clinical_notes.timeline.Presentation).

The scale's rules (clinical_notes.esi, clinical_notes.ctas) state the criteria the encounter meets, each
with the level it meets and whether the scale makes it decisive (clinical_notes.triage_context): the
screen's tier is critical for a level-1 criterion, warning for a decisive level-2 one, and info for the
rest ("consider level 2", levels 3 to 5). Its graded level (1-5; for ESI 1, 2 or none, since ESI levels 3
to 5 count expected resources) lets a bench draw the whole operating curve.

Beside the scale, supporting scores that are no scale's criteria are shown at info, never raised:
- qSOFA (Seymour CW et al., JAMA 2016;315:762-74; Singer M et al., Sepsis-3, JAMA 2016;315:801-10), adults:
  respiratory rate >= 22 /min, systolic BP <= 100 mmHg, altered mentation; 2 or more shown.
- SIRS (Bone RC et al., ACCP/SCCM consensus, Chest 1992;101:1644-55), adults: temperature > 38.0 or
  < 36.0 °C, heart rate > 90 /min, respiratory rate > 20 /min; 2 or more shown, with the infection the
  complaint suggests (sepsis by the 1992 definition).
- Shock index (Allgöwer M, Burri C, Dtsch Med Wochenschr 1967;92:1947-50; Rady MY et al., Ann Emerg Med
  1994;24:685-90), adults: heart rate / systolic BP >= 1.0.
- NEWS2 (Royal College of Physicians, 2017) on the presentation's vital set, scored as clinical_notes.triage
  scores it; not used under 16 years or in pregnancy, which the RCP excludes.
Adults are 18 and over for these scores; children's criteria differ (Goldstein B et al., Pediatr Crit Care
Med 2005;6:2-8; Acker SN et al., J Pediatr Surg 2015;50:331-4) and are not applied: the screen says so.

Every screen states what it could not assess, at info: no encounter, no complaint, a complaint in a
language or script the lexicon lacks, a complaint that maps to no listed complaint, a reading in an
unknown unit or an impossible value, no vital signs (an emergency encounter with none cannot rule levels
1 and 2 out: the sickest patients often arrive with none recorded), an unrecorded age. Never a crash and
never a silent pass.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

from clinical_notes.complaints import read_complaint
from clinical_notes.ctas import CTAS_SCALE, KTAS_SCALE
from clinical_notes.draft import SEVERITY_ORDER, Flag
from clinical_notes.esi import ESI_SCALE
from clinical_notes.record_phrases import ENGLISH_PHRASES, RecordPhrases
from clinical_notes.timeline import ClinicalTimeline, Presentation
from clinical_notes.triage import News2, allergy_conflicts, critical_labs, news2_points
from clinical_notes.triage_context import Context, Read, Scale, ScaleName, TriageFlag
from clinical_notes.vitals import CORE, Vital, read_vitals

QSOFA = "qSOFA (Seymour 2016; Sepsis-3, Singer 2016)"
SIRS = "SIRS (Bone 1992, ACCP/SCCM)"
SHOCK_INDEX = "Shock index (Allgöwer 1967; Rady 1994)"
NEWS2 = "NEWS2 (Royal College of Physicians 2017)"
SUPPORTING = (QSOFA, SIRS, SHOCK_INDEX, NEWS2)
CRITICAL_LABS = "critical lab value (critical-call limits, clinical_notes.triage)"
KDIGO = "creatinine rise (KDIGO acute kidney injury criteria)"
ALLERGY = "drug-allergy conflict (active medication against an active allergy)"
ACUTE_CLASSES = frozenset({"EMER", "IMP", "ACUTE", "NONAC", "OBSENC"})
ADULT_YEARS = 18
NEWS2_MIN_YEARS = 16
SOURCE_ORDER = ("chief complaint", "triage note", "reason for visit", "encounter diagnosis")
SCALES: dict[ScaleName, Scale] = {"esi": ESI_SCALE, "ctas": CTAS_SCALE, "ktas": KTAS_SCALE}
FEVER_C, HYPOTHERMIA_C = 38.0, 36.0
UNMAPPED, UNREAD = "Complaint unmapped", "Complaint not read"
UNMAPPED_TITLES = frozenset({UNMAPPED, UNREAD})
URGENT_COMPLAINT = re.compile(r"^(Life-threatening|High-risk) complaint: ")
LIMITS = re.compile(r"\s*\([^)]*\d[^)]*\)")


class Screen(BaseModel):
    """One encounter's triage screen: its flags, the level its criteria meet, and the statement of them."""

    encounter: str | None = None
    encounter_class: str | None = None
    start: str | None = None
    scale: ScaleName = "esi"
    level: int | None = Field(
        default=None,
        description="The graded level 1-5 the criteria meet (ESI: 1, 2 or None for 3-5, not judged).",
    )
    consider: int | None = Field(
        default=None, description="A lower level a discretionary criterion asks the nurse to consider."
    )
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


def triage(
    timeline: ClinicalTimeline, encounter: str | None = None, scale: ScaleName = "esi"
) -> tuple[Screen, list[TriageFlag]]:
    """The screen of one encounter, and every rule flag: the screen's, critical labs and allergy conflicts."""
    result = screen(timeline, encounter, scale)
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
        if p.encounter_class == "EMER" and p is not newest and _same_episode(p, newest):
            return p
    return newest


def _same_episode(ed: Presentation, later: Presentation) -> bool:
    linked = {ed.encounter, ed.part_of} & {later.encounter, later.part_of}
    return bool(linked - {None}) or (ed.start is not None and ed.start[:10] == (later.start or "")[:10])


def screen(timeline: ClinicalTimeline, encounter: str | None = None, scale: ScaleName = "esi") -> Screen:
    """The triage screen of one encounter (the newest by default) in a scale: criteria met, level, flags."""
    used = SCALES[scale]
    presentation = presentation_of(timeline, encounter)
    if presentation is None:
        why = f"no encounter {encounter}" if encounter else "the record has no encounter"
        flag = TriageFlag(
            severity="info",
            title="Triage screen not assessed",
            rationale=f"Not assessed because {why}: the {used.label} criteria and the supporting scores need "
            "an encounter to read.",
            rule="triage screen",
            not_assessed=True,
        )
        return Screen(scale=scale, statement=f"Not assessed: {why}.", flags=[flag])
    ctx = Context(
        presentation=presentation,
        vitals=read_vitals(presentation),
        complaints=sorted(
            (Read(c.source, c.ref, read_complaint(c.text)) for c in presentation.complaints),
            key=lambda r: SOURCE_ORDER.index(r.source) if r.source in SOURCE_ORDER else len(SOURCE_ORDER),
        ),
        problems=[read_complaint(p.name) for p in timeline.problems if p.active],
        scale=used,
    )
    for rule in (*used.rules, _sepsis_screens, _news2, _not_assessed):
        rule(ctx)
    ctx.flags.sort(key=lambda f: (SEVERITY_ORDER[f.severity], f.level or 9))
    level, consider = graded(ctx.flags, used)
    return Screen(
        encounter=presentation.encounter,
        encounter_class=presentation.encounter_class,
        start=presentation.start,
        scale=scale,
        level=level,
        consider=consider,
        statement=statement(ctx.flags, used)[0],
        flags=ctx.flags,
        complaints=[f"{c.read.text!r} ({c.source}) {c.read.shown}" for c in ctx.complaints],
    )


def graded(flags: list[TriageFlag], scale: Scale) -> tuple[int | None, int | None]:
    """(the level the criteria meet, a lower level a discretionary criterion asks to consider).

    The level is the lowest of the decisive criteria; above 2, a "consider level 2" counts as 3, and with no
    criterion at all CTAS and KTAS grade 5. ESI grades only 1 and 2 (None: 3 to 5, by resources)."""
    criteria = [f for f in flags if f.level is not None]
    decisive = min((f.level for f in criteria if f.decisive and f.level), default=None)
    discretionary = min((f.level for f in criteria if not f.decisive and f.level), default=None)
    consider = (
        discretionary
        if discretionary is not None and (decisive is None or discretionary < decisive)
        else None
    )
    if decisive is not None and decisive <= 2:
        return decisive, consider
    if not scale.grades_low_levels:
        return None, consider
    lowest = min(x for x in (decisive, 3 if discretionary is not None else None, 5) if x is not None)
    return lowest, consider


def _met(*checks: tuple[Vital | None, bool]) -> list[Vital]:
    return [x for x, met in checks if x is not None and met]


def _sepsis_screens(ctx: Context) -> None:
    """qSOFA, SIRS and the shock index, for adults: supporting scores, at info."""
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
    altered = ctx.altered_mentation()
    qsofa = _met((rr, rr is not None and rr.value >= 22), (sbp, sbp is not None and sbp.value <= 100))
    shown, refs = [x.shown for x in qsofa], [x.ref for x in qsofa]
    if altered:
        shown.append(altered[0])
        refs += altered[1]
    if len(shown) >= 2:
        assumed = "" if altered or v.avpu or v.get("GCS") else "; mentation not recorded, counted as normal"
        ctx.add(
            "info",
            f"qSOFA {len(shown)}",
            f"{QSOFA}: 2 or more of RR >= 22, SBP <= 100, altered mentation{assumed}",
            "High risk of a poor outcome if infection is present; a supporting score, not a triage criterion",
            values=shown,
            refs=refs,
            references=(QSOFA,),
        )
    sirs = _met(
        (t, t is not None and (t.value > FEVER_C or t.value < HYPOTHERMIA_C)),
        (hr, hr is not None and hr.value > 90),
        (rr, rr is not None and rr.value > 20),
    )
    if len(sirs) >= 2:
        infection = ctx.found("infection")
        ctx.add(
            "info",
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
            "info",
            f"Shock index {hr.value / sbp.value:.2f}",
            f"{SHOCK_INDEX}: heart rate / systolic BP >= 1.0",
            "Heart rate at or above the systolic pressure; a supporting score, not a triage criterion",
            values=[hr.shown, sbp.shown],
            refs=[hr.ref, sbp.ref],
            references=(SHOCK_INDEX,),
        )


def _news2(ctx: Context) -> None:
    """NEWS2 on the presentation's vital set (adults who are not pregnant): a supporting score, at info."""
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
        "info",
        f"{flag.title} at presentation",
        NEWS2,
        f"NEWS2 points: {points}{assumed}; a supporting score, not a triage criterion",
        values=[x.shown for x in readings.values()],
        refs=result.refs,
        references=(NEWS2,),
    )


def _not_assessed(ctx: Context) -> None:
    """Say what was not assessed and why: missing vital signs, unreadable complaints, unusable readings."""
    p, v = ctx.presentation, ctx.vitals
    missing = v.missing()
    if len(missing) == len(CORE) and p.encounter_class in ACUTE_CLASSES:
        ctx.skip(
            "No triage vital signs recorded",
            "triage screen",
            f"Not assessed: none of heart rate, respiratory rate, systolic BP, SpO2 or temperature is "
            f"recorded, so the {ctx.scale.label} vital-sign criteria cannot rule levels 1 and 2 out (the "
            "sickest patients often arrive with none recorded): assess at the bedside",
            refs=[p.encounter],
        )
    elif missing:
        listed = ", ".join(missing)
        ctx.skip(
            f"{listed[0].upper()}{listed[1:]} not recorded",
            "triage screen",
            f"Not assessed: no usable {listed}",
        )
    for label, why in v.not_assessed:
        ctx.skip(
            f"{label[0].upper()}{label[1:]} not assessed", "triage screen", f"Not assessed because {why}"
        )
    if not ctx.complaints:
        ctx.skip(
            "No complaint recorded",
            "triage screen",
            f"The {ctx.scale.label} complaint criteria were not assessed: no reason for visit, chief "
            "complaint, triage note or encounter diagnosis",
            refs=[p.encounter],
        )
    for read in ctx.complaints:
        unmapped = read.read.unmapped  # why it maps to no listed complaint (unread complaints included)
        if unmapped is not None:
            ctx.add(
                "info",
                UNREAD if read.read.unread else UNMAPPED,
                "triage screen",
                f"Complaint {read.read.text!r} ({read.source}) {unmapped}: "
                + (
                    "the complaint criteria did not use it"
                    if read.read.unread
                    else "its complaint-specific criteria were not assessed"
                ),
                refs=[read.ref],
                complaint=read,
                not_assessed=True,
            )
    if ctx.years is None:
        ctx.skip(
            "Age not recorded", "triage screen", "Adult limits used for the vital signs and sepsis screens"
        )


def _reason(flag: TriageFlag) -> str:
    """A criterion as the statement names it: its title (less the limits it quotes: the statement's numbers
    must be the record's), the readings, the complaint."""
    title = LIMITS.sub("", URGENT_COMPLAINT.sub("", flag.title))
    values = f" ({'; '.join(flag.values)})" if flag.values else ""
    complaint = f" ({flag.complaint!r})" if flag.complaint else ""
    return f"{title}{values}{complaint}"


def statement(
    flags: list[TriageFlag], scale: Scale, said: RecordPhrases = ENGLISH_PHRASES
) -> tuple[str, list[str]]:
    """The level the criteria meet in the scale's words, what to consider, the supporting scores, what was
    not assessed, in the connecting words of a language; and the references the statement names."""
    level, _ = graded(flags, scale)
    criteria = [f for f in flags if f.level is not None]

    def name(n: int) -> str:
        return said.level_name.format(scale=scale.label, level=n, name=scale.levels[n])

    met = [f for f in criteria if f.decisive and f.level == level]
    named = list(met)
    reasons = said.detail.join(_reason(f) for f in met)
    none = said.level_none.format(scale=scale.label)
    if level is None:
        parts = [said.esi_none]
    elif level <= 2:
        parts = [said.level_met.format(level=name(level), reasons=reasons)]
    else:
        parts = [said.level_graded.format(none=none, level=name(level), reasons=reasons or said.no_modifier)]
    considered = [f for f in criteria if not f.decisive and (level is None or (f.level or 9) < level)]
    if considered:
        lowest = min(f.level or 9 for f in considered)
        parts.append(
            said.level_consider.format(
                level=name(lowest), reasons=said.detail.join(_reason(f) for f in considered)
            )
        )
        named += considered
    supporting = [
        f
        for f in flags
        if f.rule.startswith(SUPPORTING) and not f.not_assessed and "(low risk)" not in f.title
    ]
    if supporting:
        parts.append(said.supporting.format(titles=said.detail.join(_reason(f) for f in supporting)))
        named += supporting
    skipped = [f.title for f in flags if f.not_assessed]
    if skipped:
        parts.append(said.skipped.format(titles=said.detail.join(dict.fromkeys(skipped))))
    refs = [ref for f in named for ref in f.citations]
    return " ".join(parts), list(dict.fromkeys(refs))
