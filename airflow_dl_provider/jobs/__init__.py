"""The one job engine: every SageMaker job kind is a row in :mod:`.kinds`, run by :mod:`.engine`."""
