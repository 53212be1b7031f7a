"""Backends behind the SageMaker client: ``aws`` is boto3 itself; ``local`` runs the work here."""
