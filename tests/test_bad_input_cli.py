"""Bad and hostile input at the command line (issue 15, items 4, 5, 6 and 8).

Every fault is generated in ``tmp_path`` on small synthetic series (``tests/dicom_synth.py``:
16 x 16 x 8 voxels of 4 mm, a PET/CT run takes a few seconds) and each CLI run is checked
for its exit code (0 success, 1 an emlesion error, 2 a usage error), a fragment of its
message, and that every input file is byte-identical afterwards (SHA-256 of the input trees
before and after the run). Checks that must come before any computation are run with the
pipeline entry points replaced by a function that fails the test when called.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import shutil
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pydicom
import pytest

from emlesion.cli import COMMANDS, main
from tests.dicom_synth import SeriesSpec, write_series

STUDY_A = "1.2.826.0.1.3680043.8.498.101"
STUDY_B = "1.2.826.0.1.3680043.8.498.102"


# ---------------------------------------------------------------------------- helpers
def _edit(folder: Path, **values: str) -> None:
    """Set header values on every file of ``folder`` (a copy in tmp_path)."""
    for f in sorted(folder.iterdir()):
        ds = pydicom.dcmread(f)
        for key, value in values.items():
            setattr(ds, key, value)
        ds.save_as(f)


def _timepoint(root: Path, study_uid: str, *, ct: bool = True,
               series_description: str = "synthetic") -> Path:
    """A synthetic PET(/CT) session: PT/ (RescaleSlope 100, so that SUVbw reaches about 14
    and suv2.5 finds a lesion) and CT/ in one study and frame of reference."""
    kw: dict[str, Any] = {"n": 8, "rows": 16, "cols": 16, "pixel_spacing": (4.0, 4.0),
                          "step_mm": 4.0, "study_uid": study_uid}
    write_series(root / "PT", SeriesSpec(modality="PT", slopes=[100.0] * 8,
                                         series_description=series_description, **kw))
    folders = [root / "PT"]
    if ct:
        write_series(root / "CT", SeriesSpec(modality="CT", **kw))
        folders.append(root / "CT")
    for folder in folders:
        # type-2 attributes the DICOM SEG writer copies from the source images
        _edit(folder, PatientBirthDate="19700101", PatientSex="F", StudyTime="120000",
              StudyID="1", AccessionNumber="", ReferringPhysicianName="")
    return root


def _digest(paths: Sequence[Path]) -> dict[str, str]:
    """SHA-256 of every file under ``paths`` (folders walked, files taken as they are)."""
    out: dict[str, str] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for f in files:
            out[str(f)] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def _run(argv: Sequence[str], inputs: Sequence[Path],
         capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI; assert that the input trees are byte-identical afterwards."""
    before = _digest(inputs)
    assert before, "no input file to protect"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code = main(list(argv))
    except SystemExit as exc:  # argparse usage errors
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    assert _digest(inputs) == before, "an input file was changed"
    return code, captured.out, captured.err


def _no_compute(*_: Any, **__: Any) -> Any:
    raise AssertionError("the pipeline ran although the command should have stopped first")


