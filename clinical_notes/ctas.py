"""The Canadian Triage and Acuity Scale and the Korean scale built on it (KTAS) on what a triage nurse sees.

Sources
- [CTAS2016] Bullard MJ, Musgrave E, Warren D, et al.; CTAS National Working Group. Revisions to the
  Canadian Emergency Department Triage and Acuity Scale (CTAS) Guidelines 2016. CJEM 2017;19(S2):S18-27.
- [CTAS2008] Bullard MJ, Unger B, Spence J, Grafstein E. Revisions to the CTAS adult guidelines. CJEM
  2008;10(2):136-42: the first-order modifiers (tables of respiratory distress, haemodynamic stability,
  level of consciousness, temperature, pain, bleeding disorder, mechanism of injury) and the second-order
  modifiers (blood glucose, dehydration, blood pressure) the 2016 revision kept.
- [CTAS-MANUAL] CTAS National Working Group. The Canadian Triage and Acuity Scale, combined adult/paediatric
  participant's manual, version 2.5b (2013): the paediatric guidelines apply from birth up to and including
  16 years.
- [CEDIS] the presenting-complaint list (clinical_notes.presenting_complaints).
- [KTAS] Korean Triage and Acuity Scale (KTAS committee, Korean Society of Emergency Medicine, for the
  Ministry of Health and Welfare; national since 2016): CTAS 2012 adapted to Korea, the same five levels,
  the same first-order considerations (1차 고려사항: vital signs, consciousness, pain, bleeding, mechanism)
  and complaint-specific second-order ones (2차 고려사항) (Park J, Lim T, J Korean Soc Emerg Med
  2017;28(6):547-51; Moon SH et al., PLoS ONE 2019;14(9):e0216972). The adult KTAS is used from 15 years.
  Where we found no published Korean limit that differs, the CTAS limit is the one used and is cited so.

The rules (adult; each "decisive" one sets the level, each "consider" one is the nurse's to decide):
- Consciousness [CTAS2008]: unconscious, GCS 3-9 → 1; altered, GCS 10-13 → 2. AVPU is read through Kelly CA
  et al., Ann Emerg Med 2004;44:108-13 (median GCS: P 8, V 13): P or U → 1, V → 2; C (new confusion, ACVPU)
  → 2, as CTAS's "impaired orientation". A complaint naming unconsciousness or confusion does the same.
- Respiratory distress by SpO2 [CTAS2008]: < 90 % → 1 (severe); < 92 % → 2 (moderate); 92-94 % → 3 (mild).
  A complaint naming severe respiratory distress → 1, moderate distress or stridor → 2.
- Haemodynamics [CTAS2008] are described, not numbered: shock (severe end-organ hypoperfusion) → 1;
  haemodynamic compromise (borderline perfusion, "suspected hypotension", unexplained tachycardia) → 2;
  vital signs outside normal with normal perfusion → 3. Our choices: hypotension is a systolic pressure
  below 90 mmHg (the adult definition of ATLS and of the 1992 ACCP/SCCM consensus); with a level of
  consciousness below alert (a second sign of end-organ hypoperfusion the guideline lists) it reads as
  shock → 1, alone as haemodynamic compromise → 2. A heart rate above 100 /min (the adult definition of
  tachycardia) is compromise only when unexplained, which a record cannot say: consider level 2, info.
  "Outside normal" (→ 3) is outside NEWS2's zero-point bands (RCP 2017): HR 51-90, RR 12-20, SBP 111-219.
- Blood pressure [CTAS2008]: SBP >= 220 or DBP >= 130 → 2 with symptoms, 3 without; SBP 200-219 or DBP
  110-129 → 3 with symptoms, 4 without. Symptoms: a complaint of headache, chest pain, shortness of breath,
  confusion, stroke signs, visual disturbance, or nausea and vomiting.
- Temperature [CTAS2008] (fever: 38.0 °C or more since the 2008 revision, which also brought in the SIRS
  criteria; before it, 38.5 °C: Weldon MAJ, Bullard M et al., CJEM 2018;20(S1):S112, P158):
  immunocompromised → 2; looks septic, read as the fever with both other triage SIRS criteria (HR > 90,
  RR > 20; Bone 1992; the white-cell count is no triage reading) → 2; otherwise "looks unwell" (3) or
  "looks well" (4) is the nurse's look: graded 3.
- Pain [CTAS2008], 0-10: central pain (a body cavity or organ, clinical_notes.presenting_complaints):
  severe 8-10 → 2 if acute, 3 if chronic; moderate 4-7 → 3 / 4; mild 1-3 → 4 / 5. Peripheral pain: severe
  → 3 / 4; moderate → 4 / 5; mild → 5. Our choice: pain is acute unless the complaint says chronic,
  known or recurrent (the record rarely says; reading it acute never lowers a level). Severe pain whose
  site the complaint does not show: consider level 2, info.
- Complaint-specific (second-order) [CTAS2016, CEDIS]: cardiac arrest, respiratory arrest, shock, active
  seizure → 1; chest pain with cardiac features → 2 (our choice: chest pain, pressure, tightness or
  discomfort that the complaint does not describe as chest-wall, pleuritic or traumatic is read as
  cardiac: triage cannot exclude an acute coronary syndrome, and every such patient needs an ECG within
  10 minutes, AHA/ACC 2021); headache sudden, severe, worst ever → 2; attempted suicide or self-harm → 2;
  sudden loss of vision or chemical eye exposure → 2; high-risk mechanism of injury → 2; meningismus,
  sepsis named, ectopic pregnancy, aortic dissection or pulmonary embolism named → 2; anaphylaxis named →
  2 (1 with the respiratory or haemodynamic modifiers). Discretionary (consider level 2, info): stroke
  signs (level 2 within the thrombolysis window of onset, 3 after; the onset time is not in the record),
  suicidal ideation (2 with a clear plan), overdose (by substance), testicular pain (torsion), hypo- or
  hyperglycaemia named without the glucose (2 with symptoms), pregnancy with vaginal bleeding, a visual
  disturbance (2 when the loss is sudden), syncope (2 with a new dysrhythmia or change in heart rate).
- Children (CTAS: up to 16 years; KTAS: under 15): the paediatric vital-sign tables by age are not
  applied; the haemodynamic, respiratory-rate and temperature rules are said not assessed.
Not implemented: the bleeding-disorder modifier (needs the anticoagulants beside the complaint) and
dehydration (needs an assessment the record does not hold).
"""

