"""Per-lesion measurement on any mask: SUV statistics, SUVpeak variants, MTV, TLG, diameters.

Entry point: :func:`measure_lesions` (returns a lazy :class:`LesionTable`: one
:class:`LesionMeasurement` per lesion, or the results as tables with
:meth:`LesionTable.table` / :meth:`LesionTable.to_pandas`, ``properties=`` as in
scikit-image's ``regionprops_table``). Building blocks
for other modules: :func:`intensity_peak`, :func:`sphere_kernel`, :func:`sphere_weights`,
:func:`axial_diameters`, :func:`max_3d_diameter_mm`, :func:`extent_mm` (diameters in the
:class:`DiameterConvention` chosen; default ``"edge"``, see :mod:`emlesion.measure.shape`).
Site readouts (:mod:`emlesion.measure.site`): :func:`measure_pet_site` (SUVmax, SUVpeak,
SULpeak in any VOI) and :func:`measure_ct_site` (CT LD, SA, volume, HU of a CT mass).
Whole-body burden (:mod:`emlesion.measure.burden`): :func:`whole_body_burden` (total MTV and
TLG, lesion count, Dmax, SDmax, with the threshold rule).
"""

from __future__ import annotations

from emlesion.measure.burden import (
    BURDEN_COLUMNS,
    DMAX_DEFINITION,
    WholeBodyBurden,
    whole_body_burden,
)
from emlesion.measure.lesions import (
    LesionMeasurement,
    LesionTable,
    check_same_frame_of_reference,
    is_lean_body_units,
    measure_lesions,
)
from emlesion.measure.peak import (
    PEAK_RADIUS_1ML_MM,
    PEAK_RADIUS_1P2CM_MM,
    PeakResult,
    PeakVariant,
    intensity_peak,
    sphere_kernel,
    sphere_weights,
)
from emlesion.measure.shape import (
    AxialDiameters,
    DiameterConvention,
    axial_diameters,
    extent_mm,
    max_3d_diameter_mm,
)
from emlesion.measure.site import (
    MIN_FRAGMENT_ML,
    CtSiteReadout,
    PetSiteReadout,
    measure_ct_site,
    measure_pet_site,
)

__all__ = [
    "BURDEN_COLUMNS",
    "DMAX_DEFINITION",
    "MIN_FRAGMENT_ML",
    "PEAK_RADIUS_1ML_MM",
    "PEAK_RADIUS_1P2CM_MM",
    "AxialDiameters",
    "CtSiteReadout",
    "DiameterConvention",
    "LesionMeasurement",
    "LesionTable",
    "PeakResult",
    "PeakVariant",
    "PetSiteReadout",
    "WholeBodyBurden",
    "axial_diameters",
    "check_same_frame_of_reference",
    "extent_mm",
    "intensity_peak",
    "is_lean_body_units",
    "max_3d_diameter_mm",
    "measure_ct_site",
    "measure_lesions",
    "measure_pet_site",
    "sphere_kernel",
    "sphere_weights",
    "whole_body_burden",
]
