"""Lazy re-exports: a package lists what its submodules export, and a submodule loads on first use.

The operators import ``drift`` and ``manifests`` while a DAG file is parsed; numpy and the manifest
readers have no business loading then (tests/unit/test_parse_light.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


class LazyExports:
    """The names a package re-exports, by submodule; :meth:`load` is the package's ``__getattr__``.

    :param package: the package's ``__name__``.
    :param exports: submodule name -> the names it exports.
    """

    def __init__(self, package: str, exports: Mapping[str, Sequence[str]]) -> None:
        self.package = package
        self.module_of = {name: module for module, names in exports.items() for name in names}

    @property
    def names(self) -> list[str]:
        """The package's ``__all__``."""
        return sorted(self.module_of)

    def load(self, name: str) -> Any:
        if name not in self.module_of:
            raise AttributeError(f"module {self.package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{self.package}.{self.module_of[name]}"), name)
