"""The sparse steps of k-reciprocal re-ranking: reciprocal sets, weights, expansion, Jaccard.

Each step is the classic algorithm's (Zhong et al., CVPR'17; notes §3.4) with its dense N × N
matrices replaced by sparse ones: every row of V has only its k-reciprocal expansion set
(a few dozen entries), and the Jaccard sums only run over pairs that share a nonzero column.
"""

from collections.abc import Iterator

import numpy as np
import torch
from scipy.sparse import csc_matrix, csr_matrix

PAIRS_PER_CHUNK = 1 << 23
"""(query, gallery, column) triples expanded at once in the Jaccard sums (~200 MB of arrays)."""
OUTPUT_ENTRIES = 1 << 23
"""Query × gallery sums held at once (64 MB of float64)."""


def _neighbour_matrix(ranks: np.ndarray, width: int, value: float = 1.0) -> csr_matrix:
    """(n, n) matrix with `value` at (i, ranks[i, t]) for t < width."""
    n = ranks.shape[0]
    cols = ranks[:, :width]
    rows = np.repeat(np.arange(n), cols.shape[1])
    data = np.full(cols.size, value, dtype=np.float32)
    return csr_matrix((data, (rows, cols.ravel())), shape=(n, n))


def _reciprocal(ranks: np.ndarray, width: int) -> csr_matrix:
    """1 at (i, j) when j is among the `width` nearest of i and i among the `width` nearest of j."""
    forward = _neighbour_matrix(ranks, width)
    return csr_matrix(forward.multiply(forward.T))


def reciprocal_expansion(ranks: np.ndarray, k1: int) -> csr_matrix:
    """(n, K) nearest-first neighbour lists → (n, n) pattern of each row's expanded set.

    R(i) = k-reciprocal neighbours of i within the k1 + 1 nearest; for every c in R(i) whose
    round(k1/2)-reciprocal set H(c) shares more than 2/3 of its members with R(i), H(c) is
    added (classic `k_reciprocal_expansion_index`).
    """
    reciprocal = _reciprocal(ranks, k1 + 1)
    half = _reciprocal(ranks, int(np.around(k1 / 2.0)) + 1)
    half_sizes = np.diff(half.indptr)
    # overlap[i, c] = |H(c) ∩ R(i)|, kept only for c ∈ R(i).
    overlap = csr_matrix((reciprocal @ half.T).multiply(reciprocal))
    overlap.eliminate_zeros()
    counts = overlap.data
    qualifies = counts > 2.0 / 3 * half_sizes[overlap.indices]  # same float test as the classic
    chosen = csr_matrix(
        (qualifies.astype(np.float32), overlap.indices, overlap.indptr), shape=overlap.shape
    )
    chosen.eliminate_zeros()
    expansion = csr_matrix(reciprocal + chosen @ half)
    expansion.data[:] = 1.0
    expansion.sort_indices()
    return expansion


def weight_matrix(pattern: csr_matrix, scaled_distances: np.ndarray) -> csr_matrix:
    """V: row-wise softmax of −(d²/row max) over each row's expanded set.

    pattern: (n, n) expansion pattern; scaled_distances: (nnz,) float32 d_ij² / max_j d_ij²,
    aligned with `pattern.indices`. Returns (n, n) float32 CSR.
    """
    weights = np.exp(-scaled_distances.astype(np.float32))
    row_sums = np.add.reduceat(weights, pattern.indptr[:-1]) if len(weights) else weights
    lengths = np.diff(pattern.indptr)
    weights /= np.repeat(row_sums, lengths)
    return csr_matrix((weights, pattern.indices, pattern.indptr), shape=pattern.shape)


def expand_over_neighbours(weights: csr_matrix, ranks: np.ndarray, k2: int) -> csr_matrix:
    """V_qe[i] = mean of V over the k2 nearest rows of i (classic local query expansion)."""
    width = min(k2, ranks.shape[1])
    mean = _neighbour_matrix(ranks, width, 1.0 / width)
    return csr_matrix(mean @ weights, dtype=np.float32)


def _row_chunks(query_rows: csr_matrix, gallery_cols: csc_matrix) -> list[slice]:
    """Split the query rows so each chunk expands at most PAIRS_PER_CHUNK triples and holds at
    most OUTPUT_ENTRIES sums."""
    max_rows = max(1, OUTPUT_ENTRIES // gallery_cols.shape[0])
    col_counts = np.diff(gallery_cols.indptr)
    per_row = np.zeros(query_rows.shape[0], dtype=np.int64)
    np.add.at(
        per_row,
        np.repeat(np.arange(len(per_row)), np.diff(query_rows.indptr)),
        col_counts[query_rows.indices],
    )
    bounds, start, total = [], 0, 0
    for row, count in enumerate(per_row.tolist()):
        if (total + count > PAIRS_PER_CHUNK or row - start >= max_rows) and row > start:
            bounds.append(slice(start, row))
            start, total = row, 0
        total += count
    bounds.append(slice(start, len(per_row)))
    return bounds


def _overlap_sums(query_rows: csr_matrix, gallery_cols: csc_matrix) -> np.ndarray:
    """Σ_l min(V[i, l], V[j, l]) for query rows i of V (r, n) and gallery rows j of V (CSC
    (g, n)) → (r, g) float64; only pairs sharing a nonzero column l contribute."""
    r, g = query_rows.shape[0], gallery_cols.shape[0]
    entry_rows = np.repeat(np.arange(r), np.diff(query_rows.indptr))
    starts = gallery_cols.indptr[query_rows.indices].astype(np.int64)
    counts = gallery_cols.indptr[query_rows.indices + 1] - starts
    owner = np.repeat(np.arange(len(counts)), counts)
    positions = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(counts.sum())
    values = np.minimum(query_rows.data[owner], gallery_cols.data[positions])
    keys = entry_rows[owner] * g + gallery_cols.indices[positions]
    return np.bincount(keys, weights=values, minlength=r * g).reshape(r, g)


def jaccard_rows(
    weights: csr_matrix, num_query: int, scale: float = 1.0
) -> Iterator[tuple[slice, np.ndarray]]:
    """Yield (query rows, (r, g) float32 `scale` × Jaccard distances 1 − Σmin / (2 − Σmin))
    between the V rows of the queries and of the gallery (the last n − num_query rows).

    The sums go to float32 at once (as the classic accumulates them) and the rest is computed
    in place: whole-block float64 temporaries would cost more than the sums themselves.
    """
    gallery_cols = csc_matrix(weights[num_query:])
    query_rows = csr_matrix(weights[:num_query])
    for rows in _row_chunks(query_rows, gallery_cols):
        # torch: its elementwise ops are threaded, numpy's are not.
        sums = torch.from_numpy(_overlap_sums(query_rows[rows], gallery_cols)).float()
        denominator = torch.sub(2.0, sums)
        # 1 − s / (2 − s) = 2 (1 − s) / (2 − s)
        sums.neg_().add_(1.0).mul_(2.0 * scale).div_(denominator)
        yield rows, sums.numpy()
