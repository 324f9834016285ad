"""Writes the notebooks of this folder, then executes them and stores their outputs.

Run from the repository root (about 5 minutes)::

    python notebooks/build_notebooks.py            # write and execute both notebooks
    python notebooks/build_notebooks.py --no-execute   # write them without outputs

Edit the cells here, not in the .ipynb files. The notebooks are committed WITH their
outputs (small inline PNGs), so that they read well when browsed; tests/test_notebooks.py
executes them again and fails when a cell errors or when a fresh run prints other text
than the committed outputs (stale outputs: run this script and commit the result).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

import nbformat as nbf

HERE = Path(__file__).resolve().parent
md = nbf.v4.new_markdown_cell
code = nbf.v4.new_code_cell

#: Inline figures in the kernel whatever MPLBACKEND says (CI sets MPLBACKEND=Agg, which an
#: IPython kernel would otherwise keep: plt.show() would then draw nothing), at a small
#: resolution so that the committed notebook stays small.
SETUP_PLOTS = """%matplotlib inline
import matplotlib.pyplot as plt

plt.rcParams["figure.dpi"] = 72"""

WALKTHROUGH = [
md("""# emlesion walkthrough: three FDG PET/CT timepoints after CAR-T

This notebook follows one patient through the whole chain, using only emlesion's public API:
**load → SUV → anatomy → segment → measure → track → respond → plot**.

The data is the bundled synthetic study in `sample_scans/`. It shows extramedullary relapse of B-ALL,
with a right retroperitoneal mass and a left pelvic-wall mass, at baseline, one month and three
months after CAR-T. The truth is in `sample_scans/truth.json`. Run the notebook from the repository root
or from `notebooks/`."""),
code(SETUP_PLOTS + """
import json
import warnings
from pathlib import Path

import emlesion
import emlesion.io as eio
from emlesion.anatomy import segment_anatomy
from emlesion.measure import measure_lesions
from emlesion.report import tracks_array
from emlesion.segment import segment_lesions
from emlesion.suv import compute_suv, compute_suv_factors

ROOT = Path.cwd() if (Path.cwd() / "sample_scans").is_dir() else Path.cwd().parent
SAMPLE = ROOT / "sample_scans"
truth = json.loads((SAMPLE / "truth.json").read_text())
print("emlesion", emlesion.__version__, "| sample:", SAMPLE.relative_to(ROOT))"""),
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
md("""Every tracked site is read at every timepoint, through the CT registration to the baseline. A reading
mapped through a registration whose quality check failed is not reliable, and the criteria do not use
it (the follow-up is then NE). The registrations and the month-3 readings, with their reasons:"""),
code("""for label, reg in study.tracking.registrations.items():
    print(label, "->", study.baseline.label, reg.quality)
for track_id, readings in study.sites.items():
    reading = readings["month3"]
    print(f"{track_id} month3: {reading.state.value}, Deauville {reading.deauville}, reliable {reading.reliable}")
    for reason in reading.reasons:
        print("   -", reason)"""),
code("""assessments = study.assess()
for a in assessments:
    print(f"{a.timepoint:7s} {a.criterion.value:11s} {a.category.value:4s} rule {a.rule}")
print()
print(assessments[0])  # one assessment in full: numbers, thresholds and reasons
for tp, expected in truth["expected_response"].items():
    print(f"truth: {tp} PERCIST {expected['percist']['category']} ({expected['percist']['reason']})")"""),
md("""## 6. Plot: coronal MIPs and the time course

The MIPs share one SUV scale. The time course reads every track at its site at every timepoint, so it runs
to month 3 also where the threshold no longer segments a lesion."""),
code("""fig, axes = plt.subplots(1, len(study.timepoints), figsize=(10, 5))
for ax, tp in zip(axes, study.timepoints):
    mip = tp.suv.array.max(axis=1)                       # max over the antero-posterior (y) axis
    sx, _, sz = tp.suv.spacing_mm
    image = ax.imshow(mip[::-1], cmap="gray_r", vmin=0, vmax=10, aspect=sz / sx)   # head at the top
    ax.set_title(f"{tp.label} (day {tp.days_since_baseline})")
    ax.axis("off")
fig.colorbar(image, ax=axes, shrink=0.6, label="SUVbw")
fig.suptitle("Coronal SUVbw MIPs (patient right on image left)")
plt.show()

