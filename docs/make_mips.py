"""Save coronal PET maximum-intensity projections of the bundled sample study.

Usage (from the repository root)::

    python docs/make_mips.py [sample_scans] [docs/images]

For each timepoint in ``sample_scans/truth.json`` this loads the PET series with
:func:`emlesion.io.load_pet`, converts it to SUVbw from its own headers with
:func:`emlesion.suv.compute_suv` (each timepoint uses another vendor convention), and
writes ``docs/images/mip_<timepoint>.png``: a coronal MIP in inverted grey scale, SUV
window 0-10, patient's right on the image left (radiological convention), with the
truth lesions marked from ``truth.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from emlesion._atomic import atomic_path  # noqa: E402
from emlesion.io import load_pet  # noqa: E402
from emlesion.suv import compute_suv  # noqa: E402

SUV_WINDOW = (0.0, 10.0)


def save_mip(sample_dir: Path, timepoint: str, truth: dict, out_png: Path) -> None:
    """Write the coronal SUV MIP of one timepoint to ``out_png``."""
    tp = truth["timepoints"][timepoint]
    pet = compute_suv(load_pet(sample_dir / tp["series"]["PT"]["folder"]), normalization="bw")
    suv = np.asarray(pet.array)  # (z, y, x), z caudal to cranial, axial LPS grid
    sx, _sy, sz = pet.grid.spacing_mm
    ox, _oy, oz = pet.grid.origin_mm
    nz, _ny, nx = suv.shape
    mip = suv.max(axis=1)[::-1]  # coronal: rows head (top) to feet, columns patient R -> L
    # extent in LPS mm: x left edge = patient right on the image left (radiological view)
    extent = (ox - sx / 2, ox + (nx - 0.5) * sx, oz - sz / 2, oz + (nz - 0.5) * sz)
    fig, ax = plt.subplots(figsize=(4.6, 5.6), dpi=110)
    im = ax.imshow(
        mip,
        cmap="gray_r",
        vmin=SUV_WINDOW[0],
        vmax=SUV_WINDOW[1],
        extent=extent,
        interpolation="nearest",
    )
    for les in tp["lesions"]:
        if not les["present"]:
            continue
        cx, _cy, cz = les["centroid_mm"]
        ax.annotate(
            f"{les['name']}\nSUVmax {les['suv_max']:.1f}",
            xy=(cx, cz),
            xytext=(cx + (70 if cx > 0 else -70), cz + 45),
            color="tab:red",
            fontsize=6.5,
            ha="center",
            arrowprops={"arrowstyle": "->", "color": "tab:red", "lw": 0.8},
        )
    ax.text(
        0.02, 0.98, "R", transform=ax.transAxes, va="top", ha="left", fontsize=11, weight="bold"
    )
    ax.text(
        0.98, 0.98, "L", transform=ax.transAxes, va="top", ha="right", fontsize=11, weight="bold"
    )
    ax.set_title(
        f"{timepoint}  {tp['study_date']}  ({tp['vendor_convention']})\n"
        "coronal PET MIP, SUVbw 0-10 (synthetic sample)",
        fontsize=8,
    )
    ax.set_xlabel("LPS x (mm): patient right <-> left", fontsize=7)
    ax.set_ylabel("LPS z (mm)", fontsize=7)
    ax.tick_params(labelsize=6)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.03)
    cb.set_label("SUVbw", fontsize=7)
    cb.ax.tick_params(labelsize=6)
    fig.tight_layout()
    with atomic_path(out_png) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def main(argv: list[str]) -> int:
    """Write one MIP per timepoint; returns the exit code."""
    sample_dir = Path(argv[0]) if argv else ROOT / "sample_scans"
    out_dir = Path(argv[1]) if len(argv) > 1 else ROOT / "docs" / "images"
    truth = json.loads((sample_dir / "truth.json").read_text(encoding="utf-8"))
    for timepoint in truth["timepoints"]:
        out = out_dir / f"mip_{timepoint}.png"
        save_mip(sample_dir, timepoint, truth, out)
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
