"""Writing an imported FastReID checkpoint as our model file (see `modeling.model_file`)."""

from pathlib import Path

from reid_platform.modeling.fastreid_import.convert import ImportReport
from reid_platform.modeling.model_file import save_model_file


def save_imported_model(report: ImportReport, out: Path) -> Path:
    """Write `report`'s model to `out` in our model-file format; returns `out`."""
    accounting = report.accounting
    source = {
        "format": "fastreid",
        "path": report.source,
        "layout": report.layout.value,
        "architecture": report.architecture.value,
        "placed_keys": len(accounting.placed),
        "validated_keys": list(accounting.validated),
        "notes": list(report.notes),
        "other_entries": list(report.other_entries),
    }
    return save_model_file(
        report.model,
        config=report.config,
        num_classes=report.num_classes,
        source=source,
        out=out,
    )
