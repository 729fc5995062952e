/*
 * Rough costs on the SIMD build, one thread (measured on ResNet-18's layers): XNNPACK's conv
 * runs about 17 G multiply-adds per second; it packs the filter (after the backend's own
 * transpose to OHWI) at some 20 ns a value; the wasm Transpose that puts a filter's output
 * channels first costs about 9 ns a value, other transposes here 1 to 5. The routes of the conv
 * kernels are chosen by these.
 */

/** Time of one multiply-add in XNNPACK's conv and GEMM kernels. */
export const NS_PER_MULTIPLY_ADD = 0.057;
/** Time to pack one value of a Conv2D filter (the backend's transpose to OHWI, then XNNPACK's packing). */
export const NS_PER_PACKED_VALUE = 20;
/** Time per value of the wasm Transpose that puts a filter's output channels first. */
export const NS_PER_TRANSPOSED_WEIGHT = 9;
/** Time per value of the other transposes and JS rearrangements of the swapped-roles convs. */
export const NS_PER_TRANSPOSED_ACTIVATION = 5;
