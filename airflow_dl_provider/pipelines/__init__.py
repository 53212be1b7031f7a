"""Pipeline configs (YAML, checked by pydantic) and the factory that turns each into a DAG."""
