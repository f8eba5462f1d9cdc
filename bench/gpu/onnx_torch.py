"""A small ONNX-to-PyTorch interpreter: the peer that the CUDA backend is measured against.

It runs the ONNX detectors of ../shared/models in PyTorch (fp16 by default, channels-last),
with weights dequantised once at load (QuantizeLinear/DequantizeLinear pairs on activations are
dropped, as the CUDA backend does). Constant sub-graphs (reshaped biases, dequantised weights,
shape tensors) are folded at load into Python/numpy values, so forward() holds only tensor ops
and torch.compile captures one graph. Batch size is fixed per instance: Reshape shape constants
baked at batch 1 by the exporters get their leading 1 replaced by the batch.

Only the ops these models use are implemented; anything else raises NotImplementedError naming
the node, so the interpreter never silently computes something else.
"""

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper


def _attrs(node):
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _s(v):
    return v.decode() if isinstance(v, bytes) else v


def strip_activation_qdq(model):
    """Return a copy of an ONNX model with QuantizeLinear->DequantizeLinear pairs on activations
    replaced by Identity (weights stay int8 + DequantizeLinear): the float model the peer and
    our CUDA backend actually compute, so ONNX Runtime can check them exactly."""
    m = onnx.ModelProto()
    m.CopyFrom(model)
    g = m.graph
    producers = {o: n for n in g.node for o in n.output}
    inits = {i.name for i in g.initializer}
    for n in g.node:
        if n.op_type == "DequantizeLinear" and n.input[0] not in inits:
            q = producers.get(n.input[0])
            if q is not None and q.op_type == "QuantizeLinear":
                src = q.input[0]
                del n.input[:]
                n.input.append(src)
                del n.attribute[:]
                n.op_type = "Identity"
    used = {i for n in g.node for i in n.input} | {o.name for o in g.output}
    keep = [n for n in g.node if n.op_type != "QuantizeLinear" or any(o in used for o in n.output)]
    del g.node[:]
    g.node.extend(keep)
    return m


