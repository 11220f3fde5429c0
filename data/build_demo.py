#!/usr/bin/env python
"""Build the small SYNTHETIC demo knowledge base and annotated corpus in ``data/demo``.

Everything this script writes is invented by the angel-trl project from the hand-written word
lists and sentence templates below. It is NOT real biomedical data: the concept ids
(``DEMO:0001`` ...) belong to no terminology, the documents are not abstracts of any paper, and the
statements they make are random combinations of templates and names that must never be read as
medical knowledge. The data exist only so that the whole pipeline (KB loading, training,
constrained decoding, evaluation) can be exercised quickly, offline and without licensed data.

What it contains, by construction:

* ``kb.jsonl``: about 340 concepts (organ x disease-kind diseases, named diseases, inherited enzyme
  deficiencies and their enzymes, drug-induced adverse effects, drugs, a few organisations and
  procedures), each with 2-8 names: word reorderings, adjective forms, plurals, acronyms, hyphen and
  spelling variants. Several names are deliberately shared by different concepts (``ADA``,
  ``MS``, ``PD``, ``RA``, ``CF``, ``AD``, ``CD``, ``HD``, ``PTX``, ...) and some names of different
  concepts differ by one token (``type 1 diabetes`` / ``type 2 diabetes``).
* ``train.jsonl`` / ``dev.jsonl`` / ``test.jsonl``: documents of 3-8 sentences with 2-6 mentions,
  built from ~37 templates whose left and right context tells shared acronyms apart. Mention
  surfaces are KB names or variants absent from the KB (case, number, typos, word order, hyphens,
  spelling). Each split holds a few NIL mentions (``ids: []``) and composite mentions
  (``"breast and ovarian cancer"``); about 12% of the disease/chemical concepts never occur in
  train, so dev and test contain unseen concepts. Every 5th document opens with a shared name in a
  sentence that disambiguates it (the three senses of ``ADA`` come first in every split).

Run ``python data/build_demo.py [--out data/demo] [--seed 0]``; the same seed gives byte-identical
files. The script needs only the Python standard library and re-reads what it wrote to check it.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from collections import Counter
from pathlib import Path

MAX_NAMES = 8
SPLITS = (("train", 250), ("dev", 60), ("test", 60))
HOLDOUT_FRACTION = 0.12  # share of disease/chemical concepts that never occur in train
SHOWCASE_EVERY = 5  # every 5th document opens with a shared name in a sentence that disambiguates it
VARIANT_RATE = 0.22  # chance that a mention surface is a variant absent from the KB

# --------------------------------------------------------------------------------------------
# Word lists
# --------------------------------------------------------------------------------------------

def table(text: str) -> list[list[str]]:
    """Rows of a text table: one row a line, cells separated by " | " (data kept as data, not code)."""
    return [[cell.strip() for cell in line.split("|")] for line in text.strip().splitlines()]


# noun | adjective | inflammation term | domain | exam phrase | disease kinds
ORGANS = [tuple(row) for row in table("""
lung | pulmonary | pneumonitis | pulm | On chest computed tomography | carcinoma inflammation fibrosis cyst abscess failure
liver | hepatic | hepatitis | gi | On abdominal ultrasound | carcinoma adenoma inflammation fibrosis cyst abscess failure
kidney | renal | nephritis | renal | On renal ultrasound | carcinoma adenoma inflammation fibrosis cyst abscess failure
breast | mammary | mastitis | gyn | On mammography | carcinoma adenoma inflammation cyst abscess
colon | colonic | colitis | gi | On colonoscopy | carcinoma adenoma inflammation fibrosis
stomach | gastric | gastritis | gi | On upper endoscopy | carcinoma adenoma inflammation
pancreas | pancreatic | pancreatitis | gi | On endoscopic ultrasound | carcinoma adenoma inflammation fibrosis cyst abscess
thyroid | thyroid | thyroiditis | metabolic | On neck ultrasound | carcinoma adenoma inflammation cyst
skin | cutaneous | dermatitis | derm | On skin biopsy | carcinoma inflammation fibrosis cyst abscess
brain | cerebral | encephalitis | neuro | On brain magnetic resonance imaging | inflammation cyst abscess
bladder | vesical | cystitis | renal | On cystoscopy | carcinoma inflammation
prostate | prostatic | prostatitis | renal | On transrectal ultrasound | carcinoma adenoma inflammation abscess
ovary | ovarian | oophoritis | gyn | On pelvic ultrasound | carcinoma inflammation cyst abscess
esophagus | esophageal | esophagitis | gi | On upper endoscopy | carcinoma inflammation
heart | cardiac | carditis | cardio | On echocardiography | inflammation fibrosis failure
bone | osseous | osteitis | ortho | On skeletal radiography | inflammation cyst abscess
cervix | cervical | cervicitis | gyn | On colposcopy | carcinoma inflammation
intestine | intestinal | enteritis | gi | On capsule endoscopy | carcinoma inflammation fibrosis
""")]

KIND_FORMS = {
    "carcinoma": ["{noun} carcinoma", "carcinoma of the {noun}", "{adj} carcinoma", "{noun} cancer",
                  "{adj} cancer", "cancer of the {noun}", "{noun} carcinomas"],
    "adenoma": ["{noun} adenoma", "adenoma of the {noun}", "{adj} adenoma", "benign {noun} tumor",
                "{noun} adenomas", "benign {noun} tumour"],
    "inflammation": ["{itis}", "inflammation of the {noun}", "{noun} inflammation", "{adj} inflammation"],
    "fibrosis": ["{adj} fibrosis", "fibrosis of the {noun}", "{noun} fibrosis", "{adj} fibrotic disease"],
    "cyst": ["{adj} cyst", "{noun} cyst", "cyst of the {noun}", "{adj} cysts", "{noun} cysts",
             "cystic lesion of the {noun}"],
    "abscess": ["{noun} abscess", "abscess of the {noun}", "{adj} abscess", "{noun} abscesses", "{adj} abscesses"],
    "failure": ["{adj} failure", "{noun} failure", "{adj} insufficiency", "failure of the {noun}"],
}

# extra names inserted right after the preferred one of an organ x kind concept
ORGAN_EXTRAS = {
    ("liver", "carcinoma"): ["hepatocellular carcinoma", "HCC", "hepatoma"],
    ("kidney", "carcinoma"): ["renal cell carcinoma", "RCC"],
    ("lung", "carcinoma"): ["bronchogenic carcinoma"],
    ("heart", "fibrosis"): ["myocardial fibrosis", "CF"],
    ("heart", "failure"): ["heart failure", "HF"],
    ("lung", "failure"): ["respiratory failure", "respiratory insufficiency"],
    ("prostate", "adenoma"): ["benign prostatic hyperplasia", "BPH"],
    ("pancreas", "inflammation"): ["acute pancreatitis"],
}

# Named diseases: domain | names (first = preferred).
NAMED_DISEASES = [(row[0], row[1:]) for row in table("""
neuro | multiple sclerosis | MS | disseminated sclerosis | encephalomyelitis disseminata
neuro | Parkinson disease | Parkinson's disease | PD | paralysis agitans | idiopathic parkinsonism
neuro | Alzheimer disease | Alzheimer's disease | AD | Alzheimer dementia | senile dementia of the Alzheimer type | SDAT
neuro | amyotrophic lateral sclerosis | ALS | Lou Gehrig disease | Lou Gehrig's disease
neuro | Huntington disease | Huntington's disease | HD | Huntington chorea | Huntington's chorea
neuro | epilepsy | seizure disorder | epilepsies | epileptic disorder
neuro | migraine | migraine headache | migraines | hemicrania
neuro | cerebral palsy | CP | Little disease
neuro | myasthenia gravis | MG | myasthenia
neuro | Guillain-Barre syndrome | Guillain-Barré syndrome | GBS | acute inflammatory demyelinating polyneuropathy | AIDP
neuro | essential tremor | familial tremor | benign essential tremor
neuro | Duchenne muscular dystrophy | DMD | Duchenne dystrophy | pseudohypertrophic muscular dystrophy
neuro | Becker muscular dystrophy | BMD | Becker dystrophy | benign pseudohypertrophic muscular dystrophy
psych | panic disorder | PD | panic disorders | episodic paroxysmal anxiety
psych | schizophrenia | schizophrenic disorder | schizophrenias | dementia praecox
psych | major depressive disorder | MDD | major depression | unipolar depression
psych | bipolar disorder | BD | manic-depressive illness | bipolar affective disorder
psych | attention deficit hyperactivity disorder | ADHD | attention-deficit/hyperactivity disorder | hyperkinetic disorder
psych | obsessive-compulsive disorder | OCD | obsessive compulsive neurosis
cardio | mitral stenosis | MS | mitral valve stenosis | stenosis of the mitral valve
cardio | mitral regurgitation | MR | mitral insufficiency | MI | mitral valve regurgitation
cardio | myocardial infarction | MI | heart attack | myocardial infarct | cardiac infarction
cardio | aortic stenosis | aortic valve stenosis | stenosis of the aortic valve
cardio | coronary artery disease | CAD | coronary heart disease | CHD | coronary disease
cardio | atrial fibrillation | AF | AFib | auricular fibrillation
cardio | hypertension | high blood pressure | HTN | arterial hypertension
cardio | pulmonary arterial hypertension | PAH | pulmonary artery hypertension
cardio | dilated cardiomyopathy | DCM | congestive cardiomyopathy
cardio | pulmonary embolism | PE | lung embolism | pulmonary thromboembolism
cardio | preeclampsia | pre-eclampsia | PE | toxemia of pregnancy | toxaemia of pregnancy
cardio | deep vein thrombosis | DVT | deep venous thrombosis
rheum | rheumatoid arthritis | RA | rheumatoid disease | atrophic arthritis
rheum | ankylosing spondylitis | Bechterew disease | Bechterew's disease | spondylitis ankylopoietica
rheum | systemic lupus erythematosus | SLE | lupus | systemic lupus | disseminated lupus erythematosus
rheum | dermatomyositis | DM | dermatomyositides
rheum | osteoarthritis | OA | degenerative joint disease | osteoarthrosis
rheum | gout | gouty arthritis | podagra
derm | atopic dermatitis | AD | atopic eczema | neurodermatitis
derm | psoriasis | psoriasis vulgaris | plaque psoriasis
derm | vitiligo | leukoderma acquisitum | acquired leukoderma
heme | refractory anemia | RA | refractory anaemia | myelodysplastic refractory anemia
heme | iron deficiency anemia | IDA | iron-deficiency anaemia | sideropenic anemia
heme | sickle cell disease | sickle cell anemia | SCD | sickle-cell disease | drepanocytosis
heme | beta-thalassemia | beta thalassemia | β-thalassemia | Cooley anemia | thalassemia major
heme | hemophilia A | haemophilia A | factor VIII deficiency | classic hemophilia
heme | hemophilia B | haemophilia B | factor IX deficiency | Christmas disease
heme | Hodgkin disease | Hodgkin lymphoma | Hodgkin's disease | HD | HL
heme | cold agglutinin disease | CAD | cold agglutinin syndrome | CAS
heme | acute myeloid leukemia | AML | acute myelogenous leukemia | acute myeloid leukaemia
heme | chronic myeloid leukemia | CML | chronic myelogenous leukemia | chronic myeloid leukaemia
heme | multiple myeloma | MM | plasma cell myeloma | myelomatosis | Kahler disease
metabolic | diabetes mellitus | DM | diabetes
metabolic | type 1 diabetes | type 1 diabetes mellitus | T1D | T1DM | insulin-dependent diabetes mellitus | IDDM | juvenile-onset diabetes
metabolic | type 2 diabetes | type 2 diabetes mellitus | T2D | T2DM | non-insulin-dependent diabetes mellitus | NIDDM | adult-onset diabetes
metabolic | obesity | adiposity | obese state
metabolic | hypercholesterolemia | hypercholesterolaemia | high blood cholesterol
metabolic | metabolic syndrome | syndrome X | insulin resistance syndrome | MetS
metabolic | hypothyroidism | underactive thyroid | hypothyreosis
metabolic | hyperthyroidism | overactive thyroid | thyrotoxicosis
metabolic | Wilson disease | Wilson's disease | hepatolenticular degeneration | WD
metabolic | hemochromatosis | haemochromatosis | hereditary hemochromatosis | iron overload disease
pulm | cystic fibrosis | CF | mucoviscidosis | cystic fibrosis of the pancreas
pulm | asthma | bronchial asthma | asthmatic disease
pulm | chronic obstructive pulmonary disease | COPD | chronic obstructive lung disease | COLD
pulm | tuberculosis | TB | tuberculous infection | phthisis
pulm | pneumonia | pneumonias | lung infection
pulm | Pneumocystis pneumonia | PCP | Pneumocystis jirovecii pneumonia | pneumocystosis
pulm | pneumothorax | PTX | collapsed lung
gi | Crohn disease | Crohn's disease | CD | regional enteritis
gi | celiac disease | coeliac disease | CD | gluten-sensitive enteropathy | celiac sprue
gi | ulcerative colitis | UC | colitis ulcerosa
gi | irritable bowel syndrome | IBS | spastic colon
gi | liver cirrhosis | cirrhosis | hepatic cirrhosis | cirrhosis of the liver
gi | hepatitis B | HBV infection | hepatitis B virus infection | serum hepatitis
gi | hepatitis C | HCV infection | hepatitis C virus infection
gi | chronic pancreatitis | CP | chronic pancreatic inflammation
infect | HIV infection | human immunodeficiency virus infection | HIV disease
infect | malaria | paludism | plasmodium infection
infect | sepsis | septicemia | septicaemia
renal | nephrotic syndrome | NS | nephrosis
renal | chronic kidney disease | CKD | chronic renal disease | chronic renal insufficiency
renal | acute kidney injury | AKI | acute renal failure | ARF
renal | polycystic kidney disease | PKD | polycystic renal disease
onc | melanoma | malignant melanoma | melanomas
onc | glioblastoma | glioblastoma multiforme | GBM | grade IV astrocytoma
onc | neuroblastoma | neuroblastomas | NB
onc | retinoblastoma | RB | retinoblastomas
onc | malignant mesothelioma | mesothelioma | mesotheliomas
immuno | severe combined immunodeficiency | SCID | severe combined immune deficiency
genetic | Down syndrome | Down's syndrome | trisomy 21 | DS
genetic | fragile X syndrome | FXS | Martin-Bell syndrome
genetic | Marfan syndrome | Marfan's syndrome | MFS
""")]

# Inherited enzyme deficiencies and their enzymes:
# enzyme, acronym, enzyme synonyms, preferred deficiency names, extra deficiency names,
# bare acronym also names the deficiency, inheritance, clinical feature, domain, therapy drug
ENZYMES = [
    ("adenosine deaminase", "ADA", ["adenosine aminohydrolase"], [],
     ["ADA-SCID", "adenosine deaminase-deficient severe combined immunodeficiency"], True,
     "autosomal recessive", "recurrent opportunistic infections and profound lymphopenia", "immuno",
     "pegademase bovine"),
    ("purine nucleoside phosphorylase", "PNP", ["inosine phosphorylase"], [], [], True,
     "autosomal recessive", "T-cell lymphopenia and neurological signs", "immuno", None),
    ("glucose-6-phosphate dehydrogenase", "G6PD", ["glucose 6-phosphate dehydrogenase"], [], ["favism"], True,
     "X-linked", "episodic haemolysis after fava bean ingestion", "genetic", None),
    ("phenylalanine hydroxylase", "PAH", ["phenylalanine 4-monooxygenase"], ["phenylketonuria"],
     ["PKU", "hyperphenylalaninemia"], False,
     "autosomal recessive", "musty body odour and developmental delay", "genetic", "sapropterin"),
    ("ornithine transcarbamylase", "OTC", ["ornithine carbamoyltransferase"], [], [], False,
     "X-linked", "episodes of hyperammonaemic coma", "genetic", None),
    ("medium-chain acyl-CoA dehydrogenase", "MCAD", ["medium chain acyl-CoA dehydrogenase", "ACADM"], [], [], True,
     "autosomal recessive", "hypoketotic collapse during fasting", "genetic", None),
    ("alpha-1 antitrypsin", "AAT", ["alpha1-antitrypsin", "alpha-1-antitrypsin", "SERPINA1"],
     ["alpha-1 antitrypsin deficiency"], ["AATD", "alpha1-antitrypsin deficiency"], False,
     "autosomal codominant", "early-onset emphysema and neonatal cholestasis", "genetic", None),
    ("hypoxanthine-guanine phosphoribosyltransferase", "HGPRT",
     ["hypoxanthine phosphoribosyltransferase", "HPRT"], ["Lesch-Nyhan syndrome"], ["HPRT deficiency", "LNS"], False,
     "X-linked", "self-injurious behaviour and uric acid overproduction", "genetic", None),
    ("lipoprotein lipase", "LPL", ["clearing factor lipase"], ["familial chylomicronemia syndrome"],
     ["hyperlipoproteinemia type I"], False,
     "autosomal recessive", "recurrent abdominal pain and eruptive xanthomas", "genetic", None),
    ("biotinidase", "BTD", ["biotin-amide amidohydrolase"], [], [], False,
     "autosomal recessive", "alopecia and skin rash in infancy", "genetic", None),
    ("galactose-1-phosphate uridylyltransferase", "GALT", ["galactose-1-phosphate uridyl transferase"],
     ["classic galactosemia"], ["galactosemia", "galactosaemia"], False,
     "autosomal recessive", "feeding difficulties and neonatal jaundice", "genetic", None),
    ("beta-hexosaminidase A", "HEXA", ["hexosaminidase A"], ["Tay-Sachs disease"], ["GM2 gangliosidosis type B"], False,
     "autosomal recessive", "progressive neurodegeneration with a cherry-red macular spot", "genetic", None),
    ("glucocerebrosidase", "GBA", ["acid beta-glucosidase", "glucosylceramidase"], ["Gaucher disease"],
     ["Gaucher's disease", "GD"], False,
     "autosomal recessive", "hepatosplenomegaly and bone crises", "genetic", "imiglucerase"),
    ("alpha-galactosidase A", "GLA", ["alpha-Gal A", "ceramidetrihexosidase"], ["Fabry disease"],
     ["Anderson-Fabry disease", "FD"], False,
     "X-linked", "neuropathic pain and angiokeratomas", "genetic", "agalsidase beta"),
    ("acid alpha-glucosidase", "GAA", ["acid maltase", "lysosomal alpha-glucosidase"], ["Pompe disease"],
     ["glycogen storage disease type II", "GSD II", "acid maltase deficiency"], False,
     "autosomal recessive", "hypotonia and cardiac enlargement", "genetic", "alglucosidase alfa"),
    ("glucose-6-phosphatase", "G6Pase", ["G6PC", "glucose 6-phosphatase"], ["von Gierke disease"],
     ["glycogen storage disease type I", "GSD I"], False,
     "autosomal recessive", "fasting intolerance and hepatomegaly", "genetic", None),
    ("pyruvate kinase", "PK", ["PKLR", "erythrocyte pyruvate kinase"], [], [], True,
     "autosomal recessive", "chronic nonspherocytic haemolysis", "genetic", None),
    ("pyruvate dehydrogenase", "PDH", ["pyruvate dehydrogenase complex", "PDHC"], [], ["PDHC deficiency"], False,
     "X-linked", "raised lactate and developmental delay", "genetic", None),
    ("steroid 21-hydroxylase", "21-OH", ["21-hydroxylase", "CYP21A2"], ["congenital adrenal hyperplasia"],
     ["CAH", "21-hydroxylase deficiency", "21-OHD"], False,
     "autosomal recessive", "ambiguous genitalia and salt wasting", "genetic", None),
    ("argininosuccinate lyase", "ASL", ["argininosuccinase"], ["argininosuccinic aciduria"], ["ASA"], False,
     "autosomal recessive", "trichorrhexis nodosa and hyperammonaemic episodes", "genetic", None),
    ("arylsulfatase A", "ARSA", ["ASA", "cerebroside-sulfatase"], ["metachromatic leukodystrophy"], ["MLD"], False,
     "autosomal recessive", "progressive loss of motor skills", "genetic", None),
    ("carbamoyl phosphate synthetase I", "CPS1", ["CPS I", "carbamyl phosphate synthetase 1"], [], ["CPSD"], False,
     "autosomal recessive", "neonatal hyperammonaemic coma", "genetic", None),
    ("lactase", "LCT", ["lactase-phlorizin hydrolase", "LPH"], ["congenital lactase deficiency"],
     ["hypolactasia", "alactasia"], False,
     "autosomal recessive", "watery stools after milk feeds", "genetic", None),
    ("cystathionine beta-synthase", "CBS", ["cystathionine synthase", "beta-thionase"], ["homocystinuria"],
     ["classical homocystinuria"], False,
     "autosomal recessive", "lens dislocation and a marfanoid habitus", "genetic", None),
    ("alpha-L-iduronidase", "IDUA", ["L-iduronidase"], ["Hurler syndrome"],
     ["mucopolysaccharidosis type I", "MPS I", "MPS1"], False,
     "autosomal recessive", "coarse facial features and corneal clouding", "genetic", "laronidase"),
    ("iduronate-2-sulfatase", "IDS", ["iduronate 2-sulfatase", "iduronate sulfatase"], ["Hunter syndrome"],
     ["mucopolysaccharidosis type II", "MPS II", "MPS2"], False,
     "X-linked", "coarse facial features with clear corneas", "genetic", "idursulfase"),
    ("fumarylacetoacetate hydrolase", "FAH", ["fumarylacetoacetase"], ["tyrosinemia type 1"],
     ["hereditary tyrosinemia type I", "HT1", "hepatorenal tyrosinemia"], False,
     "autosomal recessive", "early liver dysfunction and renal tubular defects", "genetic", "nitisinone"),
    ("tyrosine hydroxylase", "TH", ["tyrosine 3-monooxygenase"], [], ["TH-deficient dystonia"], False,
     "autosomal recessive", "infantile dystonia with diurnal fluctuation", "genetic", None),
    ("dihydropyrimidine dehydrogenase", "DPD", ["DPYD", "dihydrouracil dehydrogenase"], [], [], True,
     "autosomal recessive", "severe toxicity after fluoropyrimidine chemotherapy", "genetic", None),
    ("thiopurine S-methyltransferase", "TPMT", ["thiopurine methyltransferase"], [], [], False,
     "autosomal codominant", "marrow aplasia on standard thiopurine doses", "genetic", None),
    ("aldolase B", "ALDOB", ["fructose-bisphosphate aldolase B", "liver aldolase"], ["hereditary fructose intolerance"],
     ["HFI", "fructosemia"], False,
     "autosomal recessive", "vomiting after fructose intake", "genetic", None),
    ("butyrylcholinesterase", "BChE", ["pseudocholinesterase", "plasma cholinesterase"],
     ["pseudocholinesterase deficiency"], ["suxamethonium sensitivity"], False,
     "autosomal recessive", "prolonged apnoea after neuromuscular blockade", "genetic", None),
    ("porphobilinogen deaminase", "PBGD", ["hydroxymethylbilane synthase", "HMBS"], ["acute intermittent porphyria"],
     ["AIP"], False,
     "autosomal dominant", "attacks of abdominal pain and neuropsychiatric symptoms", "genetic", "hemin"),
]

# Drug-induced adverse effects (diseases used in chemical-disease templates).
ADVERSE_EFFECTS = [
    ["hepatotoxicity", "liver toxicity", "hepatic toxicity", "drug-induced liver injury", "DILI"],
    ["nephrotoxicity", "renal toxicity", "kidney toxicity", "nephrotoxic injury"],
    ["cardiotoxicity", "cardiac toxicity", "heart toxicity", "cardiotoxic injury"],
    ["neurotoxicity", "neural toxicity", "nervous system toxicity"],
    ["ototoxicity", "ototoxic hearing loss", "cochlear toxicity"],
    ["myelosuppression", "bone marrow suppression", "myelotoxicity", "marrow toxicity"],
    ["agranulocytosis", "granulocytopenia", "agranulocytoses"],
    ["QT prolongation", "long QT", "prolonged QT interval", "QT interval prolongation"],
    ["rhabdomyolysis", "muscle breakdown", "rhabdomyolyses"],
    ["tardive dyskinesia", "TD", "tardive dyskinesias"],
    ["serotonin syndrome", "serotonin toxicity", "serotonergic syndrome"],
    ["Stevens-Johnson syndrome", "SJS", "erythema multiforme major"],
    ["lactic acidosis", "lactate acidosis", "hyperlactatemic acidosis"],
    ["hyperkalemia", "hyperkalaemia", "high serum potassium"],
    ["hypoglycemia", "hypoglycaemia", "low blood sugar"],
    ["convulsions", "convulsion", "seizures", "seizure"],
    ["pulmonary edema", "pulmonary oedema", "lung edema"],
    ["ventricular arrhythmia", "ventricular arrhythmias", "ventricular dysrhythmia"],
]

# Drugs and other chemicals: preferred name | drug class (-: not a therapeutic agent) | synonyms.
DRUGS = [(row[0], None if row[1] == "-" else row[1], row[2:]) for row in table("""
aspirin | antiplatelet | acetylsalicylic acid | ASA | acetylsalicylate
acetaminophen | analgesic | paracetamol | APAP | N-acetyl-p-aminophenol
ibuprofen | anti-inflammatory | isobutylphenylpropionic acid | ibuprofen lysine
naproxen | anti-inflammatory | naproxen sodium | naproxene
metformin | antidiabetic | metformin hydrochloride | dimethylbiguanide
insulin | antidiabetic | human insulin | regular insulin | insulins
glibenclamide | antidiabetic | glyburide | glybenclamide
methotrexate | antimetabolite | MTX | amethopterin
cyclophosphamide | alkylating | CPA | cytophosphane | Cytoxan
cyproterone acetate | antiandrogenic | CPA | cyproterone
cyclosporine | immunosuppressive | ciclosporin | cyclosporin A | CsA | CyA
tacrolimus | immunosuppressive | FK506 | FK-506 | fujimycin
azathioprine | immunosuppressive | AZA | Imuran
mercaptopurine | antimetabolite | 6-mercaptopurine | 6-MP | 6MP
fluorouracil | antimetabolite | 5-fluorouracil | 5-FU | 5FU
capecitabine | antimetabolite | Xeloda
cisplatin | platinum-based | cis-diamminedichloroplatinum | CDDP | cis-platinum
carboplatin | platinum-based | CBDCA | Paraplatin
doxorubicin | anthracycline | adriamycin | DOX | hydroxydaunorubicin
doxycycline | tetracycline-class | DOX | doxycycline hyclate
paclitaxel | taxane | PTX | taxol
pentoxifylline | haemorheologic | PTX | oxpentifylline
levodopa | dopaminergic | L-dopa | L-DOPA | L-3,4-dihydroxyphenylalanine
carbidopa | decarboxylase-inhibiting | alpha-methyldopa hydrazine | Lodosyn
dopamine | inotropic | DA | 3-hydroxytyramine
warfarin | anticoagulant | warfarin sodium | coumadin
heparin | anticoagulant | unfractionated heparin | UFH | heparin sodium
amiodarone | antiarrhythmic | amiodarone hydrochloride | Cordarone
digoxin | cardiotonic | digoxine | Lanoxin
lithium | mood-stabilizing | lithium carbonate | Li2CO3
valproic acid | anticonvulsant | valproate | VPA | sodium valproate
phenytoin | anticonvulsant | diphenylhydantoin | DPH | phenytoin sodium
carbamazepine | anticonvulsant | CBZ | Tegretol
haloperidol | antipsychotic | Haldol | haloperidol decanoate
clozapine | antipsychotic | Clozaril | clozapin
risperidone | antipsychotic | Risperdal | risperidon
fluoxetine | antidepressant | Prozac | fluoxetine hydrochloride
cocaine | - | cocaine hydrochloride | benzoylmethylecgonine
phencyclidine | - | PCP | angel dust
nicotine | - | nicotine tartrate | 3-(1-methyl-2-pyrrolidinyl)pyridine
ethanol | - | alcohol | ethyl alcohol | EtOH
morphine | opioid | morphine sulfate | morphia
dexamethasone | corticosteroid | DEX | Decadron
prednisone | corticosteroid | deltacortisone | deltasone
tamoxifen | antiestrogenic | tamoxifen citrate | TAM
acetylcysteine | mucolytic | N-acetylcysteine | NAC | N-acetyl-L-cysteine
allopurinol | uricostatic | Zyloprim | allopurinol sodium
gentamicin | aminoglycoside | gentamycin | gentamicin sulfate
vancomycin | glycopeptide | vancomycin hydrochloride | Vancocin
isoniazid | antitubercular | INH | isonicotinic acid hydrazide | isonicotinylhydrazide
rifampicin | antitubercular | rifampin | RIF
streptozotocin | - | STZ | streptozocin
thyroid hormone | hormonal | TH | thyroid hormones
levothyroxine | hormonal | L-thyroxine | T4 | thyroxine
pentostatin | purine analogue | deoxycoformycin | dCF | 2'-deoxycoformycin
pegademase bovine | enzyme replacement | PEG-ADA | polyethylene glycol-modified adenosine deaminase
imiglucerase | enzyme replacement | Cerezyme | recombinant glucocerebrosidase
agalsidase beta | enzyme replacement | Fabrazyme | recombinant alpha-galactosidase A
alglucosidase alfa | enzyme replacement | Myozyme | recombinant acid alpha-glucosidase
laronidase | enzyme replacement | Aldurazyme | recombinant alpha-L-iduronidase
idursulfase | enzyme replacement | Elaprase | recombinant iduronate-2-sulfatase
sapropterin | cofactor | tetrahydrobiopterin | BH4 | sapropterin dihydrochloride
nitisinone | hydroxyphenylpyruvate dioxygenase-inhibiting | NTBC | Orfadin
hemin | heme-replacing | hematin | haem arginate
interferon beta | immunomodulatory | IFN-beta | interferon-beta | IFN-β
glatiramer acetate | immunomodulatory | copolymer 1 | Copaxone
enalapril | antihypertensive | enalapril maleate | Vasotec
captopril | antihypertensive | Capoten | captopryl
propranolol | beta-blocking | propranolol hydrochloride | Inderal
atenolol | beta-blocking | Tenormin | atenolol tablets
furosemide | diuretic | frusemide | Lasix
hydrochlorothiazide | diuretic | HCTZ | hydrochlorothiazid
simvastatin | lipid-lowering | Zocor | simvastatine
atorvastatin | lipid-lowering | Lipitor | atorvastatin calcium
puromycin aminonucleoside | - | PAN | puromycin amino nucleoside
zidovudine | antiretroviral | AZT | azidothymidine | ZDV
chloroquine | antimalarial | chloroquine phosphate | Aralen
sumatriptan | antimigraine | Imitrex | sumatriptan succinate
glucose | - | D-glucose | dextrose
cholesterol | - | cholesterin | cholest-5-en-3beta-ol
hydrogen peroxide | - | H2O2 | hydroperoxide
""")]

# organisation: name, acronym, synonyms, domain of the diseases its guidelines mention
ORGANISATIONS = [
    ("American Diabetes Association", "ADA", [], ["metabolic"]),
    ("American Heart Association", "AHA", [], ["cardio"]),
    ("American College of Rheumatology", "ACR", [], ["rheum"]),
    ("American Thoracic Society", "ATS", [], ["pulm"]),
    ("American Academy of Neurology", "AAN", [], ["neuro"]),
    ("World Health Organization", "WHO", ["World Health Organisation"], ["infect", "metabolic"]),
    ("National Comprehensive Cancer Network", "NCCN", [], ["onc"]),
]

# procedure: names, domain of the diseases it goes with
PROCEDURES = [
    (["peritoneal dialysis", "PD", "peritoneal dialysis therapy"], "renal"),
    (["hemodialysis", "HD", "haemodialysis", "hemodialysis treatment"], "renal"),
    (["mass spectrometry", "MS", "mass spectroscopy"], "lab"),
]

DOMAIN_CTX = {
    "neuro": ["On neurological examination", "After brain imaging revealed white matter changes",
              "In the neurology clinic"],
    "psych": ["On structured psychiatric interview", "In the outpatient psychiatry service",
              "After a standardised mental state assessment"],
    "cardio": ["On echocardiography", "After auscultation revealed a diastolic murmur", "In the cardiology ward"],
    "rheum": ["On examination of the swollen joints", "In the rheumatology clinic",
              "After serological testing for autoantibodies"],
    "heme": ["On review of the peripheral blood smear", "After bone marrow biopsy", "In the haematology service"],
    "metabolic": ["After fasting plasma measurements", "In the endocrinology clinic", "On routine metabolic screening"],
    "pulm": ["On chest radiography", "After spirometry", "In the respiratory unit"],
    "gi": ["On abdominal ultrasound", "After upper endoscopy", "In the gastroenterology service"],
    "renal": ["On renal biopsy", "After urinalysis", "In the nephrology unit"],
    "onc": ["On histopathological examination of the biopsy", "After staging computed tomography",
            "In the oncology department"],
    "infect": ["After blood cultures were obtained", "In the infectious disease clinic", "On serological testing"],
    "derm": ["On skin biopsy", "In the dermatology clinic"],
    "gyn": ["In the gynaecology clinic", "After clinical breast and pelvic examination"],
    "ortho": ["On skeletal radiography", "In the orthopaedic clinic"],
    "genetic": ["After newborn screening", "On enzyme assay in cultured fibroblasts", "In the metabolic genetics clinic"],
    "immuno": ["In the immunodeficiency clinic", "After lymphocyte subset analysis showed absent T cells",
               "In the paediatric immunology service"],
}

# Names that belong to no KB concept: NIL mentions.
NIL_DISEASES = [
    "Halvorsen-Marek syndrome", "Tessaro disease", "pseudo-Korvin myopathy", "familial Brandt neuropathy",
    "Okafor-Lindqvist syndrome", "benign Ravelli ataxia", "Quintero dystrophy", "Velasquez leukodystrophy",
    "Marwick encephalopathy", "Ishida-Pohl syndrome", "Dorrance cardiomyopathy", "Aldana nephropathy",
]
NIL_CHEMICALS = [
    "compound ZK-4471", "XR-209", "veltorimab", "maraxitol", "BX-17 peptide", "dolestrin", "quorasan", "tefulimod",
]

# Sentence templates. Slots: D disease, F enzyme deficiency, E enzyme (E1 pairs with F1), C chemical,
# X adverse effect, O organisation, P procedure, K composite disease mention, N NIL disease,
# M NIL chemical. Modifiers: :short (an acronym of the slot's concept), :long (a non-acronym name),
# :ctx / :feat / :inh / :cls (context words, not mentions). {num} {num2} {age} {pct} {year}: numbers.
# Columns: weight | template | slot constraints (slot=role).
TEMPLATES = [(row[1], float(row[0]), dict(cell.split("=") for cell in row[2:])) for row in table("""
3.0 | {D1:ctx}, the patient was diagnosed with {D1}.
2.0 | {D1:ctx}, {num} patients with {D1} were enrolled.
2.0 | {D1:ctx}, {D1:long} ({D1:short}) was confirmed in {num} patients.
2.0 | Patients with {D1:long} ({D1:short}) were followed for a median of {num} months.
2.0 | The prevalence of {D1} was higher in patients with {D2} than in controls.
1.5 | {D1} is a common cause of morbidity in patients with {D2}.
1.5 | No association was found between {D1} and {D2} in this cohort.
1.0 | The differential diagnosis included {D1}, {D2} and {D3}.
1.5 | We describe a {age}-year-old woman with {D1} who developed {X1} during treatment with {C1}.
2.0 | {C1}-induced {X1} was observed in {num} of {num2} rats.
1.5 | Treatment with {C1} reduced the incidence of {X1} compared with placebo.
1.5 | Long-term use of {C1} has been associated with {X1}.
1.0 | Withdrawal of {C1} led to resolution of {X1} within {num} days.
2.0 | The {C1:cls} agent {C1} was given to {num} patients with {D1}.
1.0 | {C1} and {C2} were co-administered to {num} healthy volunteers.
1.0 | Serum concentrations of {C1} were elevated in patients with {D1}.
1.0 | Lesions resembling {D1} were induced by {C1} in rats.
2.0 | {F1:ctx}, {F1} was suspected in an infant with {F1:feat}.
2.0 | {F1} is an {F1:inh} disorder caused by mutations in the gene encoding {E1}.
1.5 | Residual {E1} activity was below {pct}% of normal in cells from patients with {F1}.
1.0 | {F1:long} ({F1:short}) was diagnosed by newborn screening in {num} infants.
1.0 | Treatment with {C1} improved the clinical course of {F1}. | C1=therapy_of_F1
1.0 | {E1} activity was measured in erythrocyte lysates from {num} donors.
1.0 | Mutations in the gene encoding {E1} were identified in {num} unrelated families.
1.0 | Plasma {E1} activity did not differ between patients with {D1} and controls.
1.5 | The {O1} recommends screening for {D1} in high-risk adults.
1.5 | According to {O1:short} criteria, {num} participants met the definition of {D1}.
1.0 | Guidelines issued by the {O1} in {year} changed the management of {D1}.
1.0 | Patients with {D1} who required {P1} had a poorer prognosis. | P1=renal
0.7 | Acylcarnitine profiles were measured by tandem {P1} in infants with {F1}. | P1=lab
0.45 | The risk of {K1} was increased among carriers of the variant.
0.45 | A family history of {K1} was reported by {num} participants.
0.45 | Screening programmes for {K1} differ between countries.
0.4 | An unusual presentation of {N1} is reported.
0.4 | {N1} was first described in a consanguineous family.
0.35 | Pretreatment with {M1} did not prevent {X1} in mice.
0.35 | {M1}, an investigational compound, attenuated {C1}-induced {X1}.
""")]

FILLERS = [
    "The study was approved by the institutional review board.",
    "Written informed consent was obtained from every participant.",
    "Statistical analysis used a two-sided significance level of 0.05.",
    "Data were collected prospectively over a period of three years.",
    "Follow-up visits were scheduled every three months.",
    "These findings warrant confirmation in larger cohorts.",
    "The mechanisms underlying this observation remain unclear.",
    "Limitations of the study include its retrospective design.",
    "Baseline characteristics were similar between the two groups.",
    "Laboratory values were recorded at each visit.",
    "Two investigators reviewed the records independently.",
    "Missing data were handled by multiple imputation.",
    "The results were consistent across the sensitivity analyses.",
    "Further work is needed to clarify the clinical implications.",
]

SPELLING = [("anaemia", "anemia"), ("leukaemia", "leukemia"), ("oedema", "edema"), ("tumour", "tumor"),
            ("oesophag", "esophag"), ("haemo", "hemo"), ("aemia", "emia")]
NOUN_PLURALS = [("oma", "omas"), ("cyst", "cysts"), ("tumor", "tumors"), ("tumour", "tumours"),
                ("syndrome", "syndromes"), ("disease", "diseases"), ("disorder", "disorders"),
                ("infection", "infections"), ("abscess", "abscesses"), ("cancer", "cancers"),
                ("lesion", "lesions"), ("deficiency", "deficiencies"), ("itis", "itides"), ("sis", "ses"),
                ("failure", "failures"), ("infarction", "infarctions"), ("dystrophy", "dystrophies")]

# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def norm(name: str) -> str:
    """The project's name key (angel_trl.data.kb.normalize_name): whitespace collapsed, lowercased."""
    return " ".join(name.split()).lower()


