"""CUHK03 single-gallery-shot CMC (torchreid's `eval_cuhk03` semantics), vectorised.

For each query and each of `repeats` draws, one kept gallery image per gallery identity is
sampled; the CMC is read from the first match in that short list (one image per identity, so
exactly one of them matches) and averaged over the repeats. AP and INP are not sampled: the
caller computes them over the full kept list, as for Market-1501.

Junk removal (same identity, same camera) only touches the query's own identity, so the images
of every other identity can be drawn once per repeat and shared by all queries; only the image
of the query's own identity is drawn among that query's valid matches. The sampling rule, fixed
so that results do not depend on how the queries are chunked:

    rng = np.random.default_rng(seed)
    other = rng.random((repeats, num_pids))   # num_pids: distinct gallery ids, ascending
    own = rng.random((repeats, num_pids))
    repeat r, identity p: the ⌊other[r, p]·n_p⌋-th of p's n_p gallery images (gallery order);
    a query of identity p: the ⌊own[r, p]·m⌋-th of its m valid matches (gallery order).
"""

import numpy as np


def _pick(uniform: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """⌊u·n⌋ clipped to n − 1 (u·n can round up to n when u is within 2⁻⁵³ of 1)."""
    return np.minimum((uniform * counts).astype(np.int64), counts - 1)


class SingleShotSampler:
    """Draws the per-repeat gallery samples once and ranks query chunks against them.

    `pid_order` (g,): gallery indices grouped by identity (identities ascending, each group in
    gallery order); `pid_starts`, `pid_counts` (num_pids,): each group's offset and size.
    """

    def __init__(
        self,
        pid_order: np.ndarray,
        pid_starts: np.ndarray,
        pid_counts: np.ndarray,
        *,
        repeats: int,
        seed: int,
    ) -> None:
        rng = np.random.default_rng(seed)
        other = rng.random((repeats, len(pid_counts)))
        self._own_uniform = rng.random((repeats, len(pid_counts)))
        # (repeats, num_pids) gallery index of each identity's shared sample.
        self._samples = pid_order[pid_starts + _pick(other, pid_counts)]
        self._pid_slot_of = np.empty(len(pid_order), dtype=np.int64)  # (g,) identity slot
        self._pid_slot_of[pid_order] = np.repeat(np.arange(len(pid_counts)), pid_counts)

    def rank_histogram(
        self,
        rows: np.ndarray,
        pid_slots: np.ndarray,
        match_keys: np.ndarray,
        match_counts: np.ndarray,
        negatives: tuple[np.ndarray, np.ndarray, np.ndarray],
        max_rank: int,
    ) -> np.ndarray:
        """Histogram (max_rank + 1,) of first-match ranks, each repeat weighing 1 / repeats.

        rows (v,): the chunk rows that have a valid match; pid_slots (v,): their identity as an
        index into the gallery identities; match_keys (n,): stable-order sort keys of their
        valid matches, grouped by row, each group in gallery order; match_counts (v,): group
        sizes; negatives: chunk rows, gallery indices and keys (m,) of the other identities'
        items not after the row's hardest match (no other item can precede a sampled match).
        Bin k − 1 counts rank k; the last bin counts ranks > max_rank.
        """
        neg_rows, neg_cols, neg_keys = negatives
        neg_slots = self._pid_slot_of[neg_cols]
        starts = np.cumsum(match_counts) - match_counts
        own_keys = np.zeros(int(rows[-1]) + 1, dtype=np.int64)  # by chunk row
        histogram = np.zeros(max_rank + 1, dtype=np.float64)
        for repeat, samples in enumerate(self._samples):
            own = starts + _pick(self._own_uniform[repeat, pid_slots], match_counts)
            own_keys[rows] = match_keys[own]
            # A negative precedes the drawn match when it is its identity's sample and its key
            # (row, distance, gallery index) is smaller. The query's own identity is never
            # among the negatives, so its shared sample is left out as it must be.
            ahead = (samples[neg_slots] == neg_cols) & (neg_keys < own_keys[neg_rows])
            ranks = 1 + np.bincount(neg_rows[ahead], minlength=len(own_keys))[rows]
            histogram += np.bincount(np.minimum(ranks, max_rank + 1) - 1, minlength=max_rank + 1)
        return histogram / len(self._samples)
