import sys
import textwrap
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import deepinside
from deepinside import DeepInsideError, Preprocessing, load_model, saliency
from deepinside.models.graph import simplify, strip_softmax


def test_builtin_model_knows_its_preprocessing_classes_and_features(model):
    assert isinstance(model, nn.Module)
    assert model.preprocessing.input_size == (224, 224)
    assert model.preprocessing.mean == pytest.approx((127 / 255,) * 3)
    assert len(model.classes) == 1000
    feats = {}
    handle = model.net.get_submodule(model.feature_layer).register_forward_hook(
        lambda m, i, o: feats.update(o=o)
    )
    try:
        with torch.no_grad():
            out = model(torch.zeros(1, 3, 224, 224))
    finally:
        handle.remove()
    assert out.shape == (1, 1000) and feats["o"].shape == (1, 1280, 7, 7)


def test_builtin_classifies_the_bundled_photos(model, photos):
    x, _ = model.prepare([photos["chelsea"], photos["coffee"]])
    with torch.no_grad():
        assert model(x).argmax(1).tolist() == [285, 967]


def test_second_builtin_model_is_a_different_architecture(photos):
    lite1 = load_model("efficientnet_lite1")
    assert lite1.preprocessing.input_size == (240, 240)
    x, _ = lite1.prepare([photos["coffee"]])
    assert saliency(lite1, x).shape == (1, 240, 240)
    with torch.no_grad():
        assert lite1(x).argmax(1).item() == 967


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(DeepInsideError, match="neither a built-in name"):
        load_model("efficientnet_lite9")


class _SoftmaxNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3 * 8 * 8, 4)

    def forward(self, x):
        return F.softmax(self.fc(x.flatten(1)), dim=1)


@pytest.mark.parametrize(
    "net",
    [nn.Sequential(nn.Flatten(), nn.Linear(192, 4), nn.Softmax(dim=1)), _SoftmaxNet()],
    ids=["sequential", "functional"],
)
def test_final_softmax_is_detected_and_removed(net):
    stripped, removed = strip_softmax(net)
    assert removed is not None
    x = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(stripped(x).softmax(1), net(x))
    with pytest.warns(UserWarning, match="scores before it"):
        classifier = deepinside.Classifier(net, Preprocessing(input_size=(8, 8)))
    assert not torch.allclose(classifier(x).sum(1), torch.ones(2))


def test_saliency_on_a_raw_softmax_model_uses_the_logits():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(12, 3), nn.Softmax(dim=1))
    x = torch.randn(1, 3, 2, 2)
    with pytest.warns(UserWarning, match="scores before it"):
        maps = saliency(net, x, 1)
    torch.testing.assert_close(maps[0], net[1].weight[1].detach().view(3, 2, 2).abs().amax(0))


def test_batch_norm_folding_keeps_the_function():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 5, 3), nn.BatchNorm2d(5), nn.ReLU(), nn.Conv2d(5, 2, 1, bias=False), nn.BatchNorm2d(2)
    )
    for bn in (net[1], net[4]):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.weight.data.uniform_(0.5, 1.5)
    net.eval()
    folded = simplify(net)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    x = torch.randn(2, 3, 9, 9)
    torch.testing.assert_close(folded(x), net(x), rtol=1e-5, atol=1e-5)
    assert any(isinstance(m, nn.BatchNorm2d) for m in net.modules())  # original untouched


class _SamePadConv(nn.Conv2d):
    """A TensorFlow "same" port: a fixed zero padding in front of an unpadded convolution."""

    def __init__(self, cin, cout, k, stride, pad):
        super().__init__(cin, cout, k, stride)
        self.static_padding = nn.ZeroPad2d(pad)

    def forward(self, x):
        return F.conv2d(
            self.static_padding(x), self.weight, self.bias, self.stride, 0, self.dilation, self.groups
        )


