/**
 * The PyTorch cross-check (reference-crosscheck.test.ts) on the onednn backend. CI installs
 * libdnnl-dev and `npm ci` builds the addon, so this runs there; without the addon it fails
 * (selectBackend('onednn') throws BackendError) rather than passing quietly.
 */
process.env.CROSSCHECK_BACKEND = 'onednn';
await import('./reference-crosscheck.test.ts');
