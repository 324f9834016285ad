"""Shared pytest fixtures.

``shared_data`` is the one way tests reach ``../shared/data`` (read-only reference data).
When the folder is absent (a user's fresh clone) the tests that need it are skipped with a
clear reason; with ``EMLESION_REQUIRE_DATA=1`` (set by ``.ci/run``) they fail instead, so
that CI can never pass by silently skipping them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

#: The test files that use the session fixture ``sample_study``. Under pytest-xdist they form
#: one work unit, so that the study is built on one worker only (see
#: ``pytest_xdist_make_scheduler``); the collection fails when a file that uses the fixture
#: is missing here.
SAMPLE_STUDY_FILES = frozenset({
    "tests/test_anatomy_blood_pool.py", "tests/test_io_nifti_image.py",
    "tests/test_lesion_record.py", "tests/test_measure_burden.py", "tests/test_parallel.py",
    "tests/test_readme.py",
    "tests/test_report_exports.py", "tests/test_report_reader.py",
    "tests/test_report_sites.py", "tests/test_segment.py", "tests/test_study.py",
    "tests/test_study_search.py", "tests/test_study_sites.py", "tests/test_study_volumes.py",
    "tests/test_track_sample.py",
})


def _shared_data_dir() -> Path:
    env = os.environ.get("EMLESION_SHARED_DATA")
    if env:
        return Path(env)
    return REPO_ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ``../shared/data`` (override with ``EMLESION_SHARED_DATA``)."""
    path = _shared_data_dir()
    if not (path / "README.md").is_file():
        reason = (
            f"reference data not found at {path}: these tests need the read-only "
            "../shared/data folder beside the checkout (or EMLESION_SHARED_DATA)"
        )
        if os.environ.get("EMLESION_REQUIRE_DATA") == "1":
            pytest.fail(reason + "; EMLESION_REQUIRE_DATA=1 forbids skipping", pytrace=False)
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def sample_scans_dir() -> Path:
    """Path of the bundled ``sample_scans/`` study (committed in the repository)."""
    path = REPO_ROOT / "sample_scans"
    if not (path / "truth.json").is_file():
        pytest.fail(
            f"sample_scans/truth.json missing at {path}: the bundled sample is part of the repo"
        )
    return path


@pytest.fixture(scope="session")
def sample_study(sample_scans_dir: Path) -> object:
    """The bundled three-timepoint study through :func:`emlesion.study.load_study` (defaults).

    Computed once per test session (about 20 s) and shared by every module that reads the
    default study of ``sample_scans/``; treat it as read-only.
    """
    import warnings

    from emlesion.study import load_study

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_study({name: sample_scans_dir / name
                           for name in ("baseline", "month1", "month3")})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Order of the work units of ``pytest -n 2 --dist loadfile`` (pyproject.toml; issue 18).

    Checks first that every test file that uses ``sample_study`` is in SAMPLE_STUDY_FILES.

    In a pytest-xdist worker (where the collection happens, and whose order the scheduler
    follows with ``--no-loadscope-reorder``), the test files that hold a test marked ``slow``
    come first, so that the two workers do not end waiting for one long file. In one process
    (``-n 0``) the tests keep their order.
    """
    users = {i.path.relative_to(config.rootpath).as_posix() for i in items
             if "sample_study" in getattr(i, "fixturenames", ())}
    if users - SAMPLE_STUDY_FILES:
        raise pytest.UsageError(
            f"{sorted(users - SAMPLE_STUDY_FILES)} use the sample_study fixture: add them to "
            "SAMPLE_STUDY_FILES in tests/conftest.py (one xdist work unit)")
    if not hasattr(config, "workerinput"):  # set by pytest-xdist in its workers only
        return
    slow = {i.path for i in items if i.get_closest_marker("slow") is not None}
    items.sort(key=lambda i: i.path not in slow)  # stable: slow files first, else as before


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` with the files of SAMPLE_STUDY_FILES as one work unit (issue 18).

    The other files are one unit each, as with plain ``loadfile``.
    """
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class _SampleStudyOnce(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "sample_study" if path in SAMPLE_STUDY_FILES else path

    return _SampleStudyOnce(config, log)
