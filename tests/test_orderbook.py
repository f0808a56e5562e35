"""Order book: matching rules, queries, invalid orders, and hypothesis invariants."""

from __future__ import annotations

import pytest
from crossmargin.model import orderbook
from crossmargin.model.orderbook import BUY, IOC, POST_ONLY, SELL, OrderError
from hypothesis import given, settings
from hypothesis import strategies as st

# Every test runs on the Python book and, where it is built, on the compiled one.
BOOKS = [pytest.param(orderbook.PyOrderBook, id="python")]
if orderbook.COMPILED:
    BOOKS.append(pytest.param(orderbook.OrderBook, id="compiled"))


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_price_time_priority_and_fill_records(OrderBook):
    book = OrderBook()
    book.limit(SELL, 101, 5, owner=1, oid=10)
    book.limit(SELL, 100, 3, owner=2, oid=11)
    book.limit(SELL, 100, 4, owner=3, oid=12)
    filled = book.limit(BUY, 101, 9, owner=4, oid=13)
    assert filled == 9
    # best price first, FIFO within the level, the resting order's price
    assert book.fills == [
        (11, 2, 13, 4, 100, 3, BUY),
        (12, 3, 13, 4, 100, 4, BUY),
        (10, 1, 13, 4, 101, 2, BUY),
    ]
    assert book.best_ask == 101 and book.level_qty(SELL, 101) == 3
    assert book.best_bid is None
    assert book.last_price == 101
    book.check()


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_depth_summary_on_the_edges_of_its_bands(OrderBook):
    """A level exactly on a band's lower edge is in that band, one on the last edge in
    none; ``within`` counts the levels exactly at its limits (mid 100, ±50%)."""
    b = OrderBook()
    for side, price, qty in ((BUY, 50, 1), (BUY, 99, 2), (SELL, 101, 3), (SELL, 150, 4)):
        b.limit(side, price, qty)
    assert b.depth_summary([-5000, 0, 5000], (5000, 100)) == ([3, 3], [10, 5])


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_limit_rests_remainder_and_ioc_discards(OrderBook):
    book = OrderBook()
    book.limit(SELL, 100, 2, owner=1)
    assert book.limit(BUY, 100, 5, owner=2) == 2
    assert book.best_bid == 100 and book.level_qty(BUY, 100) == 3
    assert book.limit(SELL, 99, 10, owner=3, tif=IOC) == 3
    assert book.best_bid is None and book.best_ask is None
    book.check()


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_post_only_rejected_when_crossing(OrderBook):
    book = OrderBook()
    book.limit(SELL, 100, 2, owner=1)
    assert book.limit(BUY, 100, 1, owner=2, tif=POST_ONLY) == 0
    assert book.rejected_post_only == 1
    assert book.best_bid is None
    book.limit(BUY, 99, 1, owner=2, tif=POST_ONLY)
    assert book.best_bid == 99


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_market_order_walks_the_book(OrderBook):
    book = OrderBook()
    for p in (100, 101, 102):
        book.limit(SELL, p, 1, owner=1)
    assert book.market(BUY, 5, owner=2) == 3
    assert book.best_ask is None
    assert book.market(SELL, 1, owner=2) == 0


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_cancel_and_reduce(OrderBook):
    book = OrderBook()
    book.limit(BUY, 99, 5, owner=1, oid=1)
    book.limit(BUY, 99, 5, owner=1, oid=2)
    book.limit(BUY, 98, 5, owner=1, oid=3)
    assert book.reduce(1, 2)
    assert book.level_qty(BUY, 99) == 7
    assert book.cancel(1) == 2
    assert book.cancel(1) == 0 and book.noop_cancels == 1
    assert book.cancel(999) == 0 and book.noop_cancels == 2
    assert book.cancel(2) == 5
    assert book.best_bid == 98
    book.limit(SELL, 98, 1, owner=2)
    assert book.order(3) == (1, BUY, 98, 4)
    with pytest.raises(OrderError, match="qty"):
        book.reduce(3, 4)
    book.check()


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_reduce_keeps_priority(OrderBook):
    book = OrderBook()
    book.limit(SELL, 100, 5, owner=1, oid=1)
    book.limit(SELL, 100, 5, owner=2, oid=2)
    book.reduce(1, 1)
    book.market(BUY, 1, owner=3)
    assert book.fills[0][0] == 1


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_self_trade_prevention_cancels_resting(OrderBook):
    book = OrderBook(stp=True)
    book.limit(SELL, 100, 5, owner=7, oid=1)
    book.limit(SELL, 101, 5, owner=8, oid=2)
    assert book.market(BUY, 3, owner=7) == 3
    assert book.stp_cancels == 1
    assert 1 not in book
    assert book.fills == [(2, 8, book.last_id, 7, 101, 3, BUY)]
    book.check()