rows = study.lesions_rows()   # one row per track and timepoint (= lesions.csv)
days = [tp.days_since_baseline for tp in study.timepoints]
fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
for tid in sorted({r["track_id"] for r in rows if r["track_id"]}):
    pts = [r for r in rows if r["track_id"] == tid and r["site_sul_peak"] is not None]
    a1.plot([r["days_since_baseline"] for r in pts], [r["site_sul_peak"] for r in pts], "o-", label=tid)
    for r in pts:
        a1.annotate(r["state"], (r["days_since_baseline"], r["site_sul_peak"]), fontsize=7)
    pts = [r for r in rows if r["track_id"] == tid and r["ct_ld_mm"] is not None]
    a2.plot([r["days_since_baseline"] for r in pts], [r["ct_ld_mm"] for r in pts], "o-", label=tid)
liver = [tp.liver.sul_mean for tp in study.timepoints]
a1.plot(days, liver, "k--", lw=1, label="liver SULmean")
for ax in (a1, a2):
    ax.set_xticks(days)
    ax.set_xlim(-5, days[-1] + 10)
    ax.set_xlabel("days since baseline")
a1.set_ylabel("site SULpeak")
a2.set_ylabel("CT longest diameter (mm)")
a1.legend(fontsize=8)
plt.tight_layout()
plt.show()"""),
md("""## 7. Reports

The `emlesion response` command writes the same results to `report.json`, `lesions.csv`, `report.html` and DICOM SEG + SR.
From Python (here into a temporary folder, removed at the end of the cell):"""),
code("""import tempfile

from emlesion.report import write_dicom_outputs, write_html_report

with tempfile.TemporaryDirectory(prefix="emlesion-notebook-") as tmp:
    out = Path(tmp)
    html = write_html_report(study, assessments, out / "report.html", deidentify=True)
    dicom = write_dicom_outputs(study, out / "dicom", assessments=assessments)
    print(html.relative_to(out))   # its size is left out: it is no result of the study
    print(*sorted(p.name for p in dicom), sep="\\n")"""),
]

YOUR_STUDY = [
md("""# Bring your own study

Point `STUDY` at a folder that holds the PET/CT studies of one patient (DICOM, any layout: one
sub-folder per timepoint or everything in one folder). emlesion finds the attenuation-corrected
PET and its CT in every study, orders the studies by date (the first is the baseline), and gives
the lesion table, the figures and the response calls.

It runs as is on the bundled synthetic study, `sample_scans/`."""),
code(SETUP_PLOTS + """
import warnings
from pathlib import Path

import emlesion

ROOT = Path.cwd() if (Path.cwd() / "sample_scans").is_dir() else Path.cwd().parent
STUDY = ROOT / "sample_scans"   # <- your folder
LABELS = None                   # e.g. ["baseline", "month1", "month3"]; default baseline, followup1, ...
OUT = None                      # e.g. Path("out"): also write report.json, lesions.csv, report.html, dicom/

for s in emlesion.discover(STUDY):
    print(f"{s.study_date}  {s.role.value:13s} {s.n_instances:4d} files  {s.manufacturer}")"""),
code("""with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    study = emlesion.load_study(STUDY, labels=LABELS)
print(study)
for w in caught[:5]:   # tolerated deviations (also recorded in each result's provenance)
    print(f"  {w.category.__name__}: {w.message}")
print(f"{len(caught)} warning(s) while loading")"""),
md("""## The lesion table

One row per tracked lesion and timepoint (the columns of `lesions.csv`). `state` says whether a lesion was
segmented there or only its former site was read."""),
code("""lesions = study.lesions()
lesions[["timepoint", "days_since_baseline", "track_id", "state", "name", "mtv_ml", "suv_max",
         "sul_peak", "site_sul_peak", "deauville", "ct_ld_mm", "ct_sa_mm"]].round(2)"""),
md("""## The figures