def dedupe(names):
    out, seen = [], set()
    for n in names:
        n = " ".join(n.split())
        if n and n not in seen:
            seen.add(n)
            out.append(n)
    return out


def is_acronym(name: str) -> bool:
    if " " in name or len(name) > 8:
        return False
    upper = sum(c.isupper() for c in name)
    digits = sum(c.isdigit() for c in name)
    return upper >= 2 or (upper >= 1 and digits >= 1)


def capitalize_first(text: str) -> str:
    return text[0].upper() + text[1:] if text and "a" <= text[0] <= "z" else text


# --------------------------------------------------------------------------------------------
# Knowledge base
# --------------------------------------------------------------------------------------------


def build_kb():
    concepts = []

    def add(names, category, mtype, domain, **extra):
        names = dedupe(names)[:MAX_NAMES]
        assert len(names) >= 2, names
        assert not is_acronym(names[0]), names
        c = {"id": None, "names": names, "category": category, "type": mtype, "domain": domain, "ctx": []}
        c.update(extra)
        concepts.append(c)
        return c

    for noun, adj, itis, domain, exam, kinds in ORGANS:
        for kind in kinds.split():
            forms = [f.format(noun=noun, adj=adj, itis=itis) for f in KIND_FORMS[kind]]
            names = forms[:1] + ORGAN_EXTRAS.get((noun, kind), []) + forms[1:]
            dom = "onc" if kind in ("carcinoma", "adenoma") else domain
            add(names, "organ", "Disease", dom, organ=noun, adj=adj, kind=kind,
                ctx=[exam] + DOMAIN_CTX[dom])

    for domain, names in NAMED_DISEASES:
        add(names, "named", "Disease", domain, ctx=DOMAIN_CTX[domain])

    drug_by_name = {}
    for pref, cls, syns in DRUGS:
        drug_by_name[pref] = add([pref] + syns, "drug", "Chemical", "drug", cls=cls)

    for (enzyme, acr, alts, def_pref, def_extra, bare, inh, feat, domain, therapy) in ENZYMES:
        enz = add([enzyme, acr] + alts + [f"{acr} enzyme"], "enzyme", "Protein", "enzyme")
        names = def_pref + [f"{enzyme} deficiency", f"{acr} deficiency"] + ([acr] if bare else [])
        names += def_extra + [f"deficiency of {enzyme}"]
        dfc = add(names, "def", "Disease", domain, inh=inh, feat=feat, ctx=DOMAIN_CTX[domain],
                  therapy=drug_by_name[therapy] if therapy else None, acr=acr)
        enz["pair"], dfc["pair"] = dfc, enz

    for names in ADVERSE_EFFECTS:
        add(names, "tox", "Disease", "tox")

    for name, acr, syns, domains in ORGANISATIONS:
        add([name, acr] + syns, "org", "Organization", "org", org_domains=domains)

    for names, domain in PROCEDURES:
        add(names, "proc", "Procedure", domain)

    for i, c in enumerate(concepts, start=1):
        c["id"] = f"DEMO:{i:04d}"
    return concepts


