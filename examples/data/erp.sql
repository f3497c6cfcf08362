-- The orders table that examples/sql_to_xml.toml reads; examples/data/erp.db is built from
-- this file: sqlite3 examples/data/erp.db < examples/data/erp.sql
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    customer TEXT NOT NULL,
    total NUMERIC(10, 2) NOT NULL,
    status TEXT NOT NULL
);
INSERT INTO orders (id, customer, total, status) VALUES
    (1, 'Ada Lovelace', 129.90, 'new'),
    (2, 'Grace Hopper', 15.00, 'cancelled'),
    (3, 'Alan Turing & Co', 42.50, 'shipped'),
    (4, 'Edsger Dijkstra', 7.25, 'new');
