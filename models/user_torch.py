"""A user's model in torch (imported only inside a torch environment): a torch.export program (.pt2) loaded without
unpickling code, or a transformers architecture built from its config with seeded random weights (or safetensors).

Either is wrapped in a module whose forward takes the entry's input names as keyword arguments and returns a tuple in
the entry's output order, as the built-in models' wrappers do (the adapters, the ONNX exporter and digests rely on it).
"""
from __future__ import annotations

import difflib
import io
import os
import zipfile

import torch
from torch import nn

from models.registry import ModelSpec
from runners.failures import RunnerError
from runners.protocol import Weights


class NamedIOModule(nn.Module):
    """What both wrappers share: forward takes the entry's inputs by name (or in their order, as the TorchScript ONNX
    exporter passes them) and returns a tuple in the entry's output order, which each wrapper's `outputs` makes."""

    inner_name = "inner"  # the attribute the wrapped module is kept under: its weights' prefix in the state dict

    def __init__(self, inner: nn.Module, input_names: list[str], output_names: tuple[str, ...]) -> None:
        super().__init__()
        self.add_module(self.inner_name, inner)
        self.input_names = input_names
        self.output_names = output_names

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.outputs({**dict(zip(self.input_names, args)), **kwargs})

    def outputs(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError


class ProgramModule(NamedIOModule):
    """A torch.export program's module, called with its user inputs in the program's order."""

    inner_name = "program"

    def outputs(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        out = self.program(*(inputs[name] for name in self.input_names))
        out = tuple(out) if isinstance(out, (tuple, list)) else (out,)
        if len(out) != len(self.output_names):
            raise RuntimeError(f"the program returned {len(out)} outputs; the model's outputs are "
                               f"{', '.join(self.output_names)}")
        return out

    def train(self, mode: bool = True) -> ProgramModule:
        # An exported program is fixed in the mode it was exported in: its module refuses train()/eval().
        self.training = mode
        return self


class HfModule(NamedIOModule):
    """A transformers model called with keyword inputs; the entry's outputs picked from its ModelOutput by name."""

    inner_name = "net"

    def outputs(self, inputs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        out = self.net(**inputs, return_dict=True)
        missing = [n for n in self.output_names if out.get(n) is None]
        if missing:
            raise RuntimeError(f"the model returns {', '.join(k for k in out.keys())}, not {', '.join(missing)}")
        return tuple(out[n] for n in self.output_names)


def _load_program(spec: ModelSpec) -> nn.Module:
    from models.user_files import ModelFileError, pt2_pickled_payloads, read_pt2

    path = spec.user.path
    try:
        declared = read_pt2(path)
        pickled = pt2_pickled_payloads(path)
    except ModelFileError as exc:
        raise RunnerError(f"{path}: {exc}", kind="load") from None
    if pickled:
        raise RunnerError(f"{path}: refused: torch.export.load would unpickle {', '.join(pickled[:3])} (it can run "
                          f"code)", kind="load")
    # torch 2.13 reads the archive's sample inputs with weights_only=True and, where that fails, again with
    # weights_only=False: check them first, so that the fallback (which unpickles code) is never taken.
    with zipfile.ZipFile(path) as archive:
        for name in archive.namelist():
            if "/data/sample_inputs/" in name:
                try:
                    torch.load(io.BytesIO(archive.read(name)), weights_only=True)
                except Exception as exc:  # noqa: BLE001 - UnpicklingError names what weights_only refused
                    raise RunnerError(f"{path}: refused: its sample inputs need unpickling beyond weights_only "
                                      f"({' '.join(str(exc).split())[:300]})", kind="load") from None
    program = torch.export.load(path)
    return ProgramModule(program.module(), [i.name for i in declared.inputs], spec.outputs)


def _hf_model(spec: ModelSpec, weights: Weights) -> nn.Module:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # an architecture from its config: nothing is downloaded
    from transformers import AutoConfig, AutoModel

    hf = spec.user.hf
    given = dict(hf.config or {})
    model_type = given.pop("model_type", None) or hf.model_type
    for key in ("architectures", "auto_map", "transformers_version", "_name_or_path"):  # remote code, hub names
        given.pop(key, None)
    _check_model_type(model_type)
    config = AutoConfig.for_model(model_type, **given)
    torch.manual_seed(weights.seed)
    net = AutoModel.from_config(config, trust_remote_code=False)
    if hf.weights:
        from safetensors.torch import load_file

        missing, unexpected = net.load_state_dict(load_file(hf.weights.path), strict=False)
        if missing or unexpected:
            raise RunnerError(f"weights {hf.weights.path} do not fit {model_type}: {len(missing)} missing and "
                              f"{len(unexpected)} unexpected key(s) (e.g. {', '.join((missing + unexpected)[:3])})",
                              kind="load")
    return HfModule(net, [i.name for i in spec.inputs], spec.outputs)


def _check_model_type(model_type: str) -> None:
    """The config check's refusal (orchestrator/planning/user_model_checks.py), made here where it was deferred (no
    torch environment yet): one line with the closest types, not transformers' list of all of them."""
    import transformers
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING_NAMES
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    if model_type not in CONFIG_MAPPING_NAMES:
        close = difflib.get_close_matches(model_type, list(CONFIG_MAPPING_NAMES), n=5, cutoff=0.6)
        raise RunnerError(f"transformers {transformers.__version__} knows no model type {model_type!r}; valid: "
                          f"{', '.join(close) or 'one of its model types'}", kind="load")
    if not MODEL_MAPPING_NAMES.get(model_type):
        raise RunnerError(f"transformers {transformers.__version__} has no base model class (AutoModel) for model "
                          f"type {model_type!r}, which greenrt builds", kind="load")


def build_user_torch_model(spec: ModelSpec, weights: Weights) -> nn.Module:
    fmt = spec.user.format
    if fmt == "torch":
        model = _load_program(spec)
    elif fmt == "hf":
        model = _hf_model(spec, weights)
    else:
        raise RunnerError(f"user model {spec.name} is a {fmt} model, not one torch loads", kind="unsupported")
    return model.eval()
