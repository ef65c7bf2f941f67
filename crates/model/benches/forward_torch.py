#!/usr/bin/env python3
"""The same benchmark as benches/forward.rs, in PyTorch (transformers' GPT-2) on the CPU."""

import statistics
import time

import torch
from transformers import GPT2Config, GPT2LMHeadModel

SHAPES = [
    ("default-pack shape (4 layers, d=256, 4 heads, vocab 8192)", dict(n_layer=4, n_embd=256, n_head=4, n_positions=256, vocab_size=8192)),
    ("GPT-2 small shape (12 layers, d=768, 12 heads, vocab 50257)", dict(n_layer=12, n_embd=768, n_head=12, n_positions=1024, vocab_size=50257)),
]

torch.manual_seed(0)
print(f"PyTorch {torch.__version__} CPU, {torch.get_num_threads()} threads")
for name, overrides in SHAPES:
    model = GPT2LMHeadModel(GPT2Config(**overrides)).eval()
    for length in (64, 256):
        tokens = (torch.arange(length) * 7919 % overrides["vocab_size"]).unsqueeze(0)
        with torch.no_grad():
            model(tokens)
            times = []
            started = time.perf_counter()
            while len(times) < 3 or (time.perf_counter() - started < 3.0 and len(times) < 50):
                t = time.perf_counter()
                model(tokens)
                times.append((time.perf_counter() - t) * 1e3)
        print(f"{name}, {length} tokens: median {statistics.median(times):.1f} ms over {len(times)} runs")
