"""Per-lesion measurement on any mask: SUV statistics, SUVpeak variants, MTV, TLG, diameters.

Entry point: :func:`measure_lesions` (returns a lazy :class:`LesionTable`). Building blocks
for other modules: :func:`intensity_peak`, :func:`sphere_kernel`, :func:`sphere_weights`,
:func:`axial_diameters`, :func:`max_3d_diameter_mm`, :func:`extent_mm` (diameters in the
:class:`DiameterConvention` chosen; default ``"edge"``, see :mod:`emlesion.measure.shape`).
"""

from __future__ import annotations

from emlesion.measure.lesions import (
    LesionMeasurement,
    LesionTable,
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

__all__ = [
    "PEAK_RADIUS_1ML_MM",
    "PEAK_RADIUS_1P2CM_MM",
    "AxialDiameters",
    "DiameterConvention",
    "LesionMeasurement",
    "LesionTable",
    "PeakResult",
    "PeakVariant",
    "axial_diameters",
    "extent_mm",
    "intensity_peak",
    "is_lean_body_units",
    "max_3d_diameter_mm",
    "measure_lesions",
    "sphere_kernel",
    "sphere_weights",
]
