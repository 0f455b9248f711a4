"""The strict base model every config section derives from, and the scalar types they share."""

import re
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, BeforeValidator, ConfigDict

_FLOAT_TEXT = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")


def _float_from_yaml_text(value: Any) -> Any:
    # PyYAML (YAML 1.1) reads `1e-4` as a string; accept number-shaped text for float fields only.
    if isinstance(value, str) and _FLOAT_TEXT.match(value.strip()):
        return float(value)
    return value


Float = Annotated[float, BeforeValidator(_float_from_yaml_text)]
"""A float field that also accepts YAML 1.1 number text such as `1e-4`."""


class Section(BaseModel):
    """A frozen config section: unknown keys and wrong types are errors, nothing is coerced.

    Validation runs in strict JSON mode (see `schema.validate_mapping`), so `"3"` is not an int and
    `yes` is not a bool, while YAML lists fill tuple fields.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class VariantSection(Section):
    """A section whose selector field (`kind`, or `name` for datasets) picks one parameter block.

    Each variant with parameters owns a sub-section named after it (e.g. `gem:` under a pooling
    section whose `kind` is `gem`), so keys never change meaning between variants and overrides
    of one variant never collide with another. `flatten` skips the inactive blocks.
    """

    selector: ClassVar[str] = "kind"
    variant_blocks: ClassVar[tuple[str, ...]] = ()

    def active_variant(self) -> str:
        return str(getattr(self, self.selector))