@pytest.mark.parametrize("OrderBook", BOOKS)
@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((BUY, 100, 0), "qty"),
        ((BUY, 100, -3), "qty"),
        ((BUY, 100.5, 1), "price"),
        ((BUY, 0, 1), "price"),
        ((BUY, 100, 1.5), "qty"),
        ((0, 100, 1), "side"),
        (("buy", 100, 1), "side"),
    ],
)
def test_invalid_orders_raise_naming_the_field(OrderBook, args, field):
    book = OrderBook()
    with pytest.raises(OrderError, match=field):
        book.limit(*args)
    assert book.n_orders == 0


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_duplicate_id_rejected(OrderBook):
    book = OrderBook()
    book.limit(BUY, 10, 1, oid=5)
    with pytest.raises(OrderError, match="id"):
        book.limit(BUY, 11, 1, oid=5)


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_depth_queries_and_snapshot(OrderBook):
    book = OrderBook()
    book.limit(BUY, 995, 3)
    book.limit(BUY, 990, 4)
    book.limit(BUY, 900, 100)
    book.limit(SELL, 1005, 2)
    book.limit(SELL, 1100, 50)
    assert book.mid == 1000 and book.spread == 10
    assert book.top(2) == ([(995, 3), (990, 4)], [(1005, 2), (1100, 50)])
    assert book.depth_within(100) == (7, 2)  # ±1% of 1000
    assert book.depth_within(1000) == (107, 52)
    snap = book.snapshot()
    assert snap["bids"][0] == (995, 3) and snap["orders"] == 5
    assert book.total_qty(BUY) == 107 and book.total_qty(SELL) == 52


ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("limit"),
            st.sampled_from([BUY, SELL]),
            st.integers(90, 110),
            st.integers(1, 9),
            st.integers(0, 4),
        ),
        st.tuples(
            st.just("market"),
            st.sampled_from([BUY, SELL]),
            st.just(0),
            st.integers(1, 30),
            st.integers(0, 4),
        ),
        st.tuples(st.just("cancel"), st.just(0), st.just(0), st.integers(1, 60), st.just(0)),
        st.tuples(
            st.just("ioc"),
            st.sampled_from([BUY, SELL]),
            st.integers(90, 110),
            st.integers(1, 20),
            st.integers(0, 4),
        ),
    ),
    max_size=120,
)


