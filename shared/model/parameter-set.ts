import * as tf from '@tensorflow/tfjs-core';
import { copyTensorInto } from '../backend/copy-tensor-into.ts';
import { layersInOrder, type ResNet18Architecture } from './resnet18-architecture.ts';
import type { UniformSource } from './parameter-init.ts';
import { addConvParameters, addDenseParameters } from './layer-ops.ts';

/** A named weight; names follow tfjs-layers (`<layer>/kernel`), so checkpoints line up. */
export interface NamedVariable {
  name: string;
  variable: tf.Variable;
}

/**
 * The model's state: trainable parameters in a fixed canonical order (the order of the flat
 * gradient buffer that workers all-reduce) and the batch norm running statistics.
 */
export class ParameterSet {
  readonly trainable: NamedVariable[] = [];
  readonly runningStats: NamedVariable[] = [];
  private readonly byName = new Map<string, tf.Variable>();

  /** Total number of trainable scalars. */
  get trainableCount(): number {
    return this.trainable.reduce((sum, p) => sum + p.variable.size, 0);
  }

  get(name: string): tf.Variable {
    const variable = this.byName.get(name);
    if (!variable) throw new Error(`no parameter named ${name}`);
    return variable;
  }

  /** Every weight, trainable first, in canonical order. */
  all(): NamedVariable[] {
    return [...this.trainable, ...this.runningStats];
  }

  add(name: string, values: Float32Array, shape: number[], trainable: boolean): void {
    const initial = tf.tensor(values, shape, 'float32');
    const variable = tf.variable(initial, trainable, uniqueVariableName(name));
    initial.dispose();
    const entry = { name, variable };
    (trainable ? this.trainable : this.runningStats).push(entry);
    this.byName.set(name, variable);
  }

  dispose(): void {
    for (const { variable } of this.all()) variable.dispose();
    this.byName.clear();
  }
}

let variableCounter = 0;
/** tfjs variable names are global per process; several models may live side by side in tests. */
function uniqueVariableName(name: string): string {
  variableCounter += 1;
  return `${name}#${variableCounter}`;
}

/** Creates and initialises every parameter of `arch` from `rng`, in layer order. */
export function initialParameters(arch: ResNet18Architecture, rng: UniformSource): ParameterSet {
  const params = new ParameterSet();
  for (const layer of layersInOrder(arch)) {
    if (layer.kind === 'conv') {
      addConvParameters(params, layer, rng);
    } else {
      const c = layer.channels;
      params.add(`${layer.name}/gamma`, new Float32Array(c).fill(1), [c], true);
      params.add(`${layer.name}/beta`, new Float32Array(c), [c], true);
      params.add(`${layer.name}/moving_mean`, new Float32Array(c), [c], false);
      params.add(`${layer.name}/moving_variance`, new Float32Array(c).fill(1), [c], false);
    }
  }
  const { name, inFeatures, outFeatures } = arch.dense;
  addDenseParameters(params, name, inFeatures, outFeatures, rng);
  return params;
}

/** Number of scalars in `entries`. */
export function totalSize(entries: NamedVariable[]): number {
  return entries.reduce((sum, e) => sum + e.variable.size, 0);
}

/** Copies the values of `entries`, in order, into one flat buffer. */
export function flattenValues(entries: NamedVariable[], out = new Float32Array(totalSize(entries))): Float32Array {
  let offset = 0;
  for (const { variable } of entries) {
    copyTensorInto(variable, out, offset);
    offset += variable.size;
  }
  return out;
}

/** Assigns consecutive slices of `values` to `entries`, in order (the inverse of flattenValues). */
export function assignValues(entries: NamedVariable[], values: Float32Array): void {
  let offset = 0;
  for (const { variable } of entries) {
    const part = values.subarray(offset, offset + variable.size);
    tf.tidy(() => variable.assign(tf.tensor(part, variable.shape, 'float32')));
    offset += variable.size;
  }
}
