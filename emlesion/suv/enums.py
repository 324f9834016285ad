"""Closed vocabularies of the SUV engine (DICOM defined terms and emlesion choices).

References
----------
.. [1] DICOM PS3.3 C.8.9.1.1 (Units, SUV Type, Decay Correction).
.. [2] Vácha et al., IBSI SUV manual, https://oncoray.github.io/suv_computation/suv.html.
"""

from __future__ import annotations

from enum import Enum

from emlesion.errors import InvalidAttributeError, format_message

__all__ = [
    "DEFAULT_SUL",
    "DecayCorrection",
    "Normalization",
    "PETUnits",
    "ReferenceTimeMethod",
    "SUVType",
]


class Normalization(str, Enum):
    """Body-size normalisation of the SUV.

    ``lbm-james128`` is the DICOM ``LBMJAMES128`` (James, male coefficient 128),
    ``lbm-morgan`` the DICOM ``LBM`` (Morgan / Sugawara, male coefficient 120),
    ``sul-janmahasatian`` the DICOM ``LBMJANMA``. See :mod:`emlesion.suv.bodysize`.

    Examples
    --------
    >>> Normalization.coerce("sul").quantity
    'SULjanma'
    >>> Normalization("lbm-james128").is_lean_body
    True
    """

    BW = "bw"
    LBM_JAMES128 = "lbm-james128"
    LBM_MORGAN = "lbm-morgan"
    SUL_JANMAHASATIAN = "sul-janmahasatian"
    BSA_DUBOIS = "bsa-dubois"
    IBW = "ibw"

    @property
    def is_lean_body(self) -> bool:
        """True for the lean-body-mass normalisations (SUL, as used by PERCIST)."""
        return self in (Normalization.LBM_JAMES128, Normalization.LBM_MORGAN,
                        Normalization.SUL_JANMAHASATIAN)

    @property
    def quantity(self) -> str:
        """Name of the resulting quantity, used as ``Volume.units`` (e.g. ``"SUVbw"``)."""
        return _QUANTITY[self]

    @property
    def body_size_unit(self) -> str:
        """Unit of the body-size value in the SUV formula: ``"g"`` or ``"cm2"`` (BSA)."""
        return "cm2" if self is Normalization.BSA_DUBOIS else "g"

    @property
    def quantity_unit(self) -> str:
        """Unit of the SUV itself: ``"g/mL"`` or ``"cm2/mL"``."""
        return f"{self.body_size_unit}/mL"

    @classmethod
    def coerce(cls, value: str | Normalization) -> Normalization:
        """Accept an enum member, its value, its quantity name or an alias.

        Aliases: ``"sul"`` and ``"lbm-janmahasatian"`` (Janmahasatian, the default SUL),
        ``"james128"``, ``"bsa"``, ``"suvbw"`` ... (quantity names, case-insensitive).

        Raises
        ------
        InvalidAttributeError
            For an unknown name.
        """
        if isinstance(value, Normalization):
            return value
        key = str(value).strip().lower()
        for member in cls:
            if key in (member.value, member.quantity.lower(), member.name.lower()):
                return member
        if key in _ALIASES:
            return _ALIASES[key]
        names = ", ".join(m.value for m in cls)
        raise InvalidAttributeError(
            format_message(f"unknown SUV normalisation {value!r}", fix=f"use one of {names}")
        )


_QUANTITY = {
    Normalization.BW: "SUVbw",
    Normalization.LBM_JAMES128: "SULjames128",
    Normalization.LBM_MORGAN: "SULmorgan",
    Normalization.SUL_JANMAHASATIAN: "SULjanma",
    Normalization.BSA_DUBOIS: "SUVbsa",
    Normalization.IBW: "SUVibw",
}

_ALIASES = {
    "sul": Normalization.SUL_JANMAHASATIAN,
    "lbm-janmahasatian": Normalization.SUL_JANMAHASATIAN,
    "janmahasatian": Normalization.SUL_JANMAHASATIAN,
    "james128": Normalization.LBM_JAMES128,
    "sul-james128": Normalization.LBM_JAMES128,
    "morgan": Normalization.LBM_MORGAN,
    "bsa": Normalization.BSA_DUBOIS,
    "dubois": Normalization.BSA_DUBOIS,
}

#: SUL formula used when PERCIST asks for "SUL": Janmahasatian (Tahari 2014); James128 is
#: selectable for PERCIST-1.0-faithful reproduction.
DEFAULT_SUL = Normalization.SUL_JANMAHASATIAN


class PETUnits(str, Enum):
    """PET ``Units (0054,1001)`` values the engine converts; any other is rejected."""

    BQML = "BQML"
    CNTS = "CNTS"
    GML = "GML"
    CM2ML = "CM2ML"


class DecayCorrection(str, Enum):
    """``DecayCorrection (0054,1102)`` defined terms."""

    START = "START"
    ADMIN = "ADMIN"
    NONE = "NONE"


class SUVType(str, Enum):
    """``SUVType (0054,1006)`` defined terms (meaningful for Units GML / CM2ML)."""

    BW = "BW"
    BSA = "BSA"
    LBM = "LBM"
    LBMJAMES128 = "LBMJAMES128"
    LBMJANMA = "LBMJANMA"
    IBW = "IBW"

    @property
    def normalization(self) -> Normalization:
        """The emlesion normalisation this SUV type stores."""
        return {
            SUVType.BW: Normalization.BW,
            SUVType.BSA: Normalization.BSA_DUBOIS,
            SUVType.LBM: Normalization.LBM_MORGAN,
            SUVType.LBMJAMES128: Normalization.LBM_JAMES128,
            SUVType.LBMJANMA: Normalization.SUL_JANMAHASATIAN,
            SUVType.IBW: Normalization.IBW,
        }[self]


class ReferenceTimeMethod(str, Enum):
    """How the scan reference time of DecayCorrection START is chosen.

    ``qiba``: the QIBA chain (series time, GE private time, frame back-computation,
    earliest acquisition), the frame-based time being computed too as a cross-check.
    ``frame``: IBSI "option B", always the frame back-computation.
    """

    QIBA = "qiba"
    FRAME = "frame"
