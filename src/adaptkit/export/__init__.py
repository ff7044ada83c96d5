"""Standalone policies for a robot's control loop: TorchScript or ONNX, with a JSON sidecar.

Modules: step (the scriptable one-token step with explicit state), build (write the files from a
ModelPolicy), runtime (run an exported file as a rollout policy)."""

from adaptkit.export.build import FORMATS, ExportResult, export_policy, policy_step, sidecar_path
from adaptkit.export.runtime import ExportedPolicy, read_sidecar
from adaptkit.export.step import PolicyStep, StatefulPolicy

__all__ = [
    "FORMATS",
    "ExportResult",
    "ExportedPolicy",
    "PolicyStep",
    "StatefulPolicy",
    "export_policy",
    "policy_step",
    "read_sidecar",
    "sidecar_path",
]
