"""A deterministic generator of synthetic payer policies, for scale benchmarks and tests.

    .venv/bin/python -m benchmarks.synth_corpus --out DIR --docs N [--seed S] [--no-real]

writes a complete sources directory:

- `DIR/documents/*.md`: the 5 real documents (so questions about them still work) plus N
  synthetic payer policies in the corpus format (YAML front matter exactly like the real ones,
  then a flattened-policy body: sections, numbered criteria lists, tab-separated and run-together
  code tables with HCPCS Q20xx/J-codes, ICD-10 C90.0x/C83.1x/D89.83x, CPT 38225-38228, ICD-10-PCS,
  NDCs, revision-log rows with dates, FAQ questions, long boilerplate paragraphs);
- `DIR/reference/*`: a copy of `sources/reference/` whose `payers.yaml` also lists the synthetic
  payers, so every synthetic document passes `index/corpus.py` validation.

Synthetic documents are fiction made of realistic parts; they exist to give chunking, the
code-aware tokenizer, BM25, Chroma and fusion realistic volume. Document i depends only on
(seed, i), so a larger corpus contains the smaller one and the same seed gives the same files.
"""

from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
REAL_SOURCES = PROJECT / "sources"

# product id -> (brand, generic, hcpcs, disease, icd-10 family, target dose text)
PRODUCTS = {
    "abecma": ("Abecma", "idecabtagene vicleucel", "Q2055", "relapsed or refractory multiple myeloma",
               ["C90.00", "C90.01", "C90.02"], "300 to 510 x 10^6 CAR-positive T cells"),
    "carvykti": ("Carvykti", "ciltacabtagene autoleucel", "Q2056", "relapsed or refractory multiple myeloma",
                 ["C90.00", "C90.01", "C90.02"], "0.5 to 1.0 x 10^6 CAR-positive viable T cells per kg, max 1 x 10^8"),
    "tecartus": ("Tecartus", "brexucabtagene autoleucel", "Q2053", "relapsed or refractory mantle cell lymphoma",
                 ["C83.10", "C83.11", "C83.18", "C83.19", "C91.00", "C91.02"], "2 x 10^6 CAR-positive viable T cells per kg, max 2 x 10^8"),
    "yescarta": ("Yescarta", "axicabtagene ciloleucel", "Q2041", "large B-cell lymphoma",
                 ["C83.30", "C83.38", "C85.20", "C82.90"], "2 x 10^6 CAR-positive viable T cells per kg, max 2 x 10^8"),
    "kymriah": ("Kymriah", "tisagenlecleucel", "Q2042", "B-cell precursor acute lymphoblastic leukemia",
                ["C91.00", "C91.02", "C83.30", "C82.00"], "0.6 to 6.0 x 10^8 CAR-positive viable T cells"),
    "breyanzi": ("Breyanzi", "lisocabtagene maraleucel", "Q2054", "large B-cell lymphoma",
                 ["C83.30", "C83.38", "C85.20", "C91.10"], "50 to 110 x 10^6 CAR-positive viable T cells"),
    "tecvayli": ("Tecvayli", "teclistamab", "J9380", "relapsed or refractory multiple myeloma",
                 ["C90.00", "C90.02"], "1.5 mg/kg subcutaneously once weekly after step-up dosing"),
    "elrexfio": ("Elrexfio", "elranatamab", "J1323", "relapsed or refractory multiple myeloma",
                 ["C90.00", "C90.02"], "76 mg subcutaneously once weekly after step-up dosing"),
}
LABELERS = {"abecma": "59572", "carvykti": "57894", "tecartus": "71287", "yescarta": "71287",
            "kymriah": "00078", "breyanzi": "73153", "tecvayli": "57894", "elrexfio": "00069"}
