"""The Emergency Severity Index's decision points A, B and D on what a triage nurse sees.

Source: Gilboy N, Tanabe P, Travers D, Rosenau AM. Emergency Severity Index (ESI), Version 4, Implementation
Handbook, 2012 Edition (AHRQ Publication No. 12-0014; the 2020 edition of the Emergency Nurses Association
keeps the algorithm and its limits). Every limit below is the handbook's; none was fitted to a data set.

- A, immediate life-saving intervention → level 1, decisive (critical): intubated, apnoeic, pulseless,
  severe respiratory distress, SpO2 < 90 %, unresponsive (AVPU P or U; GCS <= 8 read as P or U after
  Kelly CA, Upex A, Bateman DN, Ann Emerg Med 2004;44:108-13, where P matched a median GCS of 8), the
  level-1 conditions of chapter 2 and Table 6-2 when the complaint names them, and hypoglycaemia with a
  change in mental status (chapter 2's level-1 examples).
- B, high-risk situation → level 2, decisive (warning): the high-risk complaints of chapter 3, Table 3-1
  and Table 6-3 (clinical_notes.complaint_lexicon); new confusion, lethargy or disorientation (AVPU V or C,
  GCS 9-14, or the complaint); immunocompromised with fever (Table 6-3; fever > 38.0 °C, footnote D's
  limit); pregnant with vaginal bleeding or abdominal pain (chapter 3, ectopic pregnancy); a newborn of
  28 days or younger with a temperature > 38.0 °C (footnote D: "assign at least level 2").
  Severe pain or distress is B too, but the handbook (chapter 4) makes a rating of 7 or more on a 0-10
  scale, or severe pain the nurse observed, a reason to CONSIDER level 2, not an automatic one: it is
  shown at info. Chapter 2 defines the level-1 patient as needing a noxious stimulus, so confusion and
  lethargy are level 2 here, as decision point B names them.
- D, danger-zone vital signs (chapter 5): the algorithm says "consider" level 2, so they are info: under
  3 months HR > 180 or RR > 50; 3 months to 3 years HR > 160 or RR > 40; 3 to 8 years HR > 140 or RR > 30;
  over 8 years HR > 100 or RR > 20; any age SpO2 < 92 %. Fever in the young (footnote D): 1-3 months
  > 38.0 °C consider level 2; 3 months-3 years > 39.0 °C consider level 3 (both info).
- Levels 3 to 5 count the resources the visit is expected to need (decision point C): that is not read
  from a triage record, so the ESI screen grades 1, 2 or "3 to 5".
"""

from __future__ import annotations

from clinical_notes.triage_context import Context, Scale
from clinical_notes.vitals import Vital

ESI = "ESI v4 (AHRQ 12-0014)"
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
SEVERE_PAIN = 7
CONSIDER_ONLY = frozenset({"severe_pain"})  # B in the algorithm, "consider" in chapter 4


def complaint_rules(ctx: Context) -> None:
    """ESI A and B criteria the complaint names, once per concept, citing every complaint that names it."""
    seen: set[str] = set()
    for read in ctx.complaints:
        for finding in read.read.findings:
            concept = finding.concept
            if concept.point not in ("A", "B") or concept.name in seen:
                continue
            seen.add(concept.name)
            level = 1 if concept.point == "A" else 2
            decisive = concept.name not in CONSIDER_ONLY
            what = (
                "needs an immediate life-saving intervention"
                if level == 1
                else ("high-risk situation" if decisive else "severe pain or distress: consider level 2")
            )
            urgency = "Life-threatening" if level == 1 else ("High-risk" if decisive else "Consider level 2")
            ctx.meets(
                level,
                f"{urgency} complaint: {concept.label}",
                f"{ESI} decision point {concept.point}: {what}",
                f"Complaint {read.read.text!r} ({read.source}) read as {finding.phrase!r}",
                decisive=decisive,
                refs=[s.ref for s in ctx.found(concept.name)],
                references=(concept.source,),
                complaint=read,
            )
    _combined_complaints(ctx)


def _combined_complaints(ctx: Context) -> None:
    """Criteria that need two findings: a context and a state."""
    altered = ctx.altered_mentation()
    hypo = ctx.found("hypoglycemia")
    if hypo and altered:
        ctx.meets(
            1,
            "Hypoglycaemia with a change in mental status",
            f"{ESI} decision point A",
            f"Complaint {hypo[0].read.text!r} with {altered[0]}",
            refs=[hypo[0].ref, *altered[1]],
            complaint=hypo[0],
        )
    immune = ctx.immunocompromised_fever(lambda celsius: celsius > FEVER_C)
    if immune is not None:
        why, values, refs, complaint = immune
        ctx.meets(
            2,
            "Immunocompromised with fever",
            f"{ESI} decision point B: high-risk situation (Table 6-3)",
            why,
            values=values,
            refs=refs,
            complaint=complaint,
        )
    pregnancy = ctx.pregnant_bleeding()
    if pregnancy is not None:
        refs, bleeding = pregnancy
        ctx.meets(
            2,
            "Pregnant with vaginal bleeding or abdominal pain",
            f"{ESI} decision point B: high-risk situation (possible ectopic pregnancy)",
            f"Complaint {bleeding.read.text!r} in a pregnant patient",
            refs=refs,
            complaint=bleeding,
        )


