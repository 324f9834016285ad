"""The README's Python code blocks run as written, from the repository root, on sample_scans/.

Every fenced ``python`` block of README.md is executed, in order and in one namespace (a
later block may use the names of an earlier one), with the working directory set to a
temporary folder that holds a ``sample_scans`` link to the bundled study: the relative paths
of the README resolve as they do from the repository root, and the outputs the README writes
(``out/``) land in the temporary folder, never in the checkout.

A block may be excluded only with an HTML comment on the line before its fence,
``<!-- readme-test: skip (reason) -->``, and only for a good reason (e.g. it needs a batch
cluster); the reason is shown in the skip list.

To keep the test fast, the README's ``load_study`` call on the three sample folders returns
the session fixture ``sample_study``, which is built by the same call with the same
(default) arguments (tests/conftest.py); any other ``load_study`` call fails the test.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
README = REPO_ROOT / "README.md"

_FENCE = re.compile(
    r"(?P<before>^[^\n]*\n)?^```(?P<lang>[\w+-]*)[ \t]*\n(?P<body>.*?)^```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)
_SKIP = re.compile(r"<!--\s*readme-test:\s*skip\s*\((?P<reason>[^)]+)\)\s*-->")


def python_blocks(text: str) -> list[tuple[int, str, str | None]]:
    """``(line number, code, skip reason or None)`` of every fenced ``python`` block."""
    blocks = []
    for m in _FENCE.finditer(text):
        if m.group("lang").lower() not in ("python", "py"):
            continue
        skip = _SKIP.search(m.group("before") or "")
        line = text.count("\n", 0, m.start("body")) + 1
        blocks.append((line, m.group("body"), skip.group("reason") if skip else None))
    return blocks


def test_block_extraction_sees_fences_and_skip_markers() -> None:
    # hand-written input: one skipped block, one runnable, one of another language
    text = (
        "intro\n<!-- readme-test: skip (needs a cluster) -->\n```python\nx = 1\n```\n"
        "text\n```python\ny = 2\nz = 3\n```\n```bash\nls\n```\n"
    )
    assert python_blocks(text) == [
        (4, "x = 1\n", "needs a cluster"),
        (8, "y = 2\nz = 3\n", None),
    ]


@contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def test_readme_python_blocks_run_as_written(
    tmp_path: Path,
    sample_scans_dir: Path,
    sample_study: Any,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import emlesion
    import emlesion.study

    blocks = python_blocks(README.read_text(encoding="utf-8"))
    runnable = [(line, code) for line, code, reason in blocks if reason is None]
    assert runnable, "README.md has no runnable ```python block"

    (tmp_path / "sample_scans").symlink_to(sample_scans_dir, target_is_directory=True)
    expected_folders = {tp: (sample_scans_dir / tp).resolve()
                        for tp in ("baseline", "month1", "month3")}

    def load_sample_study(folders: Mapping[str, Any], **kwargs: Any) -> Any:
        got = {str(k): Path(v).resolve() for k, v in folders.items()}
        assert got == expected_folders and not kwargs, (
            f"README calls load_study({folders!r}, **{kwargs!r}): extend tests/test_readme.py "
            "(only the default call on the three sample folders is served by the fixture)"
        )
        return sample_study

    monkeypatch.setattr(emlesion.study, "load_study", load_sample_study)
    monkeypatch.setattr(emlesion, "load_study", load_sample_study)

    namespace: dict[str, Any] = {"__name__": "__readme__"}
    with _cwd(tmp_path):
        for line, code in runnable:
            try:
                exec(compile(code, f"README.md:{line}", "exec"), namespace)
            except Exception as exc:  # pragma: no cover - the message is the point
                pytest.fail(f"README.md python block at line {line} raised {exc!r}")
    out = capsys.readouterr().out

    # What the README's comments and text promise, on the sample:
    # - the SUV rule of the Siemens-like BQML baseline (README comment, same text)
    assert "BQML/START: SeriesDateTime (QIBA step 1)" in out
    # - PERCIST per follow-up as in sample_scans/truth.json "expected_response"
    truth = json.loads((sample_scans_dir / "truth.json").read_text(encoding="utf-8"))
    for tp, expected in truth["expected_response"].items():
        category = expected["percist"]["category"]
        assert f"PERCIST 1.0 {tp} vs baseline: {category}" in out, out[-3000:]
    # - the mask is the baseline truth: one lesion per truth lesion (truth.json)
    assert len(namespace["table"]) == len(truth["timepoints"]["baseline"]["lesions"])
    # - write_response_outputs(study, "out") wrote the four outputs into the working folder
    for name in ("report.json", "lesions.csv", "report.html", "dicom"):
        assert (tmp_path / "out" / name).exists(), name
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert [t["label"] for t in report["timepoints"]] == ["baseline", "month1", "month3"]
    # nothing was written next to the input
    assert not (sample_scans_dir / "out").exists()
