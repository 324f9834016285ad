"""The cohort manifest: one CSV row per patient and timepoint, grouped into patient jobs.

A manifest is a UTF-8 CSV file with a header row. Required columns:

``patient_id``
    Identifier of the patient; also the name of the patient's output folder, so it may only
    hold letters, digits, ``.``, ``_`` and ``-`` and may not start with ``.``.
``timepoint``
    Label of the timepoint (``baseline``, ``month1`` ...). The first row of a patient is its
    baseline; the order of the rows of a patient is the order of its timepoints.
``folder``
    Folder holding the PET (and CT) series of that timepoint, or a NIfTI PET
    (``.nii``/``.nii.gz``; declare its quantity with the option ``pet_units`` and/or the
    ``pet_sidecar`` column, as ``emlesion response --pet-units/--pet-sidecars`` do).

Optional columns:

``mask``
    A lesion mask of that timepoint (DICOM SEG, RTSTRUCT or NIfTI) used instead of the
    automatic segmentation.
``organs``
    An organ map of that timepoint (TotalSegmentator multilabel NIfTI, its per-organ
    folder, or a DICOM SEG with organ names; :func:`emlesion.io.organs.load_organ_map`)
    whose organs replace the classical anatomy's, or ``auto`` to run TotalSegmentator.
``ct``
    The CT of that timepoint (a DICOM folder or a NIfTI in HU) when it is not beside the PET,
    e.g. with a NIfTI PET (``emlesion response --cts``).
``pet_sidecar``
    The JSON sidecar of a NIfTI PET (units, weight, dose, times;
    :meth:`emlesion.io.PetDeclaration.from_json`).
any other column
    A per-patient option, passed to the study pipeline (for example ``method`` or
    ``criteria``; see :data:`emlesion.batch.patient.OPTION_NAMES`). An empty cell means "not
    set". A patient's rows must agree on every option they set.

Relative paths are resolved against the folder of the manifest, so a manifest and its data
can be moved together. Paths are *not* checked for existence here: with a remote cluster the
paths are those seen by the workers, and a missing folder is a per-patient failure recorded
in the cohort table.

Examples
--------
>>> import io
>>> text = "patient_id,timepoint,folder\\nP1,baseline,/data/P1/bl\\nP1,month1,/data/P1/m1\\n"
>>> manifest = Manifest.from_text(text, base_dir="/data")
>>> manifest.jobs[0].labels
('baseline', 'month1')
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emlesion.errors import InvalidAttributeError, UnknownKeyError, format_message
from emlesion.io.organs import ORGANS_AUTO

__all__ = [
    "OPTIONAL_COLUMNS",
    "REQUIRED_COLUMNS",
    "Manifest",
    "ManifestError",
    "PatientJob",
    "TimepointSpec",
    "read_manifest",
]

#: Columns every manifest must have.
REQUIRED_COLUMNS: tuple[str, ...] = ("patient_id", "timepoint", "folder")
#: Columns with a fixed meaning that a manifest may have; any other column is an option.
OPTIONAL_COLUMNS: tuple[str, ...] = ("mask", "organs", "ct", "pet_sidecar")

_SAFE_ID = re.compile(r"^[A-Za-z0-9_\-][A-Za-z0-9._\-]*$")


class ManifestError(InvalidAttributeError):
    """A manifest is malformed (missing column, duplicate timepoint, unsafe patient id ...).

    The message names the manifest file and the offending row (row 1 is the header).
    """


@dataclass(frozen=True)
class TimepointSpec:
    """One timepoint of a patient job.

    Parameters
    ----------
    label : str
        Timepoint label, unique within the patient.
    folder : str
        Absolute folder of the PET/CT series.
    mask : str, optional
        Absolute path of a lesion mask, ``None`` for automatic segmentation.
    organs : str, optional
        Absolute path of an organ map, ``"auto"``, or ``None`` (classical anatomy).
    ct : str, optional
        Absolute path of the timepoint's CT (a folder or a NIfTI in HU), ``None`` for the CT
        beside the PET (``emlesion response --cts``).
    pet_sidecar : str, optional
        Absolute path of the JSON sidecar of a NIfTI PET (``--pet-sidecars``).
    row : int
        Line of the manifest the timepoint came from (the header is line 1).
    """

    label: str
    folder: str
    mask: str | None = None
    row: int = 0
    organs: str | None = None
    ct: str | None = None
    pet_sidecar: str | None = None

    def _extras(self) -> dict[str, str]:
        # only the columns that are set: the hash of a job without them is unchanged
        return {k: v for k, v in (("organs", self.organs), ("ct", self.ct),
                                  ("pet_sidecar", self.pet_sidecar)) if v}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (``organs``, ``ct``, ``pet_sidecar`` only when set)."""
        out = {"label": self.label, "folder": self.folder, "mask": self.mask, "row": self.row}
        return {**out, **self._extras()}


