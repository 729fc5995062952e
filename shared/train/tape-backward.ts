/**
 * tfjs-core 4.22's backward pass (engine.gradients with src/tape.ts's getFilteredNodesXToY and
 * backpropagateGradients, Apache-2.0, Copyright 2017 Google LLC), walked here so that it can say
 * when each variable's gradient is final and yield to the event loop between tape nodes: the
 * gradient all-reduce of a finished bucket then runs while the rest of the backward pass does.
 * The same kernels run in the same order with the same accumulation, so the gradients are the
 * bits tf.variableGrads gives. It reads only tfjs-core's tape (engine state and tape nodes),
 * which is the same whatever the backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';

/** A tfjs-core tape node (tape.ts's TapeNode). */
interface TapeNode {
  id: number;
  kernelName: string;
  outputs: tf.Tensor[];
  inputs: Record<string, tf.Tensor>;
  gradient?: (dys: Array<tf.Tensor | null>) => Record<string, () => tf.Tensor>;
  saved?: tf.Tensor[];
}

interface TapeState {
  activeTape: TapeNode[] | null;
  gradientDepth: number;
}

function tapeState(): TapeState {
  return tf.engine().state as unknown as TapeState;
}

/**
 * Runs `forward` with the gradient tape recording, as engine.gradients does (a new tape unless a
 * gradient computation is already running), and returns its result.
 */
export function recordForward<T extends tf.Tensor>(forward: () => T): T {
  const state = tapeState();
  if (state.gradientDepth === 0) state.activeTape = [];
  state.gradientDepth += 1;
  try {
    return tf.tidy('forward', forward);
  } finally {
    state.gradientDepth -= 1;
  }
}

/**
 * The backward pass from the scalar `y` of the last {@link recordForward} to `xs`, node by node,
 * last node first. After each node, `onFinal` gets the indices of the `xs` whose gradient no
 * later node changes, with a way to read them (tensors of the walk, freed when it ends); it
 * runs in a tidy scope before the walk yields to the event loop. Every x must contribute to y.
 *
 * No tfjs scope stays open across a yield, and the tape is taken off the engine when the walk
 * starts, so code that runs tfjs ops meanwhile (another rank's training loop in the same
 * process) neither sees our tensors nor leaves its own in our scope: each node runs in its own
 * tidy and keeps the gradients it produces, which the walk frees by hand, with the tape's saved
 * tensors, when it returns or throws.
 */
export async function backwardInSteps(
  y: tf.Scalar,
  xs: readonly tf.Variable[],
  onFinal: (indices: number[], gradientOf: (index: number) => tf.Tensor) => void,
): Promise<void> {
  const state = tapeState();
  const recorded = state.activeTape ?? [];
  // As engine.gradients: the tape is ours to free unless an outer gradient computation runs.
  const owned = state.gradientDepth === 0;
  if (owned) state.activeTape = null;
  const gradients = new Map<number, tf.Tensor>();
  try {
    const tape = filteredNodes(recorded, xs, y);
    const finalAt = lastNodeOf(tape, xs);
    gradients.set(y.id, tf.keep(tf.ones(y.shape)));
    const gradientOf = (index: number) => gradients.get(xs[index].id)!;
    for (let i = tape.length - 1; i >= 0; i -= 1) {
      tf.tidy(() => backpropagateNode(tape[i], gradients));
      const finished = finalAt.get(i);
      if (finished !== undefined) tf.tidy(() => onFinal(finished, gradientOf));
      await yieldToEventLoop();
    }
  } finally {
    for (const gradient of gradients.values()) gradient.dispose();
    if (owned) for (const node of recorded) tf.dispose(node.saved ?? []);
  }
}

/** tape index -> the xs whose gradient is final once that node is done (its smallest index taking them). */
function lastNodeOf(tape: TapeNode[], xs: readonly tf.Variable[]): Map<number, number[]> {
  const indexOf = new Map(xs.map((x, i) => [x.id, i]));
  const last = new Map<number, number>();
  tape.forEach((node, i) => {
    for (const input of Object.values(node.inputs)) {
      const x = indexOf.get(input.id);
      if (x !== undefined && !last.has(x)) last.set(x, i);
    }
  });
  const byNode = new Map<number, number[]>();
  xs.forEach((x, index) => {
    const at = last.get(index);
    if (at === undefined) throw new Error(`variable ${x.name} does not contribute to the loss`);
    byNode.set(at, [...(byNode.get(at) ?? []), index]);
  });
  return byNode;
}

/** tape.ts's backpropagateGradients, for one node (in a tidy scope: what it does not keep is freed). */
function backpropagateNode(node: TapeNode, gradients: Map<number, tf.Tensor>): void {
  const dys = node.outputs.map((o) => gradients.get(o.id) ?? null);
  if (node.gradient == null) throw new Error(`Cannot compute gradient: gradient function not found for ${node.kernelName}.`);
  const inputGradients = node.gradient(dys);
  for (const inputName in node.inputs) {
    if (!(inputName in inputGradients)) throw new Error(`Cannot backprop through input ${inputName} of ${node.kernelName}.`);
    const dx = tf.tidy(() => inputGradients[inputName]());
    const x = node.inputs[inputName];
    if (dx.dtype !== 'float32' || !tf.util.arraysEqual(dx.shape, x.shape)) {
      throw new Error(
        `Error in gradient for op ${node.kernelName}: input '${inputName}' got ${dx.dtype} [${dx.shape.join(',')}], expected float32 [${x.shape.join(',')}]`,
      );
    }
    // Kept: they outlive this node's tidy scope, and the walk frees them.
    const current = gradients.get(x.id);
    if (current === undefined) {
      gradients.set(x.id, tf.keep(dx));
    } else {
      gradients.set(x.id, tf.keep(tf.add(current, dx)));
      current.dispose();
    }
  }
}

/** tape.ts's getFilteredNodesXToY: the nodes on a path from xs to y, inputs pruned to those from xs. */
function filteredNodes(tape: TapeNode[], xs: readonly tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodesFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((input) => fromX.has(input.id))) {
      for (const output of node.outputs) fromX.add(output.id);
      nodesFromX.add(node.id);
    }
  }
  const leadToY = new Set([y.id]);
  const nodesToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i -= 1) {
    const node = tape[i];
    if (node.outputs.some((output) => leadToY.has(output.id))) {
      for (const input of Object.values(node.inputs)) leadToY.add(input.id);
      nodesToY.add(node.id);
    }
  }
  return tape
    .filter((node) => nodesFromX.has(node.id) && nodesToY.has(node.id))
    .map((node) => ({ ...node, inputs: Object.fromEntries(Object.entries(node.inputs).filter(([, input]) => fromX.has(input.id))) }));
}