Coronal SUV maximum-intensity projections on one scale, and each track's site over time."""),
code("""fig, axes = plt.subplots(1, len(study.timepoints), figsize=(3.4 * len(study.timepoints), 5), squeeze=False)
for ax, tp in zip(axes[0], study.timepoints):
    mip = tp.suv.array.max(axis=1)
    sx, _, sz = tp.suv.spacing_mm
    image = ax.imshow(mip[::-1], cmap="gray_r", vmin=0, vmax=10, aspect=sz / sx)
    ax.set_title(f"{tp.label} ({tp.date})")
    ax.axis("off")
fig.colorbar(image, ax=axes, shrink=0.6, label="SUVbw")
plt.show()

fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
for track_id, rows in lesions.groupby("track_id"):
    a1.plot(rows.days_since_baseline, rows.site_sul_peak, "o-", label=track_id)
    a2.plot(rows.days_since_baseline, rows.ct_ld_mm, "o-", label=track_id)
days = [tp.days_since_baseline for tp in study.timepoints]
for ax, ylabel in ((a1, "site SULpeak"), (a2, "CT longest diameter (mm)")):
    ax.set(xticks=days, xlabel="days since baseline", ylabel=ylabel)
a1.legend(fontsize=8)
plt.tight_layout()
plt.show()"""),
md("""## The response calls

One row per follow-up and criterion, with the rule that fired and its reasons (the numbers behind it)."""),
code("""calls = study.assessments()
calls[["timepoint", "criterion", "category", "category_description", "rule"]]"""),
code("""for a in study.assess(criteria=("percist",)):
    print(a, end="\\n\\n")
if OUT is not None:
    from emlesion.report import write_response_outputs
    print(write_response_outputs(study, OUT))"""),
]

NOTEBOOKS: dict[str, list[Any]] = {"walkthrough.ipynb": WALKTHROUGH, "your_study.ipynb": YOUR_STUDY}

#: The kernel's name for a cell's source file in a warning ("/tmp/ipykernel_123/456.py:3:"):
#: it changes at every run, so the committed outputs say ``<cell>`` instead.
_KERNEL_FILE = re.compile(r"(?:[A-Za-z]:)?[^\s\"']*ipykernel_\d+[/\\]\d+\.py")


def build(cells: list[Any]) -> Any:
    """A fresh notebook of ``cells`` (outputs empty)."""
    nb = nbf.v4.new_notebook()
    nb["cells"] = [nbf.from_dict(c) for c in cells]
    for i, cell in enumerate(nb["cells"]):  # stable ids: a rebuild changes only what changed
        cell["id"] = f"cell-{i:02d}"
    nb["metadata"]["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                    "language": "python"}
    nb["metadata"]["language_info"] = {"name": "python"}
    return nb


def execute(nb: Any, cwd: Path, timeout: int = 900) -> Any:
    """Execute ``nb`` in a fresh python3 kernel in ``cwd`` (raises on the first failing cell).

    Cell timings are not recorded and the kernel's temporary file names are replaced by
    ``<cell>`` in the outputs, so that two runs give the same file.
    """
    import nbclient

    nbclient.NotebookClient(nb, timeout=timeout, kernel_name="python3", record_timing=False,
                            resources={"metadata": {"path": str(cwd)}}).execute()
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                out["text"] = _KERNEL_FILE.sub("<cell>", out["text"])
    return nb


def text_outputs(nb: Any) -> list[list[str]]:
    """Per code cell, the text a reader sees: stdout and the ``text/plain`` results.

    What the stale-output check compares. Warnings (stderr) are left out: the kernel flushes
    stdout and stderr separately, so their interleaving depends on timing.
    """
    cells = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        texts = []
        for out in cell.get("outputs", []):
            kind = out.get("output_type")
            if kind == "stream" and out.get("name") == "stdout":
                texts.append(out["text"])
            elif kind in ("execute_result", "display_data") and "text/plain" in out.get("data", {}):
                if "image/png" not in out["data"]:  # a figure's text is "<Figure size ...>"
                    texts.append(out["data"]["text/plain"])
        cells.append("".join(texts).splitlines())
    return cells


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-execute", action="store_true", help="write without outputs")
    parser.add_argument("names", nargs="*", default=list(NOTEBOOKS), help="notebooks to build")
    args = parser.parse_args(argv)
    for name in args.names:
        nb = build(NOTEBOOKS[name])
        if not args.no_execute:
            print(f"executing {name} ...", file=sys.stderr)
            execute(nb, HERE)
        nbf.validate(nb)
        nbf.write(nb, HERE / name)
        print(f"wrote notebooks/{name} ({(HERE / name).stat().st_size / 1e3:.0f} kB)",
              file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
