"""A faiss index over a gallery of millions: exact (flat), IVF-Flat and IVF-PQ search.

`GalleryIndex` speaks our distance units: faiss scores come back converted to the
`DistanceMetric` the index was built for, smaller = more similar, so its output feeds
`evaluate_top_k` (in `retrieval_metrics`) the same way a distance matrix feeds the ranking
metrics. Cosine is searched as an inner product on L2-normalised features (distance
1 − q̂·ĝ); both euclidean metrics are searched as L2 (faiss returns ‖q−g‖², `euclidean`
takes its square root). Each kind has its own spec (a variant selects its own parameters):

- `FlatSpec`: exact brute force, the reference the approximate kinds are measured against.
- `IvfFlatSpec`: the gallery is split into `nlist` k-means cells; a query scans the
  `nprobe` nearest cells exactly. `nprobe == nlist` is exact again.
- `IvfPqSpec`: as IVF-Flat, but vectors are stored as `m` sub-quantiser codes of `bits`
  bits each (m·bits/8 bytes a vector instead of 4·d), so distances are approximate too.

IVF kinds are trained (k-means, and PQ codebooks) on a random sample of the gallery; vectors
are added in chunks so that the normalised copy cosine needs never exists whole.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import faiss
import numpy as np

from reid_platform.errors import EvaluationError
from reid_platform.evaluation.distances import DISTANCE_METRICS, DistanceMetric, l2_normalize

ADD_CHUNK_ROWS = 65_536
"""Gallery rows converted and added per step: 64 MB of 256-d float32, a bound and still fast."""


@dataclass(frozen=True)
class FlatSpec:
    """Exact search: every query is compared with every gallery vector."""


@dataclass(frozen=True)
class IvfFlatSpec:
    """Inverted file of `nlist` k-means cells, `nprobe` of them scanned exactly per query.

    The k-means runs on at most `nlist · train_points_per_list` sampled gallery vectors
    (faiss advises 39 to 256 points a cell; at least `nlist` are needed).
    """

    nlist: int = 1024
    nprobe: int = 16
    train_points_per_list: int = 64


@dataclass(frozen=True)
class IvfPqSpec:
    """Inverted file with product-quantised vectors: `m` sub-quantisers of `bits` bits each.

    `m` must divide the feature dimension; a stored vector takes `m · bits / 8` bytes.
    Training samples `max(nlist, 2**bits) · train_points_per_list` vectors (the PQ codebooks
    have 2**bits centroids each); at least `max(nlist, 2**bits)` are needed.
    """

    nlist: int = 1024
    nprobe: int = 16
    m: int = 32
    bits: int = 8
    train_points_per_list: int = 64


IndexSpec = FlatSpec | IvfFlatSpec | IvfPqSpec

BLAS_QUERY_THRESHOLD = 20
"""Query batches at least this large get exact distances through BLAS (faiss's old default)."""


@contextmanager
def _blas_distances() -> Iterator[None]:
    """Route faiss's exact distance batches (flat search, IVF assignment) through BLAS.

    faiss 1.15 uses BLAS only from 128,000 queries on; below, its SIMD loop was 5-10x slower
    than BLAS on a 2-core host. The threshold is faiss's process-wide setting, so it is
    restored on exit (not safe against concurrent faiss calls from other threads).
    """
    previous = faiss.cvar.distance_compute_blas_threshold
    faiss.cvar.distance_compute_blas_threshold = BLAS_QUERY_THRESHOLD
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_threshold = previous


def _faiss_metric(metric: DistanceMetric) -> int:
    if metric not in DISTANCE_METRICS:
        raise EvaluationError(f"unknown distance {metric!r}; choose one of {DISTANCE_METRICS}")
    return faiss.METRIC_INNER_PRODUCT if metric == "cosine" else faiss.METRIC_L2


def _check_spec(spec: IndexSpec, dim: int) -> None:
    if isinstance(spec, FlatSpec):
        return
    if spec.nlist < 1 or not 1 <= spec.nprobe <= spec.nlist:
        raise EvaluationError(
            f"IVF index needs nlist >= 1 and 1 <= nprobe <= nlist; got nlist={spec.nlist}, "
            f"nprobe={spec.nprobe}"
        )
    if spec.train_points_per_list < 1:
        raise EvaluationError(
            f"train_points_per_list must be >= 1; got {spec.train_points_per_list}"
        )
    if isinstance(spec, IvfPqSpec):
        if spec.m < 1 or dim % spec.m != 0:
            raise EvaluationError(
                f"IVF-PQ sub-quantiser count m={spec.m} must divide the feature dimension {dim}"
            )
        if not 1 <= spec.bits <= 16:
            raise EvaluationError(f"IVF-PQ bits must be in 1..16; got {spec.bits}")


def _factory_string(spec: IndexSpec) -> str:
    if isinstance(spec, FlatSpec):
        return "Flat"
    if isinstance(spec, IvfFlatSpec):
        return f"IVF{spec.nlist},Flat"
    return f"IVF{spec.nlist},PQ{spec.m}x{spec.bits}"


def _centroids(spec: IvfFlatSpec | IvfPqSpec) -> int:
    """The most centroids one k-means of training fits: IVF cells, or one PQ codebook."""
    return max(spec.nlist, 2**spec.bits) if isinstance(spec, IvfPqSpec) else spec.nlist


def _spec_of(index: faiss.Index) -> IndexSpec:
    """The spec of a faiss index read from a file (only the kinds we build)."""
    if isinstance(index, faiss.IndexFlat):
        return FlatSpec()
    if isinstance(index, faiss.IndexIVFPQ):
        return IvfPqSpec(nlist=index.nlist, nprobe=index.nprobe, m=index.pq.M, bits=index.pq.nbits)
    if isinstance(index, faiss.IndexIVFFlat):
        return IvfFlatSpec(nlist=index.nlist, nprobe=index.nprobe)
    raise EvaluationError(f"index file holds a {type(index).__name__}, not a flat or IVF index")


class GalleryIndex:
    """A faiss index of gallery features searched in `metric` units.

    Build one with `GalleryIndex.build(gallery, metric=..., spec=...)`, or construct it empty
    and call `train` (IVF kinds) and `add` yourself to stream a gallery that does not fit in
    memory. Gallery ids are the order of addition (0, 1, ...).
    """

    def __init__(self, *, dim: int, metric: DistanceMetric, spec: IndexSpec | None = None) -> None:
        spec = FlatSpec() if spec is None else spec
        if dim < 1:
            raise EvaluationError(f"feature dimension must be >= 1; got {dim}")
        _check_spec(spec, dim)
        self._index = faiss.index_factory(dim, _factory_string(spec), _faiss_metric(metric))
        if not isinstance(spec, FlatSpec):
            faiss.extract_index_ivf(self._index).nprobe = spec.nprobe
        if isinstance(self._index, faiss.IndexIVFPQ):
            # Polysemous training (a codebook annealing for Hamming pre-filtering, which we never
            # use) took 23 of 25 s of an IVF64,PQ16x6 train here; faiss's stubs lack the field.
            self._index.do_polysemous_training = False  # type: ignore[attr-defined]
        self._metric: DistanceMetric = metric
        self._spec = spec

    @classmethod
    def build(
        cls,
        gallery: np.ndarray,
        *,
        metric: DistanceMetric,
        spec: IndexSpec | None = None,
        seed: int = 0,
    ) -> "GalleryIndex":
        """Index (g, d) gallery features: train on a sample (IVF kinds), then add all in chunks."""
        gallery = _as_features(gallery, "gallery")
        index = cls(dim=gallery.shape[1], metric=metric, spec=spec)
        if not index.is_trained:
            index.train(gallery, seed=seed)
        index.add(gallery)
        return index

    @property
    def metric(self) -> DistanceMetric:
        return self._metric

    @property
    def spec(self) -> IndexSpec:
        return self._spec

    @property
    def dim(self) -> int:
        return int(self._index.d)

    @property
    def ntotal(self) -> int:
        """Number of gallery vectors added so far."""
        return int(self._index.ntotal)

    @property
    def is_trained(self) -> bool:
        return bool(self._index.is_trained)

    def train(self, features: np.ndarray, *, seed: int = 0) -> None:
        """Train the IVF cells (and PQ codebooks) on a random sample of (n, d) `features`.

        The sample size is set by the spec; flat indexes need no training and ignore this call.
        """
        features = self._checked(features, "training")
        spec = self._spec
        if isinstance(spec, FlatSpec):
            return
        centroids = _centroids(spec)
        if len(features) < centroids:
            raise EvaluationError(
                f"{len(features)} training vectors are too few for {_factory_string(spec)}: "
                f"it needs at least {centroids} (one per IVF list and per PQ centroid)"
            )
        size = min(len(features), centroids * spec.train_points_per_list)
        rows = np.sort(np.random.default_rng(seed).choice(len(features), size, replace=False))
        with _blas_distances():
            self._index.train(self._converted(features[rows]))

    def add(self, features: np.ndarray, *, chunk_rows: int = ADD_CHUNK_ROWS) -> None:
        """Append (n, d) gallery features; their ids continue from `ntotal`."""
        features = self._checked(features, "gallery")
        if chunk_rows < 1:
            raise EvaluationError(f"chunk_rows must be >= 1; got {chunk_rows}")
        if not self.is_trained:
            raise EvaluationError(f"the {_factory_string(self._spec)} index must be trained first")
        with _blas_distances():
            for start in range(0, len(features), chunk_rows):
                self._index.add(self._converted(features[start : start + chunk_rows]))

    def set_nprobe(self, nprobe: int) -> None:
        """Scan `nprobe` cells per query from now on (IVF kinds; a search-time trade-off)."""
        spec = self._spec
        if isinstance(spec, FlatSpec):
            raise EvaluationError("nprobe applies to IVF indexes only; this index is flat")
        _check_spec(replace(spec, nprobe=nprobe), self.dim)
        faiss.extract_index_ivf(self._index).nprobe = nprobe
        self._spec = replace(spec, nprobe=nprobe)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The k nearest gallery vectors of each of the (q, d) `queries`.

        Returns `(distances, indices)`, both (q, min(k, ntotal)): float32 distances in the
        index's metric, ascending, equal distances ordered by gallery id; int64 gallery ids.
        An IVF search that finds fewer than k vectors in its `nprobe` cells pads its rows with
        id -1 at distance +inf.
        """
        queries = self._checked(queries, "query")
        if k < 1:
            raise EvaluationError(f"search depth k must be >= 1; got {k}")
        if self.ntotal == 0:
            raise EvaluationError("the gallery index is empty; add gallery features first")
        with _blas_distances():
            scores, indices = self._index.search(self._converted(queries), min(k, self.ntotal))
        distances = self._to_distances(scores, indices)
        # faiss orders equal scores arbitrarily; the contract orders them by gallery index.
        order = np.lexsort((indices, distances), axis=-1)
        return (
            np.take_along_axis(distances, order, axis=1),
            np.take_along_axis(indices.astype(np.int64), order, axis=1),
        )

    def save(self, path: str | Path) -> None:
        """Write the index (trained cells, codes, nprobe) to `path` with faiss.write_index."""
        faiss.write_index(self._index, str(path))

    @classmethod
    def load(cls, path: str | Path, *, metric: DistanceMetric) -> "GalleryIndex":
        """Read an index written by `save`; `metric` must be the one it was built for."""
        if not Path(path).is_file():
            raise EvaluationError(f"gallery index file {path} does not exist")
        try:
            index = faiss.read_index(str(path))
        except RuntimeError as error:  # faiss reports an unreadable file as a RuntimeError
            raise EvaluationError(f"gallery index file {path} is not a faiss index") from error
        if index.metric_type != _faiss_metric(metric):
            raise EvaluationError(f"gallery index {path} was not built for the {metric!r} distance")
        loaded = cls.__new__(cls)
        loaded._index, loaded._metric, loaded._spec = index, metric, _spec_of(index)
        return loaded

    def _checked(self, features: np.ndarray, role: str) -> np.ndarray:
        features = _as_features(features, role)
        if features.shape[1] != self.dim:
            raise EvaluationError(
                f"{role} features are {features.shape[1]}-d but the index is {self.dim}-d"
            )
        return features

    def _converted(self, features: np.ndarray) -> np.ndarray:
        """float32 C-contiguous rows as faiss wants them, unit length for cosine."""
        if self._metric == "cosine":
            return l2_normalize(features)
        return np.ascontiguousarray(features, dtype=np.float32)

    def _to_distances(self, scores: np.ndarray, indices: np.ndarray) -> np.ndarray:
        """faiss scores (inner products or ‖q−g‖²) → our distances; missing hits → +inf."""
        if self._metric == "cosine":
            distances = 1.0 - scores
        elif self._metric == "euclidean":
            distances = np.sqrt(np.maximum(scores, 0.0))
        else:
            distances = np.maximum(scores, 0.0)
        distances[indices < 0] = np.inf
        return distances.astype(np.float32, copy=False)


def _as_features(features: np.ndarray, role: str) -> np.ndarray:
    array = np.asarray(features)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise EvaluationError(
            f"{role} features must be a non-empty (n, d) array; got {array.shape}"
        )
    return array
