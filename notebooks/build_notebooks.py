"""Writes notebooks/walkthrough.ipynb (outputs cleared). Run from the repository root:
``python notebooks/build_walkthrough.py``. Edit the cells here, not in the .ipynb."""
import nbformat as nbf

nb = nbf.v4.new_notebook()
md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell
cells = [
md("""# emlesion walkthrough: three FDG PET/CT timepoints after CAR-T

This notebook follows one patient through the whole chain, using only emlesion's public API:
**load → SUV → anatomy → segment → measure → track → respond → plot**.

The data is the bundled synthetic study in `sample_scans/`. It shows extramedullary relapse of B-ALL,
with a right retroperitoneal mass and a left pelvic-wall mass, at baseline, one month and three
months after CAR-T. The truth is in `sample_scans/truth.json`. Run the notebook from the repository root
or from `notebooks/`."""),
code("""import json
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless (CI); figures still show inline in Jupyter
import matplotlib.pyplot as plt
import numpy as np

import emlesion
import emlesion.io as eio
from emlesion.report import tracks_array
from emlesion.anatomy import segment_anatomy
from emlesion.measure import measure_lesions
from emlesion.segment import segment_lesions
from emlesion.suv import compute_suv, compute_suv_factors

ROOT = Path.cwd() if (Path.cwd() / "sample_scans").is_dir() else Path.cwd().parent
SAMPLE = ROOT / "sample_scans"
truth = json.loads((SAMPLE / "truth.json").read_text())
print("emlesion", emlesion.__version__, "| sample:", SAMPLE)"""),
md("""## 1. Discover and load

`discover` reads headers only. It lists every series with its role: the PET, the CT, and the CT localizer, which is kept apart."""),
code("""for s in eio.discover(SAMPLE / "baseline"):
    print(f"{s.role.value:13s} {s.modality:3s} {s.n_instances:4d} files  {s.manufacturer:22s} {s.series_description}")

pet = eio.load_pet(SAMPLE / "baseline")
ct = eio.load_ct(SAMPLE / "baseline")
pet, ct"""),
md("""## 2. SUV, with its provenance

The factor depends on the vendor convention. Each result records the rule that fired and the inputs it used."""),
code("""factors = compute_suv_factors(pet, normalization="bw")
print(factors)
suv = compute_suv(pet, normalization="bw")
sul = compute_suv(pet, normalization="sul-janmahasatian")   # PERCIST SUL (lean body mass)
print(suv.units, suv.provenance[-1].rule)"""),
md("""## 3. Anatomy from CT (and PET)

The landmarks, the physiological hot spots that are not tumour, and the PERCIST liver reference (a 3 cm sphere in the right lobe)."""),
code("""anatomy = segment_anatomy(ct, suv)
print(anatomy)
liver = anatomy.liver_reference.reference_stats(suv)
print(f"liver SUVbw mean {liver.mean:.2f} ± {liver.sd:.2f} (truth {truth['timepoints']['baseline']['liver_reference']['suv_mean']:.2f})")"""),
md("""## 4. Segment and measure

The default method is 41 % of each lesion's SUVmax. Its candidates are seeded by the PERCIST liver threshold, and bladder and kidney uptake are excluded. Every lesion gets a region and a side."""),
code("""seg = segment_lesions(suv, anatomy=anatomy)
for lesion in seg.lesions:
    print(lesion.label, lesion.name, lesion.assignment.region.value, lesion.assignment.side.value)

table = measure_lesions(suv, seg.labels, ct=ct, sul=sul)
cols = table.columns
for i, name in enumerate(cols["name"]):
    print(f"{name:28s} MTV {cols['mtv_ml'][i]:6.1f} mL  SUVmax {cols['suv_max'][i]:5.2f}  "
          f"SUVpeak {cols['suv_peak_global'][i]:5.2f}  SULpeak {cols['sul_peak'][i]:5.2f}  TLG {cols['tlg'][i]:6.1f} g")
print()
for les in truth["timepoints"]["baseline"]["lesions"]:
    print(f"truth: {les['name']:24s} MTV {les['volume_ml']:6.1f} mL  SUVmax {les['suv_max']:5.2f}")"""),
md("""## 5. The longitudinal study: track and respond

`load_study` runs the same chain for every timepoint. It registers each follow-up CT to the baseline CT, matches lesions by optimal assignment, and gives every follow-up a category for each criterion, with its reasons."""),
code("""with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    study = emlesion.load_study({tp: SAMPLE / tp for tp in ("baseline", "month1", "month3")})
print(study)
for track in tracks_array(study):  # the report.json tracks: states and site readouts
    sites = ", ".join(f"{tp}: {s['state']}" + (f", CT LD {s['ct']['ld_mm']:.1f} mm"
                                               if s["ct"] and s["ct"]["found"] else "")
                      for tp, s in track["sites"].items())
    print(track["id"], track["states"], "|", sites)"""),
code("""assessments = study.assess()
for a in assessments:
    print(f"{a.timepoint:7s} {a.criterion.value:11s} {a.category.value:4s} rule {a.rule}")
print()
print(assessments[0])  # one assessment in full: numbers, thresholds and reasons
for tp, expected in truth["expected_response"].items():
    print(f"truth: {tp} PERCIST {expected['percist']['category']} ({expected['percist']['reason']})")"""),
md("""## 6. Plot: coronal MIPs and the time course"""),
code("""fig, axes = plt.subplots(1, 3, figsize=(10, 5))
for ax, tp in zip(axes, study.timepoints):
    mip = tp.suv.array.max(axis=1)                       # max over the antero-posterior (y) axis
    sx, _, sz = tp.suv.spacing_mm
    ax.imshow(mip[::-1], cmap="gray_r", vmin=0, vmax=10, aspect=sz / sx)   # head at the top
    ax.set_title(f"{tp.label} (day {tp.days_since_baseline})")
    ax.axis("off")
fig.suptitle("Coronal SUVbw MIPs (patient right on image left)")
plt.show()

# one row per track and timepoint: the site readouts exist at every timepoint, also where
# the threshold no longer segments the lesion (month 3)
rows = study.lesions_rows()
fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
for tid in sorted({r["track_id"] for r in rows if r["track_id"]}):
    pts = [r for r in rows if r["track_id"] == tid]
    days = [r["days_since_baseline"] for r in pts]
    a1.plot(days, [r["site_sul_peak"] for r in pts], "o-", label=tid)
    a2.plot(days, [r["ct_ld_mm"] for r in pts], "o-", label=tid)
    for d, r in zip(days, pts):
        a1.annotate(r["state"], (d, r["site_sul_peak"]), fontsize=7)
a1.set(xlabel="days since baseline", ylabel="site SULpeak")
a2.set(xlabel="days since baseline", ylabel="CT longest diameter (mm)")
a1.legend(); plt.tight_layout(); plt.show()"""),
md("""## 7. Reports

The `emlesion response` command writes the same results to `report.json`, `lesions.csv`, `report.html` and DICOM SEG + SR. From Python:"""),
code("""import tempfile

from emlesion.report import write_dicom_outputs, write_html_report

out = Path(tempfile.mkdtemp(prefix="emlesion-notebook-"))
html = write_html_report(study, assessments, out / "report.html", deidentify=True)
dicom = write_dicom_outputs(study, out / "dicom", assessments=assessments)
print(html, f"{html.stat().st_size / 1e3:.0f} kB")
print(*[p.name for p in dicom], sep="\\n")"""),
]
nb["cells"] = cells
nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb["metadata"]["language_info"] = {"name": "python"}
nbf.write(nb, "notebooks/walkthrough.ipynb")
