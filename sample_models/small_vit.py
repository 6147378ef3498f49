"""A small ViT for 8×8 images (`compare --train --data digits`), built from a config."""

from transformers import ViTConfig, ViTForImageClassification


def vit(
    num_hidden_layers: int = 4, hidden_size: int = 64, num_labels: int = 10
) -> ViTForImageClassification:
    """1×8×8 images in 2×2 patches (16 tokens and a class token); dropout off."""
    config = ViTConfig(
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=4,
        intermediate_size=2 * hidden_size,
        image_size=8,
        patch_size=2,
        num_channels=1,
        num_labels=num_labels,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    return ViTForImageClassification(config)
