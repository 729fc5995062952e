import { Conv2D, type NamedAttrMap, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { stockWasmKernel } from './wasm-kernel-call.ts';

/** The backend's own Conv2D, captured before conv2d.ts replaces it. */
export const stockConv2D = stockWasmKernel(Conv2D);

/**
 * Runs the stock XNNPACK Conv2D directly. The kernels here build their own convs (the
 * gradients, the swapped-roles routes) with filters made for one call, and want exactly the
 * conv they describe, not the route choices of the registered Conv2D.
 */
export function runStockConv2D(backend: BackendWasm, inputs: { x: TensorInfo; filter: TensorInfo }, attrs: NamedAttrMap): TensorInfo {
  return stockConv2D.kernelFunc({ inputs, backend, attrs }) as TensorInfo;
}