def name_index(concepts):
    index = {}
    for c in concepts:
        for n in c["names"]:
            ids = index.setdefault(norm(n), [])
            if c["id"] not in ids:
                ids.append(c["id"])
    return index


# --------------------------------------------------------------------------------------------
# Mention surfaces
# --------------------------------------------------------------------------------------------


def _toggle_number(name: str):
    words = name.split(" ")
    i = words.index("of") - 1 if "of" in words[1:] else len(words) - 1
    if i < 0:
        return None
    w = words[i]
    if not w.isalpha() or not w.islower():
        return None
    for sing, plur in NOUN_PLURALS:
        if w.endswith(plur):
            words[i] = w[: -len(plur)] + sing
            return " ".join(words)
    for sing, plur in NOUN_PLURALS:
        if w.endswith(sing):
            words[i] = w[: -len(sing)] + plur
            return " ".join(words)
    return None


def _typo(rng, name: str):
    words = name.split(" ")
    idx = [i for i, w in enumerate(words) if len(w) >= 6 and w.isalpha()]
    if not idx:
        return None
    i = rng.choice(idx)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    op = rng.randrange(3)
    if op == 0:
        w2 = w[:j] + w[j + 1] + w[j] + w[j + 2:]
    elif op == 1:
        w2 = w[:j] + w[j + 1:]
    else:
        w2 = w[:j] + w[j] + w[j:]
    if w2 == w:
        return None
    words[i] = w2
    return " ".join(words)


