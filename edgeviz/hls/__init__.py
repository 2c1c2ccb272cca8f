"""FPGA backend: HLS project generator, resource/latency estimator and g++ C-simulation driver.

Resource and latency figures from this package are edgeviz's own estimates from layer shapes and
reuse factors, not figures from a vendor HLS or implementation tool.
"""
