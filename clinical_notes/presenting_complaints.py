"""The presenting-complaint list triage scales speak: data only, read by clinical_notes.complaints.

Sources
- [CEDIS] Grafstein E, Bullard MJ, Warren D, Unger B; CTAS National Working Group. Revision of the Canadian
  Emergency Department Information System (CEDIS) Presenting Complaint List version 1.1. CJEM
  2008;10(2):151-61 (the list CTAS is built on: 17 groups, about 165 complaints; version 2.0 kept the
  names used here). Bullard MJ et al. Revisions to the Canadian Emergency Department Triage and Acuity
  Scale (CTAS) Guidelines 2016. CJEM 2017;19(S2):S18-27: the CEDIS complaint is chosen first, then the
  first- and second-order modifiers.
- [CTAS-PAIN] Bullard MJ, Unger B, Spence J, Grafstein E; CTAS National Working Group. Revisions to the
  Canadian Emergency Department Triage and Acuity Scale (CTAS) adult guidelines. CJEM 2008;10(2):136-42,
  pain modifier: central pain arises from a body cavity or an organ (head, chest, abdomen, pelvis, an
  organ such as the eye, the kidney or a testicle); peripheral pain from the skin, soft tissue, or the
  axial or peripheral skeleton. `pain` below is that class; None where the complaint names no site.
- [KTAS] Korean Triage and Acuity Scale, KTAS committee of the Korean Society of Emergency Medicine for the
  Ministry of Health and Welfare (2012; in use in every Korean ED since 2016): built on CTAS 2012 and its
  CEDIS-based complaint list (Park J, Lim T. Korean Triage and Acuity Scale (KTAS). J Korean Soc Emerg Med
  2017;28(6):547-51). `ktas` is the complaint's name as the Korean list writes it.
- [ETG] Échelle canadienne de triage et de gravité (ÉTG), the French edition of CTAS, and the French
  names of the CEDIS list (SIGDU): `french` is the complaint's French name.

Only the complaints the rules or the screen's reading need are listed, not the whole CEDIS list: a
complaint outside it is said to be unmapped, never guessed. Phrases are in the English normalizer's form
(clinical_notes.complaints: lower case, abbreviations expanded), matched as whole words; `unless` phrases
that contain a match send it elsewhere ("chest wall pain" is not cardiac chest pain).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

PainSite = Literal["central", "peripheral"]


class PresentingComplaint(NamedTuple):
    """One CEDIS presenting complaint: its group, the CTAS pain class, its Korean and French names."""

    name: str
    group: str
    pain: PainSite | None
    phrases: tuple[str, ...]
    ktas: str
    french: str
    unless: tuple[str, ...] = ()


C = PresentingComplaint
CARDIO, RESP, NEURO, GI, GU = (
    "Cardiovascular",
    "Respiratory",
    "Neurologic",
    "Gastrointestinal",
    "Genitourinary",
)
ENT, EYE, ORTHO, SKIN, MENTAL = "ENT", "Ophthalmology", "Orthopedic", "Skin", "Mental health"
OBGYN, SUBSTANCE, TRAUMA, GENERAL = "Obstetrics/Gynecology", "Substance misuse", "Trauma", "General and minor"
NON_CARDIAC_CHEST = ("chest wall", "pleuritic chest pain", "chest trauma", "chest injury", "rib pain")

COMPLAINTS: tuple[PresentingComplaint, ...] = (
    C(
        "Cardiac arrest",
        CARDIO,
        None,
        ("cardiac arrest", "cardiopulmonary arrest", "pulseless", "cpr", "asystole", "code blue"),
        "심정지",
        "Arrêt cardiaque",
    ),
    C(
        "Chest pain - cardiac features",
        CARDIO,
        "central",
        (
            "chest pain",
            "chest pressure",
            "chest tightness",
            "chest discomfort",
            "angina",
            "acute coronary syndrome",
            "myocardial infarction",
            "heart attack",
        ),
        "흉통 (심장성)",
        "Douleur thoracique - cardiaque",
        NON_CARDIAC_CHEST,
    ),
    C(
        "Chest pain - non-cardiac features",
        CARDIO,
        "central",
        ("chest wall pain", "chest wall", "pleuritic chest pain", "rib pain"),
        "흉통 (비심장성)",
        "Douleur thoracique - non cardiaque",
    ),
    C(
        "Palpitations/irregular heart beat",
        CARDIO,
        None,
        ("palpitation", "palpitations", "irregular heart beat", "atrial fibrillation", "tachycardia"),
        "두근거림",
        "Palpitations/rythme cardiaque irrégulier",
    ),
    C("Hypertension", CARDIO, None, ("hypertension", "high blood pressure"), "고혈압", "Hypertension"),
    C(
        "General weakness",
        CARDIO,
        None,
        ("general weakness", "generalized weakness", "weakness", "weak", "malaise", "fatigue"),
        "전신 쇠약",
        "Faiblesse généralisée",
        ("motor weakness", "sided weakness", "side weakness", "leg weakness", "arm weakness"),
    ),
    C(
        "Syncope/pre-syncope",
        CARDIO,
        None,
        ("syncope", "fainting", "fainted", "near syncope", "presyncope", "loss of consciousness"),
        "실신",
        "Syncope/présyncope",
    ),
    C(
        "Hypotension",
        CARDIO,
        None,
        ("hypotension", "low blood pressure"),
        "저혈압",
        "Hypotension",
    ),
    C(
        "Shortness of breath",
        RESP,
        None,
        (
            "shortness of breath",
            "dyspnea",
            "dyspnea on exertion",
            "difficulty breathing",
            "breathing difficulty",
            "orthopnea",
            "respiratory distress",
        ),
        "호흡곤란",
        "Dyspnée",
    ),
    C(
        "Respiratory arrest",
        RESP,
        None,
        ("respiratory arrest", "apnea", "not breathing"),
        "호흡정지",
        "Arrêt respiratoire",
    ),
    C("Cough", RESP, None, ("cough", "productive cough"), "기침", "Toux"),
    C("Hemoptysis", RESP, None, ("hemoptysis", "coughing blood"), "객혈", "Hémoptysie"),
    C(
        "Allergic reaction",
        RESP,
        None,
        ("allergic reaction", "allergy", "anaphylaxis", "drug allergy", "angioedema"),
        "알레르기 반응",
        "Réaction allergique",
    ),
    C("Stridor", RESP, None, ("stridor",), "그렁거림", "Stridor"),
    C(
        "Altered level of consciousness",
        NEURO,
        None,
        (
            "altered mental status",
            "mental status change",
            "change in mental status",
            "decreased level of consciousness",
            "decreased responsiveness",
            "unresponsive",
            "unconscious",
            "lethargy",
            "somnolent",
            "drowsy",
            "stupor",
            "coma",
        ),
        "의식 변화",
        "Altération de l'état de conscience",
    ),
    C("Confusion", NEURO, None, ("confusion", "disorientation", "delirium"), "혼돈", "Confusion"),
    C(
        "Vertigo",
        NEURO,
        None,
        ("vertigo", "dizziness", "light headed"),
        "어지러움",
        "Vertige/étourdissements",
    ),
    C(
        "Headache",
        NEURO,
        "central",
        ("headache", "head pain", "migraine", "thunderclap headache"),
        "두통",
        "Céphalée",
    ),
    C(
        "Seizure",
        NEURO,
        None,
        ("seizure", "seizures", "convulsion", "convulsions", "postictal", "epilepsy", "status epilepticus"),
        "경련",
        "Convulsions",
    ),
    C(
        "Head injury",
        NEURO,
        None,
        ("head injury", "head trauma", "hit head"),
        "두부 손상",
        "Traumatisme crânien",
    ),
    C(
        "Extremity weakness/symptoms of CVA",
        NEURO,
        None,
        (
            "stroke",
            "transient ischemic attack",
            "hemiparesis",
            "hemiplegia",
            "motor weakness",
            "sided weakness",
            "side weakness",
            "facial droop",
            "facial palsy",
            "slurred speech",
            "dysarthria",
            "aphasia",
        ),
        "편측 위약/뇌졸중 증상",
        "Faiblesse d'un membre/symptômes d'AVC",
    ),
    C(
        "Sensory loss/paresthesias",
        NEURO,
        None,
        ("numbness", "tingling", "paresthesia", "paresthesias"),
        "감각 이상",
        "Perte sensorielle/paresthésies",
    ),
    C(
        "Abdominal pain",
        GI,
        "central",
        (
            "abdominal pain",
            "abdomen pain",
            "abdominal discomfort",
            "epigastric pain",
            "epigastric discomfort",
            "stomach pain",
            "stomach ache",
            "right lower quadrant pain",
            "left lower quadrant pain",
            "right upper quadrant pain",
            "left upper quadrant pain",
            "lower abdominal pain",
            "upper abdominal pain",
        ),
        "복통",
        "Douleur abdominale",
    ),
    C(
        "Abdominal mass/distention",
        GI,
        None,
        ("abdominal distension", "abdominal distention", "distension abdominal", "bloating"),
        "복부 팽만",
        "Masse/distension abdominale",
    ),
    C(
        "Nausea and/or vomiting",
        GI,
        None,
        ("nausea", "vomiting", "nausea vomiting"),
        "오심/구토",
        "Nausées et/ou vomissements",
        ("vomiting blood",),
    ),
    C("Diarrhea", GI, None, ("diarrhea",), "설사", "Diarrhée"),
    C("Constipation", GI, None, ("constipation",), "변비", "Constipation"),
    C(
        "Vomiting blood",
        GI,
        None,
        ("hematemesis", "vomiting blood", "coffee ground emesis"),
        "토혈",
        "Hématémèse",
    ),
    C(
        "Blood in stool/melena",
        GI,
        None,
        ("melena", "hematochezia", "bright red blood per rectum", "rectal bleeding", "black tarry stool"),
        "혈변/흑색변",
        "Sang dans les selles/méléna",
    ),
    C(
        "Oral/esophageal foreign body",
        GI,
        None,
        ("foreign body in esophagus", "foreign body in throat", "swallowed foreign body"),
        "식도 이물",
        "Corps étranger oral/œsophagien",
    ),
    C("Flank pain", GU, "central", ("flank pain", "renal colic"), "옆구리 통증", "Douleur au flanc"),
    C("Hematuria", GU, None, ("hematuria", "blood in urine"), "혈뇨", "Hématurie"),
    C(
        "Urinary retention",
        GU,
        None,
        (
            "urinary retention",
            "bladder retention",
            "retention bladder",
            "voiding failure",
            "difficulty in voiding",
        ),
        "요폐",
        "Rétention urinaire",
    ),
    C("Oliguria", GU, None, ("oliguria", "anuria", "decreased urine output"), "핍뇨", "Oligurie"),
    C(
        "UTI complaints",
        GU,
        None,
        ("dysuria", "urinary frequency", "urinary tract infection"),
        "배뇨 증상",
        "Symptômes d'infection urinaire",
    ),
    C(
        "Testicular/scrotal pain and/or swelling",
        GU,
        "central",
        ("testicular pain", "scrotal pain", "testis pain", "testicular torsion", "scrotal swelling"),
        "고환 통증",
        "Douleur/œdème testiculaire ou scrotal",
    ),
    C(
        "Vaginal bleed",
        OBGYN,
        None,
        ("vaginal bleeding", "vaginal spotting"),
        "질 출혈",
        "Saignement vaginal",
    ),
    C("Vaginal discharge", OBGYN, None, ("vaginal discharge",), "질 분비물", "Pertes vaginales"),
    C("Pelvic pain", OBGYN, "central", ("pelvic pain",), "골반 통증", "Douleur pelvienne"),
    C(
        "Depression/suicidal/deliberate self harm",
        MENTAL,
        None,
        ("suicidal ideation", "suicidal", "suicide attempt", "suicidal attempt", "self harm", "depression"),
        "우울/자살/자해",
        "Dépression/suicidaire/automutilation",
    ),
    C(
        "Anxiety/situational crisis",
        MENTAL,
        None,
        ("anxiety", "panic attack"),
        "불안",
        "Anxiété/situation de crise",
    ),
    C(
        "Bizarre behaviour",
        MENTAL,
        None,
        ("behavior change", "bizarre behavior", "agitation", "hallucinations"),
        "이상 행동",
        "Comportement bizarre",
    ),
    C(
        "Visual disturbance",
        EYE,
        None,
        ("blurred vision", "visual acuity", "loss of vision", "vision loss", "decreased vision", "diplopia"),
        "시력 장애",
        "Trouble visuel",
    ),
    C("Eye pain", EYE, "central", ("eye pain", "ocular pain"), "안구 통증", "Douleur oculaire"),
    C(
        "Eye injury",
        EYE,
        None,
        ("eye injury", "ocular injury", "chemical in eye"),
        "눈 손상",
        "Traumatisme oculaire",
    ),
    C("Epistaxis", ENT, None, ("epistaxis", "nosebleed", "nose bleed"), "비출혈", "Épistaxis"),
    C(
        "Sore throat",
        ENT,
        None,
        ("sore throat", "throat pain", "throat discomfort"),
        "인후통",
        "Mal de gorge",
    ),
    C(
        "Dental/gum problem",
        ENT,
        "peripheral",
        ("tooth pain", "toothache", "dental pain", "oral bleeding", "gum bleeding"),
        "치아 문제",
        "Problème dentaire/gingival",
    ),
    C(
        "Facial trauma",
        ENT,
        None,
        ("facial injury", "nasal injury", "jaw dislocation"),
        "안면 손상",
        "Traumatisme facial",
    ),
    C(
        "Back pain",
        ORTHO,
        "peripheral",
        ("back pain", "low back pain", "backache", "coccygeal pain"),
        "요통/등 통증",
        "Douleur dorsale",
    ),
    C(
        "Neck pain",
        ORTHO,
        "peripheral",
        ("neck pain", "posterior neck pain", "post neck pain"),
        "목 통증",
        "Douleur au cou",
    ),
    C(
        "Extremity pain",
        ORTHO,
        "peripheral",
        (
            "leg pain",
            "arm pain",
            "hip pain",
            "knee pain",
            "ankle pain",
            "foot pain",
            "wrist pain",
            "shoulder pain",
            "finger pain",
            "elbow pain",
            "joint pain",
            "myalgia",
        ),
        "사지 통증",
        "Douleur d'un membre",
    ),
    C(
        "Extremity injury",
        ORTHO,
        None,
        (
            "ankle injury",
            "wrist injury",
            "knee injury",
            "elbow injury",
            "finger injury",
            "toe injury",
            "leg injury",
            "arm injury",
            "fracture",
            "sprain",
        ),
        "사지 손상",
        "Traumatisme d'un membre",
    ),
    C(
        "Laceration/puncture",
        SKIN,
        None,
        ("laceration", "open wound", "wound", "cut", "puncture", "skin defect"),
        "열상",
        "Lacération/perforation",
    ),
    C(
        "Rash",
        SKIN,
        None,
        ("rash", "urticaria", "urticarial rash", "hives", "skin eruption", "skin lesion"),
        "발진",
        "Éruption cutanée",
    ),
    C("Pruritus", SKIN, None, ("itching", "itchy", "pruritus"), "가려움", "Prurit"),
    C("Bite", SKIN, None, ("bite", "dog bite", "animal bite"), "교상", "Morsure"),
    C("Sting", SKIN, None, ("sting", "bee sting", "insect sting"), "쏘임", "Piqûre"),
    C(
        "Localized swelling/redness",
        SKIN,
        None,
        ("swelling", "facial swelling", "edema", "cellulitis", "abscess"),
        "국소 부종/발적",
        "Enflure/rougeur localisée",
    ),
    C(
        "Overdose ingestion",
        SUBSTANCE,
        None,
        ("overdose", "poisoning", "toxic ingestion"),
        "약물 과다복용/중독",
        "Surdose/ingestion",
    ),
    C(
        "Substance misuse/intoxication",
        SUBSTANCE,
        None,
        (
            "alcohol",
            "intoxicated",
            "intoxication",
            "drunken",
            "drunk",
            "drug addiction",
            "addiction",
            "substance abuse",
            "drug abuse",
            "substance use",
            "opioid use disorder",
        ),
        "물질 남용/중독",
        "Intoxication",
        unless=("alcohol withdrawal",),
    ),
    C(
        "Substance withdrawal",
        SUBSTANCE,
        None,
        ("withdrawal", "alcohol withdrawal", "opioid withdrawal", "drug withdrawal"),
        "금단 증상",
        "Sevrage",
        unless=("social withdrawal",),
    ),
    C(
        "Major trauma - blunt",
        TRAUMA,
        None,
        (
            "motor vehicle collision",
            "major trauma",
            "multiple trauma",
            "fall from height",
            "pedestrian struck",
            "rollover",
        ),
        "중증 외상 (둔상)",
        "Traumatisme majeur - contondant",
    ),
    C(
        "Major trauma - penetrating",
        TRAUMA,
        None,
        ("gunshot wound", "stab wound", "penetrating trauma"),
        "중증 외상 (관통상)",
        "Traumatisme majeur - pénétrant",
    ),
    C("Fever", GENERAL, None, ("fever", "febrile", "chills", "fever chills"), "발열", "Fièvre"),
    C(
        "Hyperglycemia",
        GENERAL,
        None,
        ("hyperglycemia", "high blood sugar", "high blood glucose", "blood sugar high"),
        "고혈당",
        "Hyperglycémie",
    ),
    C(
        "Hypoglycemia",
        GENERAL,
        None,
        ("hypoglycemia", "hypoglycemic", "low blood sugar"),
        "저혈당",
        "Hypoglycémie",
    ),
    C(
        "Medical device problem",
        GENERAL,
        None,
        ("tube insertion", "tube change", "fistula malfunction", "catheter problem", "device malfunction"),
        "의료기기 문제",
        "Problème d'appareil médical",
    ),
    C(
        "Prescription/medication request",
        GENERAL,
        None,
        ("medication refill", "for medication", "prescription"),
        "처방/약 요청",
        "Demande d'ordonnance/de médicament",
    ),
    C(
        "Abnormal lab values",
        GENERAL,
        None,
        ("abnormal lab", "abnormal labs", "abnormal results"),
        "검사 이상",
        "Résultats de laboratoire anormaux",
    ),
)

# Inverted headings ("Pain, chest", "Discomfort, chest", "Distension, abd", "Blood pressure, low") are
# common in ED complaint pick-lists: a first clause that is one of the heads is read after the second ("chest
# pain"), a second clause that is one of the modifiers before the first ("low blood pressure").
INVERTED_HEADS: frozenset[str] = frozenset(
    {
        "pain",
        "discomfort",
        "distension",
        "swelling",
        "edema",
        "injury",
        "abnormality",
        "numbness",
        "retention",
    }
)
INVERTED_MODIFIERS: frozenset[str] = frozenset({"low", "high"})
