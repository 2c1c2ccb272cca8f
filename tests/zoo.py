"""ViTs from the libraries users bring (torchvision, timm, Hugging Face), small and random-init, and
the ways users hand them over: torch.export (.pt2) and three ONNX exports. Nothing is downloaded."""
from __future__ import annotations

import glob
import importlib.util
import os
import sys

import numpy as np
import torch

from edgeviz.frontend import import_torch


def _torchvision():
    # torchvision's wheel is built against a CUDA torch; next to the CPU wheel its compiled ops do not
    # load. The ViT code is pure Python: declaring the two ops it registers lets it import.
    if "torchvision" not in sys.modules:
        spec = importlib.util.find_spec("torchvision")
        try:
            torch.ops.load_library(glob.glob(os.path.join(os.path.dirname(spec.origin), "_C*.so"))[0])
            torch.ops.torchvision.nms          # raises when the library loaded but registered nothing
        except (OSError, IndexError, RuntimeError, AttributeError):
            lib = torch.library.Library("torchvision", "DEF")
            lib.define("nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            lib.define("qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _torchvision.lib = lib
    import torchvision
    return torchvision


if importlib.util.find_spec("torchvision") is not None:
    _torchvision()           # before anything imports it: timm and transformers do


class Logits(torch.nn.Module):
    """Hugging Face models return an output object; the exporters want a tensor."""

    def __init__(self, m):
        super().__init__()
        self.m = m

    def forward(self, x):
        y = self.m(x)
        return y.logits if hasattr(y, "logits") else y


class HeadOnViTModel(torch.nn.Module):
    """A user's own Linear head on a Hugging Face ViTModel's cls output."""

    def __init__(self, vit, classes=10):
        super().__init__()
        self.vit, self.head = vit, torch.nn.Linear(vit.config.hidden_size, classes)

    def forward(self, x):
        return self.head(self.vit(x).last_hidden_state[:, 0])


def _timm(**kw):
    _torchvision()
    import timm
    base = dict(pretrained=False, img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, num_classes=10)
    base.update(kw)
    return timm.create_model(base.pop("name", "vit_tiny_patch16_224"), **base)


def _swiglu():
    """timm's gated MLP: fc2(act(fc1_g(x)) * fc1_x(x)) (an element-wise product of two tensors)."""
    _torchvision()
    from timm.layers import SwiGLU
    return SwiGLU


def _hf(head=False, **kw):
    _torchvision()            # transformers imports torchvision when it is installed
    from transformers import ViTConfig, ViTForImageClassification, ViTModel
    cfg = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=128, num_labels=10)
    cfg.update(kw)
    c = ViTConfig(**cfg)
    return HeadOnViTModel(ViTModel(c, add_pooling_layer=False)) if head else Logits(ViTForImageClassification(c))


def _torchvision_vit(**kw):
    vision_transformer = _torchvision().models.vision_transformer
    cfg = dict(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=64, mlp_dim=128, num_classes=10)
    cfg.update(kw)
    return vision_transformer.VisionTransformer(**cfg)


# name -> (builder, input shape [C, H, W])
ZOO = {
    "torchvision-vit": (lambda: _torchvision_vit(), (3, 32, 32)),
    "timm-cls": (lambda: _timm(in_chans=1), (1, 32, 32)),
    "timm-avg-layerscale": (lambda: _timm(global_pool="avg", class_token=False, qkv_bias=False, init_values=0.1,
                                          fc_norm=True, patch_size=4, embed_dim=48, num_heads=3), (3, 32, 32)),
    "timm-reg-noembedclass": (lambda: _timm(reg_tokens=2, no_embed_class=True), (3, 32, 32)),
    "timm-cls-avgpool": (lambda: _timm(global_pool="avg", reg_tokens=1, in_chans=2), (2, 32, 32)),
    "timm-deit-distilled": (lambda: _timm(name="deit_tiny_distilled_patch16_224"), (3, 32, 32)),
    "timm-relu-nobias": (lambda: _timm(act_layer="relu", qkv_bias=False, img_size=24, patch_size=6), (3, 24, 24)),
    "timm-prenorm-noposembed": (lambda: _timm(pre_norm=True, pos_embed="none", final_norm=False, mlp_ratio=3.0,
                                              proj_bias=False), (3, 32, 32)),
    "timm-silu-tokenpool": (lambda: _timm(act_layer="silu", global_pool="token", depth=1), (3, 32, 32)),
    "timm-swiglu": (lambda: _timm(mlp_layer=_swiglu(), act_layer="silu", global_pool="avg", class_token=False),
                    (3, 32, 32)),
    "hf-vit": (lambda: _hf(), (3, 32, 32)),
    "hf-vit-gelu-tanh": (lambda: _hf(hidden_act="gelu_pytorch_tanh", num_attention_heads=4), (3, 32, 32)),
    "hf-vitmodel-own-head": (lambda: _hf(head=True, num_channels=1), (1, 32, 32)),
}


