// ESLint flat config: typescript-eslint's type-aware rules over every TypeScript file we ship or test.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['node_modules/', 'build/', 'proto/generated/', '.fmnist-cluster/'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // A leading underscore marks a binding that is deliberately unused (skipped tuple slots, required parameters).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' }],
      // TensorFlow.js ops are generic over their rank; stating the rank by assertion is that
      // library's idiom (its own layers do it), so these assertions stay.
      '@typescript-eslint/no-unnecessary-type-assertion': [
        'error',
        { typesToIgnore: ['tf.Scalar', 'tf.Tensor', 'tf.Tensor1D', 'tf.Tensor2D', 'tf.Tensor4D', 'tf.Tensor[]'] },
      ],
    },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
  },
  {
    // Plain JavaScript build scripts run under Node.
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: {
      globals: {
        process: 'readonly',
        console: 'readonly',
        Buffer: 'readonly',
        URL: 'readonly',
        setTimeout: 'readonly',
        clearTimeout: 'readonly',
        fetch: 'readonly',
        AbortSignal: 'readonly',
      },
    },
  },
);
