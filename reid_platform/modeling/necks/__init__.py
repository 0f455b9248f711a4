"""What sits between pooling and classifier: (B, C) → (B, D), each with `out_features`.

Importing this package registers every neck in `NECKS` under its config name
(`model.neck.kind`): bn, linear, reduction, none.
"""

from reid_platform.modeling.necks.bn import BNNeck
from reid_platform.modeling.necks.identity import IdentityNeck
from reid_platform.modeling.necks.linear import LinearNeck
from reid_platform.modeling.necks.reduction import ReductionNeck

__all__ = ["BNNeck", "IdentityNeck", "LinearNeck", "ReductionNeck"]
