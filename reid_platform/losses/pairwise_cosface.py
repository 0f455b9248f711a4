"""Pairwise CosFace loss (the pair form of Wang et al., CVPR 2018) over the pairs of a batch."""

from torch import Tensor, nn
from torch.nn.functional import softplus

from reid_platform.losses.distances import cosine_similarity_matrix
from reid_platform.losses.pairs import (
    check_batch,
    masked_logsumexp,
    mean_over_valid,
    pair_masks,
    valid_anchors,
)


class PairwiseCosFaceLoss(nn.Module):
    """CosFace on the cosine similarities of L2-normalised features, per anchor:

        softplus(logsumexp_p(−γ s_p) + logsumexp_n(γ (s_n + m)))

    over the anchor's positives p (other images of its identity) and negatives n. The loss is
    the mean over anchors that have a positive and a negative; others are left out (the
    reference counts them as 0 in its mean), and with none the loss is 0 with a graph.

    Args:
        scale: γ, the reference's `GAMMA` (reference default 128).
        margin: m, the additive cosine margin (reference default 0.25).
    """

    def __init__(self, *, scale: float, margin: float) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"the CosFace scale must be > 0, got {scale}")
        self.scale = scale
        self.margin = margin

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        """features: (N, D), normalised here; targets: (N,) identity labels → scalar loss."""
        check_batch(features, targets)
        positive, negative = pair_masks(targets)
        similarity = cosine_similarity_matrix(features, features)
        lse_p = masked_logsumexp(-self.scale * similarity, positive)
        lse_n = masked_logsumexp(self.scale * (similarity + self.margin), negative)
        per_anchor = softplus(lse_p + lse_n)
        return mean_over_valid(per_anchor, valid_anchors(positive, negative))

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, margin={self.margin:g}"
