"""The chief-complaint lexicon: data only, read by clinical_notes.complaints; each entry says its source.

Sources
- [ESI] Gilboy N, Tanabe P, Travers D, Rosenau AM. Emergency Severity Index (ESI): A Triage Tool for Emergency
  Department Care, Version 4. Implementation Handbook, 2012 Edition. AHRQ Publication No. 12-0014: the
  algorithm (decision point A: "intubated, apneic, pulseless, severe respiratory distress, SpO2 < 90, acute
  mental status changes, or unresponsive"; B: "high-risk situation, confused/lethargic/disoriented, severe
  pain/distress"), chapter 2 (overview; examples of level-1 patients), chapter 3 (ESI level 2: high-risk
  situations and the Table 3-1 examples: possible acute coronary syndrome, stroke signs, suicidal or
  homicidal patients, overdose, GI bleeding, sudden loss of vision, testicular torsion, ectopic pregnancy,
  high-risk mechanism of injury), chapter 5 (vital signs, decision point D), chapter 6
  (paediatrics: Table 6-2 level-1 conditions: respiratory or cardiopulmonary arrest, active seizures,
  respiratory failure, shock, anaphylaxis; Table 6-3 level-2 conditions: immunocompromised with fever,
  rule out meningitis, prolonged postictal period, moderate to severe croup or respiratory distress).
- [AHA-CP] Gulati M, et al. 2021 AHA/ACC/ASE/CHEST/SAEM/SCCT/SCMR Guideline for the Evaluation and
  Diagnosis of Chest Pain. Circulation 2021;144:e368-e454: an ECG within 10 minutes of arrival for acute
  chest pain, i.e. the patient should not wait.
- [EMT-P] Travers DA, Haas SW. Using nurses' natural language entries to build a concept-oriented
  terminology for patients' chief complaints in the emergency department. J Biomed Inform 2003;36:260-70:
  chief complaints are free text with abbreviations, acronyms, misspellings and truncations that a
  normalizer (their Emergency Medical Text Processor) expands before matching concepts. The abbreviations
  below are the common ED ones (the issue's list: CP, SOB, AMS, SI, OD, s/p, ETOH, N/V/D, LOC).
- [NegEx] Chapman WW, et al. A simple algorithm for identifying negated findings and diseases in discharge
  summaries. J Biomed Inform 2001;34:301-10: a negation cue within a few words before a finding negates it.

Phrases are written in the normalizer's output form: lower case, abbreviations expanded, words separated
by single spaces; a phrase matches whole words, and "*" stands for any one word.
"""

from __future__ import annotations

from typing import NamedTuple

