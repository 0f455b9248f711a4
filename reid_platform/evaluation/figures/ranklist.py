"""Rank-list images: a query thumbnail followed by its top-k gallery images.

Each chosen query gives one PNG: the query (blue border) and then its top-k gallery images in
rank order, after the Market-1501 junk removal (gallery items with the query's pid *and* camera
are dropped), with a green border on matches (same pid) and a red one otherwise. A caption under
every tile gives the rank, ``pid/c<camid>`` and the distance (the query's caption gives its AP).
Queries are the worst and the best by average precision, so a report shows both failure modes
and successes. Images are composed with PIL alone, which is far faster than a plotting library.

Layout (all sizes in pixels; ``thumb_size`` is ``(height, width)`` like a model's input size):
``MARGIN`` around the whole image, tiles of ``width + 2 * BORDER`` by
``height + 2 * BORDER + CAPTION_HEIGHT``, ``GAP`` between gallery tiles and ``QUERY_GAP`` between
the query and the first gallery tile.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from reid_platform.errors import EvaluationError

__all__ = [
    "BORDER",
    "CAPTION_HEIGHT",
    "GAP",
    "MARGIN",
    "MATCH_COLOUR",
    "MISMATCH_COLOUR",
    "PLACEHOLDER_COLOUR",
    "QUERY_COLOUR",
    "QUERY_GAP",
    "per_query_average_precision",
    "rank_list_size",
    "save_rank_lists",
    "select_rank_list_queries",
    "top_k_gallery",
]

_LOG = logging.getLogger(__name__)

BORDER = 4
GAP = 4
QUERY_GAP = 16
MARGIN = 6
CAPTION_HEIGHT = 26

QUERY_COLOUR = (40, 90, 220)
MATCH_COLOUR = (0, 170, 0)
MISMATCH_COLOUR = (220, 0, 0)
PLACEHOLDER_COLOUR = (128, 128, 128)
_BACKGROUND = (255, 255, 255)
_TEXT_COLOUR = (0, 0, 0)

Colour = tuple[int, int, int]
_Font = ImageFont.ImageFont | ImageFont.FreeTypeFont | ImageFont.TransposedFont


def per_query_average_precision(
    average_precision: np.ndarray, valid_queries: np.ndarray, num_queries: int
) -> np.ndarray:
    """Scatter per-valid-query AP into a per-query array, NaN for skipped queries.

    average_precision: (num_valid,) AP per evaluated query (``RankingResult.average_precision``).
    valid_queries: (num_valid,) int indices of those queries (``RankingResult.valid_queries``).
    Returns (num_queries,) float64.
    """
    if average_precision.shape != valid_queries.shape:
        raise EvaluationError(
            f"average_precision has shape {average_precision.shape} but valid_queries has "
            f"shape {valid_queries.shape}."
        )
    per_query = np.full(num_queries, np.nan, dtype=np.float64)
    per_query[valid_queries] = average_precision
    return per_query


def select_rank_list_queries(
    average_precision: np.ndarray, num_queries: int
) -> tuple[list[int], list[int]]:
    """The worst and best queries by AP, skipping NaN (queries without a match).

    average_precision: (q,) AP per query, NaN for skipped queries.
    Returns (worst, best) query indices: ``num_queries // 2`` worst in ascending AP, then
    ``num_queries - num_queries // 2`` best in descending AP. A query is never in both lists:
    with fewer valid queries than num_queries, all are shown, the lower half as worst and the
    rest as best. Equal APs are ordered by query index.
    """
    valid = np.flatnonzero(np.isfinite(average_precision))
    ascending = valid[np.argsort(average_precision[valid], kind="stable")]
    num_worst = min(num_queries // 2, valid.size // 2)
    worst = ascending[:num_worst]
    rest = ascending[num_worst:]
    descending = rest[np.argsort(-average_precision[rest], kind="stable")]
    best = descending[: num_queries - num_queries // 2]
    return [int(i) for i in worst], [int(i) for i in best]


def top_k_gallery(
    distances: np.ndarray,
    q_pid: int,
    q_camid: int,
    g_pids: np.ndarray,
    g_camids: np.ndarray,
    top_k: int,
) -> np.ndarray:
    """Gallery indices of the top-k of one query after junk removal, nearest first.

    distances: (g,) distances of the query to the gallery; g_pids, g_camids: (g,).
    Returns (min(top_k, kept),) int64 gallery indices; ties are ordered by gallery index.
    Only the candidates up to the k-th distance are sorted (argpartition), not the whole row.
    """
    kept = np.flatnonzero(~((g_pids == q_pid) & (g_camids == q_camid)))
    kept_distances = distances[kept]
    if kept.size > top_k:
        kth = np.partition(kept_distances, top_k - 1)[top_k - 1]
        # Keep every tie of the k-th distance so the stable sort below decides them by index.
        candidates = np.flatnonzero(kept_distances <= kth)
        kept, kept_distances = kept[candidates], kept_distances[candidates]
    order = np.argsort(kept_distances, kind="stable")[:top_k]
    return kept[order].astype(np.int64)


def rank_list_size(num_shown: int, thumb_size: tuple[int, int]) -> tuple[int, int]:
    """(width, height) in pixels of a rank-list image showing the query and num_shown items."""
    height, width = thumb_size
    tile_width = width + 2 * BORDER
    tile_height = height + 2 * BORDER + CAPTION_HEIGHT
    gallery_width = num_shown * tile_width + max(num_shown - 1, 0) * GAP
    total_width = 2 * MARGIN + tile_width + (QUERY_GAP + gallery_width if num_shown else 0)
    return total_width, 2 * MARGIN + tile_height


def save_rank_lists(
    distmat: np.ndarray,
    q_paths: Sequence[str | PathLike[str]],
    g_paths: Sequence[str | PathLike[str]],
    q_pids: np.ndarray,
    g_pids: np.ndarray,
    q_camids: np.ndarray,
    g_camids: np.ndarray,
    average_precision_per_query: np.ndarray,
    out_dir: str | PathLike[str],
    *,
    num_queries: int = 8,
    top_k: int = 10,
    thumb_size: tuple[int, int] = (128, 64),
) -> list[Path]:
    """Write rank-list PNGs of the worst and best queries by AP; return their paths.

    distmat: (q, g) distances, smaller = more similar. q_paths, q_pids, q_camids: (q,);
    g_paths, g_pids, g_camids: (g,). average_precision_per_query: (q,) AP, NaN for skipped
    queries (see `per_query_average_precision`), which are never chosen.
    Files are ``worst_<rank>_q<index>.png`` (rank 1 = lowest AP) and ``best_<rank>_q<index>.png``
    (rank 1 = highest AP) in out_dir, worst first. thumb_size is (height, width).
    An image that cannot be read (missing, corrupt) is drawn as a grey placeholder with a logged
    warning: one bad file must not sink a whole evaluation report.
    Returns [] when no query has a finite AP.
    """
    inputs = _RankListInputs(
        distmat, q_paths, g_paths, q_pids, g_pids, q_camids, g_camids, average_precision_per_query
    )
    if top_k < 1 or num_queries < 0:
        raise EvaluationError(f"top_k={top_k} must be ≥ 1 and num_queries={num_queries} ≥ 0.")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    worst, best = select_rank_list_queries(average_precision_per_query, num_queries)
    thumbnails = _ThumbnailCache(thumb_size)
    font = ImageFont.load_default()
    written: list[Path] = []
    for prefix, chosen in (("worst", worst), ("best", best)):
        for rank, query in enumerate(chosen, start=1):
            path = out / f"{prefix}_{rank}_q{query}.png"
            inputs.render(query, top_k, thumbnails, font).save(path, format="PNG")
            written.append(path)
    return written


@dataclass(frozen=True)
class _RankListInputs:
    """The arrays save_rank_lists was given, checked against each other once."""

    distmat: np.ndarray
    q_paths: Sequence[str | PathLike[str]]
    g_paths: Sequence[str | PathLike[str]]
    q_pids: np.ndarray
    g_pids: np.ndarray
    q_camids: np.ndarray
    g_camids: np.ndarray
    average_precision: np.ndarray

    def __post_init__(self) -> None:
        """Raise EvaluationError naming the first array whose size disagrees with distmat."""
        if self.distmat.ndim != 2:
            raise EvaluationError(f"distmat must be 2-D (q, g), got shape {self.distmat.shape}.")
        num_query, num_gallery = self.distmat.shape
        sizes = {
            "q_paths": (len(self.q_paths), num_query),
            "q_pids": (len(self.q_pids), num_query),
            "q_camids": (len(self.q_camids), num_query),
            "average_precision_per_query": (len(self.average_precision), num_query),
            "g_paths": (len(self.g_paths), num_gallery),
            "g_pids": (len(self.g_pids), num_gallery),
            "g_camids": (len(self.g_camids), num_gallery),
        }
        for name, (size, expected) in sizes.items():
            if size != expected:
                raise EvaluationError(
                    f"{name} has {size} entries but distmat of shape {self.distmat.shape} "
                    f"needs {expected}."
                )

    def render(
        self, query: int, top_k: int, thumbnails: "_ThumbnailCache", font: _Font
    ) -> Image.Image:
        """The rank-list image of one query: its tile, then its top-k gallery tiles."""
        q_pid, q_camid = int(self.q_pids[query]), int(self.q_camids[query])
        caption = (f"Q {q_pid}/c{q_camid}", f"AP {float(self.average_precision[query]):.3f}")
        query_tile = _tile(thumbnails.get(self.q_paths[query]), QUERY_COLOUR, caption, font)
        shown = top_k_gallery(
            self.distmat[query], q_pid, q_camid, self.g_pids, self.g_camids, top_k
        )
        gallery_tiles = []
        for position, index in enumerate(shown, start=1):
            g_pid, g_camid = int(self.g_pids[index]), int(self.g_camids[index])
            caption = (
                f"#{position} {g_pid}/c{g_camid}",
                f"d {float(self.distmat[query, index]):.3f}",
            )
            colour = MATCH_COLOUR if g_pid == q_pid else MISMATCH_COLOUR
            gallery_tiles.append(_tile(thumbnails.get(self.g_paths[index]), colour, caption, font))
        return _compose(query_tile, gallery_tiles, thumbnails.thumb_size)


class _ThumbnailCache:
    """Loads and resizes each image once (a gallery image often recurs across rank lists)."""

    def __init__(self, thumb_size: tuple[int, int]) -> None:
        self.thumb_size = thumb_size
        self._size = (thumb_size[1], thumb_size[0])  # PIL sizes are (width, height)
        self._cache: dict[str, Image.Image] = {}

    def get(self, path: str | PathLike[str]) -> Image.Image:
        key = str(path)
        if key not in self._cache:
            self._cache[key] = self._load(key)
        return self._cache[key]

    def _load(self, path: str) -> Image.Image:
        try:
            with Image.open(path) as image:
                return image.convert("RGB").resize(self._size, Image.Resampling.BILINEAR)
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            _LOG.warning("rank list: cannot read image %s (%s); drawing a placeholder", path, error)
            return Image.new("RGB", self._size, PLACEHOLDER_COLOUR)


def _tile(
    thumbnail: Image.Image, colour: Colour, caption: tuple[str, str], font: _Font
) -> Image.Image:
    """The thumbnail inside a coloured border, with a two-line caption below."""
    width, height = thumbnail.size
    tile = Image.new("RGB", (width + 2 * BORDER, height + 2 * BORDER + CAPTION_HEIGHT), _BACKGROUND)
    tile.paste(colour, (0, 0, width + 2 * BORDER, height + 2 * BORDER))
    tile.paste(thumbnail, (BORDER, BORDER))
    draw = ImageDraw.Draw(tile)
    top = height + 2 * BORDER + 1
    draw.text((1, top), caption[0], fill=_TEXT_COLOUR, font=font)
    draw.text((1, top + CAPTION_HEIGHT // 2), caption[1], fill=_TEXT_COLOUR, font=font)
    return tile


def _compose(
    query_tile: Image.Image, gallery_tiles: list[Image.Image], thumb_size: tuple[int, int]
) -> Image.Image:
    """Query tile, a wider gap, then the gallery tiles left to right."""
    canvas = Image.new("RGB", rank_list_size(len(gallery_tiles), thumb_size), _BACKGROUND)
    canvas.paste(query_tile, (MARGIN, MARGIN))
    x = MARGIN + query_tile.width + QUERY_GAP
    for tile in gallery_tiles:
        canvas.paste(tile, (x, MARGIN))
        x += tile.width + GAP
    return canvas
