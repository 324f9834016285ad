"""Sphinx configuration of the emlesion documentation.

Build from the repository root (``pip install -e ".[docs]"`` first)::

    sphinx-build -W --keep-going -b html docs docs/_build/html

The API reference is generated at every build from the ``__all__`` of every public
subpackage (:func:`write_api_pages`), so that a name added to an ``__all__`` appears without
editing the docs; when the build finishes, :func:`check_api_complete` reads the objects that
Sphinx documented and warns (an error with ``-W``) about any public name that is missing.
The figures of the committed notebooks are extracted into the gallery at every build.
"""

from __future__ import annotations

import base64
import importlib
import inspect
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
if str(ROOT) not in sys.path:  # build from a checkout without installing
    sys.path.insert(0, str(ROOT))

import emlesion  # noqa: E402

project = "emlesion"
author = "emlesion developers"
copyright = "emlesion developers, MIT licence"
release = emlesion.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "images/README.md"]
templates_path: list[str] = []
html_theme = "alabaster"
html_static_path: list[str] = []
html_theme_options = {"description": "PET/CT DICOM to lesion measurements and response calls"}

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autosummary_generate = False  # the API pages hold the full entries; the tables only link
numpydoc_show_class_members = False  # members are documented by autodoc (:members:)
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False
myst_heading_anchors = 3
suppress_warnings = ["myst.header"]  # README starts at H1 inside the user-guide page

#: The public subpackages and modules of the API reference, in the data-flow order.
API_MODULES: tuple[str, ...] = (
    "emlesion.io", "emlesion.suv", "emlesion.anatomy", "emlesion.segment",
    "emlesion.measure", "emlesion.track", "emlesion.response", "emlesion.study",
    "emlesion.report", "emlesion.batch", "emlesion.sample", "emlesion.errors",
    "emlesion.provenance", "emlesion.parallel", "emlesion.cli",
)
GENERATED = DOCS / "_generated"