from __future__ import annotations

from clinical_notes.presenting_complaints import PainSite
from clinical_notes.triage_context import Context, Read, Scale

CTAS = "CTAS 2016 (Bullard, CJEM 2017; adult modifiers, CJEM 2008)"
KTAS = "KTAS (Korean Society of Emergency Medicine; CTAS-based, Park & Lim 2017)"
CTAS_ADULT_YEARS = 17
KTAS_ADULT_YEARS = 15
FEVER_C = 38.0
HYPOTENSION = 90
TACHYCARDIA = 100
SPO2_SEVERE, SPO2_MODERATE, SPO2_MILD = 90, 92, 95
GCS_UNCONSCIOUS, GCS_ALTERED = 9, 13
# NEWS2 zero-point bands (RCP 2017): what "outside normal" means for the level-3 modifier.
NORMAL = {"HR": (51, 90), "RR": (12, 20), "SBP": (111, 219)}
CHRONIC_CUES = ("chronic", "known", "recurrent", "usual", "for years")
HYPERTENSIVE_SYMPTOMS = frozenset(
    {
        "Headache",
        "Chest pain - cardiac features",
        "Shortness of breath",
        "Confusion",
        "Altered level of consciousness",
        "Extremity weakness/symptoms of CVA",
        "Visual disturbance",
        "Nausea and/or vomiting",
    }
)
# Concept (clinical_notes.complaint_lexicon) → (level, decisive, the scale's words).
COMPLAINT_CRITERIA: dict[str, tuple[int, bool, str]] = {
    "cardiac_arrest": (1, True, "cardiac arrest"),
    "respiratory_arrest": (1, True, "respiratory arrest"),
    "intubated": (1, True, "intubated or needing assisted breathing (severe respiratory distress)"),
    "unresponsive": (1, True, "unconscious"),
    "severe_respiratory_distress": (1, True, "severe respiratory distress"),
    "active_seizure": (1, True, "seizure, actively seizing"),
    "shock": (1, True, "shock"),
    "anaphylaxis": (2, True, "anaphylaxis named (level 1 with severe respiratory distress or shock)"),
    "chest_pain": (2, True, "chest pain with cardiac features"),
    "sudden_headache": (2, True, "headache: sudden, severe, worst ever"),
    "suicide_attempt": (2, True, "attempted suicide or deliberate self-harm"),
    "confusion": (2, True, "altered level of consciousness"),
    "respiratory_distress": (2, True, "moderate respiratory distress or stridor"),
    "sepsis": (2, True, "looks septic (sepsis named)"),
    "meningitis": (2, True, "neck stiffness or meningismus"),
    "vision_loss": (2, True, "sudden loss of vision or chemical exposure to the eye"),
    "ectopic": (2, True, "possible ectopic pregnancy"),
    "high_risk_trauma": (2, True, "high-risk mechanism of injury"),
    "time_critical_vascular": (2, True, "possible aortic dissection or pulmonary embolism"),
    "stroke": (2, False, "symptoms of stroke: level 2 within the thrombolysis window of onset, else 3"),
    "suicidal": (2, False, "suicidal ideation: level 2 with a clear plan, else 3"),
    "overdose": (2, False, "overdose or ingestion: the level depends on the substance"),
    "testicular": (2, False, "testicular pain: possible torsion"),
    "severe_pain": (2, False, "severe pain by observation: level 2 if central and acute"),
}
# Listed complaint (CEDIS) → (level, decisive, the scale's words): the complaint itself is the criterion.
LISTED_CRITERIA: dict[str, tuple[int, bool, str]] = {
    "Visual disturbance": (2, False, "visual disturbance: level 2 if the loss of vision is sudden"),
    "Syncope/pre-syncope": (2, False, "syncope: level 2 with a new dysrhythmia or a change in heart rate"),
}


