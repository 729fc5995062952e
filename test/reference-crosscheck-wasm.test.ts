/**
 * The PyTorch cross-check (reference-crosscheck.test.ts) on the wasm backend, which the
 * workers use where no native backend loads (reference-crosscheck-onednn.test.ts does onednn).
 */
process.env.CROSSCHECK_BACKEND = 'wasm';
await import('./reference-crosscheck.test.ts');