@pytest.mark.parametrize("OrderBook", BOOKS)
@settings(max_examples=300, deadline=None)
@given(ops, st.booleans())
def test_book_invariants(OrderBook, seq, stp):
    """Never crossed; FIFO within a level; fills conserve size; cancels idempotent."""
    book = OrderBook(stp=stp)
    placed: dict[int, list] = {}  # oid -> [side, price, qty, seq_no]
    seq_no = 0
    for op, side, price, qty, owner in seq:
        n_fills = len(book.fills)
        resting_before = {oid: book.order(oid) for oid in list(placed) if oid in book}
        if op == "cancel":
            was = book.order(qty)
            got = book.cancel(qty)
            assert got == (was[3] if was else 0)
            assert book.cancel(qty) == 0  # idempotent
            book.check()
            continue
        if op == "ioc":
            expected = book.fill_cost(side, qty, price)
        if op == "market":
            filled = book.market(side, qty, owner)
        else:
            filled = book.limit(side, price, qty, owner, tif=IOC if op == "ioc" else 0)
            seq_no += 1
            if op == "limit" and book.last_id in book:
                placed[book.last_id] = [side, price, seq_no]
        new = book.fills[n_fills:]
        if op == "ioc" and not stp:  # what fill_cost promised is what the order took
            assert (filled, sum(f[4] * f[5] for f in new)) == expected
        assert sum(f[5] for f in new) == filled <= qty
        for maker_oid, maker_owner, _t, taker_owner, fprice, fqty, aggr in new:
            assert aggr == side and fqty > 0
            assert maker_oid in resting_before
            o = resting_before[maker_oid]
            assert o[1] == -side and o[2] == fprice and fqty <= o[3]
            if op != "market":
                assert (fprice <= price) if side == BUY else (fprice >= price)
            if stp:
                assert maker_owner != taker_owner
        # FIFO and price priority: fills are in (price priority, time) order
        keys = [(f[4] if side == BUY else -f[4], placed.get(f[0], [0, 0, 0])[2]) for f in new]
        assert keys == sorted(keys)
        book.check()


@pytest.mark.parametrize("OrderBook", BOOKS)
@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([BUY, SELL]), st.integers(90, 110), st.integers(1, 9)),
        max_size=40,
    ),
    st.lists(st.integers(0, 45), max_size=10),
)
def test_post_is_a_post_only_limit_that_does_not_cross(OrderBook, orders, cancels):
    """``OrderBook.post`` (a maker's ladder, checked by its caller) leaves the book
    exactly as ``limit(..., tif=POST_ONLY)``: the same ids, queues and level totals,
    for any sequence of orders that do not cross and cancels between them."""
    a, b = OrderBook(), OrderBook()
    for k, (side, price, qty) in enumerate(orders):
        if (a._best_ask <= price) if side == BUY else (a._best_bid >= price):
            continue  # post's caller has refused it already
        oid = a.post(side, price, qty, owner=k % 3)
        assert b.limit(side, price, qty, owner=k % 3, tif=POST_ONLY) == 0
        assert oid == a.last_id == b.last_id
        for oid in cancels[k % len(cancels) :: 7] if cancels else ():
            assert a.cancel(oid) == b.cancel(oid)
    a.check()
    assert a.snapshot() == b.snapshot()
    assert a.queues() == b.queues()  # every resting order, in queue order


twin_ops = st.lists(
    st.one_of(
        st.tuples(
            st.sampled_from(["limit", "ioc", "post_only", "post", "market"]),
            st.sampled_from([BUY, SELL]),
            st.integers(1, 30),
            st.integers(1, 12),
            st.integers(0, 3),
        ),
        st.tuples(  # with the caller's id, as a replayed file gives them
            st.sampled_from(["limit_id", "market_id"]),
            st.sampled_from([BUY, SELL]),
            st.integers(1, 30),
            st.integers(1, 12),
            st.integers(0, 3),
            st.integers(0, 80),
        ),
        st.tuples(st.sampled_from(["cancel", "reduce"]), st.integers(0, 60), st.integers(0, 6)),
        st.tuples(st.just("copy")),
    ),
    max_size=150,
)


