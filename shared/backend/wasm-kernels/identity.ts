import { Identity, type IdentityInputs, type KernelConfig, type KernelFunc, type TensorInfo } from '@tensorflow/tfjs-core';
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { stockWasmKernel } from './wasm-kernel-call.ts';

const stockIdentity = stockWasmKernel(Identity);

/**
 * Identity as a second reference to the same heap buffer, as the cpu backend and the wasm
 * backend's own Reshape do (the wasm data store counts references). The engine clones every
 * tensor it saves for the backward pass through this kernel, and the stock one copied each:
 * a tenth of a training step at 28x28, batch 64. Sharing is safe because no wasm kernel writes
 * into its inputs. Strings keep the stock path (they live outside the heap).
 */
function identity(args: { inputs: IdentityInputs; backend: BackendWasm }): TensorInfo {
  const x = args.inputs.x as TensorInfo;
  if (x.dtype === 'string') return stockIdentity.kernelFunc(args) as TensorInfo;
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

/** Registration record for `registerKernel`; replaces the stock wasm kernel. */
export const identityConfig: KernelConfig = {
  kernelName: Identity,
  backendName: 'wasm',
  kernelFunc: identity as unknown as KernelFunc,
  setupFunc: stockIdentity.setupFunc,
};