def _reorder(name: str):
    m = re.fullmatch(r"type (\w+) (diabetes(?: mellitus)?)", name)
    if m:
        return f"{m.group(2)} type {m.group(1)}"
    m = re.fullmatch(r"(.+) of the (\w+)", name)
    if m:
        return f"{m.group(2)} {m.group(1)}"
    m = re.fullmatch(r"(.+) deficiency", name)
    if m:
        return f"deficiency in {m.group(1)}"
    words = name.split(" ")
    if 2 <= len(words) <= 3 and all(w.isalpha() and w.islower() for w in words):
        return f"{words[-1]}, {' '.join(words[:-1])}"  # inverted, as in MeSH entry terms
    return None


def variant_candidates(rng, name: str, reorder: bool = True):
    """Surface variants of a KB name; the caller keeps those that are not KB names themselves.
    ``reorder``: also try word-order changes (disease names only: "warfarin sodium" stays put)."""
    out = []
    if is_acronym(name):
        if "-" in name:
            out.append(name.replace("-", ""))
        return out
    if name != name.lower():
        out.append(name.lower())
    else:
        out.append(" ".join(w[:1].upper() + w[1:] for w in name.split(" ")))
    for make in (_toggle_number, _reorder) if reorder else (_toggle_number,):
        v = make(name)
        if v:
            out.append(v)
    v = _typo(rng, name)
    if v:
        out.append(v)
    if "-" in name:
        out.append(name.replace("-", " "))
    if "'s " in name:
        out.append(name.replace("'s ", "s "))
    for a, b in SPELLING:  # British <-> American spelling, whichever the name has
        if a in name:
            out.append(name.replace(a, b))
            break
        if b in name:
            out.append(name.replace(b, a))
            break
    return out