# Abbreviation → expansion [EMT-P]. Keys are matched as whole tokens after lower-casing; slashes are kept
# inside tokens until this expansion runs, so "n/v/d" and "s/p" survive.
ABBREVIATIONS: dict[str, str] = {
    "cp": "chest pain",
    "sob": "shortness of breath",
    "doe": "dyspnea on exertion",
    "ams": "altered mental status",
    "si": "suicidal ideation",
    "hi": "homicidal ideation",
    "si/hi": "suicidal ideation homicidal ideation",
    "od": "overdose",
    "s/p": "status post",
    "etoh": "alcohol",
    "n/v/d": "nausea vomiting diarrhea",
    "n/v": "nausea vomiting",
    "nv": "nausea vomiting",
    "nvd": "nausea vomiting diarrhea",
    "loc": "loss of consciousness",
    "abd": "abdominal",
    "abdo": "abdominal",
    "ha": "headache",
    "h/a": "headache",
    "gib": "gi bleed",
    "ugib": "upper gi bleed",
    "lgib": "lower gi bleed",
    "brbpr": "bright red blood per rectum",
    "cva": "stroke",
    "tia": "transient ischemic attack",
    "mi": "myocardial infarction",
    "stemi": "stemi myocardial infarction",
    "nstemi": "nstemi myocardial infarction",
    "acs": "acute coronary syndrome",
    "pe": "pulmonary embolism",
    "sz": "seizure",
    "szs": "seizures",
    "mvc": "motor vehicle collision",
    "mva": "motor vehicle collision",
    "gsw": "gunshot wound",
    "ped": "pedestrian",
    "fx": "fracture",
    "lac": "laceration",
    "uti": "urinary tract infection",
    "uri": "upper respiratory infection",
    "dka": "diabetic ketoacidosis",
    "chf": "heart failure",
    "copd": "copd",
    "afib": "atrial fibrillation",
    "a-fib": "atrial fibrillation",
    "svt": "supraventricular tachycardia",
    "htn": "hypertension",
    "hypergly": "hyperglycemia",
    "hypogly": "hypoglycemia",
    "lbp": "low back pain",
    "c/o": "complains of",
    "w/": "with",
    "w/o": "without",
    "h/o": "history of",
    "hx": "history",
    "pmh": "past medical history",
    "r/o": "rule out",
    "eval": "evaluation",
    "psych": "psychiatric",
    "bib": "brought in by",
    "ems": "ems",
    "unresp": "unresponsive",
    "resp": "respiratory",
    "diff": "difficulty",
    "b/l": "bilateral",
    "bilat": "bilateral",
    "lt": "left",
    "rt": "right",
    "l": "left",
    "r": "right",
    "lle": "left lower extremity",
    "rle": "right lower extremity",
    "lue": "left upper extremity",
    "rue": "right upper extremity",
    "le": "lower extremity",
    "ue": "upper extremity",
    "ich": "intracranial hemorrhage",
    "sah": "subarachnoid hemorrhage",
    "rosc": "return of spontaneous circulation",
    "cpr": "cpr",
    "ett": "endotracheal tube",
    "vfib": "ventricular fibrillation",
    "v-fib": "ventricular fibrillation",
    "ili": "influenza like illness",
    "abx": "antibiotics",
    "pna": "pneumonia",
    "wk": "week",
    "wks": "weeks",
    "preg": "pregnant",
    "vag": "vaginal",
    "pv": "vaginal",
    "pvb": "vaginal bleeding",
    "ivdu": "injection drug use",
    "bp": "blood pressure",
    "hr": "heart rate",
    "gen": "generalized",
    "lightheaded": "light headed",
    "dizzy": "dizziness",
    # Korean EDs' English shorthand (KTAS dev visits, Moon 2019 data): general weakness, fever and chills,
    # cough and sputum, blood sugar (test / level), nasogastric (Levin) tube, arteriovenous fistula.
    "g/w": "general weakness",
    "f/c": "fever chills",
    "c/s": "cough sputum",
    "bst": "blood sugar",
    "bsl": "blood sugar",
    "l-tube": "levin tube",
    "avf": "arteriovenous fistula",
    "fb": "foreign body",
    "movt": "movement",
    "llq": "left lower quadrant",
    "rlq": "right lower quadrant",
    "ruq": "right upper quadrant",
    "luq": "left upper quadrant",
}

# An abbreviation is left as written when the next word shows it means something else ("SI joint").
ABBREVIATION_EXCEPTIONS: dict[str, tuple[str, ...]] = {"si": ("joint",), "od": ("eye", "lens")}

# British spellings and common misspellings → the spelling the phrases use [EMT-P]. Tokens not found here
# or in VOCABULARY are corrected by edit distance to a VOCABULARY word (see complaints.normalize).
SPELLINGS: dict[str, str] = {
    "diarrhoea": "diarrhea",
    "haemorrhage": "hemorrhage",
    "haematemesis": "hematemesis",
    "haemoptysis": "hemoptysis",
    "haematuria": "hematuria",
    "anaemia": "anemia",
    "oedema": "edema",
    "ischaemic": "ischemic",
    "oesophageal": "esophageal",
    "dyspnoea": "dyspnea",
    "apnoea": "apnea",
    "apnoeic": "apneic",
    "paediatric": "pediatric",
    "faecal": "fecal",
    "tumour": "tumor",
    "septicaemia": "septicemia",
    "hypoglycaemia": "hypoglycemia",
    "hyperglycaemia": "hyperglycemia",
    "anaphylactic": "anaphylaxis",
    "suicidial": "suicidal",
    "sucidal": "suicidal",
    "siezure": "seizure",
    "siezures": "seizures",
    "seziure": "seizure",
    "nausia": "nausea",
    "nausae": "nausea",
    "vomitting": "vomiting",
    "diarhea": "diarrhea",
    "diarreah": "diarrhea",
    "abdominla": "abdominal",
    "abdomnal": "abdominal",
    "unresponisve": "unresponsive",
    "breathin": "breathing",
    "breating": "breathing",
    "sycope": "syncope",
    "syncopy": "syncope",
    "lethargic": "lethargic",
    "lethargy": "lethargy",
    "pian": "pain",
    "chset": "chest",
    "chets": "chest",
    "overdoes": "overdose",
    "overdosed": "overdose",
    "intubation": "intubated",
    "confused": "confusion",
    "disoriented": "disorientation",
    "stabbed": "stab wound",
    "pregnancy": "pregnant",
    "sorethroat": "sore throat",
    "backache": "back pain",
    "mentality": "mental",
}

