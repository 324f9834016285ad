"""Whole-body tumour burden of one timepoint: total MTV, total TLG, lesion count, Dmax, SDmax.

Baseline total metabolic tumour volume (TMTV) and the spread of the disease (Dmax, the
distance between the two lesions farthest apart, and SDmax, Dmax normalised by body surface
area) are the prognostic PET markers of diffuse large B-cell lymphoma [1]_ [2]_ [3]_ and of
CAR T-cell therapy (TMTV > 80 mL [4]_; MTV > 147.5 mL [5]_). They are only as good as the
segmentation rule they sum, so every value carries the rule that delineated the lesions
(41 % of each lesion's SUVmax is the rule of the lymphoma studies [6]_).

Definitions used here (:func:`whole_body_burden`):

* ``tmtv_ml`` = sum of the lesions' MTV (mL); ``tlg_total`` = sum of MTV x SUVmean (the
  lesions' TLG, in SUV·mL);
* ``dmax_mm``: the largest Euclidean distance between the centroids of two lesions (LPS,
  mm), as in Cottereau et al. [1]_ (centroid to centroid, all lesion pairs); ``None`` with
  fewer than two lesions;
* ``sdmax_per_m`` = Dmax (m) / body surface area (m², DuBois) [2]_ [3]_, in m⁻¹; ``None``
  without Dmax or without PatientWeight and PatientSize.

References
----------
.. [1] Cottereau AS, Nioche C, Dirand AS et al. 18F-FDG PET dissemination features in
   diffuse large B-cell lymphoma are predictive of outcome. J Nucl Med 2020;61:40-45.
.. [2] Cottereau AS, Meignan M, Nioche C et al. Risk stratification in diffuse large B-cell
   lymphoma using lesion dissemination and metabolic tumor burden calculated from baseline
   PET/CT. Ann Oncol 2021;32:404-11 (SDmax = Dmax / BSA).
.. [3] Cottereau AS, Meignan M, Nioche C et al. New approaches in characterization of
   lesions dissemination in DLBCL patients on baseline PET/CT. Cancers 2021;13:3998.
.. [4] Vercellino L, Di Blasi R, Kanoun S et al. Predictive factors of early progression
   after CAR T-cell therapy in relapsed/refractory diffuse large B-cell lymphoma. Blood Adv
   2020;4:5607-15.
.. [5] Dean EA, Mhaskar RS, Lu H et al. High metabolic tumor volume is associated with
   decreased efficacy of axicabtagene ciloleucel in large B-cell lymphoma. Blood Adv
   2020;4:3268-76.
.. [6] Barrington SF, Meignan M. Time to prepare for risk adaptation in lymphoma by
   standardizing measurement of metabolic tumor burden. J Nucl Med 2019;60:1096-102.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from emlesion.errors import InvalidParameterError, format_message
from emlesion.measure.lesions import LesionMeasurement
from emlesion.provenance import jsonable
from emlesion.suv.bodysize import bsa_dubois_m2

__all__ = [
    "BURDEN_COLUMNS",
    "DMAX_DEFINITION",
    "WholeBodyBurden",
    "whole_body_burden",
]

#: How Dmax is measured (reported beside the value).
DMAX_DEFINITION = ("largest Euclidean distance between two lesion centroids (LPS, mm); "
                   "Cottereau et al. J Nucl Med 2020;61:40-45")


@dataclass(frozen=True)
class WholeBodyBurden:
    """Whole-body tumour burden of one timepoint (see :mod:`emlesion.measure.burden`).

    Parameters
    ----------
    n_lesions : int
        Lesions counted (MTV > 0).
    tmtv_ml : float
        Total metabolic tumour volume (mL).
    tlg_total : float
        Total lesion glycolysis (sum of MTV x SUVmean, SUV·mL).
    dmax_mm : float or None
        Largest centroid-to-centroid distance between two lesions (mm).
    sdmax_per_m : float or None
        Dmax in m divided by the body surface area in m² (m⁻¹).
    bsa_m2 : float or None
        DuBois body surface area from PatientWeight and PatientSize.
    threshold_rule : str
        The rule that delineated the lesions (e.g. ``"41%max"``, ``"mask"``).
    suv_units : str
        Quantity of the SUVmean in the TLG (e.g. ``"SUVbw"``).
    """

    n_lesions: int
    tmtv_ml: float
    tlg_total: float
    dmax_mm: float | None
    sdmax_per_m: float | None
    bsa_m2: float | None
    threshold_rule: str
    suv_units: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict (the ``burden`` object of report.json), with the definitions."""
        return {
            "n_lesions": self.n_lesions,
            "tmtv_ml": jsonable(self.tmtv_ml),
            "tlg_total": jsonable(self.tlg_total),
            "dmax_mm": jsonable(self.dmax_mm),
            "sdmax_per_m": jsonable(self.sdmax_per_m),
            "bsa_m2": jsonable(self.bsa_m2),
            "threshold_rule": self.threshold_rule,
            "suv_units": self.suv_units,
            "dmax_definition": DMAX_DEFINITION,
            "sdmax_definition": "Dmax (m) / DuBois BSA (m2); Cottereau et al. Ann Oncol "
                                "2021;32:404-11",
        }

    def row(self) -> dict[str, Any]:
        """Flat row for ``burden.csv`` (no definitions)."""
        d = self.to_dict()
        return {k: d[k] for k in BURDEN_COLUMNS if k in d}


