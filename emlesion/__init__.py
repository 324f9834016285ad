"""emlesion: PET/CT DICOM studies to lesion measurements and treatment-response calls.

Data flows one way: :mod:`emlesion.io` -> :mod:`emlesion.suv` ->
:mod:`emlesion.anatomy` / :mod:`emlesion.segment` -> :mod:`emlesion.measure` ->
:mod:`emlesion.track` -> :mod:`emlesion.response` -> :mod:`emlesion.report`.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
