"""Page statuses, named once: the news engine, the page model and the worker's queries for
pages still open all read them from here.

A page's status is its deposit's or its invoice's: each page kind (checkout/pagekinds/) says
which of these are open and final for it, and holds its forward-only ranks.
"""

from __future__ import annotations

# A deposit page, in the order a payment goes through them.
WAITING = "waiting"
SEEN = "not_confirmed"
CONFIRMED = "confirmed"
CANCELLED = "cancelled"
# An invoice (and its page).
CREATED = "created"
PENDING = "pending"
PROCESSING = "processing"
FAILED = "failed"

# Deposit pages not final by their status (a page confirmed short of the amount asked is
# open too: reconcile.py adds it by its reason).
OPEN_DEPOSIT = (WAITING, SEEN)
# Invoices no money has reached yet: their timers run out, and their pages show prices.
UNPAID_INVOICE = (CREATED, PENDING)
# Pages whose model follows the rates (a fiat value, a currency picker).
OPEN_PAGES = OPEN_DEPOSIT + UNPAID_INVOICE