# --------------------------------------------------------------------------------------------
# Corpus generation
# --------------------------------------------------------------------------------------------

SLOT = re.compile(r"\{(\w+?)(?::(\w+))?\}")
NUMBERS = {"num": (3, 60), "num2": (61, 120), "age": (2, 79), "pct": (1, 15), "year": (1995, 2023)}
SLOT_ORDER = "OPFEKNMDXC"


class Template:
    def __init__(self, text, weight, constraints):
        self.text, self.weight, self.constraints = text, weight, constraints
        self.parts = SLOT.findall(text)
        self.slots = sorted({s for s, _ in self.parts if s not in NUMBERS},
                            key=lambda s: (SLOT_ORDER.index(s[0]), s))
        self.mods = {s: {m for s2, m in self.parts if s2 == s} for s in self.slots}
        self.n_mentions = sum(1 for s, m in self.parts if s not in NUMBERS and m in ("", "short", "long"))


class CorpusGenerator:
    def __init__(self, concepts, rng, excluded):
        self.rng = rng
        self.pref = {c["names"][0]: c for c in concepts}
        self.excluded = excluded  # ids never used in this split
        self.index = name_index(concepts)
        self.by_cat = {}
        for c in concepts:
            if c["id"] not in excluded:
                self.by_cat.setdefault(c["category"], []).append(c)
        self.templates = [Template(*t) for t in TEMPLATES]
        self.nil = {"N": NIL_DISEASES, "M": NIL_CHEMICALS}
        self.showcase = self._showcase_cycle()
        self.n_docs = 0

    # --- showcase sentences: a shared name where the sentence tells its concepts apart ----------

    def _showcase_templates(self, c):
        letter = {"organ": "D", "named": "D", "def": "F", "enzyme": "E", "drug": "C", "org": "O",
                  "proc": "P"}.get(c["category"])
        if letter is None:
            return None, []
        slot = letter + "1"
        out = []
        for t in self.templates:
            if slot not in t.slots or t.mods[slot] != {""} | (t.mods[slot] - {"", "short", "long"}):
                continue  # the slot must be a plain mention, possibly with context words
            if letter in "DF" and not t.mods[slot] & {"ctx", "inh"}:
                continue
            if letter == "D" and any(x[0] in "OP" for x in t.slots):
                continue
            if letter == "C" and not (c["cls"] and "cls" in t.mods[slot]):
                continue
            if letter == "P" and t.constraints.get(slot) != c["domain"]:
                continue
            if letter == "F" and "therapy_of_F1" in t.constraints.values():
                continue
            out.append(t)
        return slot, out

    def _showcase_cycle(self):
        """(concept, shared name) pairs usable in this split: the three ADA senses first, then the
        others in a seeded order; documents cycle through them."""
        pairs = []
        for cat in ("def", "enzyme", "org", "organ", "named", "drug", "proc"):
            for c in self.by_cat.get(cat, []):
                if self._showcase_templates(c)[1]:
                    pairs += [(c, n) for n in c["names"] if len(self.index[norm(n)]) > 1]
        first = [p for p in pairs if p[1] == "ADA"]
        rest = [p for p in pairs if p[1] != "ADA"]
        self.rng.shuffle(rest)
        return first + rest

    # --- choosing concepts -------------------------------------------------------------------

    def _pick(self, pool):
        pool = list(pool)
        return self.rng.choice(pool) if pool else None

    def _acronyms(self, c):
        return [n for n in c["names"] if is_acronym(n)]

    def _disease_pool(self, domains=None):
        cats = ("organ", "named", "def")
        if domains is not None:
            return [c for cat in cats for c in self.by_cat.get(cat, []) if c["domain"] in domains]
        r = self.rng.random()
        cat = "organ" if r < 0.35 else "named" if r < 0.85 else "def"
        return self.by_cat.get(cat, [])

    def _fill(self, t, doc, force):
        chosen = {}
        reused = set()
        used_ids = set()
        for s in t.slots:
            letter, mods = s[0], t.mods[s]
            need_short = "short" in mods
            cons = t.constraints.get(s)
            ok = (lambda c: c["id"] not in used_ids and (not need_short or self._acronyms(c)))
            c = None
            if s in force:
                c = force[s]
            elif letter == "O":
                c = self._pick(filter(ok, self.by_cat["org"]))
            elif letter == "P":
                c = self._pick(c2 for c2 in self.by_cat["proc"] if c2["domain"] == cons and ok(c2))
            elif letter == "F":
                needs_therapy = "therapy_of_F1" in t.constraints.values()

                def ok_f(d, ok=ok, needs_therapy=needs_therapy):
                    return ok(d) and d["pair"]["id"] not in self.excluded and (
                        not needs_therapy or (d["therapy"] and d["therapy"]["id"] not in self.excluded))

                c = self._reuse(doc, "F", ok_f) or self._pick(filter(ok_f, self.by_cat.get("def", [])))
            elif letter == "E":
                partner = chosen.get("F" + s[1:])
                c = partner["pair"] if partner else self._pick(filter(ok, self.by_cat.get("enzyme", [])))
            elif letter == "K":
                c = self._composite()
            elif letter in "NM":
                c = {"nil": self.rng.choice(self.nil[letter]), "type": "Disease" if letter == "N" else "Chemical"}
            elif letter == "D":
                domains = None
                for other in ("O1", "P1"):
                    if other in chosen:
                        domains = chosen[other].get("org_domains") or [chosen[other]["domain"]]
                        if domains == ["lab"]:
                            domains = ["genetic", "immuno"]
                if domains is None:
                    c = self._reuse(doc, "D", ok)
                if c is None:
                    for _ in range(20):
                        c = self._pick(filter(ok, self._disease_pool(domains)))
                        if c is not None:
                            break
            elif letter == "X":
                c = self._reuse(doc, "X", ok) or self._pick(filter(ok, self.by_cat["tox"]))
            elif letter == "C":
                if cons == "therapy_of_F1":
                    c = chosen["F1"]["therapy"]
                else:
                    need_cls = "cls" in mods
                    c = self._reuse(doc, "C", lambda c2: ok(c2) and (not need_cls or c2["cls"]))
                    if c is None:
                        c = self._pick(c2 for c2 in self.by_cat["drug"] if ok(c2) and (not need_cls or c2["cls"]))
            if c is None:
                return None
            if c.get("_reused"):
                c = c["concept"]
                reused.add(s)
            chosen[s] = c
            if "id" in c:
                used_ids.add(c["id"])
            for cc in c.get("concepts", []):
                used_ids.add(cc["id"])
        return chosen, reused

    def _reuse(self, doc, letter, ok):
        if self.rng.random() >= 0.2:
            return None
        cands = [c for lt, c in doc if lt == letter and ok(c)]
        return {"_reused": True, "concept": self.rng.choice(cands)} if cands else None

    def _composite(self):
        rng = self.rng
        allowed = (lambda cs: all(c["id"] not in self.excluded for c in cs))
        for _ in range(50):
            r = rng.random()
            if r < 0.55:
                kind = rng.choice(["carcinoma", "carcinoma", "cyst", "abscess", "fibrosis", "adenoma"])
                pool = [c for c in self.by_cat.get("organ", []) if c["kind"] == kind]
                if len(pool) < 2:
                    continue
                a, b = rng.sample(pool, 2)
                word = rng.choice(["carcinoma", "cancer"]) if kind == "carcinoma" else kind
                toks = []
                for c in (a, b):
                    opts = [tok for tok in (c["organ"], c["adj"]) if f"{tok} {word}" in c["names"]]
                    if not opts:
                        break
                    toks.append(rng.choice(opts))
                if len(toks) < 2 or toks[0] == toks[1]:
                    continue
                if kind in ("cyst", "abscess") and rng.random() < 0.5:
                    word = "cysts" if kind == "cyst" else "abscesses"
                text, cs = f"{toks[0]} and {toks[1]} {word}", [a, b]
            elif r < 0.8:
                pool = [c for c in self.by_cat.get("def", []) if f"{c['acr']} deficiency" in c["names"]]
                if len(pool) < 2:
                    continue
                a, b = rng.sample(pool, 2)
                text, cs = f"{a['acr']} and {b['acr']} deficiencies", [a, b]
            else:
                text, prefs = rng.choice(FIXED_COMPOSITES)
                cs = [self.pref[p] for p in prefs]
            if allowed(cs):
                return {"composite": text, "concepts": cs, "type": "Disease"}
        return None

    # --- surfaces -----------------------------------------------------------------------------

    def _variant(self, c, name):
        cands = variant_candidates(self.rng, name, reorder=c["type"] == "Disease")
        own = set(c["names"])
        good = []
        for v in cands:
            ids = self.index.get(norm(v), [])
            if v not in own and v.strip() == v and (not ids or ids == [c["id"]]):
                good.append(v)
        return self.rng.choice(good) if good else name

    def _surface(self, c, mode, reused, contextual):
        """A surface for concept ``c``. Names shared with other concepts are favoured where the
        sentence (or an earlier mention in the document) gives context, and mostly avoided elsewhere."""
        rng, names = self.rng, c["names"]
        acr = self._acronyms(c)
        longs = [n for n in names if not is_acronym(n)]
        if mode == "short":
            return rng.choice(acr)
        if mode == "long":
            name = names[0] if rng.random() < 0.6 else rng.choice(longs)
            return self._variant(c, name) if rng.random() < 0.1 else name
        if reused and acr and rng.random() < 0.6:
            return rng.choice(acr)
        amb = [n for n in names if len(self.index[norm(n)]) > 1]
        plain = [n for n in names if n not in amb]
        if amb and contextual and rng.random() < 0.3:
            name = rng.choice(amb)
        elif rng.random() < 0.35:
            name = names[0]
        else:
            name = rng.choice(names if contextual or not plain or rng.random() < 0.1 else plain)
        return self._variant(c, name) if rng.random() < VARIANT_RATE else name

    @staticmethod
    def _contextual(t, s, reused):
        """Does the sentence itself (or the document so far) say what the concept of slot ``s`` is?"""
        if s in reused or t.mods[s] & {"ctx", "feat", "inh", "cls"} or s[0] in "OPEF":
            return True
        if s[0] == "D":
            return any(x[0] in "OP" for x in t.slots)
        if s[0] == "C":
            return "therapy_of_F1" in t.constraints.values()
        return False

    # --- sentences and documents --------------------------------------------------------------

    def sentence(self, t, doc, showcase=None):
        """Render template ``t``; ``showcase`` = (slot, concept, surface) forces one mention."""
        force, forced_surface = {}, {}
        if showcase:
            slot, concept, name = showcase
            force[slot] = concept
            forced_surface[slot] = name
            if slot[0] == "E" and "F" + slot[1:] in t.slots:
                force["F" + slot[1:]] = concept["pair"]
        filled = self._fill(t, doc, force)
        if filled is None:
            return None
        chosen, reused = filled
        rng = self.rng
        pieces, mentions, pos, last = [], [], 0, 0
        surfaces = {"forced": n for n in forced_surface.values()}
        for m in SLOT.finditer(t.text):
            lit = t.text[last:m.start()]
            pieces.append(lit)
            pos += len(lit)
            last = m.end()
            s, mod = m.group(1), m.group(2) or ""
            if s in NUMBERS:
                lo, hi = NUMBERS[s]
                out = str(rng.randint(lo, hi))
            elif mod in ("ctx", "feat", "inh", "cls"):
                c = chosen[s]
                out = rng.choice(c["ctx"]) if mod == "ctx" else c[mod]
            else:
                c = chosen[s]
                if "nil" in c:
                    out, ids, mtype, comp = c["nil"], [], c["type"], False
                elif "composite" in c:
                    out, ids, mtype, comp = c["composite"], [x["id"] for x in c["concepts"]], "Disease", True
                elif s in forced_surface and mod == "":
                    out, ids, mtype, comp = forced_surface[s], [c["id"]], c["type"], False
                else:
                    for _ in range(5):
                        out = self._surface(c, mod, s in reused, self._contextual(t, s, reused))
                        # the two mentions of a pair never share a surface ("ADA ... encoding ADA")
                        if not any(out == o for o in surfaces.values()):
                            break
                    ids, mtype, comp = [c["id"]], c["type"], False
                    surfaces[s + mod] = out
                if pos == 0:
                    out = capitalize_first(out) if out == out.lower() else out
                mentions.append({"start": pos, "end": pos + len(out), "text": out, "type": mtype,
                                 "ids": ids, "composite": comp})
            pieces.append(out)
            pos += len(out)
        pieces.append(t.text[last:])
        text = "".join(pieces)  # templates start with a capital letter or a slot (capitalised above)
        for s in t.slots:
            c = chosen[s]
            if "id" in c:
                doc.append((s[0], c))
        return text, mentions

    def document(self, doc_id):
        rng = self.rng
        n_sent, target = rng.randint(3, 8), rng.randint(2, 6)
        state, sents = [], []
        remaining = target
        self.n_docs += 1
        if self.showcase and self.n_docs % SHOWCASE_EVERY == 1:
            concept, name = self.showcase[(self.n_docs // SHOWCASE_EVERY) % len(self.showcase)]
            slot, templates = self._showcase_templates(concept)
            t = rng.choice(templates)
            out = self.sentence(t, state, (slot, concept, name))
            if out is not None:
                sents.append(out)
                remaining -= t.n_mentions
        while remaining > 0:
            cands = [t for t in self.templates if t.n_mentions <= remaining]
            t = rng.choices(cands, weights=[t.weight for t in cands])[0]
            out = self.sentence(t, state)
            if out is None:
                continue
            sents.append(out)
            remaining -= t.n_mentions
        fillers = rng.sample(FILLERS, max(0, n_sent - len(sents)))
        for f in fillers:
            sents.insert(rng.randint(1, len(sents)), (f, []))
        assert 3 <= len(sents) <= 8, len(sents)
        text, mentions, offset = "", [], 0
        for s_text, s_mentions in sents:
            if text:
                text += " "
                offset += 1
            for m in s_mentions:
                mentions.append({**m, "start": m["start"] + offset, "end": m["end"] + offset})
            text += s_text
            offset += len(s_text)
        for m in mentions:
            assert text[m["start"]:m["end"]] == m["text"]
        return {"id": doc_id, "text": text, "mentions": [
            {"start": m["start"], "end": m["end"], "text": m["text"], "type": m["type"], "ids": m["ids"],
             "composite": m["composite"]} for m in mentions]}


FIXED_COMPOSITES = [
    ("type 1 and type 2 diabetes", ["type 1 diabetes", "type 2 diabetes"]),
    ("hemophilia A and B", ["hemophilia A", "hemophilia B"]),
    ("Duchenne and Becker muscular dystrophy", ["Duchenne muscular dystrophy", "Becker muscular dystrophy"]),
    ("mucopolysaccharidosis types I and II", ["Hurler syndrome", "Hunter syndrome"]),
    ("hepatitis B and C", ["hepatitis B", "hepatitis C"]),
    ("glycogen storage disease types I and II", ["von Gierke disease", "Pompe disease"]),
    ("Alzheimer and Parkinson disease", ["Alzheimer disease", "Parkinson disease"]),
    ("mitral stenosis and regurgitation", ["mitral stenosis", "mitral regurgitation"]),
    ("acute myeloid and chronic myeloid leukemia", ["acute myeloid leukemia", "chronic myeloid leukemia"]),
]

# concepts kept out of the held-out set so every split shows the shared acronyms they carry
PROTECTED = ["adenosine deaminase deficiency", "adenosine deaminase", "multiple sclerosis", "mitral stenosis",
             "Parkinson disease", "panic disorder", "type 1 diabetes", "type 2 diabetes", "rheumatoid arthritis",
             "cystic fibrosis", "Alzheimer disease"]


def choose_holdout(concepts, seed):
    rng = random.Random(seed * 7919 + 17)
    eligible = [c for c in concepts if c["category"] in ("organ", "named", "def", "tox", "enzyme", "drug")
                and c["names"][0] not in PROTECTED]
    k = round(HOLDOUT_FRACTION * len(eligible))
    return {c["id"] for c in rng.sample(eligible, k)}


def build(out_dir: Path, seed: int) -> None:
    concepts = build_kb()
    index = name_index(concepts)
    for n in NIL_DISEASES + NIL_CHEMICALS:
        assert norm(n) not in index, n
    holdout = choose_holdout(concepts, seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    kb_lines = [json.dumps({"id": c["id"], "names": c["names"], "alt_ids": []}, ensure_ascii=False)
                for c in concepts]
    _write(out_dir / "kb.jsonl", kb_lines)
    for k, (split, n_docs) in enumerate(SPLITS):
        rng = random.Random(seed * 1000 + k)
        gen = CorpusGenerator(concepts, rng, holdout if split == "train" else set())
        docs = [gen.document(f"demo-{split}-{i:04d}") for i in range(1, n_docs + 1)]
        _write(out_dir / f"{split}.jsonl", [json.dumps(d, ensure_ascii=False) for d in docs])


def _write(path: Path, lines) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# Verification: re-read the files and report
# --------------------------------------------------------------------------------------------


def verify(out_dir: Path) -> dict:
    kb = [json.loads(line) for line in (out_dir / "kb.jsonl").read_text(encoding="utf-8").splitlines()]
    ids = [c["id"] for c in kb]
    assert len(ids) == len(set(ids)), "duplicate concept ids"
    for c in kb:
        assert list(c) == ["id", "names", "alt_ids"], c
        assert 2 <= len(c["names"]) <= MAX_NAMES and len(set(c["names"])) == len(c["names"]), c
        assert all(n.strip() for n in c["names"]), c
    known = set(ids)
    index = name_index(kb)
    ambiguous = {n: v for n, v in index.items() if len(v) > 1}
    names_of = {c["id"]: set(c["names"]) for c in kb}
    report = {"concepts": len(kb), "names": sum(len(c["names"]) for c in kb), "normalized_names": len(index),
              "ambiguous_names": len(ambiguous)}
    print(f"KB: {report['concepts']} concepts, {report['names']} names, {report['normalized_names']} normalised "
          f"names, {report['ambiguous_names']} ambiguous (shared by several concepts)")
    print("  ambiguous: " + ", ".join(f"{n} x{len(v)}" for n, v in sorted(ambiguous.items())))
    train_ids: set[str] = set()
    total_bytes = (out_dir / "kb.jsonl").stat().st_size
    for split, _ in SPLITS:
        path = out_dir / f"{split}.jsonl"
        total_bytes += path.stat().st_size
        docs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        c = Counter()
        split_ids = set()
        for d in docs:
            assert 2 <= len(d["mentions"]) <= 6, d["id"]
            for m in d["mentions"]:
                assert d["text"][m["start"]:m["end"]] == m["text"], (d["id"], m)
                assert all(i in known for i in m["ids"]), (d["id"], m)
                assert m["composite"] == (len(m["ids"]) > 1), (d["id"], m)
                c["mentions"] += 1
                c["nil"] += not m["ids"]
                c["composite"] += m["composite"]
                if m["ids"]:
                    split_ids.update(m["ids"])
                    if not any(m["text"] in names_of[i] for i in m["ids"]) and not m["composite"]:
                        c["surface_not_in_kb"] += 1
                    if len(index.get(norm(m["text"]), [])) > 1:
                        c["ambiguous_surface"] += 1
                    if m["text"] == "ADA":
                        c["ADA"] += 1
                    if split != "train":
                        if all(i in train_ids for i in m["ids"]):
                            c["seen_in_train"] += 1
                        else:
                            c["unseen_in_train"] += 1
        if split == "train":
            train_ids = split_ids
        row = {"documents": len(docs), **c}
        report[split] = row
        print(f"{split}: {len(docs)} docs, {c['mentions']} mentions, NIL {c['nil']}, composite {c['composite']}, "
              f"surface not a KB name {c['surface_not_in_kb']}, ambiguous surface {c['ambiguous_surface']} "
              f"(ADA {c['ADA']}), concepts {len(split_ids)}"
              + (f", mentions of concepts unseen in train {c['unseen_in_train']}, seen {c['seen_in_train']}"
                 if split != "train" else ""))
    report["bytes"] = total_bytes
    print(f"total size: {total_bytes} bytes")
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(Path(__file__).resolve().parent / "demo"), help="output folder")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same bytes)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    build(out, args.seed)
    verify(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