# Negation and history cues [NegEx]: a concept is not current when one of these stands within NEGATION_WINDOW
# words before it. "status post" is not among them: in ED complaints it names what just happened
# ("s/p fall", "s/p arrest").
NEGATION_CUES: tuple[str, ...] = (
    "no",
    "not",
    "denies",
    "denied",
    "without",
    "negative for",
    "history of",
    "history",
    "past medical history",
    "resolved",
)
NEGATION_WINDOW = 3


def _words(text: str) -> list[str]:
    return text.split()


class Concept(NamedTuple):
    """A finding the triage rules act on: its label, the ESI decision point it meets, phrases and source."""

    name: str
    label: str
    point: str  # "A" (level 1), "B" (level 2), or a context group the combined rules read
    phrases: tuple[str, ...]
    source: str
    unless: tuple[str, ...] = ()  # longer phrases that contain a match and mean something else


CONCEPTS: tuple[Concept, ...] = (
    Concept(
        "cardiac_arrest",
        "cardiac arrest",
        "A",
        (
            "cardiac arrest",
            "cardiopulmonary arrest",
            "status post arrest",
            "post arrest",
            "pulseless",
            "cpr",
            "code blue",
            "asystole",
            "ventricular fibrillation",
            "return of spontaneous circulation",
        ),
        "ESI algorithm A (pulseless); Table 6-2",
    ),
    Concept(
        "respiratory_arrest",
        "respiratory arrest or apnoea",
        "A",
        ("respiratory arrest", "apnea", "apneic", "not breathing", "agonal breathing", "agonal respirations"),
        "ESI algorithm A (apneic); Table 6-2",
        ("sleep apnea", "apnea of prematurity"),
    ),
    Concept(
        "intubated",
        "intubated",
        "A",
        ("intubated", "endotracheal tube", "on ventilator", "bag valve mask"),
        "ESI algorithm A (intubated)",
    ),
    Concept(
        "unresponsive",
        "unresponsive",
        "A",
        ("unresponsive", "unconscious", "obtunded", "comatose", "coma", "not responding"),
        "ESI algorithm A (unresponsive)",
    ),
    Concept(
        "severe_respiratory_distress",
        "severe respiratory distress",
        "A",
        ("severe respiratory distress", "respiratory failure", "cyanosis", "cyanotic", "gasping"),
        "ESI algorithm A (severe respiratory distress); Table 6-2 (respiratory failure)",
    ),
    Concept(
        "active_seizure",
        "active seizure",
        "A",
        ("active seizure", "actively seizing", "status epilepticus", "continuous seizure"),
        "ESI Table 6-2 (active seizures)",
    ),
    Concept(
        "anaphylaxis",
        "anaphylaxis",
        "A",
        ("anaphylaxis", "anaphylactic shock", "angioedema with stridor"),
        "ESI Table 6-2 (anaphylactic reaction)",
    ),
    Concept(
        "shock",
        "shock",
        "A",
        ("septic shock", "cardiogenic shock", "hypovolemic shock", "hemorrhagic shock", "in shock"),
        "ESI Table 6-2 (shock with signs of hypoperfusion)",
    ),
    Concept(
        "chest_pain",
        "chest pain (possible acute coronary syndrome)",
        "B",
        (
            "chest pain",
            "chest pressure",
            "chest tightness",
            "chest discomfort",
            "angina",
            "acute coronary syndrome",
            "myocardial infarction",
            "st elevation myocardial infarction",
            "heart attack",
        ),
        "ESI chapter 3 (chest pain suspicious for acute coronary syndrome); AHA/ACC 2021 (ECG within 10 min)",
        ("old myocardial infarction", "pleuritic chest pain", "chest wall pain"),
    ),
    Concept(
        "stroke",
        "signs of stroke",
        "B",
        (
            "stroke",
            "transient ischemic attack",
            "code stroke",
            "facial droop",
            "face droop",
            "slurred speech",
            "aphasia",
            "dysarthria",
            "hemiparesis",
            "hemiplegia",
            "one sided weakness",
            "unilateral weakness",
            "left sided weakness",
            "right sided weakness",
            "left side weakness",
            "right side weakness",
            "side motor weakness",
            "left motor weakness",
            "right motor weakness",
            "facial palsy",
            "neuro deficit",
            "neurologic deficit",
            "intracranial hemorrhage",
            "subarachnoid hemorrhage",
        ),
        "ESI chapter 3 (signs of stroke)",
        ("sequelae of stroke", "late effects of stroke", "heat stroke"),
    ),
    Concept(
        "suicidal",
        "suicidal or homicidal ideation",
        "B",
        (
            "suicidal ideation",
            "homicidal ideation",
            "suicidal",
            "homicidal",
            "suicide",
            "danger to self",
            "danger to others",
        ),
        "ESI chapter 3 (suicidal or homicidal patients)",
        ("suicidal attempt", "suicide attempt", "attempted suicide"),
    ),
    Concept(
        "suicide_attempt",
        "attempted suicide or self-harm",
        "B",
        ("suicide attempt", "suicidal attempt", "attempted suicide", "self harm", "self inflicted"),
        "ESI chapter 3 (suicidal patients); CTAS 2016 mental health modifier (attempted suicide: level 2)",
    ),
    Concept(
        "overdose",
        "overdose or poisoning",
        "B",
        ("overdose", "poisoning", "intentional ingestion", "toxic ingestion"),
        "ESI chapter 3 (overdose)",
    ),
    Concept(
        "gi_bleed",
        "gastrointestinal bleeding",
        "B",
        (
            "gi bleed",
            "upper gi bleed",
            "lower gi bleed",
            "gastrointestinal bleed",
            "gastrointestinal hemorrhage",
            "hematemesis",
            "vomiting blood",
            "coffee ground emesis",
            "melena",
            "black tarry stool",
        ),
        "ESI Table 3-1 (vomiting blood: high risk for GI bleeding)",
    ),
    Concept(
        "confusion",
        "new confusion, lethargy or disorientation",
        "B",
        (
            "altered mental status",
            "mental status change",
            "change in mental status",
            "confusion",
            "disorientation",
            "lethargy",
            "lethargic",
            "delirium",
            "somnolent",
            "drowsy",
            "decreased responsiveness",
            "less responsive",
            "postictal",
            "mental change",
            "altered mental",
            "drowsy mental",
            "confused mental",
            "mental confusion",
            "sleeping tendency",
        ),
        "ESI algorithm B (confused, lethargic or disoriented); Table 6-3 (prolonged postictal period)",
    ),
    Concept(
        "severe_pain",
        "severe pain or distress",
        "B",
        (
            "severe pain",
            "severe * pain",
            "severe * * pain",
            "severe headache",
            "excruciating",
            "severe distress",
        ),
        "ESI algorithm B and chapter 4 (severe pain or distress by clinical observation: consider level 2)",
    ),
    Concept(
        "sudden_headache",
        "sudden, severe headache (worst ever)",
        "B",
        ("worst headache", "thunderclap headache", "sudden severe headache", "worst headache of life"),
        "ESI chapter 3 (high-risk situation: possible subarachnoid haemorrhage); CTAS 2016 headache modifier "
        "(sudden, severe, worst ever: level 2)",
    ),
    Concept(
        "respiratory_distress",
        "respiratory distress",
        "B",
        ("respiratory distress", "stridor", "airway obstruction", "choking"),
        "ESI Table 6-3 (respiratory distress, moderate to severe croup)",
    ),
    Concept(
        "sepsis",
        "possible sepsis",
        "B",
        ("sepsis", "septic", "septicemia", "code sepsis"),
        "ESI Table 6-2 / 6-3 (shock/sepsis)",
    ),
    Concept(
        "meningitis",
        "possible meningitis",
        "B",
        ("meningitis", "stiff neck with fever", "neck stiffness with fever"),
        "ESI Table 6-3 (rule out meningitis)",
    ),
    Concept(
        "vision_loss",
        "sudden loss of vision or chemical eye injury",
        "B",
        ("loss of vision", "vision loss", "sudden blindness", "chemical splash", "chemical in eye"),
        "ESI Table 3-1 (sudden onset of loss of vision)",
    ),
    Concept(
        "testicular",
        "possible testicular torsion",
        "B",
        ("testicular torsion", "testicular pain", "scrotal pain"),
        "ESI chapter 3 (testicular torsion)",
    ),
    Concept(
        "ectopic",
        "possible ectopic pregnancy",
        "B",
        ("ectopic pregnancy",),
        "ESI chapter 3 (signs of ectopic pregnancy)",
    ),
    Concept(
        "high_risk_trauma",
        "high-risk mechanism of injury",
        "B",
        (
            "gunshot wound",
            "stab wound",
            "penetrating trauma",
            "pedestrian struck",
            "pedestrian vs car",
            "pedestrian versus car",
            "rollover",
            "ejected",
            "fall from height",
            "major trauma",
            "multiple trauma",
            "trauma activation",
        ),
        "ESI chapter 3 (high-risk mechanism of injury)",
    ),
    Concept(
        "time_critical_vascular",
        "possible aortic dissection or pulmonary embolism",
        "B",
        (
            "aortic dissection",
            "carotid dissection",
            "vertebral dissection",
            "pulmonary embolism",
            "pulmonary embolus",
        ),
        "ESI chapter 3 (high-risk situation: time-critical diagnosis)",
    ),
    # Context groups: no criteria alone; the combined rules of clinical_notes.esi and .ctas read them.
    Concept(
        "infection",
        "suspected infection",
        "context",
        (
            "fever",
            "febrile",
            "chills",
            "rigors",
            "pneumonia",
            "urinary tract infection",
            "pyelonephritis",
            "cellulitis",
            "abscess",
            "infection",
            "infected",
            "wound infection",
            "dysuria",
            "productive cough",
            "influenza",
            "influenza like illness",
            "covid",
            "cholangitis",
            "sepsis",
            "septic",
            "meningitis",
        ),
        "Bone 1992 / Sepsis-3 (infection suspected)",
    ),
    Concept(
        "fever",
        "fever",
        "context",
        ("fever", "febrile", "rigors"),
        "ESI Table 6-3 (immunocompromised with fever)",
    ),
    Concept(
        "immunocompromised",
        "immunocompromised",
        "context",
        (
            "immunocompromised",
            "immunosuppressed",
            "neutropenia",
            "neutropenic",
            "chemotherapy",
            "chemo",
            "bone marrow transplant",
            "stem cell transplant",
            "organ transplant",
            "transplant recipient",
        ),
        "ESI Table 6-3 (immunocompromised with fever)",
    ),
    Concept(
        "pregnancy_bleeding",
        "vaginal bleeding or abdominal pain",
        "context",
        ("vaginal bleeding", "abdominal pain", "pelvic pain"),
        "ESI chapter 3 (signs of ectopic pregnancy)",
    ),
    Concept(
        "hypoglycemia",
        "hypoglycaemia",
        "context",
        ("hypoglycemia", "hypoglycemic", "low blood sugar", "low sugar"),
        "ESI chapter 2 (level-1 examples: hypoglycaemia with a change in mental status)",
    ),
    Concept("pregnant", "pregnant", "context", ("pregnant",), "ESI chapter 3 (signs of ectopic pregnancy)"),
)

