"""Every sample model as a TARGET string, in each form the tests exercise (shared by test files)."""

SAMPLES = [
    "sample_models/mlp.yaml",
    "sample_models/mlp.py:MLP",
    "sample_models.mlp:mlp",
    "sample_models.lenet:LeNet5",
    "sample_models.tied_lm:TiedLM",
    "sample_models.cnn_bn:SmallCNN",
    "sample_models.lstm:LSTMClassifier",
    "sample_models.transformer:TinyTransformer",
    "sample_models.frozen:PartlyFrozen",
    "sample_models/relu20.yaml",
    "sample_models/tanh10.yaml",
]
