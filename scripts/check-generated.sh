#!/usr/bin/env bash
# Fails when the committed gen/ differs from what `buf generate` writes from proto/.
set -euo pipefail
buf generate
if ! git diff --quiet -- gen || [ -n "$(git ls-files --others --exclude-standard -- gen)" ]; then
  echo "gen/ is stale: run 'make generate' and commit the result" >&2
  git status --short -- gen >&2
  exit 1
fi
echo "gen/ matches proto/"
