"""Label Studio behind the labeling contract: its REST API, its label configs, its export. Pure.

No Airflow import: the hook builds :class:`~.api.LabelStudioClient` from a connection, the local
backend's simulated workforce builds one from the local server's record, and the conversion to a
Ground Truth output manifest (:mod:`.export`) is unit-tested alone.
"""