SUPPORT_J = [
    ("J9185", "Injection, fludarabine phosphate, 50 mg"),
    ("J9070", "Cyclophosphamide, 100 mg"),
    ("J3262", "Injection, tocilizumab, 1 mg"),
    ("J1100", "Injection, dexamethasone sodium phosphate, 1 mg"),
    ("J2506", "Injection, pegfilgrastim, excludes biosimilar, 0.5 mg"),
    ("J1442", "Injection, filgrastim (G-CSF), excludes biosimilars, 1 microgram"),
    ("J0897", "Injection, denosumab, 1 mg"),
    ("J1561", "Injection, immune globulin (Gamunex-C/Gammaked), 500 mg"),
    ("J9047", "Injection, carfilzomib, 1 mg"),
    ("J9041", "Injection, bortezomib, 0.1 mg"),
]
CPT = [
    ("38225", "Chimeric antigen receptor T-cell (CAR-T) therapy; harvesting of blood-derived T lymphocytes for development of "
              "genetically modified autologous CAR-T cells, per day"),
    ("38226", "CAR-T therapy; preparation of blood-derived T lymphocytes for transportation (eg, cryopreservation, storage)"),
    ("38227", "CAR-T therapy; receipt and preparation of CAR-T cells for administration"),
    ("38228", "CAR-T therapy; CAR-T cell administration, autologous"),
    ("38206", "Blood-derived hematopoietic progenitor cell harvesting for transplantation, per collection; autologous"),
    ("96413", "Chemotherapy administration, intravenous infusion technique; up to 1 hour, single or initial substance/drug"),
    ("96415", "Chemotherapy administration, intravenous infusion technique; each additional hour"),
]
CRS_ICD = [("D89.831", "Cytokine release syndrome, grade 1"), ("D89.832", "Cytokine release syndrome, grade 2"),
           ("D89.833", "Cytokine release syndrome, grade 3"), ("D89.834", "Cytokine release syndrome, grade 4"),
           ("D89.835", "Cytokine release syndrome, grade 5"), ("G92.00", "Immune effector cell-associated neurotoxicity syndrome, grade unspecified"),
           ("Z51.11", "Encounter for antineoplastic chemotherapy"), ("Z94.84", "Stem cells transplant status")]
PCS = [("XW033C7", "Introduction of autologous engineered chimeric antigen receptor T-cell immunotherapy into peripheral vein, "
                   "percutaneous approach, new technology group 7"),
       ("XW043C7", "Introduction of autologous engineered chimeric antigen receptor T-cell immunotherapy into central vein, "
                   "percutaneous approach, new technology group 7"),
       ("XW033H7", "Introduction of axicabtagene ciloleucel immunotherapy into peripheral vein, percutaneous approach, new technology group 7"),
       ("XW033A7", "Introduction of ciltacabtagene autoleucel into peripheral vein, percutaneous approach, new technology group 7")]
REVENUE = [("0891", "Special processing of drugs/biologicals - cell/gene therapy acquisition"),
           ("0874", "Cell/gene therapy - cell collection"), ("0636", "Drugs requiring detailed coding")]

STATES = ["Ohio", "Texas", "Georgia", "Arizona", "Oregon", "Michigan", "Florida", "Kansas", "Iowa", "Nevada",
          "Utah", "Maine", "Vermont", "Indiana", "Missouri", "Colorado", "Kentucky", "Alabama", "Idaho", "Montana"]
LOBS = ["Commercial", "Medicaid", "Medicare Advantage HMO", "Medicare Advantage PPO", "Marketplace", "CHIP", "Dual Eligible SNP"]
SYLL_A = ["Val", "Nor", "Bel", "Cor", "Ast", "Mer", "Sol", "Tam", "Ren", "Lux", "Ord", "Pel", "Qui", "Sar", "Ver", "Wyn", "Zel", "Hal", "Dun", "Fal"]
SYLL_B = ["ora", "ivo", "enta", "aris", "ella", "umba", "ostra", "ania", "edra", "ilva", "oqua", "enza", "ithe", "arta", "yndo"]
SUFFIX = ["Health Plan", "Community Health", "Health Alliance", "Mutual Health", "Care Network", "HealthPartners", "Medical Plans"]
WORDS = ("member provider request documentation authorization review criteria therapy infusion "
         "apheresis manufacturing lymphodepletion monitoring hospitalization toxicity neurologic cytokine "
         "eligibility performance status organ function hepatitis infection transplant relapse remission "
         "refractory prior lines regimen oncologist hematologist facility accreditation certification REMS "
         "inpatient outpatient claim modifier units dose bag carton invoice acquisition cost reimbursement "
         "bundled separately reportable encounter admission discharge readmission observation coverage "
         "exclusion experimental investigational appeal reconsideration peer-to-peer timeframe urgent "
         "standard calendar business days notification retrospective concurrent utilization management").split()


