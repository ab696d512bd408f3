# The front door: each target is one obvious command over the project's own scripts.
SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(PATH)
NPM_STAMP := node_modules/.package-lock.json

.PHONY: install generate check-generated lint breaking typecheck build test check ci run bench clean

install: $(NPM_STAMP)

# `npm install` rather than `npm ci`: the registry mirror here lacks buf's darwin/win32 binaries,
# which npm ci insists on finding in the lockfile. The lockfile still pins every version.
$(NPM_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --prefer-offline

# Regenerate gen/ when a contract changes (the output is committed).
generate: $(NPM_STAMP)
	buf generate

check-generated: $(NPM_STAMP)
	scripts/check-generated.sh

lint: $(NPM_STAMP)
	buf lint
	eslint --max-warnings 0 .
	REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true redocly lint --format=stylish gateway/openapi.yaml

breaking: $(NPM_STAMP)
	scripts/buf-breaking.sh

typecheck: $(NPM_STAMP)
	tsc --noEmit -p tsconfig.json

build: $(NPM_STAMP)
	rm -rf dist
	tsc -p tsconfig.build.json
	scripts/copy-assets.sh

# The README's test command: installs, checks the local stores are up, runs every test.
test: $(NPM_STAMP)
	scripts/services.sh check
	mocha

# Everything CI gates on besides the tests.
check: lint breaking check-generated typecheck

ci: check test

# The README's run command: installs, builds and starts the mesh under the supervisor.
run: build
	scripts/services.sh check
	node --import tsx scripts/run-mesh.ts

# Benchmarks (docs/performance.md): builds, then measures the machine's baselines and the mesh in one
# run (about 5 minutes); prints the table and writes bench/results/<timestamp>.json and latest.md.
bench: build
	scripts/services.sh check
	node --import tsx bench/run.ts

clean:
	rm -rf dist
