"""Operators: typed arguments in, one SageMaker request out, run by the one job engine."""