def vital_rules(ctx: Context) -> None:
    """ESI A and B criteria read from the vital signs: SpO2 < 90 %, unresponsive, confused, severe pain."""
    v = ctx.vitals
    spo2, gcs, pain = v.get("SpO2"), v.get("GCS"), v.get("pain")
    shown, refs = ctx.consciousness()
    if spo2 is not None and spo2.value < ESI1_SPO2:
        ctx.reading(
            1,
            "SpO2 below 90",
            f"{ESI} decision point A: needs an immediate life-saving intervention",
            "Oxygen saturation under 90 %",
            spo2,
        )
    unresponsive = v.avpu_letter in ("P", "U") or (gcs is not None and gcs.value <= 8)
    confused = v.avpu_letter in ("V", "C") or (gcs is not None and 8 < gcs.value < 15)
    if unresponsive:
        ctx.meets(
            1,
            "Unresponsive",
            f"{ESI} decision point A: unresponsive (needs a noxious stimulus)",
            "Responds to pain only or not at all",
            values=shown,
            refs=refs,
            references=("Kelly 2004 (AVPU P ~ GCS 8)",),
        )
    elif confused:
        ctx.meets(
            2,
            "Reduced consciousness: confused, lethargic or disoriented",
            f"{ESI} decision point B: new confusion, lethargy or disorientation (compare with the baseline)",
            "Consciousness below alert",
            values=shown,
            refs=refs,
        )
    if pain is not None and pain.value >= SEVERE_PAIN:
        ctx.reading(
            2,
            "Severe pain: consider level 2",
            f"{ESI} decision point B, chapter 4: pain >= 7/10, consider level 2 (the nurse's judgement)",
            "Pain rated 7 or more out of 10",
            pain,
            decisive=False,
        )


def danger_zone(ctx: Context) -> None:
    """ESI decision point D by age (consider level 2), and fever in the young."""
    v = ctx.vitals
    years = ctx.years
    band = DANGER_ZONE[-1] if years is None else next(b for b in DANGER_ZONE if years < b[0])
    _, hr_limit, rr_limit, label = band
    hr, rr, spo2 = v.get("HR"), v.get("RR"), v.get("SpO2")
    exceeded = [
        (x, f"{x.shown} > {limit}") for x, limit in ((hr, hr_limit), (rr, rr_limit)) if x and x.value > limit
    ]
    if spo2 is not None and ESI1_SPO2 <= spo2.value < DANGER_SPO2:
        exceeded.append((spo2, f"{spo2.shown} < {DANGER_SPO2}"))  # a threshold, not a reading: no unit
    if exceeded:
        age = label if years is not None else f"{label}: age not recorded, adult limits used"
        ctx.meets(
            2,
            f"Danger-zone vital signs ({age}): consider level 2",
            f"{ESI} decision point D: danger-zone vital signs, consider level 2",
            "Beyond the ESI danger zone for the age",
            decisive=False,
            values=[why for _, why in exceeded],
            refs=[x.ref for x, _ in exceeded],
        )
    _young_fever(ctx, v.get("temperature"))


def _young_fever(ctx: Context, temperature: Vital | None) -> None:
    """ESI footnote D: fever in infants and young children."""
    days, years = ctx.presentation.age_days, ctx.years
    if days is None or years is None or temperature is None:
        return
    if years < DANGER_ZONE[0][0] and temperature.value > FEVER_C:
        newborn = days <= NEWBORN_DAYS
        ctx.reading(
            2,
            "Fever in a newborn (28 days or younger)" if newborn else "Fever in an infant of 1 to 3 months",
            f"{ESI} footnote D: " + ("assign at least level 2" if newborn else "consider level 2"),
            "Temperature above 38.0 °C",
            temperature,
            decisive=newborn,
        )
    elif years < DANGER_ZONE[1][0] and temperature.value > YOUNG_FEVER_C:
        ctx.reading(
            3,
            "Fever in a child of 3 months to 3 years",
            f"{ESI} footnote D: consider level 3 (incomplete immunizations or no obvious source)",
            "Temperature above 39.0 °C",
            temperature,
            decisive=False,
        )


ESI_SCALE = Scale(
    name="esi",
    label="ESI",
    levels={1: "resuscitation", 2: "emergent", 3: "urgent", 4: "less urgent", 5: "non-urgent"},
    reference=ESI,
    rules=(complaint_rules, vital_rules, danger_zone),
    grades_low_levels=False,
)
