/**
 * Registers TensorFlow.js's gradient functions. `@tensorflow/tfjs-core`'s Node bundle ships
 * without them and its ESM build cannot be imported from Node (directory imports), so they come
 * from the union package's Node bundle, which registers them on the same tfjs-core instance.
 * Import this module for its side effect wherever gradients are computed.
 */
import '@tensorflow/tfjs';
