"""The processor's wire format, shared by the site and the embedded sandbox: HMAC-SHA512
signatures (`signing`), PHP's json_encode bytes (`phpjson`), decimal amounts as text
(`decimals`) and JSON with Decimal numbers (`jsontext`). It imports nothing of the site."""
