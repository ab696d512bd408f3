// Lint: typescript-eslint's recommended type-aware rules, warnings fail the build (--max-warnings 0).
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["gen/**", "dist/**", "node_modules/**", "**/*.js", "**/*.cjs"] },
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_" }],
      "no-console": "error",
      // An async generator or handler without await is a legitimate Connect implementation.
      "@typescript-eslint/require-await": "off",
    },
  },
  {
    files: ["**/test/**", "**/*.test.ts", "bench/**", "scripts/**"],
    rules: {
      "@typescript-eslint/no-unused-expressions": "off",
      "no-console": "off",
    },
  },
);
