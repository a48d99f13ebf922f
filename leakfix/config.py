"""Config models: one pydantic model per stage (defined next to its stage), composed here.

Every field has a default and a help text (`Field(description=...)`); `extra="forbid"` makes a
typo in a YAML file an error that names the field instead of a silently ignored key.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StageConfig(BaseModel):
    """Base for every stage's config."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
