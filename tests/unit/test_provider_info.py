"""Provider metadata: one version (``__version__``), every listed module importable, found by Airflow."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path
from typing import Any

import airflow_dl_provider
from airflow_dl_provider.get_provider_info import get_provider_info

DISTRIBUTION = "airflow-dl-provider"
PACKAGE_DIR = Path(airflow_dl_provider.__file__).parent
# Sections of provider info whose entries name modules (``python-modules``) of one role folder.
MODULE_SECTIONS = {"operators": "operators", "sensors": "sensors", "hooks": "hooks", "triggers": "triggers"}


def _import_object(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _listed_modules(info: dict[str, Any]) -> list[str]:
    return [
        module
        for section in (*MODULE_SECTIONS, "notifications", "bundles")
        for entry in info.get(section, [])
        for module in (entry.get("python-modules", []) if isinstance(entry, dict) else [])
    ]


def _listed_classes(info: dict[str, Any]) -> list[str]:
    classes = list(info.get("extra-links", [])) + list(info.get("hook-class-names", []))
    classes += [c["hook-class-name"] for c in info.get("connection-types", [])]
    classes += [c["class-name"] for c in info.get("task-decorators", [])]
    classes += [p["plugin-class"] for p in info.get("plugins", [])]
    return classes


def test_version_has_one_source() -> None:
    info = get_provider_info()

    assert info["package-name"] == DISTRIBUTION
    assert info["versions"][0] == airflow_dl_provider.__version__
    assert importlib.metadata.version(DISTRIBUTION) == airflow_dl_provider.__version__


def test_every_listed_module_imports() -> None:
    modules = _listed_modules(get_provider_info())

    assert modules
    for module in modules:
        importlib.import_module(module)


def test_every_listed_class_imports() -> None:
    classes = _listed_classes(get_provider_info())

    assert "airflow_dl_provider.links.console.SageMakerJobLink" in classes
    for path in classes:
        assert isinstance(_import_object(path), type), path


def test_integration_names_are_declared() -> None:
    info = get_provider_info()
    declared = {i["integration-name"] for i in info["integrations"]}

    for section in MODULE_SECTIONS:
        for entry in info.get(section, []):
            assert entry["integration-name"] in declared, (section, entry)


def test_every_role_module_is_listed() -> None:
    listed = set(_listed_modules(get_provider_info()))

    for section, folder in MODULE_SECTIONS.items():
        for path in sorted((PACKAGE_DIR / folder).glob("*.py")):
            if path.stem in ("__init__", "base"):
                continue
            module = f"airflow_dl_provider.{folder}.{path.stem}"
            assert module in listed, f"{section}: {module} is not in get_provider_info()"


def test_entry_point_resolves_to_get_provider_info() -> None:
    entry_points = [
        ep
        for ep in importlib.metadata.entry_points(group="apache_airflow_provider")
        if ep.dist is not None and ep.dist.name == DISTRIBUTION
    ]

    assert len(entry_points) == 1
    assert entry_points[0].load() is get_provider_info


def test_airflow_providers_manager_registers_the_provider() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    provider = manager.providers[DISTRIBUTION]

    assert provider.version == airflow_dl_provider.__version__
    assert "airflow_dl_provider.links.console.SageMakerJobLink" in manager.extra_links_class_names
