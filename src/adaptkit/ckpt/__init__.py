"""Checkpoints on disk: the `NNNN_epoch` layout and file names (layout), Hub paths (hub),
config.json and model-config files (config_file), strict loading and atomic saving of full
checkpoints with fingerprints (checkpoint), adapters (adapter), the front door that loads either
and merges them (load), fitting a robot to a group (fit), and settling a checkpoint's token
order on data (token_order).

Nothing is imported here, so `adaptkit.ckpt.layout` stays torch-free for the CLI."""
