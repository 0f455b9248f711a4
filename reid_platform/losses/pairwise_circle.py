"""Pairwise circle loss (Sun et al., CVPR 2020, eq. 6) over the pairs of a batch."""

from torch import Tensor, nn
from torch.nn.functional import relu, softplus

from reid_platform.losses.distances import cosine_similarity_matrix
from reid_platform.losses.pairs import (
    check_batch,
    masked_logsumexp,
    mean_over_valid,
    pair_masks,
    valid_anchors,
)


class PairwiseCircleLoss(nn.Module):
    """Circle loss on the cosine similarities of L2-normalised features, per anchor:

        softplus(logsumexp_p(−γ α_p (s_p − Δ_p)) + logsumexp_n(γ α_n (s_n − Δ_n)))

    with α_p = relu(1 + m − s_p), α_n = relu(s_n + m), Δ_p = 1 − m, Δ_n = m, over the anchor's
    positives p (other images of its identity) and negatives n. The weights α are detached:
    the paper treats them as constants in back-propagation, and the reference detaches them
    too. The loss is the mean over anchors that have a positive and a negative; others are left
    out (the reference counts them as 0 in its mean), and with none the loss is 0 with a graph.

    Args:
        scale: γ, the paper's and the reference's `GAMMA` (reference default 128).
        margin: m, the relaxation (reference default 0.25).
    """

    def __init__(self, *, scale: float, margin: float) -> None:
        super().__init__()
        if scale <= 0:
            raise ValueError(f"the circle-loss scale must be > 0, got {scale}")
        self.scale = scale
        self.margin = margin

    def forward(self, features: Tensor, targets: Tensor) -> Tensor:
        """features: (N, D), normalised here; targets: (N,) identity labels → scalar loss."""
        check_batch(features, targets)
        positive, negative = pair_masks(targets)
        similarity = cosine_similarity_matrix(features, features)
        alpha_p = relu(1.0 + self.margin - similarity.detach())
        alpha_n = relu(similarity.detach() + self.margin)
        logit_p = -self.scale * alpha_p * (similarity - (1.0 - self.margin))
        logit_n = self.scale * alpha_n * (similarity - self.margin)
        lse_p = masked_logsumexp(logit_p, positive)
        lse_n = masked_logsumexp(logit_n, negative)
        per_anchor = softplus(lse_p + lse_n)
        return mean_over_valid(per_anchor, valid_anchors(positive, negative))

    def extra_repr(self) -> str:
        return f"scale={self.scale:g}, margin={self.margin:g}"