#: Columns of the per-timepoint burden (``burden.csv`` adds ``timepoint`` and ``date``).
BURDEN_COLUMNS: tuple[str, ...] = ("n_lesions", "tmtv_ml", "tlg_total", "dmax_mm",
                                   "sdmax_per_m", "bsa_m2", "threshold_rule", "suv_units")


def whole_body_burden(
    lesions: Sequence[LesionMeasurement],
    *,
    threshold_rule: str,
    weight_kg: float | None = None,
    height_m: float | None = None,
) -> WholeBodyBurden:
    """Total MTV and TLG, lesion count, Dmax and SDmax of one timepoint's lesions.

    Parameters
    ----------
    lesions : sequence of LesionMeasurement
        The timepoint's lesions (e.g. ``list(timepoint.measurements)``).
    threshold_rule : str
        The rule that delineated them (reported with every value).
    weight_kg, height_m : float, optional
        PatientWeight and PatientSize, for the BSA of SDmax.

    Returns
    -------
    WholeBodyBurden

    Raises
    ------
    InvalidParameterError
        A lesion with MTV > 0 has no centroid (Dmax needs it).

    Examples
    --------
    Three lesions at (0, 0, 0), (300, 0, 0) and (0, 400, 0) mm: Dmax = 500 mm (3-4-5
    triangle); 70 kg, 1.75 m: BSA 1.8481 m², SDmax = 0.5 / 1.8481 = 0.2705 m⁻¹.

    >>> from emlesion.measure.lesions import LesionMeasurement
    >>> les = [LesionMeasurement(i + 1, f"L{i + 1}", "SUVbw", 10, 8.0, 4.0, 1.0, 2.0, 8.0,
    ...                          centroid_mm=c)
    ...        for i, c in enumerate([(0.0, 0.0, 0.0), (300.0, 0.0, 0.0), (0.0, 400.0, 0.0)])]
    >>> b = whole_body_burden(les, threshold_rule="41%max", weight_kg=70, height_m=1.75)
    >>> b.n_lesions, b.tmtv_ml, b.tlg_total, b.dmax_mm, round(b.sdmax_per_m, 4)
    (3, 6.0, 24.0, 500.0, 0.2705)
    """
    kept = [m for m in lesions if m.mtv_ml > 0]
    units = kept[0].suv_units if kept else ""
    tmtv = float(sum(m.mtv_ml for m in kept))
    tlg = float(sum(m.tlg for m in kept))
    dmax: float | None = None
    if len(kept) >= 2:
        missing = [m.name for m in kept if m.centroid_mm is None]
        if missing:
            raise InvalidParameterError(format_message(
                f"lesions {missing} have no centroid: Dmax cannot be computed",
                fix="measure the lesions with emlesion.measure.measure_lesions"))
        pts = np.asarray([m.centroid_mm for m in kept], dtype=float)
        diff = pts[:, None, :] - pts[None, :, :]
        dmax = float(np.sqrt((diff ** 2).sum(axis=-1)).max())
    bsa: float | None = None
    if (weight_kg is not None and height_m is not None and math.isfinite(weight_kg)
            and math.isfinite(height_m) and weight_kg > 0 and height_m > 0):
        bsa = bsa_dubois_m2(float(weight_kg), float(height_m))
    sdmax = dmax / 1000.0 / bsa if (dmax is not None and bsa) else None
    return WholeBodyBurden(len(kept), tmtv, tlg, dmax, sdmax, bsa, str(threshold_rule), units)
