"""The re-ranking's query pass and gallery-query merge against a dense stable argsort."""

import numpy as np
import pytest
import torch

from reid_platform.evaluation.knn import Neighbours, neighbours_from_distances
from reid_platform.evaluation.rerank_blocks import add_query_neighbours, query_pass
from reid_platform.evaluation.rerank_scores import grouped_top, top_k_stable

METRICS = ["cosine", "euclidean", "euclidean_squared"]


def _dense(x: np.ndarray, y: np.ndarray, metric: str) -> np.ndarray:
    """(n, m) float64 distances, the textbook way."""
    x, y = x.astype(np.float64), y.astype(np.float64)
    if metric == "cosine":
        x = x / np.linalg.norm(x, axis=1, keepdims=True)
        y = y / np.linalg.norm(y, axis=1, keepdims=True)
        return 1.0 - x @ y.T
    squared = np.maximum((x**2).sum(1)[:, None] + (y**2).sum(1)[None] - 2.0 * x @ y.T, 0.0)
    return squared if metric == "euclidean_squared" else np.sqrt(squared)


@pytest.mark.parametrize("metric", METRICS)
def test_query_pass_matches_argsort_over_all_rows(metric: str) -> None:
    rng = np.random.default_rng(0)
    q, g = rng.standard_normal((70, 16)), rng.standard_normal((90, 16))
    q, g = q.astype(np.float32), g.astype(np.float32)
    neighbours, block = query_pass(q, g, metric, 9, "cpu")  # type: ignore[arg-type]
    dense = _dense(q, np.concatenate([q, g]), metric)
    np.testing.assert_allclose(block, dense[:, 70:], atol=1e-4)
    np.testing.assert_array_equal(neighbours.indices, np.argsort(dense, 1, kind="stable")[:, :9])
    assert neighbours.farthest is not None
    np.testing.assert_allclose(neighbours.farthest, dense.max(1), atol=1e-4)


@pytest.mark.parametrize(("num_gallery", "k"), [(40, 6), (4, 6)])
def test_gallery_rows_gain_their_query_neighbours_with_ties(num_gallery: int, k: int) -> None:
    """Integer distances (many ties across the k-th place); 4 gallery rows < k takes all."""
    rng = np.random.default_rng(1)
    num_query = 30
    gallery_gallery = rng.integers(0, 6, (num_gallery, num_gallery)).astype(np.float32)
    block = rng.integers(0, 6, (num_query, num_gallery)).astype(np.float32)
    own = neighbours_from_distances(gallery_gallery, k)
    own = Neighbours(own.indices + num_query, own.distances, own.farthest)
    merged = add_query_neighbours(own, block, k)
    full = np.concatenate([block.T, gallery_gallery], axis=1)  # queries first
    expected = np.argsort(full, 1, kind="stable")[:, :k]
    np.testing.assert_array_equal(merged.indices, expected)
    np.testing.assert_array_equal(merged.distances, np.take_along_axis(full, expected, 1))
    assert merged.farthest is not None
    np.testing.assert_array_equal(merged.farthest, full.max(1))


@pytest.mark.parametrize("largest", [True, False])
@pytest.mark.parametrize("n", [200 * 32, 200 * 32 + 7])
def test_grouped_top_columns_match_a_full_sort(largest: bool, n: int) -> None:
    values = torch.from_numpy(np.random.default_rng(2).standard_normal((5, n)).astype(np.float32))
    top, cols = grouped_top(values, 40, largest=largest)
    expected = np.sort(values.numpy(), axis=1)
    expected = expected[:, ::-1][:, :40] if largest else expected[:, :40]
    np.testing.assert_array_equal(top.numpy(), expected)
    np.testing.assert_array_equal(np.take_along_axis(values.numpy(), cols.numpy(), 1), expected)
    assert all(len(set(row)) == 40 for row in cols.numpy().tolist())


@pytest.mark.parametrize("largest", [True, False])
def test_stable_top_k_of_wide_rows_orders_ties_by_index(largest: bool) -> None:
    """Wide rows take the grouped path; integer values tie within and across the k-th place."""
    values = np.random.default_rng(3).integers(0, 400, (30, 100 * 32 + 5)).astype(np.float32)
    indices, top = top_k_stable(torch.from_numpy(values), 22, largest=largest)
    expected = np.argsort(-values if largest else values, axis=1, kind="stable")[:, :22]
    np.testing.assert_array_equal(indices, expected)
    np.testing.assert_array_equal(top, np.take_along_axis(values, expected, 1))
