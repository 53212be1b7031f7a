"""Apache Airflow provider for the deep-learning lifecycle on AWS.

Label with Ground Truth, validate data, train on p3dn clusters with EFA, tune, compile with Neo,
serve, and retrain on drift, with the same DAGs running on a laptop through the local backend.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
