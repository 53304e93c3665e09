"""Fault injection without hooks in the product: a ``sitecustomize`` module, put on a
worker's PYTHONPATH, that replaces one function of a product module right after that
module is executed (before anything imports the name from it)."""

from __future__ import annotations

from pathlib import Path

_TEMPLATE = """
import importlib.abc, importlib.util, sys

{wrapper}

class _Inject(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != {module!r}:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            setattr(module, {attr!r}, wrap(getattr(module, {attr!r})))

        spec.loader.exec_module = exec_module
        return spec

sys.meta_path.insert(0, _Inject())
"""


def write_sitecustomize(folder: Path, *, module: str, attr: str, wrapper: str) -> Path:
    """Write ``folder/sitecustomize.py`` that replaces ``module.attr`` with
    ``wrap(original)``; ``wrapper`` is source code defining ``wrap``. Returns the folder,
    for PYTHONPATH."""
    folder.mkdir(parents=True, exist_ok=True)
    text = _TEMPLATE.format(wrapper=wrapper.strip(), module=module, attr=attr)
    (folder / "sitecustomize.py").write_text(text)
    return folder
