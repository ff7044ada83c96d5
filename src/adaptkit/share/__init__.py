"""Sharing a trained model: its model card (card) and the push to a Hugging Face Hub repo (push)."""
