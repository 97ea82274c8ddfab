"""infer/kernels"""
