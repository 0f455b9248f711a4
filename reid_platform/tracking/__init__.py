"""MLflow only: the run layout of DESIGN.md, artifact logging and fetching, the model registry."""