@pytest.fixture()
def no_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test when the pipeline is entered (fail-fast checks must come first)."""
    import emlesion.batch
    import emlesion.io
    import emlesion.study

    for module, name in ((emlesion.study, "load_timepoint"), (emlesion.study, "load_study"),
                         (emlesion.io, "load_pet"), (emlesion.io, "discover"),
                         (emlesion.batch, "run_batch")):
        monkeypatch.setattr(module, name, _no_compute)


@pytest.fixture()
def session(tmp_path: Path) -> Path:
    return _timepoint(tmp_path / "in" / "t0", STUDY_A)


@pytest.fixture()
def two_sessions(tmp_path: Path) -> tuple[Path, Path]:
    return (_timepoint(tmp_path / "in" / "t0", STUDY_A),
            _timepoint(tmp_path / "in" / "t1", STUDY_B))


def _readonly_dir(tmp_path: Path) -> Path:
    """A folder nobody can create files in: a 0555 folder, or (as root, whom permissions do
    not stop) ``/sys``, which the kernel keeps read-only."""
    ro = tmp_path / "readonly"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):
        return Path("/sys")
    return ro


# ---------------------------------------------------------------------------- usage (item 5)
@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_every_help_exits_0(command: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = [command, "--help"] if command else ["--help"]
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: emlesion")
    if command == "measure":
        # the '%' of 41%max used to crash argparse's help formatting
        assert "41%max" in out


@pytest.mark.parametrize(("argv", "fragment"), [
    (["measure", "{pet}", "--method", "42%max"], "unknown method '42%max'"),
    (["measure", "{pet}", "--sul", "lbm"], "unknown SUV normalisation 'lbm'"),
    (["suv", "{pet}", "-n", "lbm"], "unknown SUV normalisation 'lbm'"),
    (["response", "{pet}", "{pet}", "--out", "{out}", "--criteria", "percist,who"],
     "unknown criteria ['who']"),
    (["response", "{pet}", "{pet}", "--out", "{out}", "--method", "otsu"], "unknown method"),
    (["response", "{pet}", "{pet}", "--out", "{out}", "--labels", "a,a"], "must be distinct"),
    (["response", "{pet}", "{pet}", "--out", "{out}", "--labels", "id,b"], "reserved"),
    (["response", "{pet}", "{pet}", "--out", "{out}", "--labels", "a,b,c"],
     "3 label(s) in --labels for 2 folder(s)"),
    (["response", "{pet}", "{pet}", "--out", "{out}", "--masks", "auto"],
     "1 mask(s) in --masks for 2 folder(s)"),
    (["response", "{pet}", "{pet}", "--out", "{out}", "--threads", "0"], "must be at least 1"),
    (["info", "{pet}", "--workers", "0"], "must be at least 1"),
    (["batch", "{pet}", "--out", "{out}", "--workers", "-2"], "must be at least 1"),
    (["batch", "{pet}", "--out", "{out}", "--option", "method=otsu"], "--option method="),
    (["batch", "{pet}", "--out", "{out}", "--option", "speed=fast"], "not a batch option"),
    (["batch", "{pet}", "--out", "{out}", "--option", "criteria=who"], "unknown criteria"),
])
def test_bad_options_exit_2_before_loading(argv: list[str], fragment: str, session: Path,
                                           tmp_path: Path, no_compute: None,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    # the README promises exit 2 for usage errors; the pipeline is never entered
    args = [a.format(pet=session / "PT", out=tmp_path / "out") for a in argv]
    code, _, err = _run(args, [session], capsys)
    assert code == 2, err
    assert fragment in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("position", ["before", "after"])
def test_quiet_and_verbose_before_or_after_the_subcommand(
        position: str, session: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    tail = [str(session / "PT"), "--no-ct", "--method", "suv2.5"]
    loud_code, _, loud = _run(["measure", *tail], [session], capsys)
    assert loud_code == 0
    assert "timepoint suv" in loud and "warning:" in loud  # progress and warnings by default
    argv = (["-q", "-v", "measure", *tail] if position == "before"
            else ["measure", *tail, "-q", "-v"])
    code, out, err = _run(argv, [session], capsys)
    assert code == 0
    assert err == ""  # -q: neither progress nor warning lines
    assert "lesion(s), method suv2.5" in out  # the result itself is still printed


def test_info_escapes_control_characters(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    # the SeriesDescription, plus a BEL/OSC title sequence and a right-to-left
    # override (UTF-8, ISO_IR 192, so that U+202E can be stored)
    evil = "\x1b[2J\x1b[31mEVIL\u202e"
    folder = _timepoint(tmp_path / "in", STUDY_A, ct=False)
    _edit(folder / "PT", SpecificCharacterSet="ISO_IR 192", SeriesDescription=evil,
          PatientID="P\x07\x1b]0;title\x07")
    code, out, _ = _run(["info", str(folder)], [folder], capsys)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[2J\\x1b[31mEVIL\\u202e" in out
    assert "P\\x07\\x1b]0;title\\x07" in out


# ---------------------------------------------------------------------------- progress (issue 16)
class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_plain_lines_when_not_a_terminal() -> None:
    from emlesion.report import StderrProgress
    from emlesion.study import StageEvent

    stream = io.StringIO()
    progress = StderrProgress(stream)
    progress(StageEvent("track", None, None))
    progress(StageEvent("track", None, 14.25))
    lines = stream.getvalue().splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["study track started",
                                                          "study track 14.25 s"]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()


def test_progress_live_line_on_a_terminal() -> None:
    from emlesion.report import StderrProgress
    from emlesion.study import StageEvent

    stream = _Terminal()
    progress = StderrProgress(stream, interval_s=0.01)
    progress(StageEvent("anatomy", "month1", None))
    deadline = time.monotonic() + 10
    while stream.getvalue().count("\r") < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    progress(StageEvent("anatomy", "month1", 0.5))
    text = stream.getvalue()
    # redrawn while running (spinner), then cleared and replaced by the finished line
    assert text.count("month1 anatomy 0 s |") + text.count("month1 anatomy 0 s /") >= 2
    assert text.endswith("month1 anatomy 0.50 s\n")
    # stages of two timepoints running side by side (load_study's worker threads) share
    # the line; when one finishes its line is printed and the other stays on the live line
    progress(StageEvent("anatomy", "baseline", None))
    progress(StageEvent("register", "month1", None))
    assert stream.getvalue().endswith("baseline anatomy 0 s, month1 register 0 s |")
    progress(StageEvent("anatomy", "baseline", 1.25))
    last_line = stream.getvalue().rsplit("\n", 1)
    assert last_line[0].endswith("baseline anatomy 1.25 s")
    assert "month1 register 0 s" in last_line[1] and "baseline" not in last_line[1]
    progress(StageEvent("register", "month1", 2.0))
    assert stream.getvalue().endswith("month1 register 2.00 s\n")
    size = len(stream.getvalue())
    time.sleep(0.05)
    assert len(stream.getvalue()) == size  # the ticker stopped with the stage
    # a stage cut short by an error: close_all (called by the CLI) clears the line
    progress(StageEvent("lesions", "month1", None))
    StderrProgress.close_all()
    assert stream.getvalue().endswith("\r\x1b[K")


# ---------------------------------------------------------------------------- outputs (item 4)
def test_measure_refuses_to_overwrite_its_mask(session: Path, tmp_path: Path, no_compute: None,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    masks = tmp_path / "masks"
    masks.mkdir()
    mask = masks / "m.nii.gz"
    mask.write_bytes(b"\x1f\x8b stand-in: the check must not read or touch it")
    for flag, target in (("--csv", mask), ("--json", mask), ("--json", masks / "m.json")):
        code, _, err = _run(["measure", str(session / "PT"), "--mask", str(mask), flag,
                             str(target)], [session, mask], capsys)
        assert code == 1
        assert "lies inside the input folder" in err and str(masks) in err
    assert sorted(p.name for p in masks.iterdir()) == ["m.nii.gz"]


def test_measure_output_paths_checked_first(session: Path, tmp_path: Path, no_compute: None,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    afile = tmp_path / "afile"
    afile.write_text("a file, not a folder\n")
    adir = tmp_path / "adir"
    adir.mkdir()
    readonly = _readonly_dir(tmp_path)
    cases = [
        (["--json", str(afile / "m.json")], f"{afile} is not a folder"),
        (["--csv", str(afile / "sub" / "m.csv")], f"{afile} is not a folder"),
        (["--json", str(adir)], "is an existing folder"),
        (["--json", str(readonly / "emlesion-test" / "m.json")], "is not writable"),
        (["--json", str(tmp_path / "same"), "--csv", str(tmp_path / "same")],
         "name the same file"),
        (["--json", str(session / "PT" / "m.json")], "lies inside the input folder"),
    ]
    for extra, fragment in cases:
        code, out, err = _run(["measure", str(session / "PT"), "--no-ct", *extra], [session],
                              capsys)
        assert code == 1, (extra, err)
        assert fragment in err, (extra, err)
        assert "Fix:" in err and "Traceback" not in err and out == ""
    assert afile.read_text() == "a file, not a folder\n" and list(adir.iterdir()) == []


def test_response_output_folder_checked_first(two_sessions: tuple[Path, Path], tmp_path: Path,
                                              no_compute: None,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    t0, t1 = two_sessions
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("earlier result\n")
    cases = [
        (afile / "resp", f"{afile} is not a folder"),
        (afile, "exists and is not a folder"),
        (full, "exists and is not empty"),
        (tmp_path / "in", "holds the input folder"),  # --out the parent of the inputs
        (tmp_path, "holds the input folder"),
        (t0 / "out", "lies inside the input folder"),
        (_readonly_dir(tmp_path) / "resp", "is not writable"),
    ]
    for out, fragment in cases:
        code, _, err = _run(["response", str(t0), str(t1), "--out", str(out)], [t0, t1], capsys)
        assert code == 1, (out, err)
        assert fragment in err, (out, err)
        assert "Fix:" in err
    # even --force never replaces a folder holding the inputs
    code, _, err = _run(["response", str(t0), str(t1), "--out", str(tmp_path / "in"),
                         "--force"], [t0, t1], capsys)
    assert code == 1 and "holds the input folder" in err
    assert (full / "keep.txt").read_text() == "earlier result\n"


def test_batch_output_folder_checked_first(session: Path, tmp_path: Path, no_compute: None,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"patient_id,timepoint,folder\nA,baseline,{session}\n")
    afile = tmp_path / "afile"
    afile.write_text("x\n")
    for out, fragment in ((afile / "batch", f"{afile} is not a folder"),
                          (afile, "exists and is not a folder"),
                          (_readonly_dir(tmp_path) / "batch", "is not writable")):
        code, _, err = _run(["batch", str(manifest), "--out", str(out)], [session, manifest],
                            capsys)
        assert code == 1 and fragment in err, (out, err)


def test_response_force_replaces_the_folder_as_a_whole(
        two_sessions: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    t0, t1 = two_sessions
    out = tmp_path / "out"
    argv = ["response", str(t0), str(t1), "--out", str(out), "--method", "suv2.5",
            "--no-html", "-q"]
    code, stdout, err = _run(argv, [t0, t1], capsys)
    assert code == 0, err
    first = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    # report.json, lesions.csv, burden.csv and one SEG + SR per timepoint
    # (dicom/<label>_seg.dcm ...)
    assert first == ["burden.csv", "dicom/t0_seg.dcm", "dicom/t0_sr.dcm", "dicom/t1_seg.dcm",
                     "dicom/t1_sr.dcm", "lesions.csv", "report.json"]
    assert f"wrote {out / 'report.json'}" in stdout
    stale = out / "dicom" / "old_seg.dcm"
    stale.write_bytes(b"a DICOM SEG of an earlier run")
    # without --force a non-empty folder is refused, untouched
    code, _, err = _run(argv, [t0, t1], capsys)
    assert code == 1 and "--force" in err and stale.exists()
    code, _, err = _run([*argv, "--force"], [t0, t1], capsys)
    assert code == 0, err
    second = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert second == first  # the stale SEG is gone: the folder was replaced as a whole
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_failed_write_keeps_the_old_result(two_sessions: tuple[Path, Path], tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    t0, t1 = two_sessions
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text('{"earlier": true}\n')
    old = _digest([out])

    def disk_full(study: Any, out_dir: Path, **_: Any) -> list[Path]:
        (out_dir / "partial.dcm").parent.mkdir(parents=True, exist_ok=True)
        (out_dir / "partial.dcm").write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device", str(out_dir / "x_seg.dcm"))

    import emlesion.report.dicom

    monkeypatch.setattr(emlesion.report.dicom, "write_dicom_outputs", disk_full)
    code, _, err = _run(["response", str(t0), str(t1), "--out", str(out), "--method",
                         "suv2.5", "--no-html", "--force", "-q"], [t0, t1], capsys)
    assert code == 1
    assert "No space left on device" in err and "nothing was published" in err
    assert "Fix: free space" in err and "Traceback" not in err
    assert _digest([out]) == old  # the earlier result, unchanged; no partial set
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_measure_publishes_both_files_or_neither(session: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    out_json, out_csv = tmp_path / "o" / "m.json", tmp_path / "o" / "m.csv"
    argv = ["measure", str(session / "PT"), "--no-ct", "--method", "suv2.5", "-q",
            "--json", str(out_json), "--csv", str(out_csv)]
    code, _, err = _run(argv, [session], capsys)
    assert code == 0, err
    data = json.loads(out_json.read_text())
    assert data["format"] == "emlesion-measure" and len(data["lesions"]) == 1
    assert out_csv.read_text().count("\n") == 2  # header + one lesion
    before = _digest([tmp_path / "o"])

    import emlesion._atomic as atomic

    real = atomic.os.replace

    def csv_fails(src: Any, dst: Any) -> None:
        # the CSV cannot be published when the new JSON already is: the old JSON comes back
        if str(dst).endswith("m.csv") and not str(src).endswith(".bak"):
            assert json.loads(out_json.read_text()) == data  # replaced by then
            raise OSError(errno.EROFS, "Read-only file system", str(dst))
        real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", csv_fails)
    code, _, err = _run(argv, [session], capsys)
    assert code == 1 and "Read-only file system" in err and "Fix:" in err
    assert _digest([tmp_path / "o"]) == before  # neither file replaced
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["m.csv", "m.json"]


def test_output_errors_are_emlesion_errors(session: Path, tmp_path: Path) -> None:
    from emlesion.errors import EmlesionError, InconsistentStudyError, OutputError
    from emlesion.report import check_output_dir, check_output_file

    (tmp_path / "afile").write_text("x")
    with pytest.raises(OutputError) as err:
        check_output_file(tmp_path / "afile" / "m.json", [session])
    assert isinstance(err.value, OSError) and isinstance(err.value, EmlesionError)
    with pytest.raises(InconsistentStudyError, match="holds the input folder"):
        check_output_dir(tmp_path, [session], force=True)
    assert check_output_dir(tmp_path / "new", [session]) == (tmp_path / "new").resolve()
    assert not (tmp_path / "new").exists()  # checking creates nothing


# ---------------------------------------------------------------------------- study (item 6)
def test_same_folder_or_study_at_two_timepoints(two_sessions: tuple[Path, Path],
                                                tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    t0, _ = two_sessions
    copy = tmp_path / "copy"
    shutil.copytree(t0, copy)
    for dirs, fragment in (([t0, t0, t0], "same PET series"),
                           ([t0, copy], "same PET series")):
        code, _, err = _run(["response", *map(str, dirs), "--out", str(tmp_path / "out"),
                             "-q"], [t0, copy], capsys)
        assert code == 1 and fragment in err, err
        assert "SeriesInstanceUID (0020,000E)" in err and "Fix:" in err
    # another series of the same study (a re-export, a second reconstruction)
    other = _timepoint(tmp_path / "other", STUDY_A)
    code, _, err = _run(["response", str(t0), str(other), "--out", str(tmp_path / "out"),
                         "-q"], [t0, other], capsys)
    assert code == 1 and "same study" in err and "StudyInstanceUID (0020,000D)" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("attribute", "value", "fragment"), [
    ("PatientID", "SOMEONE-ELSE", "belong to different patients"),
    ("FrameOfReferenceUID", "1.2.826.0.1.3680043.8.498.999", "different FrameOfReferenceUID"),
])
def test_measure_pet_with_a_foreign_ct(attribute: str, value: str, fragment: str,
                                       session: Path, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    foreign = tmp_path / "foreign_ct"
    shutil.copytree(session / "CT", foreign)
    _edit(foreign, **{attribute: value})
    code, _, err = _run(["measure", str(session / "PT"), "--ct", str(foreign), "-q"],
                        [session, foreign], capsys)
    assert code == 1
    assert fragment in err and value in err and attribute in err and "--ct" in err


def test_response_timepoint_with_a_foreign_ct(two_sessions: tuple[Path, Path],
                                              tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    t0, t1 = two_sessions
    _edit(t1 / "CT", PatientID="SOMEONE-ELSE")
    code, _, err = _run(["response", str(t0), str(t1), "--out", str(tmp_path / "out"), "-q",
                         "--allow-different-patients"], [t0, t1], capsys)
    # --allow-different-patients is about re-identified timepoints, not a PET and CT of one
    # session that disagree
    assert code == 1 and "timepoint 't1'" in err and "different patients" in err


# ---------------------------------------------------------------------------- batch (item 8)
def _job(patient: str, folders: dict[str, Path]) -> Any:
    from emlesion.batch import Manifest

    rows = [{"patient_id": patient, "timepoint": label, "folder": str(folder),
             "method": "suv2.5", "html": "false", "dicom": "false"}
            for label, folder in folders.items()]
    return Manifest.from_records(rows).jobs[0]


def test_batch_status_never_plain_completed_with_number_warnings(
        two_sessions: tuple[Path, Path], tmp_path: Path) -> None:
    from emlesion.batch import PatientStatus, completed_result, process_patient

    t0, t1 = two_sessions
    before = _digest([t0, t1])
    # The synthetic PET has no SeriesDate/SeriesTime: the SUV scan reference time falls back
    # to the earliest AcquisitionTime (an SUVWarning: the SUVs depend on that choice).
    job = _job("P1", {"t0": t0, "t1": t1})
    result = process_patient(job, tmp_path / "out")
    assert result.status is PatientStatus.COMPLETED_WITH_WARNINGS, result
    assert any(w.startswith("SUVWarning: SeriesDate/SeriesTime missing")
               for w in result.warnings)
    # resumed from DONE.json, the warnings are still there
    resumed = completed_result(job, tmp_path / "out")
    assert resumed is not None and resumed.warnings == result.warnings
    # A PET that lost a slice in the middle is failed, never completed.
    lost = tmp_path / "lost"
    shutil.copytree(t1, lost)
    files = sorted((lost / "PT").iterdir(),
                   key=lambda f: float(pydicom.dcmread(f).ImagePositionPatient[2]))
    files[3].unlink()
    failed = process_patient(_job("P2", {"t0": t0, "t1": lost}), tmp_path / "out")
    assert failed.status is PatientStatus.FAILED
    assert failed.error_type == "emlesion.errors.GeometryError"
    assert "1 slice(s) missing" in (failed.error or "")
    assert _digest([t0, t1]) == before


def test_warning_changes_numbers_rule() -> None:
    from emlesion.anatomy import AnatomyWarning
    from emlesion.batch import warning_changes_numbers
    from emlesion.errors import (
        DicomQuirkWarning,
        EmlesionWarning,
        GeometryWarning,
        MaskWarning,
        ResponseWarning,
        SUVWarning,
    )
    from emlesion.segment import SegmentationWarning

    class ReaderWarning(EmlesionWarning):  # a future warning of the readers counts too
        pass

    # input deviations worked around (the numbers come from a corrected input) count ...
    for category in (DicomQuirkWarning, GeometryWarning, SUVWarning, MaskWarning,
                     ReaderWarning, UserWarning, RuntimeWarning):
        assert warning_changes_numbers(category), category
    # ... the notes of the analysis and library API notices do not (sample seed 103 raises
    # a SegmentationWarning on a clean input; every follow-up of the sample a ResponseWarning)
    for category in (ResponseWarning, SegmentationWarning, AnatomyWarning, DeprecationWarning,
                     FutureWarning):
        assert not warning_changes_numbers(category), category