# timm's ViT family at toy sizes: each either imports with the float outputs of PyTorch or is refused
# in one line (relative position bias, class attention, parallel blocks, conv stems, windows)
_SMALL = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=2, num_classes=10)
TIMM_FAMILY = {
    "deit_tiny_patch16_224": (_SMALL, True), "deit3_small_patch16_224": (_SMALL, True),
    "beit_base_patch16_224": (_SMALL, True), "vit_medium_patch16_gap_256": (_SMALL, True),
    "vit_base_patch16_clip_224": (_SMALL, True), "flexivit_small": (_SMALL, True),
    "vit_betwixt_patch16_reg4_gap_256": (_SMALL, True),
    "vit_relpos_small_patch16_224": (_SMALL, False),
    "cait_xxs24_224": (dict(_SMALL, depth_token_only=1), False),
    "eva02_tiny_patch14_224": (dict(_SMALL, img_size=28, patch_size=14), False),
    "vit_small_patch16_18x2_224": (_SMALL, False),
    "vit_tiny_r_s16_p8_224": (dict(img_size=32, num_classes=10), False),
    "pit_ti_224": (dict(img_size=32, num_classes=10), False),
    "xcit_nano_12_p16_224": (dict(img_size=32, num_classes=10), False),
    "swin_tiny_patch4_window7_224": (dict(img_size=28, num_classes=10, embed_dim=32, depths=(1, 1),
                                          num_heads=(1, 2)), False),
}


# Hugging Face's ViT family at toy sizes: class name -> (config class name, config changes, reads)
HF_FAMILY = {
    "DeiTForImageClassification": ("DeiTConfig", {}, True),
    "DeiTForImageClassificationWithTeacher": ("DeiTConfig", {}, True),
    "ViTMSNForImageClassification": ("ViTMSNConfig", {}, True),
    "Dinov2ForImageClassification": ("Dinov2Config", {}, True),         # LayerScale, [cls | mean] head
    "BeitForImageClassification": ("BeitConfig", {"use_relative_position_bias": False, "use_mean_pooling": True}, True),
    "Data2VecVisionForImageClassification": ("Data2VecVisionConfig", {}, True),
    "SwinForImageClassification": ("SwinConfig", {"patch_size": 4, "embed_dim": 16, "depths": [1, 1],
                                                  "num_heads": [1, 2], "window_size": 4}, False),
}


def make_hf_family(name: str) -> torch.nn.Module:
    _torchvision()
    import transformers
    cfg_name, changes, _ = HF_FAMILY[name]
    cfg = dict(image_size=32, patch_size=8, num_channels=3, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
               intermediate_size=128, num_labels=10)
    if name.startswith("Swin"):
        cfg = dict(image_size=32, num_channels=3, num_labels=10)
    torch.manual_seed(0)
    return Logits(getattr(transformers, name)(getattr(transformers, cfg_name)(**cfg, **changes))).eval()


def make_timm_family(name: str) -> torch.nn.Module:
    _torchvision()
    import timm
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, **TIMM_FAMILY[name][0]).eval()


def make_zoo(name: str, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    m = ZOO[name][0]().eval()
    with torch.no_grad():        # random init leaves cls / position embeddings near zero: make them matter
        for n, p in m.named_parameters():
            if any(k in n for k in ("cls_token", "dist_token", "reg_token", "pos_embed", "position_embeddings",
                                    "class_token", "pos_embedding")):
                p.normal_(0, 0.3)
        for mod in m.modules():
            # classifier heads start at zero (torchvision) or near it: logits would tie; timm's SwiGLU
            # gate starts at std 1e-6 (a constant gate): draw them as a trained layer might be
            if isinstance(mod, torch.nn.Linear) and (mod.out_features == 10 or mod.weight.std() < 1e-4):
                mod.weight.normal_(0, mod.in_features ** -0.5)
    return m


def deit_11_tokens():
    """(graph, 6 inputs): timm's distilled DeiT at 24 px / patch 8, cls + distillation token + 9 patches
    = 11 rows (4k + 3, which no square grid with one prefix token gives), imported through torch.export."""
    torch.manual_seed(3)
    m = _timm(name="deit_tiny_distilled_patch16_224", img_size=24).eval()
    with torch.no_grad():
        for n, p in m.named_parameters():
            if any(k in n for k in ("cls_token", "dist_token", "pos_embed")):
                p.normal_(0, 0.3)
    return import_torch(m, torch.zeros(1, 3, 24, 24)), np.random.default_rng(3).standard_normal((6, 3, 24, 24))


def zoo_inputs(name: str, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n,) + ZOO[name][1])


EXPORTS = ("pt2", "onnx-torchscript-17", "onnx-export-17", "onnx-export-20")


def export(m: torch.nn.Module, shape, how: str, path) -> str:
    """Write m the way a user would; returns the file to give edgeviz."""
    import warnings
    x = torch.zeros((1,) + tuple(shape))
    path = str(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if how == "pt2":
            torch.export.save(torch.export.export(m, (x,)), path + ".pt2")
            return path + ".pt2"
        kw = {"onnx-torchscript-17": dict(dynamo=False, opset_version=17),
              "onnx-export-17": dict(dynamo=True, opset_version=17), "onnx-export-20": {}}[how]
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            torch.onnx.export(m, (x,), path + ".onnx", **kw)
        return path + ".onnx"