def public_modules() -> list[str]:
    """Every public module of emlesion that declares ``__all__`` (besides the package)."""
    import pkgutil

    names = []
    for info in pkgutil.walk_packages(emlesion.__path__, "emlesion."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        module = importlib.import_module(info.name)
        parent = info.name.rsplit(".", 1)[0]
        # a submodule of a subpackage is documented through its package's __all__
        if parent != "emlesion":
            continue
        if hasattr(module, "__all__"):
            names.append(info.name)
    return names


def _kind(obj: Any) -> str:
    if inspect.isclass(obj):
        return "exception" if issubclass(obj, BaseException) else "class"
    if inspect.isfunction(obj) or inspect.isbuiltin(obj):
        return "function"
    return "data"


def _data_comment(module_name: str, name: str, obj: Any) -> tuple[str, str]:
    """(defining module, ``#:`` doc comment) of a public constant, searched in the package's
    modules (a constant has no ``__module__``)."""
    import pkgutil

    from sphinx.pycode import ModuleAnalyzer

    package = importlib.import_module(module_name)
    candidates = [module_name]
    if hasattr(package, "__path__"):
        candidates += [i.name for i in pkgutil.iter_modules(package.__path__, module_name + ".")]
    for candidate in candidates:
        module = importlib.import_module(candidate)
        if getattr(module, name, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(candidate).find_attr_docs()
        except Exception:  # no source: no comment
            continue
        if ("", name) in docs:
            return candidate, "\n".join(docs[("", name)]).strip()
    return module_name, ""


def _api_page(module_name: str) -> str:
    module = importlib.import_module(module_name)
    names = list(module.__all__)
    title = f"``{module_name}``"
    out = [title, "=" * len(title), "", f".. automodule:: {module_name}", "   :no-members:", "",
           f".. currentmodule:: {module_name}", "", "Public names", "------------", ""]
    # autosummary would show a constant's type docstring (float's): constants get a list
    # with the first line of their ``#:`` comment instead
    data = [n for n in names if _kind(getattr(module, n)) == "data"]
    objects = [n for n in names if n not in data]
    if objects:
        out += [".. autosummary::", "", *[f"   {n}" for n in objects], ""]
    if data:
        out += ["Constants:", ""]
        for n in data:
            comment = _data_comment(module_name, n, getattr(module, n))[1]
            first = comment.split(". ")[0].splitlines()[0] if comment else ""
            out += [f"* :data:`{n}`" + (f": {first}" if first else "")]
        out += [""]
    out += ["", "Reference", "---------", ""]
    for n in names:
        obj = getattr(module, n)
        kind = _kind(obj)
        if kind == "class":
            out += [f".. autoclass:: {n}", "   :members:", "   :show-inheritance:", ""]
        elif kind == "exception":
            out += [f".. autoexception:: {n}", "   :members:", "   :show-inheritance:", ""]
        elif kind == "function":
            out += [f".. autofunction:: {n}", ""]
        else:
            where, comment = _data_comment(module_name, n, obj)
            value = repr(obj)
            if len(value) > 300:
                value = value[:297] + "..."
            out += [f".. py:data:: {n}", f"   :value: {value}", ""]
            if comment:
                out += ["   " + line if line else "" for line in comment.splitlines()]
            else:
                out += [f"   (no ``#:`` comment found in ``{where}``)"]
            out += [""]
    return "\n".join(out) + "\n"


def _top_level_page() -> str:
    """The names re-exported at ``emlesion.*``: a table pointing at their subpackage."""
    rows = []
    for n in emlesion.__all__:
        obj = getattr(emlesion, n)
        home = next((m for m in API_MODULES
                     if n in getattr(importlib.import_module(m), "__all__", ())
                     and getattr(importlib.import_module(m), n) is obj), None)
        if n == "__version__":
            rows.append((f"``{n}``", f"the version string, ``{emlesion.__version__}``"))
            continue
        if home is None:
            rows.append((f"``{n}``", "(not in any subpackage's ``__all__``)"))
            continue
        role = {"class": "class", "exception": "exc", "function": "func", "data": "data"}[
            _kind(obj)]
        rows.append((f"``emlesion.{n}``", f":{role}:`{home}.{n}`"))
    width = max(len(a) for a, _ in rows), max(len(b) for _, b in rows)
    rule = f"{'=' * width[0]} {'=' * width[1]}"
    lines = [rule, f"{'name':{width[0]}} {'same object as':{width[1]}}", rule]
    lines += [f"{a:{width[0]}} {b:{width[1]}}" for a, b in rows]
    lines.append(rule)
    title = "``emlesion`` (top level)"
    return "\n".join([
        title, "=" * len(title), "",
        ".. automodule:: emlesion", "   :no-members:", "",
        "The most used entry points, imported lazily at the top level:", "", *lines, "",
    ]) + "\n"


def write_api_pages() -> list[str]:
    """Write ``_generated/api/*.rst`` (one page per public module) and its index."""
    api = GENERATED / "api"
    api.mkdir(parents=True, exist_ok=True)
    missing = sorted(set(public_modules()) - set(API_MODULES))
    modules = list(API_MODULES) + missing  # a new public subpackage still gets its page
    pages = {"emlesion": _top_level_page()}
    pages.update({m: _api_page(m) for m in modules})
    for name, text in pages.items():
        path = api / f"{name}.rst"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")  # unchanged pages keep their mtime
    for stale in api.glob("*.rst"):
        if stale.stem not in pages:
            stale.unlink()
    return list(pages)


def write_notebook_figures() -> list[tuple[str, str]]:
    """Extract the PNG outputs of the committed notebooks into ``_generated/figures``.

    Returns (image path relative to docs/, caption) for the gallery.
    """
    target = GENERATED / "figures"
    target.mkdir(parents=True, exist_ok=True)
    figures = []
    for nb_path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
        k = 0
        for cell in nb["cells"]:
            for out in cell.get("outputs", []):
                png = out.get("data", {}).get("image/png")
                if not png:
                    continue
                k += 1
                name = f"{nb_path.stem}_{k}.png"
                data = base64.b64decode(png if isinstance(png, str) else "".join(png))
                path = target / name
                if not path.exists() or path.read_bytes() != data:
                    path.write_bytes(data)
                figures.append((f"_generated/figures/{name}",
                                f"``notebooks/{nb_path.name}``, figure {k}"))
    return figures


def write_gallery(notebook_figures: list[tuple[str, str]]) -> None:
    """``_generated/gallery.rst``: the README MIPs, the report figures and the notebooks'."""
    lines = ["Gallery", "=======", "",
             "The figures emlesion makes on the bundled sample study (``sample_scans/``).", ""]

    def section(title: str, intro: str, images: list[tuple[str, str]],
                width: str = "90%") -> None:
        nonlocal lines
        lines += [title, "-" * len(title), "", intro, ""]
        for path, caption in images:
            lines += [f".. figure:: /{path}", f"   :width: {width}", "", f"   {caption}", ""]

    section("Coronal MIPs", "Made by ``python docs/make_mips.py`` (shown in the README).",
            [(f"images/mip_{tp}.png", f"{tp}: coronal SUVbw MIP, truth lesions marked")
             for tp in ("baseline", "month1", "month3")], width="60%")
    report = sorted((DOCS / "images" / "report").glob("*.png"))
    captions = {}
    index = DOCS / "images" / "report" / "captions.json"
    if index.is_file():
        captions = json.loads(index.read_text(encoding="utf-8"))
    section("The HTML report's figures",
            "The images embedded in ``report.html`` (``emlesion response`` on the sample), "
            "extracted by ``python docs/make_gallery.py``.",
            [(f"images/report/{p.name}", captions.get(p.name, p.stem)) for p in report])
    section("The notebooks' figures",
            "The inline figures of the committed notebooks (``notebooks/``), extracted at "
            "every documentation build.", notebook_figures)
    (GENERATED / "gallery.rst").write_text("\n".join(lines) + "\n", encoding="utf-8")


def check_api_complete(app: Any, exception: Exception | None) -> None:
    """Warn about every ``__all__`` name that the build did not document."""
    if exception is not None:
        return
    from sphinx.util import logging

    logger = logging.getLogger("emlesion.docs")
    documented = set(app.env.get_domain("py").objects)
    for module_name in dict.fromkeys([*API_MODULES, *public_modules()]):
        module = importlib.import_module(module_name)
        for n in module.__all__:
            if f"{module_name}.{n}" not in documented:
                logger.warning("API reference: %s.%s (in __all__) is not documented",
                               module_name, n)
    for n in emlesion.__all__:
        if n != "__version__" and not any(f"{m}.{n}" in documented for m in API_MODULES):
            logger.warning("API reference: emlesion.%s (in __all__) is documented nowhere", n)


def module_citations(app: Any, what: str, name: str, obj: Any, options: Any,
                     lines: list[str]) -> None:
    """Make the References of a module docstring well-formed citations, as numpydoc does
    for functions and classes (it leaves module docstrings as written).

    A module docstring shown a second time (``:no-index:``, the design page) gets citation
    labels of its own: numpydoc labels references by a hash of the object's name, so the
    same docstring on two pages would define each citation twice. The labels are then cited
    in a LaTeX-only block, as numpydoc does, so that a reference list that the text does
    not cite by number is not an unreferenced citation.
    """
    if what != "module":
        return
    no_index = getattr(options, "no_index", None) or getattr(options, "noindex", None)
    if no_index is None and hasattr(options, "get"):
        no_index = options.get("no-index") or options.get("noindex")
    if no_index:
        for i, line in enumerate(lines):
            # same length as numpydoc's "R" + 12 hex digits (it strips that prefix from the
            # label shown); "z" is not a hex digit, so no numpydoc label can be the same
            lines[i] = re.sub(r"\[(R[0-9a-f]{11})[0-9a-f](-[\w.-]+)\](_?)", r"[\1z\2]\3",
                              line)
    labels = [m.group(1) for line in lines
              if (m := re.match(r"\s*\.\. \[([\w.-]+)\]", line))]
    if labels:
        lines += ["", ".. only:: latex", "", "   " + ", ".join(f"[{x}]_" for x in labels), ""]


def setup(app: Any) -> None:
    from pygments.lexers.special import TextLexer

    os.environ.setdefault("MPLBACKEND", "Agg")  # importing the package draws nothing
    write_api_pages()
    write_gallery(write_notebook_figures())
    app.add_lexer("csv", TextLexer)  # the README's CSV example: no Pygments lexer for CSV
    app.connect("autodoc-process-docstring", module_citations, priority=600)
    app.connect("build-finished", check_api_complete)
