#!/usr/bin/env bash
# Copies what the compiled processes read at run time (config.yml, SQL migrations, the OpenAPI
# document and the Swagger UI page) into dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
roots=()
for dir in services gateway; do [ -d "$dir" ] && roots+=("$dir"); done
find "${roots[@]}" -path '*/test' -prune -o \( -name 'config.yml' -o -path '*/migrations/*.sql' -o -name 'openapi.yaml' -o -path 'gateway/docs/*' \) -type f -print |
  while read -r f; do mkdir -p "dist/$(dirname "$f")"; cp "$f" "dist/$f"; done
