"""Importing FastReID checkpoints (current, intermediate and v0.1.1 model-zoo key layouts;
Baseline and MGN) into our models, and our `model.pt` file format.

    report = import_fastreid_checkpoint(Path("market_sbs_R50-ibn.pth"), config)
    save_imported_model(report, Path("model.pt"))
    loaded = load_model_file(Path("model.pt"))
"""

from reid_platform.modeling.fastreid_import.accounting import (
    KeyAccounting,
    MismatchedKey,
    PlacedKey,
    UnplacedKey,
)
from reid_platform.modeling.fastreid_import.convert import (
    ImportReport,
    PartialLoadError,
    import_fastreid_checkpoint,
    import_fastreid_state_dict,
)
from reid_platform.modeling.fastreid_import.layouts import (
    Architecture,
    CheckpointLayout,
    detect_architecture,
    detect_layout,
    read_fastreid_checkpoint,
)
from reid_platform.modeling.fastreid_import.model_file import save_imported_model
from reid_platform.modeling.model_file import LoadedModel, load_model_file

__all__ = [
    "Architecture",
    "CheckpointLayout",
    "ImportReport",
    "KeyAccounting",
    "LoadedModel",
    "MismatchedKey",
    "PartialLoadError",
    "PlacedKey",
    "UnplacedKey",
    "detect_architecture",
    "detect_layout",
    "import_fastreid_checkpoint",
    "import_fastreid_state_dict",
    "load_model_file",
    "read_fastreid_checkpoint",
    "save_imported_model",
]
