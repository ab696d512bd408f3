#!/usr/bin/env bash
# buf breaking against the previous commit of this branch. A shallow clone is deepened first
# (buf cannot read a commit the clone does not have); the very first commit has nothing to compare.
set -euo pipefail
if [ "$(git rev-parse --is-shallow-repository)" = "true" ]; then
  git fetch --quiet --deepen=1 || echo "buf breaking: could not deepen the shallow clone" >&2
fi
if ! git rev-parse --verify --quiet 'HEAD~1^{commit}' >/dev/null; then
  echo "buf breaking: no previous commit to compare with; skipped"
  exit 0
fi
if ! git cat-file -e 'HEAD~1:buf.yaml' 2>/dev/null; then
  echo "buf breaking: the previous commit has no buf module yet; skipped"
  exit 0
fi
buf breaking --against '.git#ref=HEAD~1'
echo "buf breaking: no breaking change against HEAD~1"
