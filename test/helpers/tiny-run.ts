/**
 * Flags of the small runs the cluster tests launch: tiny-cnn (no batch norm, so N workers and
 * a resumed run follow one process's trajectory) at 28x28 on the wasm backend, 10 steps of 32
 * images per epoch, printing JSON lines. `extra` overrides or adds flags by name.
 */
export function tinyRunFlags(extra: Record<string, string | number> = {}): string[] {
  const flags: Record<string, string | number> = {
    model: 'tiny-cnn',
    epochs: 3,
    'batch-size': 32,
    resize: 28,
    'limit-train': 320,
    'limit-test': 32,
    backend: 'wasm',
    ...extra,
  };
  return [...Object.entries(flags).flatMap(([name, value]) => [`--${name}`, String(value)]), '--json'];
}
