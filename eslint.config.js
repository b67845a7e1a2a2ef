import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', '.tap/', 'node_modules/', 'packages/*/dist/', 'examples/*/dist/'] },
  js.configs.recommended,
  ...tseslint.configs.strict,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { project: './tsconfig.check.json' } },
    rules: {
      'no-console': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-floating-promises': 'error'
    }
  },
  {
    // Their own tsconfigs: DOM types, and @realtime-gateway/* mapped to the sources.
    files: ['packages/react/**/*.ts'],
    languageOptions: { parserOptions: { project: './packages/react/tsconfig.json' } }
  },
  {
    files: ['test/react/**/*.ts'],
    languageOptions: { parserOptions: { project: './test/react/tsconfig.json' } }
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-non-null-assertion': 'off' }
  }
)