def _adult(ctx: Context) -> bool:
    """Whether the adult rules apply (an unknown age is read as adult, and said so elsewhere)."""
    years = ctx.years
    return years is None or years >= (KTAS_ADULT_YEARS if ctx.scale.name == "ktas" else CTAS_ADULT_YEARS)


def complaint_criteria(ctx: Context) -> None:
    """Complaint-specific criteria the complaints name, once per concept, citing every complaint naming it."""
    seen: set[str] = set()
    for read in ctx.complaints:
        for finding in read.read.findings:
            name = finding.concept.name
            if name in COMPLAINT_CRITERIA and name not in seen:
                seen.add(name)
                refs = [r.ref for r in ctx.found(name)]
                _complaint(ctx, read, COMPLAINT_CRITERIA[name], finding.phrase, refs, finding.concept.source)
        for listed in read.read.complaints:
            if listed.name in LISTED_CRITERIA and listed.name not in seen:
                seen.add(listed.name)
                _complaint(ctx, read, LISTED_CRITERIA[listed.name], listed.name, [read.ref], "CEDIS")
    _combined(ctx)


def _complaint(
    ctx: Context, read: Read, criterion: tuple[int, bool, str], phrase: str, refs: list[str], source: str
) -> None:
    level, decisive, words = criterion
    title = words if decisive else f"{words.split(':')[0]}: consider level {level}"
    ctx.meets(
        level,
        f"{title[0].upper()}{title[1:]}",
        f"{ctx.scale.label} complaint-specific modifier: {words}",
        f"Complaint {read.read.text!r} ({read.source}) read as {phrase!r}",
        decisive=decisive,
        refs=refs,
        references=(source,),
        complaint=read,
    )


