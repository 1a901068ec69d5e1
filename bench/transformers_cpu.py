"""mamba-stream vs transformers on the CPU, same model, same machine, one run.

Makes a random Mamba model of the reference workload's shape (BENCHMARKS.md: d_model 768,
24 layers, vocab 16; --n-layer/--d-model to shrink it) with transformers, saves it in the
Hugging Face layout, times transformers' forward (its pure-PyTorch path: no mamba_ssm
kernels on a CPU) over one sequence, then `mamba-stream bench --model` on the same
directory, and prints both. Needs torch + transformers (not installed by the project).

    python3 bench/transformers_cpu.py --bin build/mamba-stream [--arch mamba1|mamba2]
"""
import argparse, os, subprocess, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument('--bin', default='build/mamba-stream')
p.add_argument('--arch', default='mamba1', choices=['mamba1', 'mamba2'])
p.add_argument('--d-model', type=int, default=768)
p.add_argument('--n-layer', type=int, default=24)
p.add_argument('--tokens', type=int, default=2048)
p.add_argument('--threads', type=int, default=os.cpu_count())
a = p.parse_args()

import torch
import transformers as T
torch.set_num_threads(a.threads)
torch.manual_seed(0)
if a.arch == 'mamba1':
    cfg = T.MambaConfig(vocab_size=16, hidden_size=a.d_model, num_hidden_layers=a.n_layer,
                        state_size=16, expand=2, conv_kernel=4)
    model = T.MambaForCausalLM(cfg)
else:
    cfg = T.Mamba2Config(vocab_size=16, hidden_size=a.d_model, num_hidden_layers=a.n_layer,
                         state_size=128, expand=2, head_dim=64, num_heads=2 * a.d_model // 64,
                         n_groups=1, conv_kernel=4, chunk_size=256)
    model = T.Mamba2ForCausalLM(cfg)
model.eval()
d = tempfile.mkdtemp()
model.save_pretrained(d, safe_serialization=True)
ids = torch.randint(0, 16, (1, a.tokens))
with torch.no_grad():
    model(input_ids=ids[:, :64], use_cache=False)  # warm-up
    t0 = time.perf_counter()
    model(input_ids=ids, use_cache=False)
    dt = time.perf_counter() - t0
print(f'transformers {T.__version__} (torch {torch.__version__}, {a.threads} threads): '
      f'{a.arch} {a.d_model}x{a.n_layer}, one sequence of {a.tokens} tokens: {a.tokens / dt:.0f} tok/s')
sys.stdout.flush()
subprocess.run([a.bin, 'bench', '--model', d, '--tokens', str(a.tokens), '--chunk', str(a.tokens),
                '--reads', '1', '--read-len', '16', '--decode', '1', '--decode-steps', '4',
                '--threads', str(a.threads)], check=True)
