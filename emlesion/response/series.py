"""Assess every follow-up of a longitudinal study under several criteria."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import Any

from emlesion.errors import InconsistentStudyError, format_message

from .assessment import Assessment, Criterion
from .eortc import assess_eortc
from .lugano import assess_lugano_ct, assess_lugano_pet
from .lyric import assess_lyric
from .observations import TimepointObservation
from .percist import assess_percist
from .recist import assess_recist

__all__ = ["DEFAULT_CRITERIA", "assess_all"]

#: Criteria applied by :func:`assess_all` by default ("lugano" means PET- and CT-based; "lyric"
#: is Lugano for immunomodulatory therapy such as CAR-T, Cheson 2016).
DEFAULT_CRITERIA: tuple[str, ...] = ("percist", "eortc", "recist", "lugano", "lyric")


def _expand(criteria: Sequence[str | Criterion]) -> list[Criterion]:
    out: list[Criterion] = []
    for c in criteria:
        if isinstance(c, str) and c.strip().lower() == "lugano":
            members = [Criterion.LUGANO_PET, Criterion.LUGANO_CT]
        else:
            members = [Criterion.coerce(c)]
        out += [m for m in members if m not in out]
    return out


def assess_all(
    timepoints: Sequence[TimepointObservation],
    criteria: Sequence[str | Criterion] = DEFAULT_CRITERIA,
    *,
    options: Mapping[str | Criterion, Mapping[str, Any]] | None = None,
) -> list[Assessment]:
    """Assess every follow-up timepoint against the first (baseline) one.

    For follow-up ``k`` the timepoints ``1 .. k-1`` are passed as ``previous`` to the
    criteria that use a nadir (RECIST, Lugano CT, PERCIST with
    ``progression_reference="nadir"``) and to LYRIC (which also needs the calls at those
    timepoints: is an indeterminate response open?). A timepoint without CT still gets the PET
    criteria; the CT criteria return NE with the reason, and vice versa.

    Parameters
    ----------
    timepoints : sequence of TimepointObservation
        Baseline first, then follow-ups in chronological order (e.g. T0, ~1 month,
        ~3 months after CAR-T).
    criteria : sequence of str or Criterion
        Any of ``"percist"``, ``"eortc"``, ``"recist"``, ``"lugano"`` (both Lugano
        calls), ``"lugano_pet"``, ``"lugano_ct"``, ``"lyric"`` (not in the default).
    options : mapping, optional
        Keyword options per criterion, e.g. ``{"eortc": {"cycles": 1},
        "percist": {"progression_reference": "nadir"},
        "lyric": {"therapy_start": datetime.date(2024, 1, 15)}}``.

    Returns
    -------
    list of Assessment
        Ordered by follow-up, then by criterion in the order requested.

    Raises
    ------
    InconsistentStudyError
        Duplicate timepoint labels, or dates not in chronological order.

    References
    ----------
    .. [1] Domain reference, section 3.7 (how each criterion handles a 3-timepoint series).
    """
    tps = list(timepoints)
    labels = [tp.label for tp in tps]
    if len(set(labels)) != len(labels):
        raise InconsistentStudyError(format_message(
            f"timepoint labels must be unique, got {labels}", fix="label each scan date"))
    for a, b in itertools.pairwise(tps):
        if a.date is not None and b.date is not None and b.date < a.date:
            raise InconsistentStudyError(format_message(
                f"timepoint {b.label} ({b.date}) is dated before {a.label} ({a.date})",
                fix="pass the baseline first and follow-ups in chronological order"))
    wanted = _expand(criteria)
    opts: dict[Criterion, dict[str, Any]] = {}
    for key, value in (options or {}).items():
        for crit in _expand([key]):
            opts[crit] = {**opts.get(crit, {}), **dict(value)}
    out: list[Assessment] = []
    if not tps:
        return out
    baseline = tps[0]
    for k in range(1, len(tps)):
        followup, previous = tps[k], tuple(tps[1:k])
        for crit in wanted:
            kw = opts.get(crit, {})
            if crit is Criterion.PERCIST:
                out.append(assess_percist(baseline, followup, previous=previous, **kw))
            elif crit is Criterion.EORTC:
                out.append(assess_eortc(baseline, followup, **kw))
            elif crit is Criterion.RECIST:
                out.append(assess_recist(baseline, followup, previous=previous, **kw))
            elif crit is Criterion.LUGANO_PET:
                out.append(assess_lugano_pet(baseline, followup, **kw))
            elif crit is Criterion.LUGANO_CT:
                out.append(assess_lugano_ct(baseline, followup, previous=previous, **kw))
            else:
                out.append(assess_lyric(baseline, followup, previous=previous, **kw))
    return out
