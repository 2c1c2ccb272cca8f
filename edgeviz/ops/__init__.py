"""The op registry: one module per op, each with its int8 reference, cost and C emitter."""
from . import activation, add, attention, layernorm, linear, mul, patch_embed, pool
from . import tfl_attention, tfl_copy, tfl_eltwise, tfl_matmul, tfl_norm, tfl_reduce
from .base import OPS, Op

OPS.update({op.name: op for op in (
    add.OP, attention.OP, attention.SPLIT, attention.HEAD, attention.SCORES, attention.SOFTMAX, attention.AV, activation.OP, layernorm.OP,
    linear.OP, mul.OP, patch_embed.OP, patch_embed.IM2COL, pool.SELECT, pool.MEAN,
    # an imported .tflite file's ops, in TFLite's integer semantics (edgeviz/tflmath.py)
    tfl_matmul.FULLY_CONNECTED, tfl_matmul.CONV, tfl_matmul.BATCH_MATMUL, tfl_eltwise.BINARY, tfl_eltwise.TABLE,
    tfl_reduce.SOFTMAX, tfl_reduce.MEAN, tfl_copy.COPY, tfl_norm.LAYERNORM, tfl_attention.ATTENTION,
)})

__all__ = ["OPS", "Op"]
