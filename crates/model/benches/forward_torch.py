#!/usr/bin/env python3
"""The same benchmark as benches/forward.rs, in PyTorch on the CPU: transformers' GPT-2 at
the same shapes, and SmolLM2-135M from the same GGUF (dequantized to f32 by transformers;
needs the PyPI packages `gguf` and `accelerate`)."""

import os
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
    for length in (1, 64, 256):
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


def median_ms(run):
    run()
    times = []
    started = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - started < 3.0 and len(times) < 50):
        t = time.perf_counter()
        run()
        times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(times), len(times)


models = os.environ.get("GLASSBOX_MODELS", os.path.join(os.path.dirname(__file__), "../../../target/models"))
folder = os.path.join(models, "smollm2")
name = "SmolLM2-135M-Instruct.Q4_1.gguf"
if os.path.exists(os.path.join(folder, name)):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging
    logging.disable_progress_bar()
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, torch_dtype=torch.float32).eval()
    vocab = model.config.vocab_size
    with torch.no_grad():
        for length in (64, 256):
            tokens = (torch.arange(length) * 7919 % vocab).unsqueeze(0)
            ms, runs = median_ms(lambda: model(tokens))
            print(f"SmolLM2-135M, prefill {length} tokens: median {ms:.1f} ms over {runs} runs")
        prompt = (torch.arange(64) * 7919 % vocab).unsqueeze(0)
        steps, runs = 32, []
        for _ in range(4):
            out = model(prompt, use_cache=True)
            cache = out.past_key_values
            t = time.perf_counter()
            for step in range(steps):
                out = model(torch.tensor([[step * 31 % vocab]]), past_key_values=cache, use_cache=True)
                cache = out.past_key_values
            runs.append(time.perf_counter() - t)
        seconds = statistics.median(runs)
        print(f"SmolLM2-135M, decode after a 64-token prompt: {seconds * 1e3 / steps:.1f} ms per token, "
              f"{steps / seconds:.1f} tokens/s (median of {len(runs)} runs of {steps})")
else:
    print(f"SmolLM2-135M: {os.path.join(folder, name)} is missing (cargo xtask models)")
