# The browser preview's suites (tests/browser/): headless Chromium driven by playwright-core.
# Included by the top-level Makefile. Debian's chromium is used as it is; playwright-core never
# downloads a browser (PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD, executablePath in harness.mjs).

BROWSER_TESTS := tests/browser
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

.PHONY: browser-setup browser-test bench-browser preview preview-vendor preview-screenshot

browser-setup: ## install Debian's chromium (if missing) and the browser suites' npm packages
	@command -v chromium >/dev/null || { echo "[browser] installing chromium (apt)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
	@[ -d $(BROWSER_TESTS)/node_modules/playwright-core ] && [ -d $(BROWSER_TESTS)/node_modules/yaml ] || \
	  { echo "[browser] npm ci in $(BROWSER_TESTS)"; cd $(BROWSER_TESTS) && npm ci --no-audit --no-fund --loglevel=error; }

browser-test: build browser-setup ## the preview page in headless Chromium; screenshots in target/browser/
	node --test $(BROWSER_TESTS)/

# `make bench` includes the browser benchmark (a prerequisite only; the recipe is the Makefile's).
bench: bench-browser

bench-browser: build browser-setup ## preview input-to-rendered time, 3×4 and 100×8 (budget 50 ms) -> target/bench/browser.json
	node $(BROWSER_TESTS)/bench.mjs

preview: build ## serve the browser preview on 127.0.0.1:8100
	$(LWS) preview --port 8100

preview-vendor: browser-setup ## rebuild preview/vendor/yaml.js from the pinned yaml npm package
	cd $(BROWSER_TESTS) && npm run --silent vendor

preview-screenshot: build browser-setup ## refresh docs/preview.png (the README's picture)
	LWS_UPDATE_SCREENSHOT=1 node --test $(BROWSER_TESTS)/
