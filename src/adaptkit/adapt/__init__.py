"""Adapting a base to a new robot: the adaptation modes (modes: one table, torch-free, read by
fine-tune, the CLI, the study and the model card) and the surgery they are made of (surgery:
add a group, LoRA, freeze, warm start, verify frozen weights).

Nothing is imported here, so `adaptkit.adapt.modes` stays torch-free for the CLI's help."""