def _combined(ctx: Context) -> None:
    """Criteria that need a context and a state: immunocompromise with fever, glucose, pregnancy."""
    immune = ctx.immunocompromised_fever(lambda celsius: celsius >= FEVER_C)
    if immune is not None:
        why, values, refs, complaint = immune
        ctx.meets(
            2,
            "Fever in an immunocompromised patient",
            f"{ctx.scale.label} temperature modifier: fever, immunocompromised",
            why,
            values=values,
            refs=refs,
            complaint=complaint,
        )
    altered = ctx.altered_mentation()
    for name, label in (("Hypoglycemia", "Hypoglycaemia"), ("Hyperglycemia", "Hyperglycaemia")):
        found = [r for r in ctx.complaints if any(c.name == name for c in r.read.complaints)]
        if not found:
            continue
        symptomatic = name == "Hypoglycemia" and altered is not None
        ctx.meets(
            2,
            f"{label} with a change in mental status" if symptomatic else f"{label}: consider level 2",
            f"{ctx.scale.label} blood glucose modifier: level 2 with symptoms, 3 without (glucose not read)",
            f"Complaint {found[0].read.text!r}" + (f" with {altered[0]}" if symptomatic and altered else ""),
            decisive=symptomatic,
            refs=[found[0].ref, *(altered[1] if symptomatic and altered else [])],
            complaint=found[0],
        )
    pregnancy = ctx.pregnant_bleeding()
    if pregnancy is not None:
        refs, bleeding = pregnancy
        ctx.meets(
            2,
            "Pregnant with vaginal bleeding or abdominal pain: consider level 2",
            f"{ctx.scale.label} pregnancy modifier: level 2 with heavy bleeding or abnormal vital signs",
            f"Complaint {bleeding.read.text!r} in a pregnant patient",
            decisive=False,
            refs=refs,
            complaint=bleeding,
        )


def consciousness(ctx: Context) -> None:
    """Level of consciousness: GCS 3-9 → 1, 10-13 → 2; AVPU P/U → 1, V/C → 2."""
    v = ctx.vitals
    gcs = v.get("GCS")
    shown, refs = ctx.consciousness()
    rule = f"{ctx.scale.label} first-order modifier, level of consciousness"
    if v.avpu_letter in ("P", "U") or (gcs is not None and gcs.value <= GCS_UNCONSCIOUS):
        ctx.meets(
            1,
            "Unconscious (GCS 3-9, or responds to pain only or not at all)",
            f"{rule}: unconscious, GCS 3-9 (AVPU P ~ GCS 8, Kelly 2004)",
            "Responds to pain only or not at all",
            values=shown,
            refs=refs,
        )
    elif v.avpu_letter in ("V", "C") or (gcs is not None and gcs.value <= GCS_ALTERED):
        ctx.meets(
            2,
            "Altered level of consciousness (GCS 10-13, responds to voice, or newly confused)",
            f"{rule}: altered, GCS 10-13 (AVPU V ~ GCS 13, Kelly 2004)",
            "Consciousness below alert",
            values=shown,
            refs=refs,
        )


def respiration(ctx: Context) -> None:
    """Respiratory distress read from SpO2: < 90 → 1, < 92 → 2, 92-94 → 3; tachypnoea → 3 (adults)."""
    spo2, rr = ctx.vitals.get("SpO2"), ctx.vitals.get("RR")
    rule = f"{ctx.scale.label} first-order modifier, respiratory distress"
    if spo2 is not None and spo2.value < SPO2_MILD:
        level = 1 if spo2.value < SPO2_SEVERE else 2 if spo2.value < SPO2_MODERATE else 3
        band = {1: "severe (SpO2 < 90 %)", 2: "moderate (SpO2 < 92 %)", 3: "mild (SpO2 92-94 %)"}[level]
        ctx.reading(level, f"Respiratory distress, {band}", f"{rule}: {band}", "Oxygen saturation", spo2)
    if rr is not None and _adult(ctx) and not NORMAL["RR"][0] <= rr.value <= NORMAL["RR"][1]:
        ctx.reading(3, "Respiratory rate outside normal", f"{rule}: mild (tachypnoea or bradypnoea)", "", rr)


