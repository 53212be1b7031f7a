"""Operator extra links to the SageMaker console."""
