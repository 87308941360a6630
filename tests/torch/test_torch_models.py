"""The PyTorch architectures, their seeded weights, weight files and the synthetic inputs."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from models.inputs import make_inputs
from models.registry import get_model
from models.torch_models import WeightsError, build_torch_model, parameter_count
from runners.protocol import Weights


@pytest.mark.parametrize("name, expected", [
    ("resnet50", 25_557_032),          # torchvision's resnet50 has exactly as many
    ("mobilenet_v2", 3_504_872),       # torchvision's mobilenet_v2 has exactly as many
    ("bert-base-uncased", 109_482_240),  # bert-base-uncased with its pooler
])
def test_parameter_counts_match_the_reference_architectures(name, expected):
    assert parameter_count(build_torch_model(name)) == expected


def test_resnet50_is_v1_5_with_the_stride_on_the_3x3_convolution():
    model = build_torch_model("resnet50")
    convs = [m for n, m in model.named_modules() if isinstance(m, torch.nn.Conv2d) and ".stages.1.layers.0.layer." in n]
    kernel_strides = [(c.kernel_size, c.stride) for c in convs]
    assert kernel_strides == [((1, 1), (1, 1)), ((3, 3), (2, 2)), ((1, 1), (1, 1))]
    stages = model.net.resnet.encoder.stages
    assert [len(s.layers) for s in stages] == [3, 4, 6, 3]


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_same_seed_gives_identical_weights_and_another_seed_different_ones():
    a = _state(build_torch_model("mobilenet_v2", weights=Weights(seed=7)))
    b = _state(build_torch_model("mobilenet_v2", weights=Weights(seed=7)))
    c = _state(build_torch_model("mobilenet_v2", weights=Weights(seed=8)))
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    differing = [k for k in a if a[k].is_floating_point() and not torch.equal(a[k], c[k])]
    assert any(k.endswith("weight") for k in differing)


def test_random_mobilenet_keeps_unit_scale_activations():
    """transformers' default init makes the logits ~1e-22: meaningless fidelity checks, denormal slow paths."""
    model = build_torch_model("mobilenet_v2")
    x = torch.from_numpy(make_inputs(get_model("mobilenet_v2"), 2, 0)["pixel_values"])
    with torch.inference_mode():
        (logits,) = model(pixel_values=x)
    assert 0.05 < float(logits.std()) < 20


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_weights_file_round_trip(tmp_path, suffix):
    source = build_torch_model("mobilenet_v2", weights=Weights(seed=3))
    path = tmp_path / f"weights{suffix}"
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    if suffix == ".safetensors":
        from safetensors.torch import save_file
        save_file(state, str(path))
    else:
        torch.save(state, str(path))
    loaded = build_torch_model("mobilenet_v2", weights=Weights(kind="file", path=str(path), seed=99))
    got = loaded.state_dict()
    assert all(torch.equal(got[k], state[k]) for k in state)
    x = torch.from_numpy(make_inputs(get_model("mobilenet_v2"), 1, 0)["pixel_values"])
    with torch.inference_mode():
        assert torch.equal(loaded(pixel_values=x)[0], source.eval()(pixel_values=x)[0])


def test_weights_file_that_does_not_fit_names_the_missing_and_unexpected_counts(tmp_path):
    state = build_torch_model("mobilenet_v2").state_dict()
    state = dict(list(state.items())[:-2])  # drop the classifier
    state["extra.weight"] = torch.zeros(1)
    path = tmp_path / "partial.pt"
    torch.save(state, str(path))
    with pytest.raises(WeightsError, match=r"2 missing and 1 unexpected key"):
        build_torch_model("mobilenet_v2", weights=Weights(kind="file", path=str(path)))


class _Payload:
    def __reduce__(self):
        return (print, ("code ran while unpickling",))


def test_pt_file_with_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"net.x": _Payload()}, str(path))
    with pytest.raises(WeightsError, match="weights_only"):
        build_torch_model("mobilenet_v2", weights=Weights(kind="file", path=str(path)))


def test_inputs_are_identical_for_one_seed_and_differ_for_another():
    spec = get_model("bert-base-uncased")
    a, b, c = make_inputs(spec, 2, 5), make_inputs(spec, 2, 5), make_inputs(spec, 2, 6)
    assert all(np.array_equal(a[k], b[k]) and a[k].dtype == b[k].dtype for k in a)
    assert not np.array_equal(a["input_ids"], c["input_ids"])
    img = get_model("resnet50")
    x, y = make_inputs(img, 1, 5), make_inputs(img, 1, 5)
    assert x["pixel_values"].shape == (1, 3, 224, 224) and np.array_equal(x["pixel_values"], y["pixel_values"])


def test_a_bare_transformers_state_dict_loads_too(tmp_path):
    """Files saved from the transformers model itself (no wrapper prefix), as pretrained checkpoints are."""
    from safetensors.torch import save_file

    source = build_torch_model("mobilenet_v2", weights=Weights(seed=4))
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in source.net.state_dict().items()}, str(path))
    loaded = build_torch_model("mobilenet_v2", weights=Weights(kind="file", path=str(path)))
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(), source.state_dict().values()))
