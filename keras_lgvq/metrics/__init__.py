"""Evaluation metrics: fidelity, codebook usage, FID/LPIPS, alignment probes."""

from keras_lgvq.metrics.caption_metrics import CAPTION_METRIC_NAMES
from keras_lgvq.metrics.caption_metrics import evaluate_captions
from keras_lgvq.metrics.caption_metrics import ptb_tokenize_python
from keras_lgvq.metrics.caption_mismatch import mismatched_caption_accuracy
from keras_lgvq.metrics.codebook_usage import CodebookUsage
from keras_lgvq.metrics.conditioning_accuracy import SceneAttributeClassifier
from keras_lgvq.metrics.conditioning_accuracy import (
    scenes_conditioning_accuracy,
)
from keras_lgvq.metrics.conditioning_accuracy import parse_scene_caption
from keras_lgvq.metrics.conditioning_accuracy import (
    train_scene_attribute_classifier,
)
from keras_lgvq.metrics.frechet_distance import frechet_distance
from keras_lgvq.metrics.frechet_distance import gaussian_statistics
from keras_lgvq.metrics.frechet_inception_distance import (
    FrechetInceptionDistance,
)
from keras_lgvq.metrics.image_quality import PSNR
from keras_lgvq.metrics.image_quality import SSIM
from keras_lgvq.metrics.image_quality import psnr
from keras_lgvq.metrics.image_quality import ssim
from keras_lgvq.metrics.inception_feature_extractor import (
    InceptionFeatureExtractor,
)
from keras_lgvq.metrics.inception_feature_extractor import (
    default_inception_weight_paths,
)
from keras_lgvq.metrics.linear_probe import code_features
from keras_lgvq.metrics.linear_probe import linear_probe_accuracy
from keras_lgvq.metrics.lpips_metric import LPIPSMetric
from keras_lgvq.metrics.masked_word_recall import masked_word_recall_at_1
from keras_lgvq.metrics.masked_word_recall import select_masked_positions
from keras_lgvq.metrics.relation_mse import code_word_relation_mse
from keras_lgvq.metrics.relation_mse import match_codes_to_words
from keras_lgvq.metrics.retrieval import image_to_text_ranks
from keras_lgvq.metrics.retrieval import image_to_text_recall
from keras_lgvq.metrics.retrieval import text_to_image_ranks
from keras_lgvq.metrics.retrieval import text_to_image_recall
from keras_lgvq.metrics.vqa_metrics import WupsScorer
from keras_lgvq.metrics.vqa_metrics import evaluate_vqa
from keras_lgvq.metrics.vqa_metrics import load_wordnet
