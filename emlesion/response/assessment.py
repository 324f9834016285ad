"""The :class:`Assessment` result object, criterion and category enums.

An :class:`Assessment` explains itself: the category, the rule that fired (a short
dotted id such as ``"PERCIST.PMR.sul_decrease"``), human sentences with the numbers
(``reasons``), the values compared (``numbers``), the thresholds used
(``thresholds``), the engine parameters and any comparability warnings.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from emlesion.errors import ResponseError, ResponseWarning, format_message
from emlesion.provenance import ProvenanceStep, jsonable

__all__ = [
    "Assessment",
    "Category",
    "Criterion",
    "EortcCategory",
    "LuganoCtCategory",
    "LuganoPetCategory",
    "LyricCategory",
    "PercistCategory",
    "RecistCategory",
    "ResponseWarning",
]


class Criterion(str, enum.Enum):
    """Response criteria implemented by :mod:`emlesion.response`."""

    PERCIST = "percist"
    EORTC = "eortc"
    RECIST = "recist"
    LUGANO_PET = "lugano_pet"
    LUGANO_CT = "lugano_ct"
    LYRIC = "lyric"

    @classmethod
    def coerce(cls, value: str | Criterion) -> Criterion:
        """Accept an enum member, its value or its name, case-insensitively."""
        if isinstance(value, cls):
            return value
        text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
        for member in cls:
            if text in (member.value, member.name.lower()):
                return member
        raise ResponseError(
            format_message(f"unknown response criterion {value!r}",
                           fix="use one of " + ", ".join(m.value for m in cls))
        )

    @property
    def full_name(self) -> str:
        """Citation-style name, e.g. ``"PERCIST 1.0"``."""
        return _TITLES[self]


_TITLES = {
    Criterion.PERCIST: "PERCIST 1.0",
    Criterion.EORTC: "EORTC 1999",
    Criterion.RECIST: "RECIST 1.1",
    Criterion.LUGANO_PET: "Lugano 2014 (PET-based)",
    Criterion.LUGANO_CT: "Lugano 2014 (CT-based)",
    Criterion.LYRIC: "LYRIC (Cheson 2016)",
}


class _CategoryMixin:
    """Long names for the category abbreviations."""

    value: str

    @property
    def description(self) -> str:
        return _DESCRIPTIONS[self.value]


_DESCRIPTIONS = {
    "CMR": "complete metabolic response",
    "PMR": "partial metabolic response",
    "SMD": "stable metabolic disease",
    "PMD": "progressive metabolic disease",
    "NMR": "no metabolic response",
    "CR": "complete response",
    "PR": "partial response",
    "SD": "stable disease",
    "PD": "progressive disease",
    "NE": "not evaluable",
    "IR1": "indeterminate response 1 (SPD up by >= 50 % in the first 12 weeks)",
    "IR2": "indeterminate response 2 (new lesion or lesion growth, SPD up by < 50 %)",
    "IR3": "indeterminate response 3 (FDG uptake up without size progression)",
}


class PercistCategory(_CategoryMixin, str, enum.Enum):
    """PERCIST 1.0 categories."""

    CMR = "CMR"
    PMR = "PMR"
    SMD = "SMD"
    PMD = "PMD"
    NE = "NE"


class EortcCategory(_CategoryMixin, str, enum.Enum):
    """EORTC 1999 PET categories."""

    CMR = "CMR"
    PMR = "PMR"
    SMD = "SMD"
    PMD = "PMD"
    NE = "NE"


class RecistCategory(_CategoryMixin, str, enum.Enum):
    """RECIST 1.1 overall response categories."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"


class LuganoPetCategory(_CategoryMixin, str, enum.Enum):
    """Lugano 2014 PET-based categories (NMR = no metabolic response, i.e. stable)."""

    CMR = "CMR"
    PMR = "PMR"
    NMR = "NMR"
    PMD = "PMD"
    NE = "NE"


class LuganoCtCategory(_CategoryMixin, str, enum.Enum):
    """Lugano 2014 CT-based categories."""

    CR = "CR"
    PR = "PR"
    SD = "SD"
    PD = "PD"
    NE = "NE"


class LyricCategory(_CategoryMixin, str, enum.Enum):
    """LYRIC (Cheson 2016) categories.

    The Lugano 2014 calls, PET-based and CT-based merged into one anatomical vocabulary
    (CMR -> CR, PMR -> PR, NMR -> SD, PMD -> PD), plus the three indeterminate responses
    that LYRIC assigns instead of a first, unconfirmed progression (see
    :func:`emlesion.response.assess_lyric`).
    """

    CR = "CR"
    PR = "PR"
    SD = "SD"
    IR1 = "IR1"
    IR2 = "IR2"
    IR3 = "IR3"
    PD = "PD"
    NE = "NE"


