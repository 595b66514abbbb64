"""The JSON examples of /work/shared/coinspaid-api.md, verbatim, for every test to share.

Each constant is the unwrapped JSON text of one example in the document (the part inside
`{"data":...}` for API responses, the whole body for callbacks), byte for byte as the document
shows it, and named after what it is. `wrapped(text)` puts a response example back in its
`{"data":...}` envelope. Never reformat these texts: the tests depend on their exact bytes
(key order, amount strings with or without trailing zeros, bare numbers, nulls).
"""

from __future__ import annotations


def wrapped(text: str) -> str:
    """A response body: the example inside the API's `{"data":...}` envelope."""
    return '{"data":' + text + "}"


# §2.1 currencies/list: one crypto and one fiat item of the list
CURRENCY = (
    '{"id":1,"type":"crypto","currency":"BTC","minimum_amount":"0.001",'
    '"deposit_fee_percent":"0.99","withdrawal_fee_percent":"0","precision":8}')
CURRENCY_FIAT = (
    '{"id":20,"type":"fiat","currency":"USD","minimum_amount":"0.00000000",'
    '"deposit_fee_percent":"0.000000","withdrawal_fee_percent":"0.000000","precision":8}')

# §2.2 currencies/pairs: the item of the list
PAIR = (
    '{"currency_from":{"currency":"BTC","type":"crypto","min_amount":"0.00300000",'
    '"min_amount_deposit_with_exchange":"0.00010000"},"currency_to":{"currency":"EUR",'
    '"type":"fiat"},"rate_from":"1","rate_to":"8795.80000000"}')

# §2.3 currencies/rates: the item of the list
RATE = (
    '{"currency_from":{"currency":"BTC","type":"crypto","min_amount":"0.00010000",'
    '"min_amount_deposit_with_exchange":"0.00010000"},"currency_to":{"currency":"EUR",'
    '"type":"fiat"},"rate_from":"1","rate_to":"48715.61680000"}')

# §2.4 accounts/list: the whole list, and its first item alone
ACCOUNTS = (
    '[{"currency":"DOGE","type":"crypto","balance":"13234.91276375"},{"currency":"EUR",'
    '"type":"fiat","balance":"5973.97568920"}]')
BALANCE = '{"currency":"DOGE","type":"crypto","balance":"13234.91276375"}'

# §2.5 addresses/take: the documented answer and the realistic sandbox one (GO test)
ADDRESS = (
    '{"id":1,"currency":"BTC","convert_to":"EUR","address":"12983h13ro1hrt24it432t",'
    '"tag":"tag-123","foreign_id":"user-id:2048"}')
ADDRESS_GO = (
    '{"id":387552,"currency":"BTC","convert_to":"USD",'
    '"address":"2MwToDP2jFAwQxFuUSFzTH9FM8kMDWQCpRt","tag":null,"foreign_id":"test"}')

# §2.6 withdrawal/crypto: plain, and with conversion (GO test)
WITHDRAWAL = (
    '{"id":1,"foreign_id":"122929","type":"withdrawal","status":"processing","amount":"0.01000000",'
    '"sender_amount":"0.01000000","sender_currency":"ETH","receiver_amount":"0.01000000",'
    '"receiver_currency":"ETH"}')
WITHDRAWAL_EXCHANGE = (
    '{"id":2964068,"foreign_id":"test","type":"withdrawal_exchange","status":"processing",'
    '"amount":"25.00000000","sender_amount":"25.00000000","sender_currency":"EUR",'
    '"receiver_amount":"0.00261850","receiver_currency":"BTC"}')

# §2.7 exchange/calculate (sender_amount is a bare number in the document)
QUOTE = (
    '{"sender_amount":1,"sender_currency":"BTC","receiver_amount":"8549.81680000",'
    '"receiver_currency":"EUR","fee_amount":"85.49816800","fee_currency":"BTC",'
    '"price":"8549.81680000","ts_fixed":1564293159,"ts_release":1564293219,"fix_period":60}')

# §2.8 exchange/fixed and §2.9 exchange/now
EXCHANGE = (
    '{"id":2687667,"foreign_id":"knwi24op9","type":"exchange","sender_amount":"0.01",'
    '"sender_currency":"BTC","receiver_amount":"63.52069015","receiver_currency":"EUR",'
    '"fee_amount":"6.98727592","fee_currency":"EUR","price":"6352.06901520","status":"processing"}')

# §2.11 invoices/create: the current shape and the 2020 one
INVOICE = (
    '{"id":826900,"url":"https://invoices.sandbox.cryptoprocessing.com/invoice/Jyf1cQ",'
    '"foreign_id":"test_foreign_id_0344","end_user_reference":"12345","address":null,'
    '"title":"Invoice Title","status":"created","currency":"EUR","amount":"100.00000000",'
    '"sender_currency":null,"sender_amount":null,"fixed_at":null,"release_at":null,'
    '"seconds_left":null}')
INVOICE_2020 = (
    '{"id":79,"url":"https://app.coinspaid.com/invoice/RB9NZv","foreign_id":164,"name":"TEST NAME",'
    '"status":"created","currency":"EUR","amount":"106.75","sender_currency":"BTC",'
    '"sender_amount":null,"fixed_at":1581929889,"release_at":1581930789}')

