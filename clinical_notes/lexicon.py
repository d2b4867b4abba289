"""Words as data: stopwords, generic words, filler phrases and clinical synonyms the grounding checks use.

Synonym groups gather the abbreviations and lay terms clinicians write for one concept (common US and UK
usage; abbreviations as in the Joint Commission and NHS clinical abbreviation lists, minus the ones on
their "do not use" lists). A statement that names any member of a group names all of them.
"""

from __future__ import annotations


def _words(text: str) -> frozenset[str]:
    """A set of the whitespace-separated words of a text block."""
    return frozenset(text.split())


STOPWORDS = _words(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours out over own same
    she should so some such than that the their theirs them themselves then there these they this
    those through to too under until up very was we were what when where which while who whom why
    will with would you your yours per since via within without yet ago last new old
    """
)

# Words that name no particular finding, test, drug or problem: they never ground a citation and a
# statement made only of them says nothing.
GENERIC = _words(
    """
    patient patients history record records recorded chart note notes summary summaries information
    data detail details relevant medical clinical health care condition conditions problem problems
    disorder disorders disease diseases finding findings situation situations procedure procedures
    observation observations result results level levels value values test tests measurement
    measurements date dates active inactive resolved current currently chronic acute status report
    reports document documents documentation encounter encounters visit visits medication
    medications medicine medicines drug drugs allergy allergies allergic intolerance substance
    review reviewed noted seen including include includes included following follow known unknown
    various several overall general generally relevant important item items list listed section
    sections plan plans assessment subjective objective consider considered consideration
    considerations suggest suggests consistent possible possibly likely may might could recent
    recently previous previously prior latest time times year years day days month months week weeks
    today change changes changed interval blood serum plasma urine total count panel body mass type
    types normal abnormal range reference other others well good stable ongoing continue continued
    continues use used using order ordered taking take takes treated treatment therapy high low
    elevated raised increased decreased reduced rising falling worse worsening better improving
    improved
    patiente dossier antécédent antécédents résumé résultat résultats valeur valeurs examen examens traitement
    traitements médicament médicaments vérifié vérifiés vérifiées noté notés notées consultation consultations
    récent récente récents actif actifs active actives état suivi revu revus
    """
)

# Phrases that carry no clinical content however they are cited (checked case-insensitively).
FILLER = (
    r"\bthis (is|was) an? (brief |short |concise )?(summary|overview|note|draft|report)\b",
    r"\b(a |the )?summary of (the |this )?patient'?s?\b",
    r"\b(any|all) (other )?(relevant|pertinent|additional) (information|details|data)\b",
    r"\bincluding (the )?(patient'?s? )?(name|date of birth|address|age and sex)\b",
    r"\b(as|is|are) (noted|mentioned|described|shown|documented) (above|below)\b",
    r"\b(see|refer to) (above|below)\b",
    r"\b(lorem ipsum|to be determined|not applicable|tbd)\b",
    r"\bno (further|additional) (comments?|information|details)\b",
    r"\bplease (review|see|refer|note)\b",
    # French
    r"\bceci est un (bref |court )?(résumé|aperçu|document|brouillon)\b",
    r"\b(voir|se reporter|se référer) ci-(dessus|dessous)\b",
    r"\b(toute autre|toutes les autres|autres) informations? (pertinentes?|utiles?)\b",
)

# How "blood in urine" is said (its words are all generic, so the phrases name it; transcript_terms too).
BLOOD_IN_URINE = (
    "blood in urine",
    "blood in the urine",
    "blood in my urine",
    "blood in your urine",
    "blood in her urine",
    "blood in his urine",
)

SYNONYM_GROUPS: tuple[tuple[str, ...], ...] = (
    # the record says there is nothing ("nka" is the group's own word: "no known allergies" is a statement)
    (
        "no known allergies",
        "no known allergy",
        "nka",
        "nkda",
        "no known drug allergies",
        "no known drug allergy",
    ),
    # sex
    ("female", "woman", "women", "girl", "lady", "f"),
    ("male", "man", "men", "boy", "gentleman", "m"),
    # encounter classes (v3 ActCode) and settings
    ("amb", "ambulatory", "outpatient", "clinic", "office", "wellness"),
    ("emer", "emergency", "ed", "er", "emergency department", "emergency room"),
    (
        "imp",
        "inpatient",
        "admission",
        "admitted",
        "hospitalization",
        "hospitalisation",
        "hospitalized",
        "hospitalised",
        "hospital stay",
        "in hospital",
    ),
    ("obsenc", "observation stay"),
    ("hh", "home health", "home visit"),
    ("vr", "virtual", "telehealth", "telemedicine", "video visit"),
    # problems
    # both words of "blood in urine" are generic: the group makes it name something, as said in a visit too
    ("hematuria", *BLOOD_IN_URINE),
    ("hypertension", "htn", "high blood pressure", "hypertensive"),
    ("diabetes", "dm", "t2dm", "t1dm", "diabetic", "diabetes mellitus"),
    ("prediabetes", "prediabetic", "impaired glucose tolerance"),
    ("hyperlipidemia", "hld", "dyslipidemia", "hypercholesterolemia", "high cholesterol"),
    ("chronic kidney disease", "ckd", "renal insufficiency", "kidney", "renal", "nephropathy"),
    ("acute kidney injury", "aki", "kidney injury"),
    ("coronary artery disease", "cad", "ischemic heart disease", "ihd", "coronary"),
    ("myocardial infarction", "mi", "heart attack", "stemi", "nstemi", "infarction"),
    ("heart failure", "chf", "hf", "hfref", "hfpef", "cardiac failure"),
    ("atrial fibrillation", "afib", "af", "fibrillation"),
    ("chronic obstructive pulmonary disease", "copd", "emphysema", "chronic bronchitis"),
    ("asthma", "asthmatic", "reactive airway"),
    ("stroke", "cva", "cerebrovascular accident", "tia", "transient ischemic attack"),
    ("gastroesophageal reflux", "gerd", "reflux", "heartburn"),
    ("obesity", "obese", "bmi", "body mass index", "overweight"),
    ("urinary tract infection", "uti", "cystitis"),
    ("upper respiratory infection", "uri", "common cold", "viral pharyngitis"),
    ("pneumonia", "pna"),
    ("deep vein thrombosis", "dvt", "venous thrombosis"),
    ("pulmonary embolism", "pe", "embolism"),
    ("osteoarthritis", "oa", "degenerative joint disease", "arthritis"),
    ("rheumatoid arthritis", "ra"),
    ("depression", "mdd", "depressive", "low mood"),
    ("anxiety", "gad", "anxious"),
    ("hypothyroidism", "hypothyroid", "underactive thyroid"),
    ("hyperthyroidism", "hyperthyroid", "overactive thyroid"),
    ("anemia", "anaemia", "anemic", "low hemoglobin"),
    ("sepsis", "septic", "septicemia"),
    ("cancer", "carcinoma", "malignancy", "malignant", "neoplasm", "tumor", "tumour"),
    ("fracture", "fx", "broken"),
    ("pregnancy", "pregnant", "gravid"),
    ("dementia", "alzheimer", "cognitive impairment"),
    ("substance use", "alcohol", "etoh", "smoking", "tobacco", "smoker", "nicotine"),
    # tests and vital signs
    ("hemoglobin a1c", "a1c", "hba1c", "glycated hemoglobin", "glycosylated hemoglobin"),
    ("hemoglobin", "hgb", "hb"),
    ("hematocrit", "hct"),
    ("white blood cell", "wbc", "leukocytes", "leukocyte", "white cell"),
    ("platelets", "plt", "platelet", "thrombocytes"),
    ("potassium", "k"),
    ("sodium", "na"),
    ("chloride", "cl"),
    ("bicarbonate", "hco3", "carbon dioxide", "co2"),
    ("creatinine", "cr", "creat"),
    ("glomerular filtration rate", "gfr", "egfr"),
    ("urea nitrogen", "bun", "urea"),
    ("glucose", "blood sugar", "bg", "glycemia", "sugar"),
    ("low density lipoprotein", "ldl", "ldl cholesterol"),
    ("high density lipoprotein", "hdl", "hdl cholesterol"),
    ("cholesterol", "lipid", "lipids", "lipid panel"),
    ("triglycerides", "tg", "triglyceride"),
    ("troponin", "trop", "tnt", "tni", "hs troponin"),
    ("lactate", "lactic acid"),
    ("systolic blood pressure", "sbp", "systolic"),
    ("diastolic blood pressure", "dbp", "diastolic"),
    ("blood pressure", "bp"),
    ("heart rate", "hr", "pulse", "tachycardia", "bradycardia", "tachycardic", "bradycardic"),
    ("respiratory rate", "rr", "respirations", "breathing rate", "tachypnea", "tachypnoea", "breaths"),
    (
        "oxygen saturation",
        "spo2",
        "o2 sat",
        "sao2",
        "saturation",
        "pulse oximetry",
        "sats",
        "hypoxia",
        "hypoxemia",
        "hypoxic",
    ),
    ("body temperature", "temp", "temperature", "fever", "febrile", "pyrexia", "hypothermia", "afebrile"),
    ("body weight", "weight", "wt"),
    ("body height", "height", "ht"),
    ("pain severity", "pain score", "pain"),
    ("glasgow coma score", "gcs", "glasgow"),
    # drug classes
    ("statin", "simvastatin", "atorvastatin", "rosuvastatin", "pravastatin", "lovastatin"),
    ("ace inhibitor", "acei", "lisinopril", "enalapril", "ramipril", "captopril", "benazepril"),
    ("angiotensin receptor blocker", "arb", "losartan", "valsartan", "irbesartan", "candesartan"),
    ("beta blocker", "metoprolol", "atenolol", "carvedilol", "propranolol", "bisoprolol"),
    ("calcium channel blocker", "amlodipine", "diltiazem", "verapamil", "nifedipine"),
    ("diuretic", "hydrochlorothiazide", "hctz", "furosemide", "lasix", "chlorthalidone", "spironolactone"),
    (
        "anticoagulant",
        "anticoagulation",
        "warfarin",
        "apixaban",
        "rivaroxaban",
        "heparin",
        "enoxaparin",
        "dabigatran",
    ),
    ("antiplatelet", "aspirin", "clopidogrel", "asa"),
    ("insulin", "glargine", "lispro", "aspart", "detemir"),
    ("metformin", "biguanide"),
    ("opioid", "opiate", "morphine", "oxycodone", "hydrocodone", "fentanyl", "codeine", "tramadol"),
    ("nsaid", "ibuprofen", "naproxen", "diclofenac", "ketorolac", "celecoxib"),
    (
        "antibiotic",
        "amoxicillin",
        "penicillin",
        "cephalexin",
        "azithromycin",
        "doxycycline",
        "ciprofloxacin",
        "nitrofurantoin",
        "ceftriaxone",
    ),
    ("inhaler", "albuterol", "salbutamol", "fluticasone", "budesonide", "tiotropium"),
    ("acetaminophen", "paracetamol", "tylenol"),
    ("levothyroxine", "thyroxine", "synthroid"),
)