def payer_list(n: int, seed: int) -> list[dict]:
    """n synthetic payers with unique made-up names (no English word, so no accidental matches)."""
    rng = random.Random(f"payers-{seed}")
    out, seen = [], set()
    while len(out) < n:
        stem = rng.choice(SYLL_A) + rng.choice(SYLL_B) + rng.choice(["", "n", "x", "r", "th", "ley"])
        if stem.lower() in seen:
            continue
        seen.add(stem.lower())
        name = f"{stem} {rng.choice(SUFFIX)}"
        out.append({"id": f"synth-{stem.lower()}", "name": name, "aliases": [stem.lower()]})
    return out


def n_payers_for(docs: int) -> int:
    # A payer publishes one policy per product (8 products); a few hundred payers at most.
    return max(3, min(300, -(-docs // 8)))


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return words[0].capitalize() + " " + " ".join(words[1:]) + "."


def _date(rng: random.Random, lo: int = 2019, hi: int = 2026) -> tuple[int, int, int]:
    return rng.randint(lo, hi), rng.randint(1, 12), rng.randint(1, 28)


def _ndc(rng: random.Random, labeler: str) -> str:
    return f"{labeler}-{rng.randint(100, 999)}-{rng.choice(['01', '02', '03', 'XX'])}"


def make_document(i: int, seed: int, payers: list[dict]) -> tuple[str, str]:
    """(doc id, file text) of synthetic policy number i."""
    rng = random.Random(f"doc-{seed}-{i}")
    payer = payers[i % len(payers)]
    pid = rng.choice(sorted(PRODUCTS))
    brand, generic, hcpcs, disease, icds, dose = PRODUCTS[pid]
    policy_no = f"{rng.choice(['CP', 'MP', 'PHARM', 'UM', 'RX'])}.{rng.choice(['PHAR', 'MED', 'ONC'])}.{rng.randint(100, 999)}"
    y, m, d = _date(rng, 2019, 2025)
    ry, rm, _ = _date(rng, max(y, 2024), 2026)
    rm = min(rm, 5) if ry == 2026 else rm  # nothing reviewed after May 2026
    state = rng.choice(STATES)
    lobs = sorted(rng.sample(LOBS, rng.randint(1, 3)))
    doc_id = f"synth-{i:05d}-{payer['id'].removeprefix('synth-')}-{pid}"
    front = {
        "id": doc_id,
        "title": f"Clinical Policy: {generic.title()} ({brand}), {policy_no}",
        "publisher": payer["name"],
        "kind": "payer-policy",
        "products": [pid],
        "payer": payer["id"],
        "line_of_business": lobs,
        "effective": f"{y}-{m:02d}-{d:02d}",
        "reviewed": f"{ry}-{rm:02d}",
        "price_quarter": None,
        "notes": f"Synthetic policy generated by benchmarks/synth_corpus.py (seed {seed}, #{i}); not a real document.",
    }
    out: list[str] = ["", "", f"Clinical Policy: {generic.title()} ({brand})", "",
                      f"Reference Number: {policy_no}", "", f"Effective Date: {m:02d}.{d:02d}.{y % 100:02d}", "",
                      f"Last Review Date: {rm:02d}.{ry % 100:02d}", "",
                      f"Line of Business: {', '.join(lobs)}", "",
                      f"Applies to: {payer['name']} members in {state}, "
                      f"Fax {rng.randint(200, 989)}-{rng.randint(200, 989)}-{rng.randint(1000, 9999)}", "",
                      "Description", "",
                      f"{generic.capitalize()} ({brand}) is a "
                      f"{'bispecific antibody' if hcpcs.startswith('J') else 'chimeric antigen receptor (CAR) T-cell immunotherapy'} "
                      f"billed under HCPCS {hcpcs}. {' '.join(_sentence(rng, rng.randint(8, 16)) for _ in range(rng.randint(3, 6)))}", "",
                      "FDA Approved Indication(s)", "",
                      f"{brand} is indicated for the treatment of adult patients with {disease} after "
                      f"{rng.choice(['one', 'two', 'three', 'four'])} or more prior lines of therapy.", "",
                      "Policy/Criteria", "",
                      f"It is the policy of {payer['name']} that {brand} is **medically necessary** when the following criteria are met:", "",
                      f"I. Initial Approval Criteria**A. {disease.capitalize()}** (must meet all):", ""]
    crit = [f"Diagnosis of {disease} (ICD-10-CM {', '.join(rng.sample(icds, min(2, len(icds))))});",
            "Prescribed by or in consultation with an oncologist or hematologist;",
            f"Age \\geq {rng.choice([18, 18, 18, 21, 25])} years;",
            f"Member has received \\geq {rng.randint(1, 4)} prior lines of therapy;",
            f"ECOG performance status of {rng.choice(['0 or 1', '0 to 2', '2 or less'])};",
            f"Treatment at a FACT-accredited center enrolled in the {brand.upper()} REMS (if applicable);",
            f"Lymphodepleting chemotherapy with fludarabine (J9185) and cyclophosphamide (J9070) is planned "
            f"{rng.randint(2, 5)} to {rng.randint(6, 14)} days before infusion;",
            f"Dose does not exceed {dose}."]
    for _ in range(rng.randint(2, 6)):
        crit.append(_sentence(rng, rng.randint(10, 24))[:-1] + ";")
    rng.shuffle(crit)
    out += [f"{n}. {c}" for n, c in enumerate(crit, 1)] + [""]
    out += [f"Approval duration: {rng.choice([1, 2, 3, 6])} months "
            f"({rng.choice(['1 dose only', 'one infusion', 'single treatment course'])})", "",
            "II. Continued Therapy", "",
            f"- 1. Continued therapy will not be authorized as {brand} is indicated to be dosed one time only.", "",
            "III. Diagnoses/Indications for which coverage is NOT authorized:", ""]
    for letter in "ABCD"[:rng.randint(2, 4)]:
        out.append(f"- {letter}. {_sentence(rng, rng.randint(14, 30))}")
    out += ["", "IV. Appendices/General Information", "", "Appendix A: Abbreviation Key", ""]
    for abbr, full in rng.sample([("CRS", "cytokine release syndrome"),
                                  ("ICANS", "immune effector cell-associated neurotoxicity syndrome"),
                                  ("FACT", "Foundation for the Accreditation of Cellular Therapy"),
                                  ("REMS", "Risk Evaluation and Mitigation Strategy"),
                                  ("ASP", "average sales price"), ("MS-DRG", "Medicare Severity Diagnosis Related Group"),
                                  ("NDC", "National Drug Code"), ("ECOG", "Eastern Cooperative Oncology Group")], 5):
        out += [f"{abbr}: {full}", ""]
    out += ["V. Dosage and Administration", "", "Indication\tDosing Regimen\tMaximum Dose",
            f"{disease.capitalize()}\tSingle IV infusion; target dose: {dose}\t{dose.split(',')[-1].strip()}", ""]
    # Coding implications: tab tables and one run-together (flattened web) table.
    out += ["Coding Implications", "", " ".join(_sentence(rng, rng.randint(12, 22)) for _ in range(3)), "",
            "HCPCS Codes\tDescription",
            f"{hcpcs}\t{generic.capitalize()}, per therapeutic dose, including leukapheresis and dose preparation procedures"]
    for code, desc in rng.sample(SUPPORT_J, rng.randint(4, 8)):
        out.append(f"{code}\t{desc}")
    out += ["", "CPT Codes\tDescription"]
    out += [f"{c}\t{dsc}" for c, dsc in rng.sample(CPT, rng.randint(4, 7))]
    out += ["", "ICD-10-CM Codes\tDescription"]
    icd_states = ['not having achieved remission', 'in remission', 'in relapse', 'unspecified site', 'lymph nodes of multiple sites']
    out += [f"{c}\t{disease.capitalize()}, {rng.choice(icd_states)}" for c in icds]
    out += [f"{c}\t{dsc}" for c, dsc in rng.sample(CRS_ICD, rng.randint(3, 6))]
    out += ["", "ICD-10-PCS Codes\tDescription"] + [f"{c}\t{dsc}" for c, dsc in rng.sample(PCS, 2)]
    out += ["", "Revenue Codes\tDescription"] + [f"{c}\t{dsc}" for c, dsc in REVENUE]
    out += ["", "CodeDescriptionWhen to use"]
    out += [f"{hcpcs}{generic.split()[0].capitalize()} per dose"
            f"{rng.choice(['Bill 1 unit on the infusion date', 'One unit per infusion; never the invoice count'])}",
            f"{rng.choice(['38225', '38226'])}Blood-derived T lymphocyte harvesting, per dayReport each apheresis day",
            "D89.831 - D89.835Cytokine release syndrome, grade 1-5Secondary diagnosis when CRS occurs",
            f"MS-DRG 018CAR-T ImmunotherapyInpatient admission with {rng.choice(PCS)[0]}", ""]
    labeler = LABELERS[pid]
    out += ["National Drug Codes", "", "NDC\tPackage\tBilling units"]
    for _ in range(rng.randint(2, 5)):
        out.append(f"{_ndc(rng, labeler)}\t{rng.choice(['1 infusion bag', '1-4 infusion bags', 'carton of 1 vial', '2 bags per carton'])}"
                   f"\t{rng.choice(['1 unit', '1 dose', 'per mg'])}")
    out += ["", "Frequently asked questions", ""]
    faqs = [(f"How many units of {hcpcs} are billed for one {brand} infusion?",
             f"Bill {hcpcs} with 1 unit per therapeutic dose, regardless of the number of infusion bags. {_sentence(rng, 14)}"),
            (f"Does {payer['name']} require prior authorization for {brand}?",
             f"Yes. {payer['name']} requires prior authorization; submit the request {rng.randint(5, 30)} business days before apheresis. "
             f"{_sentence(rng, 12)}"),
            ("Which codes report cytokine release syndrome?",
             f"Report D89.831-D89.835 by grade as a secondary diagnosis; tocilizumab is billed with J3262 per 1 mg. {_sentence(rng, 10)}"),
            ("Is the apheresis day billed separately?",
             f"{rng.choice(['No', 'Yes'])}. CPT 38225 {rng.choice(['is bundled into', 'is reported separately from'])} {hcpcs} "
             f"for {payer['name']} members. {_sentence(rng, 12)}"),
            (f"What NDC is reported with {hcpcs}?",
             f"Report the carton NDC {_ndc(rng, labeler)} in the 11-digit format with the N4 qualifier. {_sentence(rng, 10)}")]
    for q, a in rng.sample(faqs, rng.randint(3, 5)):
        out += [q, "", a, ""]
    out += ["Reviews, Revisions, and Approvals\tDate\tP&T Approval Date"]
    for _ in range(rng.randint(4, 10)):
        ya, ma, da = _date(rng, y, 2026)
        change = rng.choice(['Annual review', '2Q annual review', 'Template changes applied', 'Updated HCPCS codes',
                             'References reviewed and updated'])
        out.append(f"{change}: "
                   f"{_sentence(rng, rng.randint(8, 18))}\t{ma:02d}.{da:02d}.{ya % 100:02d}\t{ma:02d}.{ya % 100:02d}")
    out += ["", "Important Reminder", ""]
    for _ in range(rng.randint(4, 9)):
        out += [" ".join(_sentence(rng, rng.randint(14, 28)) for _ in range(rng.randint(3, 6))), ""]
    body = "\n".join(out) + "\n"
    head = yaml.safe_dump(front, sort_keys=False, allow_unicode=True, width=1000)
    return doc_id, f"---\n{head}---\n{body}"


def write_corpus(out: Path, docs: int, seed: int = 1, include_real: bool = True) -> dict:
    """Write `docs` synthetic documents (plus the real ones) and reference data under `out`."""
    out = Path(out)
    (out / "documents").mkdir(parents=True, exist_ok=True)
    ref = out / "reference"
    if ref.exists():
        shutil.rmtree(ref)
    shutil.copytree(REAL_SOURCES / "reference", ref)
    payers = payer_list(n_payers_for(docs), seed)
    table = yaml.safe_load((ref / "payers.yaml").read_text(encoding="utf-8"))
    table["payers"] = list(table.get("payers", [])) + payers
    (ref / "payers.yaml").write_text(
        "# sources/reference/payers.yaml plus synthetic payers (benchmarks/synth_corpus.py)\n"
        + yaml.safe_dump(table, sort_keys=False, allow_unicode=True), encoding="utf-8")
    if include_real:
        for path in sorted((REAL_SOURCES / "documents").glob("*.md")):
            shutil.copy2(path, out / "documents" / path.name)
    ids = []
    for i in range(docs):
        doc_id, text = make_document(i, seed, payers)
        (out / "documents" / f"{doc_id}.md").write_text(text, encoding="utf-8")
        ids.append(doc_id)
    return {"documents": ids, "payers": [p["id"] for p in payers]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="sources directory to write")
    parser.add_argument("--docs", type=int, required=True, help="number of synthetic documents")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-real", action="store_true", help="leave out the 5 real documents")
    args = parser.parse_args(argv)
    info = write_corpus(args.out, args.docs, args.seed, include_real=not args.no_real)
    print(f"wrote {len(info['documents'])} synthetic documents ({len(info['payers'])} synthetic payers)"
          f"{' plus the 5 real ones' if not args.no_real else ''} to {args.out}")


if __name__ == "__main__":
    main()
