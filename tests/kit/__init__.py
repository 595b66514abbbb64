"""What the tests share: shops, links, payments, counters, workers and servers. No tests here."""
