# govgate — the two commands a newcomer needs:
#   make demo   run the gateway with two demo government apps (see README.md)
#   make test   build once and run every test suite
#
# Both install what a fresh Debian machine lacks (cmake, which pingora needs to build).

CARGO ?= cargo
PROFILE ?= release
CARGO_PROFILE_FLAG := $(if $(filter release,$(PROFILE)),--release,)
BIN := target/$(PROFILE)/govgate

.PHONY: demo test build prerequisites test-prerequisites lint bench check fuzz pgo bench-pgo

prerequisites:
	@command -v $(CARGO) >/dev/null || { echo "Rust is missing: install it from https://rustup.rs"; exit 1; }
	@command -v cmake >/dev/null || { \
	  echo "installing cmake (needed to build pingora)"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq cmake; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq cmake; fi; }

# The single-sign-on test runs the documented Python example (docs/examples/verify_assertion.py);
# tests/tests/python_rp.rs runs a relying party written with Authlib (tests/rp/python_rp.py).
test-prerequisites: prerequisites
	@python3 -c "import jwt, cryptography" 2>/dev/null || { \
	  echo "installing PyJWT[crypto] (the SSO test runs the documented Python assertion check)"; \
	  python3 -m pip install -q 'PyJWT[crypto]'; }
	@python3 -c "import authlib, requests" 2>/dev/null || { \
	  echo "installing authlib and requests (the Python relying-party test)"; \
	  python3 -m pip install -q authlib requests; }

build: prerequisites
	$(CARGO) build $(CARGO_PROFILE_FLAG) --bin govgate

demo: build
	$(BIN) demo --config policies/demo.toml

check: build
	$(BIN) check --config policies/gateway.toml

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The end-to-end tests start the binary built above; GOVGATE_BIN tells them where it is.
# CRS's regression suite runs first with its per-file figures shown (the OWASP CRS comes from
# ../shared/crs beside the repository, or GOVGATE_CRS_DIR).
# One build of every target first, so that the binary and the tests share one feature set and
# nothing is compiled twice.
test: test-prerequisites lint
	$(CARGO) build $(CARGO_PROFILE_FLAG) --workspace --all-targets
	$(CARGO) test $(CARGO_PROFILE_FLAG) -p govgate-waf --test crs_regression -- --nocapture
	GOVGATE_BIN=$(CURDIR)/$(BIN) $(CARGO) test $(CARGO_PROFILE_FLAG) --workspace --no-fail-fast

bench: build
	GOVGATE_BIN=$(CURDIR)/$(BIN) bash bench/run.sh

# The profile-guided build recommended for production (bench/pgo.sh: instrumented build, training
# on CRS's regression requests and on wrk through the gateway, optimised build, then BOLT's code
# layout): target/pgo/govgate.
pgo: prerequisites
	bash bench/pgo.sh

bench-pgo: pgo
	GOVGATE_BIN=$(CURDIR)/target/pgo/govgate bash bench/run.sh

# Bounded fuzzing (FUZZ_SECONDS each): the WAF's rule parser, request inspection and literal scanner, and the
# certificate decoder, path validation and CMS verification.
fuzz: prerequisites
	bash gateway/waf/fuzz/run.sh
	bash certs/fuzz/run.sh
