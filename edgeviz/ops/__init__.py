"""The op registry: one module per op, each with its int8 reference, cost and C emitter."""
from . import activation, add, attention, layernorm, linear, mul, patch_embed, pool
from .base import OPS, Op

OPS.update({op.name: op for op in (
    add.OP, attention.OP, attention.SPLIT, attention.SCORES, attention.SOFTMAX, attention.AV, activation.OP, layernorm.OP,
    linear.OP, mul.OP, patch_embed.OP, patch_embed.IM2COL, pool.SELECT, pool.MEAN,
)})

__all__ = ["OPS", "Op"]
