# The two commands a new user runs: `make demo` and `make test`.
# Each creates .venv when missing and installs what it needs.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo dashboard test lint locale dovecot postgresql chromium clean

demo: $(STAMP)
	$(BIN)/leadhub demo

# docs/dashboard.png: the demo's report.html in headless Chromium.
dashboard: demo chromium
	chromium --headless --no-sandbox --disable-gpu --no-first-run --hide-scrollbars \
		--user-data-dir=$(CURDIR)/demo-output/.chromium --window-size=1280,1880 \
		--screenshot=$(CURDIR)/docs/dashboard.png file://$(CURDIR)/demo-output/report.html
	rm -rf demo-output/.chromium

test: $(STAMP) dovecot postgresql chromium
	$(BIN)/ruff check .
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .

# The Russian catalog: edit the .po, then compile the .mo committed beside it
# (tests/leadhub/test_i18n.py fails while the two differ). msgfmt: apt gettext.
CATALOG := leadhub/locale/ru/LC_MESSAGES/leadhub
locale:
	msgfmt --check-format -o $(CATALOG).mo $(CATALOG).po

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

# The IMAP tests run a real Dovecot on loopback. Installed when missing and
# apt is usable; the package's own service is kept from starting.
dovecot:
	@if command -v dovecot >/dev/null 2>&1 || test -x /usr/sbin/dovecot; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing dovecot-imapd for the IMAP tests"; \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd >/dev/null); \
		status=$$?; rm -f /usr/sbin/policy-rc.d; exit $$status; \
	else echo "dovecot-imapd is not installed and apt is not usable: IMAP tests will be skipped"; fi

# The store's tests run every ledger and flow test on SQLite and on a real
# PostgreSQL that the tests start in a folder of their own (the package's
# own cluster is kept from starting).
postgresql:
	@if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing postgresql for the store's tests"; \
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null); \
		status=$$?; rm -f /usr/sbin/policy-rc.d; exit $$status; \
	else echo "postgresql is not installed and apt is not usable: the PostgreSQL tests will be skipped"; fi

# The dashboard test opens report.html in headless Chromium. Installed when
# missing and apt is usable; otherwise that test is skipped.
chromium:
	@if test -x /usr/bin/chromium; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
		echo "installing chromium for the dashboard test"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null); \
	else echo "chromium is not installed and apt is not usable: the dashboard browser test will be skipped"; fi

clean:
	rm -rf $(VENV) demo-output .pytest_cache
