"""HTTP only: parse a request, call one service, render or serialise its answer.

Blueprints per audience (`customer`, `merchant_api`, `callbacks`, `branding`, `health`), the
API's wire validation (`invoice_wire`), request authentication (`auth`), errors, rate limits,
the front (`front`, answers before Flask runs) and the page cache. Nothing outside this
package (but the app factory and the sandbox) imports flask's request, Response or templates
(tests/test_web_boundary.py).
"""