# §3 callbacks, "Example payloads" (also what §2.13 transactions/info returns)
DEPOSIT_CALLBACK = (
    '{"id":1,"type":"deposit","crypto_address":{"id":1,"currency":"BTC",'
    '"address":"39mFf3X46YzUtfdwVQpYXPCMydc74ccbAZ","foreign_id":"user-id:2048","tag":null},'
    '"currency_sent":{"currency":"BTC","amount":"6.53157512"},'
    '"currency_received":{"currency":"BTC","amount":"6.53157512","amount_minus_fee":"6.5119800"},'
    '"transactions":[{"id":1,"currency":"BTC","transaction_type":"blockchain","type":"deposit",'
    '"address":"39mFf3X46YzUtfdwVQpYXPCMydc74ccbAZ","tag":null,"amount":"6.53157512",'
    '"txid":"3950ad8149421a850d01dff88f024810e363ac18c9e8dd9bc0b9116e7937ad93","riskscore":"0.5",'
    '"confirmations":3}],"fees":[{"type":"deposit","currency":"BTC","amount":"0.01959472"}],'
    '"error":"","status":"confirmed"}')
DEPOSIT_EXCHANGE_CALLBACK = (
    '{"id":2686510,"type":"deposit_exchange","crypto_address":{"id":382270,"currency":"BTC",'
    '"convert_to":"EUR","address":"31vnLqxVJ1iShJ5Ly586q8XKucECx12bZS","tag":null,'
    '"foreign_id":"13a"},"currency_sent":{"currency":"BTC","amount":"0.01000000"},'
    '"currency_received":{"currency":"EUR","amount":"84.17070222",'
    '"amount_minus_fee":"79.96216711"},"transactions":[{"id":714576,"currency":"BTC",'
    '"transaction_type":"blockchain","type":"deposit",'
    '"address":"31vnLqxVJ1iShJ5Ly586q8XKucECx12bZS","tag":null,"amount":"0.01000000",'
    '"txid":"3a491da90a1ce5a318d0aeff6867ab98a03219abae29ed68d702291703c3538b","riskscore":"0.42",'
    '"confirmations":"1"},{"id":714577,"currency":"BTC","currency_to":"EUR",'
    '"transaction_type":"exchange","type":"exchange","amount":"0.01000000",'
    '"amount_to":"84.17070222"}],"fees":[{"type":"exchange","currency":"EUR",'
    '"amount":"4.20853511"}],"error":"","status":"confirmed"}')
WITHDRAWAL_CALLBACK = (
    '{"id":1,"foreign_id":"10","type":"withdrawal","crypto_address":{"id":1,"currency":"BTC",'
    '"address":"115Mn1jCjBh1CNqug7yAB21Hq2rw8PfmTA","tag":null},"currency_sent":{"currency":"BTC",'
    '"amount":"0.02000000"},"currency_received":{"currency":"BTC","amount":"0.02000000"},'
    '"transactions":[{"id":1,"currency":"BTC","transaction_type":"blockchain","type":"withdrawal",'
    '"address":"115Mn1jCjBh1CNqug7yAB21Hq2rw8PfmTA","tag":null,"amount":"0.02",'
    '"txid":"bb040d895ef7141ea0b06b04227d8f5dd4ee12d5b890e6e5633f6439393a666b","confirmations":3}],'
    '"fees":[{"type":"mining","currency":"BTC","amount":"0.00007402"},{"type":"withdrawal",'
    '"currency":"BTC","amount":"0.00002000"}],"error":"","status":"confirmed"}')
WITHDRAWAL_CANCELLED_CALLBACK = (
    '{"id":2686580,"foreign_id":"123","type":"withdrawal","crypto_address":{"id":382362,'
    '"currency":"ETH","address":"12345","tag":null},"transactions":[{"id":714681,"currency":"ETH",'
    '"transaction_type":"blockchain","type":"withdrawal","address":"12345","tag":null,'
    '"amount":"1.00000000","txid":null,"confirmations":"0"}],"fees":[],'
    '"error":"Invalid params: expected a hex-encoded hash with 0x prefix.","status":"cancelled"}')
EXCHANGE_CALLBACK = (
    '{"id":2686900,"type":"exchange","currency_sent":{"currency":"EUR","amount":"26.75248865"},'
    '"currency_received":{"currency":"BTC","amount":"0.00300000"},"transactions":[{"id":715072,'
    '"currency":"EUR","currency_to":"BTC","transaction_type":"exchange","type":"exchange",'
    '"amount":"26.75248865","amount_to":"0.00300000"}],"fees":[{"type":"exchange","currency":"EUR",'
    '"amount":"0.26752489"}],"error":"","status":"confirmed"}')
INVOICE_CALLBACK = (
    '{"id":22,"foreign_id":"229-hdsa","type":"invoice","crypto_address":{"id":1845,'
    '"currency":"BTC","convert_to":"EUR","address":"2N8pvnVKEFjVCP4TteJVCPTbg9Aqibfws8C",'
    '"tag":null},"currency_sent":{"currency":"BTC","amount":"0.00309556",'
    '"remaining_amount":"0.00000000"},"currency_received":{"currency":"EUR",'
    '"amount":"26.00000000"},"transactions":[{"id":1504,"currency":"BTC",'
    '"transaction_type":"blockchain","type":"deposit",'
    '"address":"2N8pvnVKEFjVCP4TteJVCPTbg9Aqibfws8C","tag":null,"amount":"0.00309556",'
    '"txid":"3e68744626ba23d591dc1b548b8b9b126ab0f49e6da020958f66ee64c38ec7ed",'
    '"confirmations":"0"}],"fees":[],"error":"","status":"processing","fixed_at":1592308917,'
    '"expires_at":1592395375}')
