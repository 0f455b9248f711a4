"""reid-platform: object re-identification experiments on Ray, tracked in MLflow."""

from reid_platform.errors import ReidError

__all__ = ["ReidError", "__version__"]

__version__ = "0.1.0"
