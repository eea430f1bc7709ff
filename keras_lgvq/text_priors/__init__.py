"""Frozen pretrained text encoders (text priors) and their feature cache."""

from keras_lgvq.text_priors import minilm_assets
from keras_lgvq.text_priors.bert_text_prior import BertTextPrior
from keras_lgvq.text_priors.clip_text_prior import CLIPTextPrior
from keras_lgvq.text_priors.clip_text_prior import load_hf_clip_text
from keras_lgvq.text_priors.caption_feature_cache import CaptionFeatureCache
from keras_lgvq.text_priors.feature_cache import FeatureCache
from keras_lgvq.text_priors.feature_cache import build_feature_cache
from keras_lgvq.text_priors.feature_cache import cache_path
from keras_lgvq.text_priors.feature_cache import prior_cache_name
from keras_lgvq.text_priors.text_prior import TextPrior
from keras_lgvq.text_priors.text_prior_registry import describe_options
from keras_lgvq.text_priors.text_prior_registry import get
