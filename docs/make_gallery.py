"""Extract the figures of the HTML report into ``docs/images/report/`` for the gallery.

Usage (from the repository root)::

    python docs/make_gallery.py                # run the sample study, then extract
    python docs/make_gallery.py out/report.html  # extract from an existing report

Without an argument this builds the bundled study with :func:`emlesion.study.load_study`,
writes its report with :func:`emlesion.report.write_html_report` into a temporary folder
(removed afterwards), and saves every image the report embeds (``<img src="data:image/png;
base64,...">``) as ``docs/images/report/NN.png``, with the image's ``alt`` text as its caption
in ``captions.json``. The documentation's gallery page shows them. Run it again whenever the
report's figures change.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sys
import tempfile
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without installing
    sys.path.insert(0, str(ROOT))

TARGET = ROOT / "docs" / "images" / "report"
_IMG = re.compile(r"<img\b[^>]*>", re.IGNORECASE)
_SRC = re.compile(r'src="data:image/png;base64,([A-Za-z0-9+/=\s]+)"')
_ALT = re.compile(r'alt="([^"]*)"')


def extract(report_html: str, target: Path = TARGET) -> dict[str, str]:
    """Save the PNG images of ``report_html`` (text) in ``target``; returns name -> caption."""
    target.mkdir(parents=True, exist_ok=True)
    for old in target.glob("*.png"):
        old.unlink()
    captions: dict[str, str] = {}
    for tag in _IMG.findall(report_html):
        src = _SRC.search(tag)
        if src is None:
            continue
        name = f"{len(captions) + 1:02d}.png"
        (target / name).write_bytes(base64.b64decode(src.group(1)))
        alt = _ALT.search(tag)
        captions[name] = html.unescape(alt.group(1)) if alt else name
    (target / "captions.json").write_text(json.dumps(captions, indent=1) + "\n",
                                          encoding="utf-8")
    return captions


def sample_report() -> str:
    """The HTML report of the bundled sample study (default options), as text."""
    import matplotlib

    matplotlib.use("Agg")
    from emlesion.report import write_html_report
    from emlesion.study import load_study

    sample = ROOT / "sample_scans"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study = load_study({tp: sample / tp for tp in ("baseline", "month1", "month3")})
        with tempfile.TemporaryDirectory(prefix="emlesion-gallery-") as tmp:
            path = write_html_report(study, study.assess(), Path(tmp) / "report.html",
                                     deidentify=True)
            return Path(path).read_text(encoding="utf-8")


def main(argv: list[str]) -> int:
    text = Path(argv[0]).read_text(encoding="utf-8") if argv else sample_report()
    captions = extract(text)
    size = sum((TARGET / n).stat().st_size for n in captions)
    print(f"{len(captions)} figures, {size / 1e3:.0f} kB -> {TARGET.relative_to(ROOT)}")
    return 0 if captions else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
