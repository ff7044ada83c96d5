"""Standalone policies for a robot's control loop, with a JSON sidecar.

Modules: formats (the table of export formats: TorchScript, ONNX, one module each), step (the
scriptable one-token step with explicit state), build (write the files from a ModelPolicy),
runtime (run an exported file as a rollout policy), robot_policy (`adaptkit.load_policy`).
Nothing is imported here, so `adaptkit.export.formats` stays torch-free for the CLI's --help."""
