"""Feature extractors: the project's own frame-level voice features and their on-disk cache."""
from crossemo_core.features.voice import (EXTRACTOR_ID, EXTRACTOR_VERSION, MIN_DURATION_S, FeatureCache,
                                          VoiceFeatureExtractor, default_cache_dir, file_sha256, load_audio,
                                          speech_mask)

__all__ = ["EXTRACTOR_ID", "EXTRACTOR_VERSION", "MIN_DURATION_S", "FeatureCache", "VoiceFeatureExtractor",
           "default_cache_dir", "file_sha256", "load_audio", "speech_mask"]
