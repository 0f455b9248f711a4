"""Aggregation of a backbone feature map (B, C, h, w) into one vector per image (B, C).

Importing this package registers every pooling in `POOLINGS` under its config name
(`model.pooling.kind`): avg, max, gem, attention, avg_max, clipped_avg.
"""

from reid_platform.modeling.pooling.attention import AttentionPooling
from reid_platform.modeling.pooling.avg import AveragePooling
from reid_platform.modeling.pooling.avg_max import AverageMaxPooling
from reid_platform.modeling.pooling.clipped_avg import ClippedAveragePooling
from reid_platform.modeling.pooling.gem import GeMPooling
from reid_platform.modeling.pooling.max import MaxPooling

__all__ = [
    "AttentionPooling",
    "AverageMaxPooling",
    "AveragePooling",
    "ClippedAveragePooling",
    "GeMPooling",
    "MaxPooling",
]