@pytest.mark.skipif(not orderbook.COMPILED, reason="the compiled book is not built")
@settings(max_examples=300, deadline=None)
@given(twin_ops, st.booleans())
def test_compiled_book_is_the_python_books_twin(seq, stp):
    """The compiled book (``model/_book.pyx``) and the Python book, given the same
    orders, return the same values, record the same fills and self-trade cancels, count
    the same, raise the same errors and hold the same queues after every order (a
    ``copy.deepcopy`` of each, taken at random points, goes on alike)."""
    import copy

    books = [orderbook.PyOrderBook(stp=stp), orderbook.OrderBook(stp=stp)]

    def state(b):
        return (
            b.queues(),
            b.fills,
            b.stp_cancelled,
            (b.best_bid, b.best_ask, b.mid, b.spread, b.last_price, b.last_id),
            (b.n_orders, b.orders_submitted, b.noop_cancels, b.stp_cancels),
            b.rejected_post_only,
            [b.fill_cost(s, q, p) for s in (BUY, SELL) for q, p in ((5, 15), (40, 1), (40, 30))],
            b.depth_summary([-5000, -100, 0, 100, 5000], (50, 1000)),
            (b.total_qty(BUY), b.total_qty(SELL), b.level_qty(BUY, 10), b.top(3)),
            [b.orders_of(owner) for owner in range(4)],
            b.snapshot(),
        )

    for op in seq:
        results = []
        for b in books:
            try:
                if op[0] == "copy":
                    results.append(None)
                elif op[0] in ("cancel", "reduce"):
                    _, oid, q = op
                    rq = b.order(oid)
                    if op[0] == "cancel":
                        results.append((rq, b.cancel(oid), oid in b))
                    else:
                        results.append((rq, b.reduce(oid, q), b.order(oid)))
                else:
                    kind, side, price, qty, owner, *oid = op
                    if kind == "market":
                        results.append(b.market(side, qty, owner))
                    elif kind == "market_id":
                        results.append(b.market(side, qty, owner, oid=oid[0]))
                    elif kind == "limit_id":
                        results.append(b.limit(side, price, qty, owner, oid=oid[0]))
                    elif kind == "post":
                        crosses = b._best_ask <= price if side == BUY else b._best_bid >= price
                        results.append(None if crosses else b.post(side, price, qty, owner))
                    else:
                        tif = {"limit": 0, "ioc": IOC, "post_only": POST_ONLY}[kind]
                        results.append(b.limit(side, price, qty, owner, tif=tif))
            except OrderError as exc:
                results.append(("error", str(exc)))
        assert results[0] == results[1], op
        assert state(books[0]) == state(books[1]), op
        if op[0] == "copy":
            books = [copy.deepcopy(b) for b in books]
            assert state(books[0]) == state(books[1])
    for b in books:
        b.check()


def test_the_compiled_book_is_built_unless_python_is_asked_for():
    """``make test`` installs with the compiled book: the suite tests what users run.
    Only ``CROSSMARGIN_PURE_PYTHON=1`` (or an install without a compiler) gives the
    Python book."""
    import os

    pure = os.environ.get("CROSSMARGIN_PURE_PYTHON") == "1"
    assert orderbook.COMPILED is not pure


@pytest.mark.parametrize("OrderBook", BOOKS)
def test_ids_of_any_integer_type_and_values_that_are_no_id(OrderBook):
    """numpy's integers name orders as Python's do; None, floats that are no integer
    and ints beyond what the compiled book holds name none (a look-up finds nothing, a
    cancel is a counted no-op)."""
    import numpy as np

    book = OrderBook()
    book.limit(BUY, 10, 1)
    book.limit(BUY, 10, 2)
    assert np.int64(1) in book and book.order(np.int64(2)) == (-1, BUY, 10, 2)
    assert book.cancel(np.int64(2)) == 2 and book.n_orders == 1
    for nothing in (None, 2.5, 2**70, -(2**70)):
        assert nothing not in book and book.order(nothing) is None
        assert book.cancel(nothing) == 0
    assert book.noop_cancels == 4


@pytest.mark.skipif(not orderbook.COMPILED, reason="the compiled book is not built")
def test_compiled_book_refuses_what_it_cannot_hold():
    book = orderbook.OrderBook()
    for kwargs, field in (({"price": 2**62}, "price"), ({"qty": 2**62}, "qty")):
        args = {"side": BUY, "price": 10, "qty": 1} | kwargs
        with pytest.raises(OrderError, match=field):
            book.limit(args["side"], args["price"], args["qty"])
    with pytest.raises(OrderError, match="id"):
        book.limit(BUY, 10, 1, oid=2**70)
    with pytest.raises(OrderError, match="qty"):
        book.market(BUY, 2**62)
    assert book.n_orders == 0