def test_symmetric_own_padding_moves_into_the_convolution():
    torch.manual_seed(0)
    net = nn.Sequential(
        _SamePadConv(3, 4, 3, 1, (1, 1, 1, 1)),  # symmetric: becomes a plain padded Conv2d
        nn.BatchNorm2d(4).eval(),
        _SamePadConv(4, 4, 3, 2, (0, 1, 0, 1)),  # dense, one side more: stays as it is
        nn.Flatten(),
        nn.Linear(4 * 5 * 5, 3),
    )
    x = torch.randn(2, 3, 10, 10)
    expected = net(x)
    simple = simplify(net)
    convs = [m for m in simple.modules() if isinstance(m, nn.Conv2d)]
    assert [type(c) for c in convs] == [nn.Conv2d, _SamePadConv] and convs[0].padding == (1, 1)
    torch.testing.assert_close(simple(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pad", [(0, 1, 0, 1), (1, 2, 1, 2), (2, 1, 0, 2), (0, 0, 1, 0)])
def test_lopsided_padding_of_a_depthwise_convolution_becomes_zero_taps(pad):
    torch.manual_seed(0)
    k = 3 if pad[0] + pad[1] < 3 else 5
    net = nn.Sequential(_SamePadConv(4, 4, k, 2, pad), nn.ReLU(), nn.Flatten()).double()
    net[0].groups = 4
    net[0].weight = nn.Parameter(torch.randn(4, 1, k, k, dtype=torch.float64))
    x = torch.randn(2, 4, 11, 12, dtype=torch.float64, requires_grad=True)
    simple = simplify(net)
    conv = simple.get_submodule("0")
    assert type(conv) is nn.Conv2d and conv.padding == (max(pad[2:]), max(pad[:2]))
    y, y_simple = net(x), simple(x)
    torch.testing.assert_close(y_simple, y, rtol=0, atol=1e-12)
    w = torch.randn_like(y)
    (g,) = torch.autograd.grad((y * w).sum(), x)
    (g_simple,) = torch.autograd.grad((y_simple * w).sum(), x)
    torch.testing.assert_close(g_simple, g, rtol=0, atol=1e-12)


def test_lopsided_padding_stays_where_zero_taps_would_not_read_the_same_pixels_cheaply():
    torch.manual_seed(0)
    dilated = _SamePadConv(4, 4, 3, 2, (1, 2, 1, 2))
    dilated.groups, dilated.dilation = 4, (2, 2)
    dilated.weight = nn.Parameter(torch.randn(4, 1, 3, 3))
    cropping = _SamePadConv(4, 4, 1, 1, (-1, -1, -1, -1))  # a negative pad crops: nothing to move inside
    multiplier = _SamePadConv(4, 8, 3, 2, (0, 1, 0, 1))  # depthwise with two filters a channel: grows
    multiplier.groups = 4
    multiplier.weight = nn.Parameter(torch.randn(8, 1, 3, 3))
    net = nn.Sequential(dilated, cropping, multiplier)
    x = torch.randn(1, 4, 13, 13)
    simple = simplify(net)
    assert [type(m) for m in simple.children()] == [_SamePadConv, _SamePadConv, nn.Conv2d]
    torch.testing.assert_close(simple(x), net(x), rtol=1e-5, atol=1e-5)


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "my_nets.py").write_text(
        textwrap.dedent("""
        from torch import nn
        def small():
            return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                 nn.Flatten(), nn.Linear(4, 10))
    """)
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "my_nets:small"
    sys.modules.pop("my_nets", None)


def test_import_string_with_safe_state_dict(tmp_path, user_module):
    import my_nets

    torch.manual_seed(3)
    reference = my_nets.small()
    weights = tmp_path / "w.pt"
    torch.save(reference.state_dict(), weights)
    model = load_model(user_module, weights=weights, input_size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    x = torch.randn(1, 3, 32, 32)
    torch.testing.assert_close(model(x), reference(x))
    assert model.classes[3].label == "class 3"


def test_state_dict_with_pickled_code_is_refused(tmp_path, user_module):
    evil = tmp_path / "evil.pt"
    torch.save({"weights": object()}, evil)
    with pytest.raises(DeepInsideError, match="not a plain state dict: save one with torch.save"):
        load_model(user_module, weights=evil, input_size=32)


def test_torchscript_file(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 1000)
    ).eval()
    path = tmp_path / "net.pt"
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore", DeprecationWarning
        )  # TorchScript is deprecated in torch 2.13, still in use
        torch.jit.script(net).save(str(path))
    model = load_model(str(path), input_size=[40, 48])
    assert model.preprocessing.input_size == (40, 48)
    assert model.classes.resolve("tabby") == 281  # 1000 outputs: ImageNet names
    x = torch.randn(1, 3, 40, 48)
    torch.testing.assert_close(model(x), net(x))
    assert saliency(model, x).shape == (1, 40, 48)


def test_not_a_classifier_and_missing_input_size(tmp_path, user_module):
    with pytest.raises(DeepInsideError, match="give its input size"):
        load_model(user_module)
    path = tmp_path / "conv.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(nn.Conv2d(3, 4, 3)).save(str(path))
    with pytest.raises(DeepInsideError, match="not a classifier"):
        load_model(str(path), input_size=16)


def test_placement_maps_input_pixels_back_to_the_photo():
    prep = Preprocessing(input_size=(4, 4), resize="center-crop", crop_fraction=1.0)
    placement = prep.placement((8, 4))  # width 8, height 4: the middle 4x4 square
    assert placement.box == (2.0, 0.0, 6.0, 4.0)
    on_input = torch.arange(16.0).view(4, 4)
    on_photo = placement.to_photo(on_input)
    assert on_photo.shape == (4, 8)
    torch.testing.assert_close(on_photo[:, 2:6], on_input)
    assert float(on_photo[:, :2].abs().sum() + on_photo[:, 6:].abs().sum()) == 0.0
    stretch = Preprocessing(input_size=(4, 4), resize="stretch").placement((8, 4))
    torch.testing.assert_close(stretch.to_photo(on_input)[:, ::2], on_input, rtol=0.3, atol=2.0)


def test_preprocessing_round_trip_and_checks():
    prep = Preprocessing()
    pixels = torch.rand(3, 5, 5)
    torch.testing.assert_close(prep.denormalize(prep.normalize(pixels)), pixels)
    with pytest.raises(DeepInsideError):
        Preprocessing(input_size=(0, 2))
    with pytest.raises(DeepInsideError):
        Preprocessing(std=(0.0, 1.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Preprocessing(input_size=(32, 32))


def test_preprocessing_gives_normalize_of_the_resized_pixels_bit_for_bit(photos):
    # The photo's path runs in NumPy (reading threads must not start torch
    # threads); it must equal the tensor path, normalize, exactly.
    prep = Preprocessing()
    photo = photos["chelsea"]
    found, placement = prep(photo)
    resized = photo.resize((224, 224), Image.Resampling.BICUBIC, box=placement.box, reducing_gap=3.0)
    pixels = torch.from_numpy(np.asarray(resized, dtype=np.float32).copy()).permute(2, 0, 1)
    assert found.dtype == torch.float32 and found.is_contiguous()
    assert torch.equal(found, prep.normalize(pixels / 255.0))


def test_torch_export_program(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 5)
    ).eval()
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(net, (torch.randn(1, 3, 16, 16),)), str(path))
    model = load_model(str(path), input_size=16)
    x = torch.randn(1, 3, 16, 16)
    torch.testing.assert_close(model(x), net(x))
    assert saliency(model, x, 2).shape == (1, 16, 16)


_USER_MODELS = """
import torch
from PIL import Image
from torch import nn


def fixed():  # takes 32x32 inputs only
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 10))


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Conv2d(3, 4, 3)
        self.fc = nn.Linear(4, 10)

    def forward(self, x):
        y = self.fc(self.features(x).mean((2, 3)))
        return y, y


def pair():
    return Pair()


def conv():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)
    )


def needs_arg(n):
    return nn.Linear(n, n)


def broken():
    raise RuntimeError("boom")
"""


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    (tmp_path / "usermods.py").write_text(_USER_MODELS)
    monkeypatch.syspath_prepend(str(tmp_path))


@pytest.mark.parametrize(
    "spec, size, message",
    [
        ("usermods:fixed", 64, r"failed on a 1x3x64x64 input \(mat1 and mat2.*check --input-size"),
        ("usermods:needs_arg", 32, r"needs_arg\(\) failed \(TypeError"),
        ("usermods:broken", 32, r"broken\(\) failed \(RuntimeError: boom\)"),
        (":fixed", 32, "write it as package.module:factory"),
        ("nosuchmodule_xyz:make", 32, "cannot import 'nosuchmodule_xyz'"),
    ],
)
def test_users_models_that_fail_are_one_clear_error(user_models, spec, size, message):
    with pytest.raises(DeepInsideError, match=message):
        load_model(spec, input_size=size)


def test_a_users_feature_layer_is_declared_by_name(user_models):
    model = load_model("usermods:conv", input_size=16, feature_layer="0")
    assert model.feature_layer == "0"
    with pytest.raises(DeepInsideError, match="no layer named 'nope'"):
        load_model("usermods:conv", input_size=16, feature_layer="nope")
    assert load_model(feature_layer="features").feature_layer == "features"


def test_a_bad_export_archive_logs_nothing(tmp_path, capfd):
    (tmp_path / "junk.pt2").write_bytes(b"not a zip archive")
    with pytest.raises(DeepInsideError, match="not a torch.export program"):
        load_model(str(tmp_path / "junk.pt2"), input_size=32)
    assert "Traceback" not in capfd.readouterr().err


def test_scores_are_eval_mode_and_leave_each_module_as_it_was():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)
    )
    model = deepinside.Classifier(net.eval(), Preprocessing(input_size=(8, 8)))
    net[1].train()  # mixed modes: one layer training, the rest (the wrapper too: its net's) not
    stats = net[1].running_mean.clone()
    x = torch.randn(2, 3, 8, 8)
    scores = model.scores(x)
    assert not model.training and net[1].training and not net[0].training
    assert torch.equal(net[1].running_mean, stats)
    torch.testing.assert_close(scores, net.eval()(x))