Category = (PercistCategory | EortcCategory | RecistCategory | LuganoPetCategory
            | LuganoCtCategory | LyricCategory)

_CATEGORY_ENUM: dict[Criterion, type[enum.Enum]] = {
    Criterion.PERCIST: PercistCategory,
    Criterion.EORTC: EortcCategory,
    Criterion.RECIST: RecistCategory,
    Criterion.LUGANO_PET: LuganoPetCategory,
    Criterion.LUGANO_CT: LuganoCtCategory,
    Criterion.LYRIC: LyricCategory,
}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


@dataclass(frozen=True, repr=False)
class Assessment:
    """A response call for one follow-up timepoint under one criterion.

    Parameters
    ----------
    criterion : Criterion
        The criterion applied.
    timepoint : str
        Label of the follow-up timepoint assessed.
    baseline : str
        Label of the baseline timepoint (reference for response).
    category : Category
        The call; the enum of the criterion (NE = not evaluable).
    rule : str
        Short id of the rule that fired, e.g. ``"RECIST.PD.sum_increase"``.
    reasons : tuple of str
        Sentences explaining the call, with the numbers.
    numbers : Mapping[str, Any]
        The values compared (units in the key names), percent and absolute changes.
    thresholds : Mapping[str, Any]
        The thresholds applied.
    nadir : str, optional
        Label of the timepoint used as progression reference when it is not the
        baseline (RECIST nadir, PERCIST ``progression_reference="nadir"``).
    warnings : tuple of str
        Comparability problems and lesions the criterion could not use.
    parameters : Mapping[str, Any]
        The engine options in force (so that the call can be reproduced).
    provenance : tuple of ProvenanceStep
        One step naming the engine, the rule and the warnings.
    """

    criterion: Criterion
    timepoint: str
    baseline: str
    category: Category
    rule: str
    reasons: tuple[str, ...] = ()
    numbers: Mapping[str, Any] = field(default_factory=dict)
    thresholds: Mapping[str, Any] = field(default_factory=dict)
    nadir: str | None = None
    warnings: tuple[str, ...] = ()
    parameters: Mapping[str, Any] = field(default_factory=dict)
    provenance: tuple[ProvenanceStep, ...] = ()

    def __post_init__(self) -> None:
        criterion = Criterion.coerce(self.criterion)
        object.__setattr__(self, "criterion", criterion)
        enum_cls = _CATEGORY_ENUM[criterion]
        if not isinstance(self.category, enum_cls):
            raise ResponseError(
                format_message(f"category {self.category!r} is not a {enum_cls.__name__}")
            )
        object.__setattr__(self, "reasons", tuple(self.reasons))
        object.__setattr__(self, "warnings", tuple(self.warnings))
        object.__setattr__(self, "provenance", tuple(self.provenance))
        for name in ("numbers", "thresholds", "parameters"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    __hash__ = None  # type: ignore[assignment]  # mappings inside: not hashable

    @property
    def evaluable(self) -> bool:
        """False when the category is NE."""
        return self.category.value != "NE"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-serialisable dict."""
        return {
            "criterion": self.criterion.value,
            "criterion_name": self.criterion.full_name,
            "timepoint": self.timepoint,
            "baseline": self.baseline,
            "nadir": self.nadir,
            "category": self.category.value,
            "category_description": self.category.description,
            "rule": self.rule,
            "reasons": list(self.reasons),
            "numbers": jsonable(dict(self.numbers)),
            "thresholds": jsonable(dict(self.thresholds)),
            "warnings": list(self.warnings),
            "parameters": jsonable(dict(self.parameters)),
            "provenance": [step.to_dict() for step in self.provenance],
        }

    def __str__(self) -> str:
        ref = f" vs {self.baseline}"
        if self.nadir and self.nadir != self.baseline:
            ref += f" (nadir {self.nadir})"
        lines = [
            f"{self.criterion.full_name} {self.timepoint}{ref}: {self.category.value} "
            f"({self.category.description}) [rule {self.rule}]"
        ]
        lines += [f"  - {r}" for r in self.reasons]
        lines += [f"  ! {w}" for w in self.warnings]
        return "\n".join(lines)

    def __repr__(self) -> str:
        nums = ", ".join(
            f"{k}={_fmt(v)}" for k, v in self.numbers.items() if isinstance(v, (int, float))
        )
        extra = f", {len(self.warnings)} warning(s)" if self.warnings else ""
        return (
            f"Assessment({self.criterion.value} {self.timepoint}: {self.category.value}, "
            f"rule={self.rule}{', ' + nums if nums else ''}{extra})"
        )