def haemodynamics(ctx: Context) -> None:
    """Shock → 1, haemodynamic compromise → 2, abnormal vital signs → 3; blood pressure second-order."""
    if not _adult(ctx):
        return
    v = ctx.vitals
    hr, sbp = v.get("HR"), v.get("SBP")
    rule = f"{ctx.scale.label} first-order modifier, haemodynamic stability"
    altered = ctx.altered_mentation()
    if sbp is not None and sbp.value < HYPOTENSION:
        if altered is not None:
            ctx.meets(
                1,
                "Shock: hypotension with a decreased level of consciousness",
                f"{rule}: shock (severe end-organ hypoperfusion)",
                f"Systolic pressure under {HYPOTENSION} mmHg with {altered[0]}",
                values=[sbp.shown],
                refs=[sbp.ref, *altered[1]],
            )
        else:
            ctx.reading(
                2,
                "Haemodynamic compromise: hypotension",
                f"{rule}: haemodynamic compromise (suspected hypotension)",
                f"Systolic pressure under {HYPOTENSION} mmHg",
                sbp,
            )
    if hr is not None and hr.value > TACHYCARDIA:
        ctx.reading(
            2,
            "Tachycardia: consider level 2",
            f"{rule}: unexplained tachycardia is haemodynamic compromise (level 2); explained, level 3",
            f"Heart rate over {TACHYCARDIA} /min; whether it is explained is the nurse's judgement",
            hr,
            decisive=False,
        )
    abnormal = [
        x for x in (hr, sbp) if x is not None and not NORMAL[x.name][0] <= x.value <= NORMAL[x.name][1]
    ]
    if abnormal:
        ctx.meets(
            3,
            "Vital signs outside normal",
            f"{rule}: vital signs abnormal, perfusion normal",
            "Outside NEWS2's zero-point bands",
            values=[x.shown for x in abnormal],
            refs=[x.ref for x in abnormal],
        )
    _blood_pressure(ctx)


def _blood_pressure(ctx: Context) -> None:
    sbp, dbp = ctx.vitals.get("SBP"), ctx.vitals.get("DBP")
    very = (sbp is not None and sbp.value >= 220) or (dbp is not None and dbp.value >= 130)
    high = (sbp is not None and sbp.value >= 200) or (dbp is not None and dbp.value >= 110)
    if not high:
        return
    symptoms = [r for r in ctx.complaints if {c.name for c in r.read.complaints} & HYPERTENSIVE_SYMPTOMS]
    level = (2 if very else 3) if symptoms else (3 if very else 4)
    band = "SBP >= 220 or DBP >= 130" if very else "SBP 200-219 or DBP 110-129"
    with_symptoms = "with symptoms" if symptoms else "without symptoms"
    readings = [x for x in (sbp, dbp) if x is not None]
    ctx.meets(
        level,
        f"Hypertension ({band}) {with_symptoms}",
        f"{ctx.scale.label} second-order modifier, blood pressure: {band} {with_symptoms}",
        f"Complaint {symptoms[0].read.text!r}" if symptoms else "No complaint of a hypertensive symptom",
        values=[x.shown for x in readings],
        refs=[x.ref for x in readings] + [r.ref for r in symptoms[:1]],
        complaint=symptoms[0] if symptoms else None,
    )


