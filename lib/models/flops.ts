/**
 * Floating-point operations per image of a tfjs-layers model, counted from its
 * layers: Conv2D 2·OH·OW·KH·KW·Cin·Cout (a multiply-add is 2 FLOPs), Dense
 * 2·in·out; batch norm, biases, activations, pooling, padding and residual adds
 * are left out (element-wise, well under 1% here). Used by the benchmark's
 * "% of peak" (tools/bench.ts).
 *
 * That nominal count includes the kernel taps that fall on a "same"
 * convolution's implicit zero padding, which oneDNN's kernels skip: on small
 * maps (VGG's 4x4 and 2x2 layers: 69% and 44% of the taps are real) an
 * implementation can then exceed the cores' peak by the nominal count.
 * `forwardNoPad` leaves those taps out (explicit ZeroPadding2D layers still
 * count: their zeros are in memory and get multiplied).
 *
 * ```ts
 * modelFlops(buildModel("resnet20", { bn: "none" })).forward; // ≈ 81.1e6
 * ```
 * @module
 */
import type * as tfl from "@tensorflow/tfjs-layers";

/** FLOPs of one layer that counts, per image. */
export interface LayerFlops {
  name: string;
  className: string;
  flops: number;
  /** Without the taps on implicit zero padding. */
  flopsNoPad: number;
}

/** FLOPs per image: the forward pass, and a training step counted as 3x forward. */
export interface ModelFlops {
  /** Forward pass, per image. */
  forward: number;
  /** Forward pass without the taps on "same" convolutions' implicit zero padding. */
  forwardNoPad: number;
  /** A training step per image: 3x forward (forward, backward data, backward weights). */
  train: number;
  /** The Conv2D / Dense layers counted, in model order. */
  layers: LayerFlops[];
}

/**
 * Pairs (output position, kernel tap) along one axis whose input index lies inside
 * the input (TF's "same" padding puts floor(total / 2) before).
 */
function realTaps(inSize: number, outSize: number, k: number, stride: number, dil: number, same: boolean) {
  const before = same ? Math.floor(Math.max((outSize - 1) * stride + (k - 1) * dil + 1 - inSize, 0) / 2) : 0;
  let n = 0;
  for (let o = 0; o < outSize; o++) {
    for (let t = 0; t < k; t++) {
      const i = o * stride - before + t * dil;
      if (i >= 0 && i < inSize) n++;
    }
  }
  return n;
}

/** The built shape of a single-input layer's input or output, without the batch axis. */
function shapeOf(t: tfl.SymbolicTensor | tfl.SymbolicTensor[], what: string, layer: string): number[] {
  const shape = (Array.isArray(t) ? t[0] : t).shape;
  const dims = shape.slice(1);
  if (dims.some((d) => d == null)) {
    throw new Error(`modelFlops: ${layer} has an unknown ${what} dimension (${JSON.stringify(shape)})`);
  }
  return dims as number[];
}

/**
 * FLOPs per image of `model` (its Conv2D and Dense layers, nested models
 * included), from the layers' built input and output shapes.
 */
export function modelFlops(model: tfl.LayersModel): ModelFlops {
  const layers: LayerFlops[] = [];
  const visit = (ls: tfl.layers.Layer[]) => {
    for (const l of ls) {
      const cls = l.getClassName();
      const nested = (l as unknown as { layers?: tfl.layers.Layer[] }).layers;
      if (Array.isArray(nested)) {
        visit(nested);
        continue;
      }
      if (cls === "Conv2D") {
        const cfg = l.getConfig() as {
          kernelSize: number | number[];
          strides?: number | number[];
          dilationRate?: number | number[];
          padding?: string;
          dataFormat?: string;
        };
        const pair = (v: number | number[] | undefined) => (Array.isArray(v) ? v : [v ?? 1, v ?? 1]);
        const out = shapeOf(l.output, "output", l.name);
        const inp = shapeOf(l.input, "input", l.name);
        const first = cfg.dataFormat === "channelsFirst";
        const [oh, ow, cout] = first ? [out[1], out[2], out[0]] : out;
        const [ih, iw, cin] = first ? [inp[1], inp[2], inp[0]] : inp;
        const k = pair(cfg.kernelSize), st = pair(cfg.strides), dl = pair(cfg.dilationRate);
        const same = cfg.padding === "same";
        layers.push({
          name: l.name,
          className: cls,
          flops: 2 * oh * ow * k[0] * k[1] * cin * cout,
          flopsNoPad: 2 * realTaps(ih, oh, k[0], st[0], dl[0], same) *
            realTaps(iw, ow, k[1], st[1], dl[1], same) *
            cin * cout,
        });
      } else if (cls === "Dense") {
        const inDims = shapeOf(l.input, "input", l.name);
        const outDims = shapeOf(l.output, "output", l.name);
        // a Dense on a rank > 2 input applies to each position of the leading axes
        const positions = inDims.slice(0, -1).reduce((a, b) => a * b, 1);
        const flops = 2 * positions * inDims[inDims.length - 1] * outDims[outDims.length - 1];
        layers.push({ name: l.name, className: cls, flops, flopsNoPad: flops });
      }
    }
  };
  visit(model.layers);
  const forward = layers.reduce((a, l) => a + l.flops, 0);
  const forwardNoPad = layers.reduce((a, l) => a + l.flopsNoPad, 0);
  return { forward, forwardNoPad, train: 3 * forward, layers };
}