class OnnxTorch(torch.nn.Module):
    def __init__(self, path_or_model, batch=1, dtype=torch.float16, device="cuda",
                 channels_last=True):
        super().__init__()
        model = onnx.load(path_or_model) if isinstance(path_or_model, str) else path_or_model
        g = model.graph
        self.batch = batch
        self.dtype = dtype
        self.channels_last = channels_last
        opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                    default=13)
        self.opset = opset
        consts = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        const_names = set(consts)
        self.input_name = [i.name for i in g.input if i.name not in const_names][0]
        self.output_names = [o.name for o in g.output]
        self._tensors = torch.nn.ParameterList()
        self._tidx = {}
        self.steps = []  # (fn, input keys, output names)
        alias = {}  # activation Q/DQ dropped: name -> name

        def res(name):
            while name in alias:
                name = alias[name]
            return name

        for node in g.node:
            ins = [res(i) if i else "" for i in node.input]
            a = _attrs(node)
            op = node.op_type
            if op == "Constant":
                consts[node.output[0]] = numpy_helper.to_array(a["value"])
                continue
            if all(i == "" or i in consts for i in ins):
                vals = self._fold(op, [consts[i] if i else None for i in ins], a, node)
                for o, v in zip(node.output, vals):
                    consts[o] = v
                continue
            if op in ("QuantizeLinear", "DequantizeLinear", "Identity"):
                alias[node.output[0]] = ins[0]
                continue
            self.steps.append(self._lower(op, ins, a, consts, node) + (list(node.output),))
        self.output_names = [res(o) for o in self.output_names]
        self.to(device)

    # ---- load time -------------------------------------------------------------------
    def _fold(self, op, v, a, node):
        if op == "DequantizeLinear":
            x, scale = v[0].astype(np.float32), v[1].astype(np.float32)
            zp = v[2].astype(np.float32) if len(v) > 2 and v[2] is not None else np.float32(0)
            axis = a.get("axis", 1)
            if scale.ndim == 1 and scale.size > 1:
                shp = [1] * x.ndim
                shp[axis] = -1
                scale = scale.reshape(shp)
                zp = zp.reshape(shp) if np.ndim(zp) else zp
            return [(x - zp) * scale]
        if op == "Reshape":
            shape = [int(s) for s in v[1]]
            shape = [v[0].shape[i] if s == 0 else s for i, s in enumerate(shape)]
            return [v[0].reshape(shape)]
        if op in ("Add", "Sub", "Mul", "Div"):
            f = {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply, "Div": np.divide}[op]
            return [f(v[0], v[1])]
        if op == "Cast":
            return [v[0].astype(helper.tensor_dtype_to_np_dtype(a["to"]))]
        if op == "Concat":
            return [np.concatenate(v, axis=a["axis"])]
        raise NotImplementedError(f"constant folding of {op} (node {node.name})")

    def _param(self, arr, keep_float32=False):
        t = torch.from_numpy(np.ascontiguousarray(arr))
        if t.is_floating_point() and not keep_float32:
            t = t.to(self.dtype)
        p = torch.nn.Parameter(t, requires_grad=False)
        self._tensors.append(p)
        return len(self._tensors) - 1

    def _lower(self, op, ins, a, consts, node):
        """Return (fn, arg spec). Arg spec entries: ('t', name) runtime tensor, ('p', idx) a
        parameter tensor."""
        def arg(name):
            if name in consts:
                return ("p", self._param(consts[name]))
            return ("t", name)

        if op == "Conv":
            w = consts[ins[1]]
            stride, pads = a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0])
            dil, group = a.get("dilations", [1, 1]), a.get("group", 1)
            if pads[0] != pads[2] or pads[1] != pads[3]:
                raise NotImplementedError(f"asymmetric pads in {node.name}")
            wt = torch.from_numpy(np.ascontiguousarray(w))
            if self.channels_last:
                wt = wt.to(memory_format=torch.channels_last)
            p = torch.nn.Parameter(wt.to(self.dtype), requires_grad=False)
            self._tensors.append(p)
            widx = len(self._tensors) - 1
            bidx = self._param(consts[ins[2]]) if len(ins) > 2 and ins[2] else None
            st, pd, dl = tuple(stride), (pads[0], pads[1]), tuple(dil)

            def conv(x, w, b=None):
                return F.conv2d(x, w, b, st, pd, dl, group)
            spec = [("t", ins[0]), ("p", widx)] + ([("p", bidx)] if bidx is not None else [])
            return conv, spec
        if op in ("Add", "Sub", "Mul", "Div", "MatMul"):
            f = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div,
                 "MatMul": torch.matmul}[op]
            return (lambda x, y: f(x, y)), [arg(ins[0]), arg(ins[1])]
        if op == "Sigmoid":
            return torch.sigmoid, [("t", ins[0])]
        if op == "Softmax":
            axis = a.get("axis", 1 if self.opset < 13 else -1)

            def softmax(x):
                ax = axis % x.dim()
                if self.opset < 13 and ax != x.dim() - 1:
                    raise NotImplementedError(f"opset<13 Softmax axis {axis} in {node.name}")
                return torch.softmax(x, dim=ax)
            return softmax, [("t", ins[0])]
        if op == "Reshape":
            shape = [int(s) for s in consts[ins[1]]]
            n = self.batch

            def reshape(x):
                s = [x.shape[i] if v == 0 else v for i, v in enumerate(shape)]
                if s[0] == 1 and x.shape[0] == n and n != 1:
                    s[0] = n  # the exporter baked batch 1 in
                return torch.reshape(x, s)
            return reshape, [("t", ins[0])]
        if op == "Transpose":
            perm = tuple(a["perm"])
            return (lambda x: x.permute(perm)), [("t", ins[0])]
        if op == "Concat":
            axis = a["axis"]
            return (lambda *xs: torch.cat(xs, dim=axis)), [arg(i) for i in ins]
        if op == "Split":
            axis = a.get("axis", 0)
            sizes = a.get("split")
            if sizes is None and len(ins) > 1 and ins[1]:
                sizes = consts[ins[1]]
            if sizes is None:
                raise NotImplementedError(f"Split without sizes in {node.name}")
            sizes = [int(s) for s in sizes]
            return (lambda x: torch.split(x, sizes, dim=axis)), [("t", ins[0])]
        if op == "Slice":
            if "starts" in a:
                starts, ends, axes = a["starts"], a["ends"], a.get("axes")
                steps = None
            else:
                starts, ends = consts[ins[1]].tolist(), consts[ins[2]].tolist()
                axes = consts[ins[3]].tolist() if len(ins) > 3 and ins[3] else None
                steps = consts[ins[4]].tolist() if len(ins) > 4 and ins[4] else None
            axes = axes if axes is not None else list(range(len(starts)))
            steps = steps if steps is not None else [1] * len(starts)
            if any(s != 1 for s in steps):
                raise NotImplementedError(f"Slice with steps in {node.name}")

            def slice_(x):
                for s, e, ax in zip(starts, ends, axes):
                    d = x.shape[ax]
                    s = max(0, min(d, s + d if s < 0 else s))
                    e = max(0, min(d, e + d if e < 0 else e))
                    x = x.narrow(ax, s, max(0, e - s))
                return x
            return slice_, [("t", ins[0])]
        if op == "MaxPool":
            k, st = tuple(a["kernel_shape"]), tuple(a.get("strides", [1, 1]))
            pads = a.get("pads", [0, 0, 0, 0])
            if a.get("ceil_mode", 0) or pads[0] != pads[2] or pads[1] != pads[3]:
                raise NotImplementedError(f"MaxPool attributes of {node.name}")
            pd = (pads[0], pads[1])
            return (lambda x: F.max_pool2d(x, k, st, pd)), [("t", ins[0])]
        if op == "Resize":
            mode = _s(a.get("mode", "nearest"))
            ctm = _s(a.get("coordinate_transformation_mode", "half_pixel"))
            nm = _s(a.get("nearest_mode", "round_prefer_floor"))
            scales = consts[ins[2]] if len(ins) > 2 and ins[2] and consts[ins[2]].size else None
            if (mode != "nearest" or ctm != "asymmetric" or nm != "floor" or scales is None
                    or list(scales[:2]) != [1, 1] or scales[2] != scales[3]
                    or scales[2] != int(scales[2])):
                raise NotImplementedError(f"Resize attributes of {node.name}")
            f = int(scales[2])
            # integer nearest upsampling with asymmetric/floor is exactly 'nearest'
            return (lambda x: F.interpolate(x, scale_factor=f, mode="nearest")), [("t", ins[0])]
        if op == "Cast":
            return (lambda x: x), [("t", ins[0])]
        raise NotImplementedError(f"op {op} (node {node.name})")

    # ---- run time --------------------------------------------------------------------
    def forward(self, x):
        env = {self.input_name: x}
        params = self._tensors
        for fn, spec, outs in self.steps:
            args = [env[v] if k == "t" else params[v] for k, v in spec]
            r = fn(*args)
            if isinstance(r, (tuple, list)):
                for o, t in zip(outs, r):
                    env[o] = t
            else:
                env[outs[0]] = r
        return tuple(env[o] for o in self.output_names)
