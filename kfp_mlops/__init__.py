"""kfp-mlops: a KFP v2 component suite for the scikit-learn ML life cycle."""

__version__ = "0.1.0"
