"""mamba2.py - a Mamba-2 network in plain PyTorch for training our models.

Parameter names and shapes are those of transformers' Mamba2Model / Mamba2ForCausalLM, so
the state dict exports unchanged to the layout mamba-stream loads (docs/model-format.md);
export.py then checks the export against transformers' own Mamba2 where it is installed.

Why our own module rather than transformers': it trains on PyTorch 1.13 on a laptop CPU as
well as on the GPU machine, it takes feature input (the keyword model's log-mel frames)
and its scan is the chunked SSD form, all matrix products, fast without custom kernels.

Shapes: B batch, L time, D d_model, E d_inner = expand*D, H heads, P head_dim (E = H*P),
G groups, N d_state, K conv kernel, T scan chunk.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.utils.checkpoint as ckpt


class Mamba2Config:
    """The transformers Mamba2Config fields we use, with its defaults where it has them."""

    def __init__(self, hidden_size=128, num_hidden_layers=4, state_size=64, head_dim=32,
                 expand=2, n_groups=1, conv_kernel=4, vocab_size=16, chunk_size=64,
                 layer_norm_epsilon=1e-5, time_step_min=0.001, time_step_max=0.1,
                 time_step_floor=1e-4, tie_word_embeddings=True, residual_in_fp32=True,
                 use_conv_bias=True, use_bias=False):
        self.__dict__.update(locals())
        del self.__dict__["self"]
        self.intermediate_size = expand * hidden_size
        assert self.intermediate_size % head_dim == 0, "expand*hidden_size must divide by head_dim"
        self.num_heads = self.intermediate_size // head_dim

    def hf_dict(self):
        """config.json as transformers writes it for Mamba2ForCausalLM."""
        keys = ["hidden_size", "num_hidden_layers", "state_size", "head_dim", "expand",
                "n_groups", "conv_kernel", "vocab_size", "chunk_size", "layer_norm_epsilon",
                "time_step_min", "time_step_max", "time_step_floor", "tie_word_embeddings",
                "residual_in_fp32", "use_conv_bias", "use_bias", "num_heads"]
        d = {k: getattr(self, k) for k in keys}
        d.update(architectures=["Mamba2ForCausalLM"], model_type="mamba2",
                 hidden_act="silu", rms_norm=True, norm_before_gate=False,
                 time_step_rank=math.ceil(self.hidden_size / 16),
                 time_step_limit=[0.0, {"__float__": "Infinity"}], rescale_prenorm_residual=False,
                 initializer_range=0.1)
        return d


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return (xf * self.weight.float()).to(x.dtype)


def segsum_exp(a):
    """a [..., T] -> [..., T, T] with out[i, j] = exp(a[j+1] + ... + a[i]) for i >= j, else 0.

    The masked entries are set to -inf before exp: their sums are positive and could
    overflow, and inf * 0 would poison the products."""
    T = a.shape[-1]
    cs = torch.cumsum(a, dim=-1)
    diff = cs[..., :, None] - cs[..., None, :]
    mask = torch.ones(T, T, dtype=torch.bool, device=a.device).tril()
    return torch.exp(diff.masked_fill(~mask, float("-inf")))


def ssd_scan(x, dt, A, Bm, Cm, T, h0=None):
    """The SSD recurrence h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t^T, y_t = h_t C_t, by chunks.

    x [B,L,H,P], dt [B,L,H] (after softplus), A [H] (< 0), Bm/Cm [B,L,H,N] (already
    expanded from groups to heads), h0 [B,H,P,N] or None. L must be a multiple of T.
    Float32 throughout. Returns y [B,L,H,P] and the final state [B,H,P,N]."""
    Bsz, L, H, P = x.shape
    nc = L // T
    xdt = (x * dt[..., None]).reshape(Bsz, nc, T, H, P)
    a = (dt * A).reshape(Bsz, nc, T, H).permute(0, 3, 1, 2)          # [B,H,nc,T]
    Bc = Bm.reshape(Bsz, nc, T, H, -1)
    Cc = Cm.reshape(Bsz, nc, T, H, -1)
    acum = torch.cumsum(a, dim=-1)                                      # [B,H,nc,T]

    # Within each chunk: y_i = sum_{j<=i} (C_i . B_j) exp(acum_i - acum_j) xdt_j.
    Lmat = segsum_exp(a)                                                # [B,H,nc,T,T]
    CB = torch.einsum("bclhn,bcshn->bhcls", Cc, Bc)
    y = torch.einsum("bhcls,bcshp->bclhp", CB * Lmat, xdt)

    # Each chunk's own contribution to the state at its end.
    decay_to_end = torch.exp(acum[..., -1:] - acum)                     # [B,H,nc,T]
    states = torch.einsum("bcshn,bhcs,bcshp->bchpn", Bc, decay_to_end, xdt)
    if h0 is None:
        h0 = torch.zeros(Bsz, H, P, Bc.shape[-1], dtype=x.dtype, device=x.device)
    states = torch.cat([h0[:, None], states], dim=1)                    # [B,nc+1,H,P,N]
    # Across chunks: the state entering chunk c sums every earlier chunk's, decayed.
    chunk_a = F.pad(acum[..., -1], (1, 0))                              # [B,H,nc+1]
    inter = segsum_exp(chunk_a)                                         # [B,H,nc+1,nc+1]
    states = torch.einsum("bhzc,bchpn->bzhpn", inter, states)
    entering, final = states[:, :-1], states[:, -1]

    # The entering state's contribution: C_i . (exp(acum_i) h_enter).
    y = y + torch.einsum("bclhn,bchpn,bhcl->bclhp", Cc, entering, torch.exp(acum))
    return y.reshape(Bsz, L, H, P), final


class Mamba2Mixer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        E, G, N, H = c.intermediate_size, c.n_groups, c.state_size, c.num_heads
        self.conv_dim = E + 2 * G * N
        self.in_proj = nn.Linear(c.hidden_size, 2 * E + 2 * G * N + H, bias=c.use_bias)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, c.conv_kernel,
                                groups=self.conv_dim, padding=c.conv_kernel - 1,
                                bias=c.use_conv_bias)
        # dt init as mamba_ssm: log-uniform in [dt_min, dt_max], bias = softplus^-1(dt).
        dt = torch.exp(torch.rand(H) * (math.log(c.time_step_max) - math.log(c.time_step_min))
                       + math.log(c.time_step_min)).clamp(min=c.time_step_floor)
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))
        self.A_log = nn.Parameter(torch.log(torch.empty(H).uniform_(1, 16)))
        self.D = nn.Parameter(torch.ones(H))
        self.norm = RMSNorm(E, c.layer_norm_epsilon)
        self.out_proj = nn.Linear(E, c.hidden_size, bias=c.use_bias)

    def forward(self, u):
        c = self.c
        Bsz, L, _ = u.shape
        E, G, N, H, P = c.intermediate_size, c.n_groups, c.state_size, c.num_heads, c.head_dim
        zxbcdt = self.in_proj(u)
        z, xBC, dt = torch.split(zxbcdt, [E, self.conv_dim, H], dim=-1)
        xBC = F.silu(self.conv1d(xBC.transpose(1, 2))[..., :L].transpose(1, 2))
        x, Bm, Cm = torch.split(xBC, [E, G * N, G * N], dim=-1)

        # The scan in float32 on padded length (zero dt past the end changes nothing).
        T = c.chunk_size
        pad = (-L) % T
        with torch.autocast(device_type=u.device.type, enabled=False):
            dt = F.softplus(dt.float() + self.dt_bias.float())
            A = -torch.exp(self.A_log.float())
            xh = x.float().reshape(Bsz, L, H, P)
            Bh = Bm.float().reshape(Bsz, L, G, N).repeat_interleave(H // G, dim=2)
            Ch = Cm.float().reshape(Bsz, L, G, N).repeat_interleave(H // G, dim=2)
            if pad:
                xh, Bh, Ch = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (xh, Bh, Ch))
                dt = F.pad(dt, (0, 0, 0, pad))
            y, _ = ssd_scan(xh, dt, A, Bh, Ch, T)
            y = y[:, :L] + xh[:, :L] * self.D.float()[:, None]
            y = y.reshape(Bsz, L, E)
            # Gated RMSNorm per group of E/G channels: norm(y * silu(z)) * weight.
            g = (y * F.silu(z.float())).reshape(Bsz, L, G, E // G)
            g = g * torch.rsqrt(g.pow(2).mean(-1, keepdim=True) + c.layer_norm_epsilon)
            y = g.reshape(Bsz, L, E) * self.norm.weight.float()
        return self.out_proj(y)  # autocast casts y down where it is on


class Mamba2Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = RMSNorm(c.hidden_size, c.layer_norm_epsilon)
        self.mixer = Mamba2Mixer(c)

    def forward(self, h):
        # residual_in_fp32: the residual stream stays float32 under autocast.
        return h.float() + self.mixer(self.norm(h)).float()


class Mamba2Backbone(nn.Module):
    """transformers' Mamba2Model: embeddings, layers, norm_f."""

    def __init__(self, c, embed=True):
        super().__init__()
        self.c = c
        if embed:
            self.embeddings = nn.Embedding(c.vocab_size, c.hidden_size)
            nn.init.normal_(self.embeddings.weight, std=0.02)
        self.layers = nn.ModuleList([Mamba2Block(c) for _ in range(c.num_hidden_layers)])
        self.norm_f = RMSNorm(c.hidden_size, c.layer_norm_epsilon)
        self.grad_checkpointing = False

    def forward(self, ids=None, embeds=None):
        h = self.embeddings(ids) if embeds is None else embeds
        for layer in self.layers:
            if self.grad_checkpointing and self.training:
                h = ckpt.checkpoint(layer, h, use_reentrant=False)
            else:
                h = layer(h)
        return self.norm_f(h)


class Mamba2LM(nn.Module):
    """Mamba2ForCausalLM: logits [B,L,vocab] for next-token prediction."""

    def __init__(self, c):
        super().__init__()
        self.c = c
        self.backbone = Mamba2Backbone(c)
        if not c.tie_word_embeddings:
            self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)

    def forward(self, ids):
        h = self.backbone(ids)
        w = self.backbone.embeddings.weight if self.c.tie_word_embeddings else self.lm_head.weight
        return F.linear(h, w)


class Mamba2Classifier(nn.Module):
    """The audio classifier of docs/model-format.md: frontend.proj, backbone, classifier.
    Logits at every frame [B,L,n_labels] (the backbone is causal: a running prediction)."""

    def __init__(self, c, n_in, n_labels):
        super().__init__()
        self.c = c
        self.frontend = nn.Module()
        self.frontend.proj = nn.Linear(n_in, c.hidden_size)
        self.backbone = Mamba2Backbone(c, embed=False)
        self.classifier = nn.Linear(c.hidden_size, n_labels)

    def forward(self, feats):
        return self.classifier(self.backbone(embeds=self.frontend.proj(feats)))
