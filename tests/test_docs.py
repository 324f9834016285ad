"""The documentation's API reference covers every public name (docs/conf.py).

The Sphinx build itself runs in .ci/run (``sphinx-build -W``); these tests check, without a
build, that the generated API pages hold an entry for every name of every ``__all__``, and
that the build-time check reports a public name that the build did not document.
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("sphinx", reason="sphinx is in the docs extra")

DOCS = Path(__file__).resolve().parent.parent / "docs"


def _conf() -> Any:
    spec = importlib.util.spec_from_file_location("emlesion_docs_conf", DOCS / "conf.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_public_module_has_a_page_with_every_name() -> None:
    conf = _conf()
    # every public module with an __all__ is in the reference (a new one would be appended)
    assert set(conf.public_modules()) <= set(conf.API_MODULES)
    for module_name in conf.API_MODULES:
        page = conf._api_page(module_name)
        for name in importlib.import_module(module_name).__all__:
            entries = [f".. {d}:: {name}\n" for d in
                       ("autoclass", "autoexception", "autofunction", "py:data")]
            assert any(e in page for e in entries), f"{module_name}.{name} has no entry"


def test_the_build_check_reports_an_undocumented_name(caplog: pytest.LogCaptureFixture) -> None:
    conf = _conf()
    documented = {f"{m}.{n}" for m in conf.API_MODULES
                  for n in importlib.import_module(m).__all__}

    def app_with(objects: set[str]) -> Any:
        domain = SimpleNamespace(objects=dict.fromkeys(objects))
        return SimpleNamespace(env=SimpleNamespace(get_domain=lambda name: domain))

    with caplog.at_level(logging.WARNING):
        conf.check_api_complete(app_with(documented), None)
    assert [r for r in caplog.records if "API reference" in r.getMessage()] == []

    with caplog.at_level(logging.WARNING):
        conf.check_api_complete(app_with(documented - {"emlesion.measure.LesionTable"}), None)
    messages = [r.getMessage() for r in caplog.records if "API reference" in r.getMessage()]
    assert messages == ["API reference: emlesion.measure.LesionTable (in __all__) is not "
                        "documented"]
