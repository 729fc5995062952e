/**
 * The PyTorch cross-check (reference-crosscheck.test.ts) on the wasm backend, which the
 * workers use where no native backend loads. onednn needs its native addon built, so it is run
 * on demand instead: `CROSSCHECK_BACKEND=onednn npx ava test/reference-crosscheck.test.ts`.
 */
process.env.CROSSCHECK_BACKEND = 'wasm';
await import('./reference-crosscheck.test.ts');
