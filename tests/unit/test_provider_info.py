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


def test_connection_type_is_declared_for_the_hook() -> None:
    from airflow_dl_provider.hooks.sagemaker import SageMakerJobHook

    (declared,) = [
        c for c in get_provider_info()["connection-types"] if c["connection-type"] == "dl_sagemaker"
    ]

    assert declared["connection-type"] == SageMakerJobHook.conn_type == "dl_sagemaker"
    assert declared["hook-name"] == SageMakerJobHook.hook_name
    assert _import_object(declared["hook-class-name"]) is SageMakerJobHook
    assert set(declared["conn-fields"]) == {"backend", "endpoint_url", "local_home"}
    assert declared["conn-fields"]["backend"]["schema"]["enum"] == ["aws", "local"]
    # The same form for Airflow 2.11-3.1, which read the hook's own methods instead.
    behaviour = SageMakerJobHook.get_ui_field_behaviour()
    assert behaviour["hidden_fields"] == declared["ui-field-behaviour"]["hidden-fields"]
    assert behaviour["relabeling"] == declared["ui-field-behaviour"]["relabeling"]


def test_provider_info_passes_airflows_schema() -> None:
    import json

    import jsonschema

    schema_path = Path(importlib.import_module("airflow").__file__).parent / "provider_info.schema.json"

    jsonschema.validate(get_provider_info(), json.loads(schema_path.read_text()))


def test_documentation_url_agrees_with_the_package_metadata() -> None:
    urls = importlib.metadata.metadata(DISTRIBUTION).get_all("Project-URL") or []
    documentation = [
        u.split(",", 1)[1].strip() for u in urls if u.split(",", 1)[0].strip() == "Documentation"
    ]

    assert documentation == [get_provider_info()["documentation-url"]]


def test_airflow_lists_the_connection_type_with_its_form() -> None:
    from airflow.providers_manager import ProvidersManager

    manager = ProvidersManager()
    hook = manager.hooks["dl_sagemaker"]

    assert hook is not None
    assert hook.hook_class_name == "airflow_dl_provider.hooks.sagemaker.SageMakerJobHook"
    assert hook.connection_testable
    assert hook.connection_id_attribute_name == "aws_conn_id"
    assert {"extra__dl_sagemaker__backend", "extra__dl_sagemaker__endpoint_url"} <= set(
        manager.connection_form_widgets
    )
    assert "host" in manager.field_behaviours["dl_sagemaker"]["hidden_fields"]


def test_the_ui_plugin_is_an_entry_point_plugin() -> None:
    (entry_point,) = [
        ep
        for ep in importlib.metadata.entry_points(group="airflow.plugins")
        if ep.dist and ep.dist.name == DISTRIBUTION
    ]
    plugin = entry_point.load()

    assert plugin.name == "deep_learning"
    # Not also in provider info: with lazy_discover_providers = False Airflow would load it twice.
    assert "plugins" not in get_provider_info()


def test_airflow_providers_hooks_lists_the_connection_type() -> None:
    import json
    import os
    import subprocess
    import sys

    airflow = Path(sys.executable).parent / "airflow"
    listed = subprocess.run(
        [str(airflow), "providers", "hooks", "--output", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=os.environ.copy(),
        check=True,
    )
    rows = json.loads(listed.stdout[listed.stdout.index("[") :])

    (row,) = [r for r in rows if r["connection_type"] == "dl_sagemaker"]
    assert row["class"] == "airflow_dl_provider.hooks.sagemaker.SageMakerJobHook"
    assert row["package_name"] == DISTRIBUTION
    assert row["hook_name"] == "Deep Learning on SageMaker"
