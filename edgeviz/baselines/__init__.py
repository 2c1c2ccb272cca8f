"""Baselines that benchmarks measure edgeviz against, in the same run.

tvm_ref: what TVM 0.27 Relax does with the same model on its own (memory plan, fp32 C kernels).
"""
