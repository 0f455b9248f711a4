"""The tracking store every command uses unless told otherwise (DESIGN.md, "Command line")."""

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