# Words a complaint may use that are no concept's: the misspelling correction leaves them alone.
COMMON_WORDS: frozenset[str] = frozenset(
    _words(
        """
    a about after all and ankle ant arm arms at back bite bitten bleeding blood blurred body bone breath
    breathing bruise bump burn burning by called can car check cold complains cough crush cut day days
    dental dizziness drainage dry ear ears elbow evaluation eye eyes face fall fell finger fingers flu
    foot for foreign from generalized groin hand head headache heart hip hit in injury itching itchy jaw
    joint knee laceration leg legs light headed lip lower medication medical mouth neck nose numb numbness
    of on or pain painful palpitations patient rash rectal refill right left red swelling swollen shoulder
    sore stool strike struck sting stomach swallow teeth the throat toe toes tooth to transfer twisted
    up upper urinary urine visit vomiting nausea diarrhea weakness weak wound wrist with worse x ray
    motor vehicle collision fracture laceration abdominal hypertension blood pressure dyspnea exertion
    shortness constipation cramping cramps lump mass sprain strain insect dog animal allergic reaction
    allergy hives anxiety depression psychiatric alcohol intoxicated intoxication withdrawal drug use
    hallucinations agitation agitated behavior bizarre rule out follow imaging results abnormal lab labs
    status post week weeks month months year years old new onset sudden acute chronic since today
    yesterday night morning ago hours hour minutes times episode episodes obstructive sided production
    increased decreased
        """
    )
)
