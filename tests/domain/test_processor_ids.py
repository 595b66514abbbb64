"""The processor's ids are 64-bit (callback ids past 2**31 are real): every column that holds
one is a BIGINT, or PostgreSQL answers 500 where SQLite quietly coped."""

from __future__ import annotations

from flask import Flask
from sqlalchemy import BigInteger, select

from checkout import db
from checkout.db import Base
from checkout.models import DepositAddress, Merchant

BIG = 2**31 + 7


def test_every_column_holding_a_processor_id_is_64_bit() -> None:
    columns = [(table.name, column.name) for table in Base.metadata.sorted_tables
               for column in table.columns if column.name.startswith("processor_")]
    assert ("deposit_addresses", "processor_id") in columns
    for table, name in columns:
        column = Base.metadata.tables[table].columns[name]
        assert isinstance(column.type, BigInteger), f"{table}.{name} is {column.type}"


def test_an_address_id_past_two_to_the_31_is_stored_and_read_back(
        app: Flask, merchant: Merchant) -> None:
    with app.app_context(), db.transaction() as s:
        s.add(DepositAddress(merchant_id=11, foreign_id="big", currency="BTC", convert_to="",
                             address="bc1qbig", processor_id=BIG))
    with app.app_context():
        assert db.session().scalar(select(DepositAddress.processor_id)) == BIG
