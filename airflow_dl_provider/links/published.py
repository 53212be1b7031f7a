"""What every operator does with its result besides returning it: extra links and OpenLineage.

:class:`PublishedOutputs` is mixed into the operator base classes once. It stores the XCom of every S3
link the operator lists (:func:`~airflow_dl_provider.links.console.persist_result_links`) from the
result of ``execute`` or, after a deferral, ``execute_complete`` (whichever subclass writes them), and
answers OpenLineage's
``get_openlineage_facets_on_complete`` from the same result (:mod:`airflow_dl_provider.lineage`).
An operator declares only its links, and the result fields it reads (``lineage_inputs``).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

from airflow_dl_provider.links.console import persist_result_links

if TYPE_CHECKING:
    from collections.abc import Callable

# What returns a task's result: the first run, and the run resumed after a deferral.
_RESULT_METHODS = ("execute", "execute_complete")


def _published(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def run(self: PublishedOutputs, context: Any, *args: Any, **kwargs: Any) -> Any:
        return self.publish(context, method(self, context, *args, **kwargs))

    run.__published__ = True  # type: ignore[attr-defined]
    return run


class PublishedOutputs:
    """Mixin for operators (before the Airflow base class in the bases)."""

    # Result fields this operator read rather than wrote, beyond lineage.INPUT_RESULT_FIELDS.
    lineage_inputs: ClassVar[frozenset[str]] = frozenset()
    published_result: dict[str, Any] | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # Wrapped where they are written, so a family's own execute is covered without calling
        # anything itself; Airflow's executor safeguard (applied to the class body) stays inside.
        super().__init_subclass__(**kwargs)
        for name in _RESULT_METHODS:
            method = cls.__dict__.get(name)
            if callable(method) and not getattr(method, "__published__", False):
                setattr(cls, name, _published(method))

    def publish(self, context: Any, result: Any) -> Any:
        """Store the result's links and keep it for lineage; return it unchanged."""
        if isinstance(result, dict):
            self.published_result = result
            persist_result_links(self, context, result)
        return result

    def lineage_description(self) -> dict[str, Any] | None:
        """The job's Describe answer, for its S3 inputs and outputs (job operators; others None).

        Asked only by OpenLineage, after the task succeeded: one Describe call, as the Amazon
        provider's operators read theirs.
        """
        name = (self.published_result or {}).get("job_name")
        engine = getattr(self, "engine", None)
        if not name or not callable(engine) or not hasattr(self, "job_kind"):
            return None
        try:
            return engine().describe(str(name))
        except Exception as err:  # lineage must never fail a task that succeeded
            self.log.warning("OpenLineage: cannot describe %s (%s)", name, err)  # type: ignore[attr-defined]
            return None

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """S3 inputs and outputs as datasets, the job's ARN and the model package (see :mod:`..lineage`)."""
        from airflow_dl_provider.lineage import operator_lineage

        result = self.published_result
        if result is None:  # a fresh instance (e.g. the listener's): the task's XCom is the same result
            pulled = task_instance.xcom_pull(task_ids=task_instance.task_id)
            result = pulled if isinstance(pulled, dict) else None
            self.published_result = result
        return operator_lineage(result, self.lineage_description(), self.lineage_inputs)
