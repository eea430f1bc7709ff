"""LG-VQ's language guidance (lgvq-spec §3–§5), one paper concept a file.

- `CodeTransformer`: the small ViT that reads the code grid.
- `GlobalSemanticAlignment`: InfoNCE between the pooled codes and the
  sentence feature (GSA).
- `MaskedTextDecoder` + `MaskedTokenHead`: masked text prediction (MTP).
- `RelationshipAlignment`: code–code relations match word–word relations
  (RAS).
- `LanguageGuidance`: the three losses together, attachable to any VQ
  backbone's straight-through grid.
"""

from keras_lgvq.layers.guidance.code_transformer import CodeTransformer
from keras_lgvq.layers.guidance.global_semantic_alignment import (
    GlobalSemanticAlignment,
)
from keras_lgvq.layers.guidance.language_guidance import LanguageGuidance
from keras_lgvq.layers.guidance.masked_text_decoder import MaskedTextDecoder
from keras_lgvq.layers.guidance.masked_token_head import MaskedTokenHead
from keras_lgvq.layers.guidance.relationship_alignment import (
    RelationshipAlignment,
)
