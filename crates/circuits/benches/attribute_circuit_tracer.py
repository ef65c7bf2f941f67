#!/usr/bin/env python3
"""Attribution graphs on the default pack: circuit-tracer against Glassbox, side by side.

For prompts of 16, 48 and 64 tokens (the BOS `<|endoftext|>` included), every active
feature a node: circuit-tracer 0.5.0 through TransformerLens on the CPU at its best batch
size (of 64 to 512), and `glassbox graph --bos --all-features` (the same graph: see
`the_graph_is_circuit_tracers` in `crates/circuits/tests/default_pack.rs`), each the
best of two runs, in one run of this script; the ratio is circuit-tracer's time over
Glassbox's. Run by `cargo xtask bench` when `GLASSBOX_TORCH_PYTHON` names a Python with
`circuit-tracer==0.5.0`; numbers, no assertions.
"""

import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "crates" / "circuits" / "tests" / "fixtures"))

try:
    import torch
    from circuit_tracer import attribute
    from make_circuit_tracer_fixture import model_and_transcoders
except ImportError as missing:
    print(f"(circuit-tracer is not installed in this Python: {missing}; no comparison)")
    sys.exit(0)

TEXT = (
    "The Fulton County Grand Jury said Friday an investigation of Atlanta's recent primary "
    "election produced no evidence that any irregularities took place. The jury further said "
    "in term-end presentments that the City Executive Committee, which had over-all charge of "
    "the election, deserves the praise and thanks of the City of Atlanta for the manner in "
    "which the election was conducted."
)
GLASSBOX = ROOT / "target" / "release" / "glassbox"


def best_of(runs, function):
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return min(times)


def glassbox_seconds(text):
    out = Path(tempfile.mkdtemp()) / "graph.json"
    best = None
    for _ in range(2):
        run = subprocess.run(
            [str(GLASSBOX), "graph", "--pack", str(ROOT / "www" / "packs" / "brown"),
             "--text", text, "--bos", "--all-features", "--out", str(out)],
            capture_output=True, text=True, check=True,
        )
        seconds = float(re.search(r"computed in ([0-9.]+) s", run.stdout).group(1))
        best = seconds if best is None else min(best, seconds)
    return best


def main():
    torch.set_grad_enabled(True)
    model = model_and_transcoders()
    tokenizer = model.tokenizer
    bos = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    ids = tokenizer(TEXT, add_special_tokens=False).input_ids
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print("tokens | circuit-tracer (best batch) | Glassbox | circuit-tracer / Glassbox")
    for n in (16, 48, 64):
        text = tokenizer.decode(ids[: n - 1])
        tokens = [bos] + tokenizer(text, add_special_tokens=False).input_ids
        prompt = torch.tensor(tokens)
        timings = {}
        for batch in (64, 128, 256, 512):
            timings[batch] = best_of(2, lambda: attribute(
                prompt, model, max_feature_nodes=None, batch_size=batch, verbose=False))
        batch, theirs = min(timings.items(), key=lambda kv: kv[1])
        ours = glassbox_seconds(text)
        print(f"{len(tokens):6} | {theirs * 1000:9.0f} ms (batch {batch:3}) | "
              f"{ours * 1000:6.0f} ms | {theirs / ours:.2f}x")


if __name__ == "__main__":
    main()