def temperature(ctx: Context) -> None:
    """Fever: looks septic (three SIRS criteria) → 2; otherwise unwell or well by the nurse's look (3)."""
    v = ctx.vitals
    t, hr, rr = v.get("temperature"), v.get("HR"), v.get("RR")
    if t is None or t.value < FEVER_C or not _adult(ctx):
        return
    rule = f"{ctx.scale.label} first-order modifier, temperature"
    sirs = [t]
    sirs += [x for x, limit in ((hr, 90), (rr, 20)) if x is not None and x.value > limit]
    if len(sirs) == 3:
        ctx.meets(
            2,
            "Fever, looks septic (3 SIRS criteria)",
            f"{rule}: fever with all three SIRS criteria (temperature, HR > 90, RR > 20; Bone 1992)",
            "Fever with heart rate over 90 and respiratory rate over 20",
            values=[x.shown for x in sirs],
            refs=[x.ref for x in sirs],
        )
    else:
        ctx.meets(
            3,
            f"Fever with {len(sirs)} of 3 SIRS criteria",
            f"{rule}: fever, looks unwell (3) or well (4) by the nurse's look",
            "Fever",
            values=[x.shown for x in sirs],
            refs=[x.ref for x in sirs],
        )


def _pain_site(ctx: Context) -> tuple[PainSite | None, Read | None]:
    """Central if any complaint maps to a central-pain complaint, else peripheral if one maps so."""
    for site in ("central", "peripheral"):
        for read in ctx.complaints:
            if any(c.pain == site for c in read.read.complaints):
                return site, read
    return None, None


def pain(ctx: Context) -> None:
    """The pain modifier: severity by site (central or peripheral) and course (acute or chronic)."""
    score = ctx.vitals.get("pain")
    if score is None or score.value <= 0:
        return
    site, read = _pain_site(ctx)
    rule = f"{ctx.scale.label} first-order modifier, pain"
    severity = "severe" if score.value >= 8 else "moderate" if score.value >= 4 else "mild"
    if site is None:
        if severity == "severe":
            ctx.reading(
                2,
                "Severe pain, site not read: consider level 2",
                f"{rule}: severe central acute pain is level 2, peripheral level 3",
                "The complaint does not show whether the pain is central or peripheral",
                score,
                decisive=False,
            )
        return
    chronic = read is not None and any(cue in read.read.normalized for cue in CHRONIC_CUES)
    course = "chronic" if chronic else "acute"
    levels = {
        "central": {"severe": (2, 3), "moderate": (3, 4), "mild": (4, 5)},
        "peripheral": {"severe": (3, 4), "moderate": (4, 5), "mild": (5, 5)},
    }
    level = levels[site][severity][1 if chronic else 0]
    assumed = "" if chronic else " (read as acute: the record does not say chronic)"
    ctx.meets(
        level,
        f"{severity.capitalize()} {site} {course} pain",
        f"{rule}: {severity} {site} {course} pain → level {level}",
        f"Complaint {read.read.text!r}{assumed}" if read else "Pain",
        values=[score.shown],
        refs=[score.ref, *([read.ref] if read else [])],
        complaint=read,
    )


def children(ctx: Context) -> None:
    """Say which rules a child's screen leaves out."""
    if not _adult(ctx):
        ctx.skip(
            "Paediatric vital-sign modifiers not assessed",
            f"{ctx.scale.label} paediatric guidelines",
            f"Not assessed because the patient is {ctx.age}: the paediatric tables of heart rate, "
            "respiratory rate, blood pressure and temperature by age are not applied",
        )


RULES = (complaint_criteria, consciousness, respiration, haemodynamics, temperature, pain, children)
CTAS_SCALE = Scale(
    name="ctas",
    label="CTAS",
    levels={1: "Resuscitation", 2: "Emergent", 3: "Urgent", 4: "Less urgent", 5: "Non urgent"},
    reference=CTAS,
    rules=RULES,
)
KTAS_SCALE = Scale(
    name="ktas",
    label="KTAS",
    levels={
        1: "소생 Resuscitation",
        2: "긴급 Emergency",
        3: "응급 Urgency",
        4: "준응급 Less urgency",
        5: "비응급 Non-urgency",
    },
    reference=KTAS,
    rules=RULES,
)
