"""emlesion: PET/CT DICOM studies to lesion measurements and treatment-response calls.

Data flows one way: :mod:`emlesion.io` -> :mod:`emlesion.suv` ->
:mod:`emlesion.anatomy` / :mod:`emlesion.segment` -> :mod:`emlesion.measure` ->
:mod:`emlesion.track` -> :mod:`emlesion.response` -> :mod:`emlesion.report`, composed
for longitudinal studies by :mod:`emlesion.study`.

The most used entry points are available at the top level and imported lazily, so that
``import emlesion`` stays fast:

>>> import emlesion
>>> emlesion.load_study  # doctest: +ELLIPSIS
<function load_study at ...>
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from emlesion._version import __version__

#: Top-level name -> module that defines it.
_LAZY: dict[str, str] = {
    "load_pet": "emlesion.io",
    "load_ct": "emlesion.io",
    "load_mask": "emlesion.io",
    "discover": "emlesion.io",
    "Volume": "emlesion.io",
    "LabelMap": "emlesion.io",
    "compute_suv": "emlesion.suv",
    "measure_lesions": "emlesion.measure",
    "segment_lesions": "emlesion.segment",
    "segment_anatomy": "emlesion.anatomy",
    "track_lesions": "emlesion.track",
    "assess_all": "emlesion.response",
    "load_study": "emlesion.study",
    "load_timepoint": "emlesion.study",
    "Study": "emlesion.study",
    "Timepoint": "emlesion.study",
}

__all__ = [
    "LabelMap",
    "Study",
    "Timepoint",
    "Volume",
    "__version__",
    "assess_all",
    "compute_suv",
    "discover",
    "load_ct",
    "load_mask",
    "load_pet",
    "load_study",
    "load_timepoint",
    "measure_lesions",
    "segment_anatomy",
    "segment_lesions",
    "track_lesions",
]

if TYPE_CHECKING:  # pragma: no cover
    from emlesion.anatomy import segment_anatomy
    from emlesion.io import LabelMap, Volume, discover, load_ct, load_mask, load_pet
    from emlesion.measure import measure_lesions
    from emlesion.response import assess_all
    from emlesion.segment import segment_lesions
    from emlesion.study import Study, Timepoint, load_study, load_timepoint
    from emlesion.suv import compute_suv
    from emlesion.track import track_lesions


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'emlesion' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
