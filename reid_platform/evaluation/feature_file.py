"""The `.npz` exchange file of `reid eval --save-features` and `reid metrics`.

Keys: `q_pids`, `g_pids`, `q_camids`, `g_camids` (integer, (q,) and (g,)), then either
`q_feats` (q, d) and `g_feats` (g, d) or a `distmat` (q, g), used as given. `reid eval` also
stores `q_paths` and `g_paths` (strings) so rank lists can be drawn later. Read with
`allow_pickle=False`: the file holds arrays only, never code.
"""

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.features import FeatureSet

ID_KEYS = ("q_pids", "g_pids", "q_camids", "g_camids")


@dataclass(frozen=True)
class SavedEvaluationInput:
    """Ids and cameras plus either features or a distance matrix, as read from a file."""

    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    q_feats: np.ndarray | None = None
    g_feats: np.ndarray | None = None
    distmat: np.ndarray | None = None


def save_features(path: Path, query: FeatureSet, gallery: FeatureSet) -> Path:
    """Write query and gallery features, ids, cameras and image paths to `path` (.npz)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        q_feats=query.features,
        g_feats=gallery.features,
        q_pids=query.pids,
        g_pids=gallery.pids,
        q_camids=query.camids,
        g_camids=gallery.camids,
        q_paths=np.asarray(query.paths, dtype=str),
        g_paths=np.asarray(gallery.paths, dtype=str),
    )
    return path


def _integer_vector(arrays: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    value = arrays[key]
    if value.ndim != 1 or not np.issubdtype(value.dtype, np.integer):
        raise EvaluationError(
            f"{path}: {key} must be a 1-d integer array, not {value.dtype} of shape {value.shape}"
        )
    return value.astype(np.int64)


def _float_matrix(arrays: dict[str, np.ndarray], key: str, path: Path) -> np.ndarray:
    value = arrays[key]
    if value.ndim != 2 or not np.issubdtype(value.dtype, np.floating):
        raise EvaluationError(
            f"{path}: {key} must be a 2-d float array, not {value.dtype} of shape {value.shape}"
        )
    if not np.isfinite(value).all():
        raise EvaluationError(f"{path}: {key} holds NaN or infinite values")
    return np.ascontiguousarray(value, dtype=np.float32)


def _read_arrays(path: Path) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise EvaluationError(f"feature file {path} does not exist")
    try:
        with np.load(path, allow_pickle=False) as content:
            return {key: content[key] for key in content.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
        raise EvaluationError(f"{path} is not a readable .npz file ({error})") from None


def load_evaluation_input(path: Path) -> SavedEvaluationInput:
    """Read and check a `.npz` file (see the module docstring)."""
    path = Path(path)
    arrays = _read_arrays(path)
    missing = [key for key in ID_KEYS if key not in arrays]
    if missing:
        raise EvaluationError(f"{path} lacks {', '.join(missing)}")
    ids = {key: _integer_vector(arrays, key, path) for key in ID_KEYS}
    num_query, num_gallery = len(ids["q_pids"]), len(ids["g_pids"])
    for key, expected in (("q_camids", num_query), ("g_camids", num_gallery)):
        if len(ids[key]) != expected:
            raise EvaluationError(
                f"{path}: {key} has {len(ids[key])} entries but there are {expected} ids"
            )
    if "q_feats" in arrays and "g_feats" in arrays:
        q_feats = _float_matrix(arrays, "q_feats", path)
        g_feats = _float_matrix(arrays, "g_feats", path)
        if (len(q_feats), len(g_feats)) != (num_query, num_gallery):
            raise EvaluationError(
                f"{path}: q_feats/g_feats have {len(q_feats)}/{len(g_feats)} rows but there are "
                f"{num_query}/{num_gallery} query/gallery ids"
            )
        return SavedEvaluationInput(**ids, q_feats=q_feats, g_feats=g_feats)
    if "distmat" in arrays:
        distmat = _float_matrix(arrays, "distmat", path)
        if distmat.shape != (num_query, num_gallery):
            raise EvaluationError(
                f"{path}: distmat has shape {distmat.shape} but there are "
                f"{num_query} query and {num_gallery} gallery ids"
            )
        return SavedEvaluationInput(**ids, distmat=distmat)
    raise EvaluationError(f"{path} holds neither q_feats and g_feats nor a distmat")
