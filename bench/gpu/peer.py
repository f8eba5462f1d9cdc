"""Check the ONNX-to-PyTorch peer against ONNX Runtime, then time it eager and under
torch.compile(mode="reduce-overhead"). Prints one line per (model, mode, batch) and writes a
JSON file for run.sh's table.

usage: python3 peer.py --out peer.json MODEL.onnx... [--batches 1,8,16,32] [--image bus.jpg]
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import OnnxTorch, strip_activation_qdq  # noqa: E402


def letterbox(path, size=640):
    import cv2
    img = cv2.imread(path)[:, :, ::-1]  # BGR -> RGB
    h, w = img.shape[:2]
    r = min(size / w, size / h)
    nw, nh = round(w * r), round(h * r)
    img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    out = np.full((size, size, 3), 114, np.uint8)
    left, top = round((size - nw) / 2 - 0.1), round((size - nh) / 2 - 0.1)
    out[top:top + nh, left:left + nw] = img
    return (out.transpose(2, 0, 1)[None].astype(np.float32) / 255.0)


def rel_err(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)), float(
        np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-30))


def check(path, image):
    import onnxruntime as ort
    m = onnx.load(path)
    qdq = any(n.op_type == "QuantizeLinear" for n in m.graph.node)
    ref_model = strip_activation_qdq(m) if qdq else m
    x = letterbox(image)
    sess = ort.InferenceSession(ref_model.SerializeToString(), providers=["CPUExecutionProvider"])
    ref = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    res = {}
    with torch.inference_mode():
        p32 = OnnxTorch(m, 1, torch.float32, "cuda", channels_last=False).eval()
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        y32 = p32(torch.from_numpy(x).cuda())[0].float().cpu().numpy()
        res["fp32_vs_ort"] = rel_err(y32, ref)
        p16 = OnnxTorch(m, 1, torch.float16, "cuda").eval()
        xin = torch.from_numpy(x).cuda().half().to(memory_format=torch.channels_last)
        y16 = p16(xin)[0].float().cpu().numpy()
        res["fp16_vs_ort"] = rel_err(y16, ref)
        if qdq:  # the int8 original, for information: activation quantisation dropped
            s8 = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
            r8 = s8.run(None, {s8.get_inputs()[0].name: x})[0]
            res["fp16_vs_ort_int8_original"] = rel_err(y16, r8)
        del p32, p16
    torch.cuda.empty_cache()
    ok = res["fp32_vs_ort"][0] < 1e-4 and res["fp16_vs_ort"][0] < 2e-2
    return ok, res


def time_fn(fn, x, iters):
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(iters)]
    for i in range(iters):
        starts[i].record()
        fn(x)
        ends[i].record()
    torch.cuda.synchronize()
    t = sorted(s.elapsed_time(e) for s, e in zip(starts, ends))
    return t[len(t) // 2], t[min(len(t) - 1, int(len(t) * 0.99))]


def bench(path, batches, modes, iters):
    rows = []
    m = onnx.load(path)
    name = os.path.basename(path)
    for b in batches:
        mod = OnnxTorch(m, b, torch.float16, "cuda").eval()
        # random inputs in [0, 1) (never zeros); 32x3x640x640 fp16 is larger than L2
        g = torch.Generator(device="cuda").manual_seed(b)
        x = torch.rand((b, 3, 640, 640), device="cuda", generator=g).half().to(
            memory_format=torch.channels_last)
        for mode in modes:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            with torch.inference_mode():
                if mode == "eager":
                    fn = mod
                    warm = 10
                else:
                    torch._dynamo.reset()
                    fn = torch.compile(mod, mode="reduce-overhead", fullgraph=True, dynamic=False)
                    warm = 5
                t0 = time.time()
                for _ in range(warm):
                    fn(x)
                torch.cuda.synchronize()
                warm_s = time.time() - t0
                med, p99 = time_fn(fn, x, iters)
            mem = torch.cuda.max_memory_allocated() - base
            row = dict(model=name, mode=mode, batch=b, median_ms=med, p99_ms=p99,
                       img_s=b / med * 1e3, gpu_mem_mb=mem / 2**20, warmup_s=warm_s)
            print(f"peer {name} {mode:8s} b={b:2d} median {med:7.3f} ms p99 {p99:7.3f} ms "
                  f"{row['img_s']:9.0f} img/s mem {row['gpu_mem_mb']:7.1f} MiB "
                  f"(warm-up {warm_s:.1f} s)", flush=True)
            rows.append(row)
            del fn
        del mod, x
        torch.cuda.empty_cache()
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="+")
    ap.add_argument("--out", required=True)
    ap.add_argument("--batches", default="1,8,16,32")
    ap.add_argument("--modes", default="eager,compile")
    ap.add_argument("--iters", type=int, default=200)
    ap.add_argument("--image", required=True)
    a = ap.parse_args()
    out = dict(card=torch.cuda.get_device_name(0), torch=torch.__version__,
               cudnn=torch.backends.cudnn.version(), checks={}, rows=[])
    allok = True
    for p in a.models:
        ok, res = check(p, a.image)
        allok &= ok
        out["checks"][os.path.basename(p)] = dict(ok=ok, **res)
        print(f"peer check {os.path.basename(p)}: {'OK' if ok else 'FAIL'} "
              + " ".join(f"{k}=rel {v[0]:.2e} max {v[1]:.2e}" for k, v in res.items()), flush=True)
    batches = [int(b) for b in a.batches.split(",")]
    for p in a.models:
        out["rows"] += bench(p, batches, a.modes.split(","), a.iters)
    with open(a.out, "w") as f:
        json.dump(out, f, indent=1)
    return 0 if allok else 1


if __name__ == "__main__":
    sys.exit(main())
