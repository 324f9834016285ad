"""Response warnings point at the caller's line, not at an emlesion line.

Every engine emits its comparability warnings through ``_common.build``; the warning must be
attributed to the first frame outside the ``emlesion`` package, i.e. this test file and the
line of the call, whether the engine is called directly or through ``assess_all``. The
expected filename is this file (``__file__``) and the expected line is read from the frame
(``sys._getframe().f_lineno``) right before the one-line call.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
import warnings
from collections.abc import Callable

import pytest

from emlesion.errors import external_stacklevel
from emlesion.response import (
    LesionObservation,
    ReferenceUptake,
    ResponseWarning,
    TimepointObservation,
    assess_all,
    assess_eortc,
    assess_lugano_ct,
    assess_lugano_pet,
    assess_percist,
    assess_recist,
)

LIVER = ReferenceUptake(suv_mean=2.0, suv_sd=0.2, suv_max=3.0, sul_mean=1.0, sul_sd=0.1)
BLOOD = ReferenceUptake(suv_mean=1.5, suv_sd=0.2, suv_max=2.0, sul_mean=0.8, sul_sd=0.1)


def _lesion(value: float) -> LesionObservation:
    return LesionObservation("T1", region="lung", suv_max=value, sul_peak=value / 2,
                             ld_mm=value * 4, sa_mm=value * 2)


# follow-up dated before the baseline: every engine warns through check_order
BASE = TimepointObservation("b", dt.date(2024, 2, 1), (_lesion(10.0),), LIVER, BLOOD, 60.0)
FU = TimepointObservation("f", dt.date(2024, 1, 1), (_lesion(8.0),), LIVER, BLOOD, 60.0)
# in order, but without uptake time: PERCIST warns that comparability was not checked
# (assess_all refuses timepoints out of order)
FU_LATER = TimepointObservation("f", dt.date(2024, 3, 1), (_lesion(8.0),), LIVER, BLOOD, None)


def _response_warnings(caught: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    found = [w for w in caught if issubclass(w.category, ResponseWarning)]
    assert found, "the case must emit a ResponseWarning"
    return found


def _same_file(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


ENGINES: list[Callable[..., object]] = [assess_percist, assess_eortc, assess_recist,
                                        assess_lugano_pet, assess_lugano_ct]


@pytest.mark.parametrize("engine", ENGINES, ids=lambda f: f.__name__)
def test_engine_warning_points_at_the_caller(engine: Callable[..., object]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        engine(BASE, FU)
    for w in _response_warnings(caught):
        assert _same_file(w.filename, __file__), (w.filename, str(w.message))
        assert w.lineno == line


def test_assess_all_warning_points_at_the_caller() -> None:
    # assess_all -> engine -> build: two more emlesion frames than a direct call
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        line = sys._getframe().f_lineno + 1
        out = assess_all([BASE, FU_LATER], ["percist", "eortc", "recist", "lugano"])
    assert len(out) == 5  # one follow-up x (PERCIST, EORTC, RECIST, Lugano PET, Lugano CT)
    for w in _response_warnings(caught):
        assert _same_file(w.filename, __file__), (w.filename, str(w.message))
        assert w.lineno == line


def test_external_stacklevel_outside_the_package_is_one() -> None:
    # called from this file (outside emlesion): the caller itself is the user frame
    assert external_stacklevel() == 1
