# Two entry points (README): `make demo` and `make test`. Each installs what it needs.

FORGE := node_modules/.bin/forge
# npm writes this file on every install: newer than the lockfile means node_modules is current.
NPM_STAMP := node_modules/.package-lock.json
# Alto (bundler) and viem for the user-operation tests, in a folder of their own.
NODE_TOOLS_STAMP := tools/node/node_modules/.package-lock.json
CARGO_FLAGS := --locked

.PHONY: demo test toolchain build artifacts snapshot fmt lint clean
# Unit and fuzz tests at a fixed seed; invariants excluded. Fuzz averages still move slightly
# between checkouts (0.06% seen), hence the check's 1% tolerance.
SNAPSHOT_FLAGS := --fuzz-seed 1 --no-match-contract Invariants

demo: toolchain
	cargo run $(CARGO_FLAGS) --quiet -p sak-cli --bin sak -- demo

test: toolchain
	@echo "==> formatting"
	cargo fmt --all --check
	$(FORGE) fmt --check
	@echo "==> committed artifacts match contracts/src"
	cargo xtask artifacts --check
	@echo "==> forge test (ci profile: 10,000 fuzz runs, invariants 128 x 100)"
	FOUNDRY_PROFILE=ci $(FORGE) test
	@echo "==> gas snapshot within 1% of .gas-snapshot (make snapshot rewrites it)"
	$(FORGE) snapshot $(SNAPSHOT_FLAGS) --check --tolerance 1
	@echo "==> clippy"
	cargo clippy $(CARGO_FLAGS) --workspace --all-targets -- -D warnings
	@echo "==> doc examples"
	cargo test $(CARGO_FLAGS) --workspace --doc --quiet
	@echo "==> cargo nextest"
	cargo nextest run $(CARGO_FLAGS) --workspace --profile ci

toolchain: $(NPM_STAMP) $(NODE_TOOLS_STAMP)

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

# `npm install`, not `npm ci`: the lock cannot list msgpackr-extract's optional builds for other
# platforms (the registry mirror here lacks them), which `npm ci` rejects as out of sync.
# `npm install` installs exactly the locked versions; `git diff --exit-code` proves the lock held.
$(NODE_TOOLS_STAMP): tools/node/package.json tools/node/package-lock.json
	cd tools/node && npm install --no-audit --no-fund
	git diff --exit-code -- tools/node/package-lock.json
	@touch $@

build: toolchain
	cargo build $(CARGO_FLAGS) --workspace --all-targets

# Recompile contracts/src through foundry-compilers and rewrite crates/contracts/artifacts.
artifacts: toolchain
	cargo xtask artifacts

# Rewrite .gas-snapshot after a change that moves gas (commit it with the change).
snapshot: toolchain
	$(FORGE) snapshot $(SNAPSHOT_FLAGS)

fmt: toolchain
	cargo fmt --all
	$(FORGE) fmt

clean:
	cargo clean
	rm -rf out cache