@dataclass(frozen=True)
class PatientJob:
    """Everything a worker needs to process one patient: its ordered timepoints and options.

    Parameters
    ----------
    patient_id : str
        Patient identifier (safe as a folder name).
    timepoints : tuple of TimepointSpec
        In study order; the first is the baseline.
    options : tuple of (str, str)
        Per-patient options, sorted by name (a tuple so that the job is hashable).
    """

    patient_id: str
    timepoints: tuple[TimepointSpec, ...]
    options: tuple[tuple[str, str], ...] = ()

    @property
    def labels(self) -> tuple[str, ...]:
        """Timepoint labels in study order."""
        return tuple(tp.label for tp in self.timepoints)

    @property
    def folders(self) -> dict[str, str]:
        """``{label: folder}`` in study order."""
        return {tp.label: tp.folder for tp in self.timepoints}

    @property
    def masks(self) -> dict[str, str]:
        """``{label: mask}`` for the timepoints that have a mask."""
        return {tp.label: tp.mask for tp in self.timepoints if tp.mask}

    @property
    def organs(self) -> dict[str, str]:
        """``{label: organ map}`` for the timepoints that have one."""
        return {tp.label: tp.organs for tp in self.timepoints if tp.organs}

    @property
    def cts(self) -> dict[str, str]:
        """``{label: CT}`` for the timepoints whose CT is given in the ``ct`` column."""
        return {tp.label: tp.ct for tp in self.timepoints if tp.ct}

    @property
    def pet_sidecars(self) -> dict[str, str]:
        """``{label: JSON sidecar}`` for the NIfTI PETs that have one."""
        return {tp.label: tp.pet_sidecar for tp in self.timepoints if tp.pet_sidecar}

    @property
    def option_dict(self) -> dict[str, str]:
        """The options as a dict."""
        return dict(self.options)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (the rows are left out: they do not change the work)."""
        return {
            "patient_id": self.patient_id,
            "timepoints": [
                # the optional columns only when set: the hash of a job without them is
                # unchanged
                {"label": tp.label, "folder": tp.folder, "mask": tp.mask, **tp._extras()}
                for tp in self.timepoints
            ],
            "options": dict(self.options),
        }

    def sha256(self) -> str:
        """SHA-256 of the job definition (ids, labels, paths, options).

        Two jobs with the same hash ask for the same computation; a finished result whose
        recorded hash differs from the current job is stale and is recomputed.
        """
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        opts = f", options={dict(self.options)}" if self.options else ""
        masks = f", {len(self.masks)} mask(s)" if self.masks else ""
        return f"PatientJob({self.patient_id!r}: {', '.join(self.labels)}{masks}{opts})"


@dataclass(frozen=True)
class Manifest:
    """A parsed, validated cohort manifest.

    Parameters
    ----------
    jobs : tuple of PatientJob
        One job per patient, sorted by patient id.
    source : str
        File the manifest was read from (``"<text>"`` for :meth:`from_text`).
    option_names : tuple of str
        Option columns found in the header, in header order.
    """

    jobs: tuple[PatientJob, ...]
    source: str = "<text>"
    option_names: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.jobs)

    def __iter__(self) -> Iterator[PatientJob]:
        return iter(self.jobs)

    @property
    def patient_ids(self) -> tuple[str, ...]:
        """Patient ids, sorted."""
        return tuple(job.patient_id for job in self.jobs)

    @property
    def n_timepoints(self) -> int:
        """Number of (patient, timepoint) rows."""
        return sum(len(job.timepoints) for job in self.jobs)

    def job(self, patient_id: str) -> PatientJob:
        """The job of ``patient_id`` (KeyError when unknown)."""
        for job in self.jobs:
            if job.patient_id == patient_id:
                return job
        raise UnknownKeyError(format_message(f"no patient {patient_id!r} in the manifest",
                                      series=self.source))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict."""
        return {"source": self.source, "jobs": [job.to_dict() for job in self.jobs]}

    def __repr__(self) -> str:
        return (f"Manifest({self.source}: {len(self.jobs)} patient(s), "
                f"{self.n_timepoints} timepoint(s))")

    @classmethod
    def from_text(
        cls, text: str, *, base_dir: str | os.PathLike[str] = ".", source: str = "<text>"
    ) -> Manifest:
        """Parse manifest CSV text; relative paths are resolved against ``base_dir``.

        Raises
        ------
        ManifestError
            Missing column, empty cell in a required column, unsafe patient id, duplicate
            timepoint, or options that disagree between the rows of a patient.
        """
        reader = csv.reader(io.StringIO(text))
        try:
            header = next(reader)
        except StopIteration:
            raise ManifestError(format_message("the manifest is empty", series=source,
                                               fix="add a header row: patient_id,timepoint,"
                                                   "folder[,mask][,option ...]")) from None
        header = [h.strip() for h in header]
        if header and header[0].startswith("\ufeff"):  # BOM written by spreadsheet programs
            header[0] = header[0].lstrip("\ufeff")
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise ManifestError(format_message(
                f"the manifest header lacks column(s) {', '.join(missing)} (found "
                f"{', '.join(header) or 'nothing'})", series=source,
                fix="the header must hold patient_id, timepoint and folder"))
        dupes = sorted({h for h in header if header.count(h) > 1})
        if dupes or "" in header:
            raise ManifestError(format_message(
                f"the manifest header has duplicate or empty column names {dupes or ['']}",
                series=source, fix="give every column a distinct name"))
        option_names = tuple(h for h in header if h not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS)
        base = Path(base_dir)
        rows: dict[str, list[TimepointSpec]] = {}
        options: dict[str, dict[str, tuple[str, int]]] = {}
        for line, values in enumerate(reader, start=2):
            if not any(v.strip() for v in values):
                continue  # blank line
            if len(values) > len(header):
                raise ManifestError(format_message(
                    f"row {line} has {len(values)} cell(s) but the header has {len(header)}",
                    series=source, fix="quote cells that contain commas"))
            values = values + [""] * (len(header) - len(values))  # short row: empty cells
            cells = {h: v.strip() for h, v in zip(header, values)}
            for col in REQUIRED_COLUMNS:
                if not cells[col]:
                    raise ManifestError(format_message(
                        f"row {line} has an empty {col}", series=source,
                        fix=f"fill in the {col} of every row"))
            pid, label = cells["patient_id"], cells["timepoint"]
            if not _SAFE_ID.match(pid):
                raise ManifestError(format_message(
                    f"row {line}: patient_id {pid!r} cannot be used as a folder name",
                    series=source,
                    fix="use letters, digits, '.', '_' and '-' only, not starting with '.'"))
            specs = rows.setdefault(pid, [])
            for other in specs:
                if other.label == label:
                    raise ManifestError(format_message(
                        f"rows {other.row} and {line}: patient {pid!r} has timepoint {label!r} "
                        "twice", series=source, fix="give each timepoint a distinct label"))
            mask = cells.get("mask") or None
            organs = cells.get("organs") or None
            ct = cells.get("ct") or None
            sidecar = cells.get("pet_sidecar") or None
            specs.append(TimepointSpec(
                label=label,
                folder=_absolute(cells["folder"], base),
                mask=_absolute(mask, base) if mask else None,
                row=line,
                organs=(ORGANS_AUTO if organs.lower() == ORGANS_AUTO else _absolute(organs, base))
                if organs else None,
                ct=_absolute(ct, base) if ct else None,
                pet_sidecar=_absolute(sidecar, base) if sidecar else None,
            ))
            opts = options.setdefault(pid, {})
            for name in option_names:
                value = cells[name]
                if not value:
                    continue
                if name in opts and opts[name][0] != value:
                    raise ManifestError(format_message(
                        f"rows {opts[name][1]} and {line}: patient {pid!r} has two values for "
                        f"option {name!r} ({opts[name][0]!r} and {value!r})", series=source,
                        fix="options apply to the whole patient: use one value (or leave the "
                            "other cells empty)"))
                opts[name] = (value, line)
        if not rows:
            raise ManifestError(format_message("the manifest has no patient rows", series=source,
                                               fix="add one row per patient and timepoint"))
        jobs = tuple(
            PatientJob(
                patient_id=pid,
                timepoints=tuple(rows[pid]),
                options=tuple(sorted((k, v[0]) for k, v in options.get(pid, {}).items())),
            )
            for pid in sorted(rows)
        )
        return cls(jobs=jobs, source=source, option_names=option_names)

    @classmethod
    def from_records(
        cls,
        records: Sequence[Mapping[str, Any]],
        *,
        base_dir: str | os.PathLike[str] = ".",
        source: str = "<records>",
    ) -> Manifest:
        """Build a manifest from dicts with the manifest columns as keys (same validation)."""
        if not records:
            raise ManifestError(format_message("no manifest records given", series=source))
        header: list[str] = []
        for rec in records:
            header.extend(k for k in rec if k not in header)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        for rec in records:
            writer.writerow(["" if rec.get(h) is None else str(rec.get(h)) for h in header])
        return cls.from_text(buf.getvalue(), base_dir=base_dir, source=source)


def _absolute(path: str, base: Path) -> str:
    p = Path(path).expanduser()
    return os.path.normpath(p if p.is_absolute() else (base / p).absolute())


def read_manifest(path: str | os.PathLike[str]) -> Manifest:
    """Read and validate a manifest CSV file.

    Parameters
    ----------
    path : path
        The CSV file (UTF-8, a byte-order mark is accepted).

    Returns
    -------
    Manifest
        One :class:`PatientJob` per patient, sorted by patient id; relative paths resolved
        against the manifest's folder.

    Raises
    ------
    ManifestError
        The file cannot be read or is malformed (the message names the row).
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(format_message(f"cannot read the manifest: {exc}", series=str(p),
                                           fix="check the path; save the CSV as UTF-8")) from exc
    return Manifest.from_text(text, base_dir=p.resolve().parent, source=str(p))
